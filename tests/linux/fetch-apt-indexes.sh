#!/bin/bash
# Download, once, the package indexes of the Debian releases bootstrap-debian.sh provisions,
# so tests/test_distro_packages.py can resolve its package lists with `apt-get install
# --simulate` offline (needs the network: run it before entering the test namespace).
# Ubuntu's archive is not among what CI reaches, so its releases are not fetched.
# Usage: tests/linux/fetch-apt-indexes.sh [--check] [DIR]   (default build/cache/apt-indexes)
#   --check: only tell (exit 0/1) whether every index is there.
# DIR/SUITE/ then holds sources.list, lists/ and an empty dpkg status: pass apt
# `-o Dir::Etc::sourcelist=DIR/SUITE/sources.list -o Dir::State::Lists=DIR/SUITE/lists ...`
# (tests/test_distro_packages.py has the whole set of options).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
check_only=false
if [ "${1:-}" = --check ]; then check_only=true; shift; fi
dir=${1:-$here/build/cache/apt-indexes}
# apt reads a relative Dir::* value as relative to its own directories (/etc/apt,
# /var/lib/apt), quietly: the path must be absolute.
dir=$(realpath -m -- "$dir")
suites="bookworm trixie"  # Debian 12, Debian 13
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# The mirror this machine's apt uses (DEBIAN_MIRROR overrides), as make-debian-root.sh.
mirror=${DEBIAN_MIRROR:-$(sed -n 's|^URIs: *\([^ ]*/debian\)/*$|\1|p' \
    /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
layout=2  # bump when the steps below change

missing=()
for suite in $suites; do
    [ -f "$dir/$suite/.ready-$layout" ] || missing+=("$suite")
done
if [ "${#missing[@]}" -eq 0 ]; then
    $check_only || echo "apt indexes in $dir are up to date"
    exit 0
fi
$check_only && exit 1
if [ -z "$mirror" ]; then
    echo "fetch-apt-indexes.sh: no Debian mirror in /etc/apt/sources.list.d/debian.sources;" \
        "set DEBIAN_MIRROR" >&2
    exit 1
fi

for suite in "${missing[@]}"; do
    staging=$dir/$suite.tmp
    rm -rf "$staging"
    mkdir -p "$staging/lists/partial" "$staging/cache/archives/partial" "$staging/empty"
    echo "deb [signed-by=$keyring] $mirror $suite main" > "$staging/sources.list"
    : > "$staging/status"
    # Nothing of this machine's apt configuration but its proxy settings: no other
    # sources, no pinning; the architecture of the EC2 images.
    apt-get update -q \
        -o Dir::Etc::sourcelist="$staging/sources.list" \
        -o Dir::Etc::sourceparts="$staging/empty" \
        -o Dir::Etc::preferencesparts="$staging/empty" \
        -o Dir::State::Lists="$staging/lists" \
        -o Dir::State::status="$staging/status" \
        -o Dir::Cache="$staging/cache" \
        -o APT::Architecture=amd64 -o APT::Architectures=amd64 \
        -o APT::Sandbox::User=root
    rm -rf "$staging/cache" "$staging/lists/partial" "$staging/lists/lock" \
        "$staging/lists/auxfiles"
    # apt-get update exits 0 with only warnings when it read no source at all.
    if ! compgen -G "$staging/lists/*_dists_${suite}_main_binary-amd64_Packages*" >/dev/null; then
        echo "fetch-apt-indexes.sh: apt-get update left no package index of $suite in" \
            "$staging/lists" >&2
        exit 1
    fi
    rm -rf "${dir:?}/$suite"
    mv "$staging" "$dir/$suite"
    touch "$dir/$suite/.ready-$layout"
    echo "apt index of $suite ready in $dir/$suite"
done
