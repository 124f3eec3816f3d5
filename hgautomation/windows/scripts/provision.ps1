# Image provisioning over SSH: the checkout's install-windows-dependencies.ps1,
# then Mercurial in the bootstrap venv (what `hg push` lands on).
# Parameters: $DepsScript (uploaded copy of contrib/install-windows-dependencies.ps1),
# $BootstrapPython, $MercurialRequirement.
if (-not (Test-Path $DepsScript)) {
    throw "hgautomation: $DepsScript was not uploaded"
}

# Realtime scanning makes the installers crawl; it is restored in `finally`,
# so it is back on whatever happens, and prepare_image.ps1 verifies it before imaging.
Write-Step 'antivirus realtime monitoring: off for provisioning'
Set-MpPreference -DisableRealtimeMonitoring $true
try {
    Write-Step "running $DepsScript"
    & powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File $DepsScript
    Assert-LastExit 'install-windows-dependencies.ps1'

    if (-not (Test-Path $BootstrapPython)) {
        throw "hgautomation: $BootstrapPython missing after install-windows-dependencies.ps1"
    }
    Write-Step "installing $MercurialRequirement into the bootstrap venv"
    & $BootstrapPython -m pip install --disable-pip-version-check $MercurialRequirement
    Assert-LastExit 'pip install (venv-bootstrap)'
}
finally {
    Set-MpPreference -DisableRealtimeMonitoring $false
    Write-Step 'antivirus realtime monitoring: restored'
}
