# run-tests.py under the MSYS shell; its exit status is this script's.
# Parameters: $MsysShell, $TestsDir (MSYS path), $Python (MSYS path), $TestFlags.
$command = "cd $TestsDir && $Python run-tests.py $TestFlags"
Write-Step "sh -c '$command'"
& $MsysShell --login -c $command
Assert-LastExit 'run-tests.py'
