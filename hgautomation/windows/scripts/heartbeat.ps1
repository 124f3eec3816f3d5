# The tool's heartbeat: move the dead-man switch's deadline $Seconds ahead (nothing
# on a machine without one). Parameters: $Deadline (the switch's file), $Seconds.
if (Test-Path -Path $Deadline) {
    Set-Content -Path $Deadline -Value ([DateTimeOffset]::UtcNow.ToUnixTimeSeconds() + [long]$Seconds)
}
