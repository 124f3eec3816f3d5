# Prelude of every script hgautomation runs on Windows (user data and SSH steps).
# Cmdlet errors stop the script; native programs only report failure through
# $LASTEXITCODE, so every native call is followed by Assert-LastExit.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0

function Assert-LastExit([string]$What) {
    $code = $LASTEXITCODE
    if ($code -ne 0) {
        [Console]::Error.WriteLine("hgautomation: $What failed (exit code $code)")
        # Exit with the program's own status so the caller sees it (run-tests.py's included).
        exit $code
    }
}

function Write-Step([string]$Message) {
    Write-Output "hgautomation: $Message"
}
