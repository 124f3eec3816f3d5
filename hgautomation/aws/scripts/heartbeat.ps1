# hgautomation heartbeat: move the dead-man switch's deadline (deadman.ps1) @SECONDS@ s
# ahead; nothing happens on a machine without one.
$Deadline = '@DEADLINE@'
if (Test-Path -Path $Deadline) {
    Set-Content -Path $Deadline -Value ([DateTimeOffset]::UtcNow.ToUnixTimeSeconds() + @SECONDS@)
}
