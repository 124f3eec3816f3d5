# One wheel. Parameters: $Source, $Dist, $Python, $Arch, $Pattern.
Set-Location $Source
Write-Step "pip wheel with $Python ($Arch)"
& $Python -m pip wheel --no-deps --disable-pip-version-check --wheel-dir $Dist .
Assert-LastExit "pip wheel ($Python)"
$found = Get-ChildItem -Path $Dist -Filter $Pattern | Sort-Object LastWriteTime -Descending | Select-Object -First 1
if ($null -eq $found) {
    throw "hgautomation: no $Pattern in $Dist after pip wheel"
}
Write-Step "artifact $($found.Name)"
