# Last step before the image is taken: AV on, no host key or authorized key in
# the image, sshd left for the next first boot (user data) to configure and start.
$status = Get-MpComputerStatus
if (-not $status.RealTimeProtectionEnabled) {
    throw 'hgautomation: antivirus realtime protection is still off; refusing to image'
}
$sshDir = Join-Path $env:ProgramData 'ssh'
Set-Service -Name sshd -StartupType Manual
Get-ChildItem -Path $sshDir -Filter 'ssh_host_*' | Remove-Item -Force
Remove-Item -Path (Join-Path $sshDir 'administrators_authorized_keys') -Force -ErrorAction SilentlyContinue
# Without a reset EC2Launch v2 treats instances from this image as already
# launched and would not run their user data (which installs their host key).
& (Join-Path $env:ProgramFiles 'Amazon\EC2Launch\EC2Launch.exe') reset
Assert-LastExit 'EC2Launch reset'
Write-Step 'ready for imaging'
