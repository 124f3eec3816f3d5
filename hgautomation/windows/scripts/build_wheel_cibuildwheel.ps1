# One wheel through cibuildwheel, as the checkout declares its wheels (pyproject.toml
# [tool.cibuildwheel]) and as its CI selects one: CIBW_BUILD and CIBW_ARCHS.
# Parameters: $Source, $Dist, $Build (cp312-*), $Archs (x86|AMD64|ARM64), $Arch, $Pattern.
# cibuildwheel comes from the checkout's installer (pipx, in the user's .local\bin).
$Env:CIBW_BUILD = $Build
$Env:CIBW_ARCHS = $Archs
$command = Get-Command -Name 'cibuildwheel.exe' -CommandType Application -ErrorAction SilentlyContinue
if ($null -ne $command) {
    $cibuildwheel = $command.Source
} else {
    $cibuildwheel = Join-Path -Path $Env:USERPROFILE -ChildPath '.local\bin\cibuildwheel.exe'
}
if (-not (Test-Path -LiteralPath $cibuildwheel)) {
    throw "hgautomation: no cibuildwheel.exe on this image (the checkout's installer installs it with pipx); rebuild the image"
}
Set-Location $Source
Write-Step "cibuildwheel $Build for $Archs"
& $cibuildwheel --output-dir $Dist
Assert-LastExit "cibuildwheel ($Build $Archs)"
$found = Get-ChildItem -Path $Dist -Filter $Pattern | Sort-Object LastWriteTime -Descending | Select-Object -First 1
if ($null -eq $found) {
    throw "hgautomation: no $Pattern in $Dist after cibuildwheel"
}
Write-Step "artifact $($found.Name)"
