# One installer through the checkout's own packaging script.
# Parameters: $Source, $Dist, $Python, $Kind (inno|wix), $Arch, $Target, $Version, $Pattern,
# $PackagingArgs (packaging.py's arguments, one array element each), $RustupHome,
# $CargoHome (the checkout installer's Rust), $BootstrapScripts (hg for the version).
$Env:RUSTUP_HOME = $RustupHome
$Env:CARGO_HOME = $CargoHome
$Env:PATH = "$BootstrapScripts;$Env:PATH"
Set-Location $Source
Write-Step "packaging.py $Kind for $Arch ($Target) with $Python"
& $Python contrib\packaging\packaging.py @PackagingArgs
Assert-LastExit "packaging.py $Kind ($Arch)"
$found = Get-ChildItem -Path $Dist -Filter $Pattern | Sort-Object LastWriteTime -Descending | Select-Object -First 1
if ($null -eq $found) {
    throw "hgautomation: no $Pattern in $Dist after packaging.py $Kind"
}
Write-Step "artifact $($found.Name)"
