# hgautomation dead-man switch: the instance shuts down (= terminates) once the epoch
# in @DIR@\deadline has passed. It starts @SECONDS@ s after boot; while the tool is
# connected it writes a later one every few minutes (its heartbeat). A garbled file
# keeps the last deadline read.
New-Item -ItemType Directory -Force -Path '@DIR@' | Out-Null
Set-Content -Path '@DIR@\deadline' -Value ([DateTimeOffset]::UtcNow.ToUnixTimeSeconds() + @SECONDS@)
$watch = @'
$last = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds() + @SECONDS@
while ($true) {
    Start-Sleep -Seconds @POLL@
    $d = $last
    $text = Get-Content -Path '@DIR@\deadline' -ErrorAction SilentlyContinue
    if ("$text" -match '^\d+$') { $d = [long]"$text" }
    $last = $d
    if ([DateTimeOffset]::UtcNow.ToUnixTimeSeconds() -ge $d) {
        shutdown.exe /s /f /t 0 /c "hgautomation: no heartbeat from the tool"
        exit 0
    }
}
'@
$encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($watch))
Start-Process -WindowStyle Hidden -FilePath powershell.exe `
    -ArgumentList '-NoProfile', '-NonInteractive', '-EncodedCommand', $encoded
