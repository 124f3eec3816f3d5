#!/bin/bash
# Build, once, the Debian root that the provisioning test boots in a chroot (needs the
# network, so run it before entering the test namespace). It holds only what debootstrap
# gives plus the packages bootstrap-debian.sh installs for `--pythons system3`, so that
# script's apt step has nothing to download offline; everything else (user, sudo, key,
# /hgdev, venv, clone) is left for the script to do.
# Usage: tests/linux/make-debian-root.sh [--check] [ROOT_DIR]   (default build/cache/debian-root)
#   --check: only tell (exit 0/1) whether the root is up to date.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
check_only=false
if [ "${1:-}" = --check ]; then check_only=true; shift; fi
root_dir=${1:-$here/build/cache/debian-root}
script=$here/hgautomation/linux/scripts/bootstrap-debian.sh
suite=bookworm
# The mirror this machine's apt uses (DEBIAN_MIRROR overrides; else debootstrap's default).
mirror=${DEBIAN_MIRROR:-$(sed -n 's|^URIs: *\([^ ]*/debian\)/*$|\1|p' \
    /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}

# What bootstrap-debian.sh installs on bookworm: the contract's packages and the test
# toolchain (BASE_ONLY=1: the contract's alone, what images had before, for
# bench/suite_coverage.py's "before").
list() { sed -n "s/^$1=\"\\(.*\\)\"\$/\\1/p" "$script"; }
packages=$(list BASE_PACKAGES)
[ -n "$packages" ] || { echo "no BASE_PACKAGES in $script" >&2; exit 1; }
if [ "${BASE_ONLY:-}" != 1 ]; then
    packages="$packages $(list TEST_PACKAGES) $(list TEST_PACKAGES_$suite)"
fi
layout=3  # bump when the steps below change
stamp=$(printf '%s %s %s' "$layout" "$suite" "$packages" | sha256sum | cut -c1-16)
if [ -f "$root_dir/.ready-$stamp" ]; then
    $check_only || echo "debian root $root_dir is up to date"
    exit 0
fi
$check_only && exit 1
command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
staging=$root_dir.tmp
rm -rf "$staging"
mkdir -p "$(dirname "$root_dir")"
debootstrap --variant=minbase --include="$(echo "$packages" | tr ' ' ',')" \
    "$suite" "$staging" ${mirror:+"$mirror"}
# Package lists, so the offline `apt-get install` of present packages resolves.
cp /etc/resolv.conf "$staging/etc/resolv.conf"
chroot "$staging" apt-get update -q
chroot "$staging" apt-get clean
# What an installed machine has and debootstrap leaves out: localhost must resolve
# (run-tests.py binds to it).
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$staging/etc/hosts"
echo debian-test > "$staging/etc/hostname"
rm -rf "$root_dir"
mv "$staging" "$root_dir"
touch "$root_dir/.ready-$stamp"
echo "debian root $root_dir ready"
