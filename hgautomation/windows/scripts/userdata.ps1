# First boot (EC2 user data): OpenSSH server with our keys, nothing else.
# Parameters: $AuthorizedKey (our public key), $HostKey / $HostKeyPub (the
# ed25519 host key the tool generated and pinned before launching us).
$sshDir = Join-Path $env:ProgramData 'ssh'
$system = '*S-1-5-18'          # NT AUTHORITY\SYSTEM, by SID: locale-independent
$admins = '*S-1-5-32-544'      # BUILTIN\Administrators

if ($null -eq (Get-Service -Name sshd -ErrorAction SilentlyContinue)) {
    Write-Step 'installing the OpenSSH server capability'
    Add-WindowsCapability -Online -Name 'OpenSSH.Server~~~~0.0.1.0' | Out-Null
}
Stop-Service -Name sshd -ErrorAction SilentlyContinue
if (-not (Test-Path $sshDir)) {
    New-Item -ItemType Directory -Path $sshDir | Out-Null
}

# Only the pinned key: remove whatever host keys an image or first start left behind.
Get-ChildItem -Path $sshDir -Filter 'ssh_host_*' | Remove-Item -Force
$hostKeyPath = Join-Path $sshDir 'ssh_host_ed25519_key'
[IO.File]::WriteAllText($hostKeyPath, $HostKey.Replace("`r`n", "`n"))
[IO.File]::WriteAllText("$hostKeyPath.pub", $HostKeyPub + "`n")
# sshd refuses a private host key that anyone but SYSTEM/Administrators can read.
& icacls.exe $hostKeyPath /inheritance:r /grant "${system}:F" "${admins}:F"
Assert-LastExit 'icacls (host key)'

# Administrator logs in with our key; for members of Administrators sshd reads
# administrators_authorized_keys, and only with this exact ACL.
$authorized = Join-Path $sshDir 'administrators_authorized_keys'
[IO.File]::WriteAllText($authorized, $AuthorizedKey + "`n")
& icacls.exe $authorized /inheritance:r /grant "${system}:F" "${admins}:F"
Assert-LastExit 'icacls (administrators_authorized_keys)'

$config = @(
    'HostKey __PROGRAMDATA__/ssh/ssh_host_ed25519_key',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AuthorizedKeysFile .ssh/authorized_keys',
    'Subsystem sftp sftp-server.exe',
    'Match Group administrators',
    '    AuthorizedKeysFile __PROGRAMDATA__/ssh/administrators_authorized_keys'
)
[IO.File]::WriteAllText((Join-Path $sshDir 'sshd_config'), ($config -join "`n") + "`n")

# Commands arrive as `powershell ... -EncodedCommand`; PowerShell as the login
# shell also keeps `hg serve --stdio` paths like C:/hgdev/src unquoted.
$openSshKey = 'HKLM:\SOFTWARE\OpenSSH'
if (-not (Test-Path $openSshKey)) {
    New-Item -Path $openSshKey | Out-Null
}
$shell = Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe'
New-ItemProperty -Path $openSshKey -Name DefaultShell -Value $shell -PropertyType String -Force | Out-Null

if ($null -eq (Get-NetFirewallRule -Name 'hg-sshd' -ErrorAction SilentlyContinue)) {
    New-NetFirewallRule -Name 'hg-sshd' -DisplayName 'hgautomation: OpenSSH (22/tcp)' `
        -Direction Inbound -Protocol TCP -LocalPort 22 -Action Allow -Profile Any | Out-Null
}

Set-Service -Name sshd -StartupType Automatic
Start-Service -Name sshd
Write-Step 'OpenSSH server ready'
