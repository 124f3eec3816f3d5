# run-tests.py under the MSYS shell; its exit status is this script's.
# Parameters: $Temp, $MsysShell, $TestsDir (MSYS path), $Python (MSYS path), $TestFlags.
# TMP/TEMP: a short path of our own (the profile's may be an 8.3 short name, which
# changes quoting in test output). Realtime antivirus is off for the run (it slows
# every process start and locks files the tests remove), restored in `finally` and
# verified on.
New-Item -ItemType Directory -Force -Path $Temp | Out-Null
$Env:TMP = $Temp
$Env:TEMP = $Temp
Write-Step 'antivirus realtime monitoring: off for the test run'
Set-MpPreference -DisableRealtimeMonitoring $true
try {
    $command = "cd $TestsDir && $Python run-tests.py $TestFlags"
    Write-Step "sh -c '$command'"
    & $MsysShell --login -c $command
    Assert-LastExit 'run-tests.py'  # exits with its status; `finally` still runs
}
finally {
    Set-MpPreference -DisableRealtimeMonitoring $false
    if (-not (Get-MpComputerStatus).RealTimeProtectionEnabled) {
        throw 'hgautomation: realtime antivirus did not come back on after the test run'
    }
    Write-Step 'antivirus realtime monitoring: restored'
}
