#!/bin/sh
# hgautomation dead-man switch. The instance powers itself off (it was launched with
# InstanceInitiatedShutdownBehavior=terminate, so that terminates it) once the epoch
# in @DIR@/deadline has passed. The deadline starts @SECONDS@ s after boot; while the
# tool is connected it writes a later one every few minutes (its heartbeat), so a long
# build or test run is never cut short, and an instance whose tool is gone dies within
# @SECONDS@ s of the last heartbeat. An unreadable or garbled file keeps the last
# deadline read (never an early power-off from a half-written file).
dir=@DIR@
mkdir -p "$dir" && chmod 0755 "$dir"
echo $(( $(date +%s) + @SECONDS@ )) > "$dir/deadline"
chmod 0666 "$dir/deadline"
watch='last=$(( $(date +%s) + @SECONDS@ ))
while sleep @POLL@; do
    d=$(cat "$0/deadline" 2>/dev/null)
    case "$d" in ""|*[!0-9]*) d=$last ;; esac
    last=$d
    if [ "$(date +%s)" -ge "$d" ]; then
        @POWEROFF@
        exit 0
    fi
done'
if command -v systemd-run >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemd-run --unit=hgautomation-deadman --quiet sh -c "$watch" "$dir"
else
    setsid sh -c "$watch" "$dir" </dev/null >/dev/null 2>&1 &
fi
