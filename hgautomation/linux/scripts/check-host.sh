#!/bin/bash
# Report which parts of the remote-machine contract this host meets.
# One line per item: "ok|missing|info <TAB> required|optional <TAB> item <TAB> detail",
# then "check-host: complete".
set -u

say() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4"; }

say ok required "shell" "$(bash --version | head -1)"
say ok required "user" "$(id -un) (uid $(id -u))"

if sudo -n true 2>/dev/null; then
    say ok optional "passwordless sudo" "yes"
else
    say missing optional "passwordless sudo" "needed for --filesystem other than default and for bootstrap"
fi

if [ -d /hgdev ]; then
    owner=$(stat -c %U /hgdev)
    if [ "$owner" = "$(id -un)" ]; then
        say ok required "/hgdev" "owned by $owner"
    else
        say missing required "/hgdev" "owned by $owner, not $(id -un)"
    fi
else
    say missing required "/hgdev" "absent"
fi

if [ -x /usr/bin/python3 ]; then
    say ok required "system python" "$(/usr/bin/python3 --version 2>&1)"
else
    say missing required "system python" "/usr/bin/python3 absent"
fi

shims=$(ls /hgdev/pyenv/shims 2>/dev/null | grep -E '^(python3\.[0-9]+|pypy3\.[0-9]+)$' | sort -V | tr '\n' ' ')
if [ -n "$shims" ]; then
    say ok optional "pyenv pythons" "$shims"
else
    say missing optional "pyenv pythons" "no /hgdev/pyenv/shims/pythonX.Y (only system3 usable)"
fi

if out=$(/hgdev/venv-bootstrap/bin/hg version -q 2>&1); then
    say ok required "venv-bootstrap hg" "$out"
else
    say missing required "venv-bootstrap hg" "/hgdev/venv-bootstrap/bin/hg does not run"
fi

if /hgdev/venv-bootstrap/bin/hg -R /hgdev/src root >/dev/null 2>&1; then
    publish=$(/hgdev/venv-bootstrap/bin/hg -R /hgdev/src config phases.publish 2>/dev/null || true)
    heads=$(/hgdev/venv-bootstrap/bin/hg -R /hgdev/src log -r 'head()' -T x 2>/dev/null | wc -c)
    case "$publish" in
        False|false|no|0|off) say ok required "/hgdev/src" "clone, non-publishing, $heads head(s)" ;;
        *) say missing required "/hgdev/src" "clone is publishing (set [phases] publish = False)" ;;
    esac
else
    say missing required "/hgdev/src" "not a Mercurial repository"
fi

if [ -d /hgwork ]; then
    if [ -O /hgwork ] || sudo -n true 2>/dev/null; then
        say ok required "/hgwork" "present and usable"
    else
        say missing required "/hgwork" "exists, not ours, and no sudo to take it"
    fi
elif sudo -n true 2>/dev/null; then
    say ok required "/hgwork" "will be created with sudo"
else
    say missing required "/hgwork" "absent and no sudo to create it"
fi

for fs in ext4 xfs btrfs jfs; do
    if command -v "mkfs.$fs" >/dev/null 2>&1 || [ -x "/sbin/mkfs.$fs" ]; then
        found="${found:-}$fs "
    fi
done
say info optional "mkfs" "${found:-none}"
# The verdict that the whole check ran: without this last line check-host fails
# (CHECK_END in hgautomation/linux/__init__.py).
echo "check-host: complete"
exit 0
