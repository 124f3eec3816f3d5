#!/bin/bash
# Prepare /hgwork for one run, as the contract's user (sudo only when needed).
# Usage: prepare-run.sh FILESYSTEM [BLOCK_DEVICE [NODE]]
# With NODE: the last line says whether /hgdev/src has that changeset already
# ("/hgdev/src has NODE"), so the tool can skip the push.
set -euo pipefail

# Exit codes, which hgautomation/linux/__init__.py reads by these names (script_exit_codes):
EXIT_CANNOT_PREPARE=3  # the filesystem cannot be made on this host (no device, no mkfs.<fs>)
EXIT_NOT_CONTRACT=4  # the host does not meet the contract: run bootstrap-linux-dev

fs=$1
device=${2:-}
node=${3:-}
work=/hgwork
me=$(id -u):$(id -g)

sudo_() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

for need in /hgdev/venv-bootstrap/bin/hg /hgdev/src/.hg; do
    if [ ! -e "$need" ]; then
        echo "this host does not meet the contract: $need is missing (run bootstrap-linux-dev)" >&2
        exit "$EXIT_NOT_CONTRACT"
    fi
done

# Pushing to a publishing repository would turn the user's drafts public.
publish=$(/hgdev/venv-bootstrap/bin/hg -R /hgdev/src config phases.publish || true)
case "$publish" in
    False|false|no|0|off) ;;
    *) printf '\n[phases]\npublish = False\n' >> /hgdev/src/.hg/hgrc ;;
esac

case "$fs" in
    default|tmpfs) ;;
    ext3|ext4|xfs|btrfs|jfs)
        if [ -z "$device" ]; then
            echo "filesystem $fs needs a spare block device; this host has none configured" >&2
            exit "$EXIT_CANNOT_PREPARE"
        fi
        if [ ! -b "$device" ]; then
            # EC2 Nitro exposes /dev/sdf as an NVMe disk: take the one disk that has no
            # partitions and no mount point.
            device=$(lsblk -dpno NAME,TYPE | awk '$2 == "disk" {print $1}' | while read -r d; do
                if [ "$(lsblk -no NAME "$d" | wc -l)" = 1 ] && [ -z "$(lsblk -no MOUNTPOINT "$d")" ]; then
                    echo "$d"
                fi
            done | head -1)
            if [ -z "$device" ]; then
                echo "filesystem $fs: no spare block device found" >&2
                exit "$EXIT_CANNOT_PREPARE"
            fi
        fi
        if ! command -v "mkfs.$fs" >/dev/null && [ ! -x "/sbin/mkfs.$fs" ]; then
            echo "filesystem $fs is not supported here: mkfs.$fs is not installed" >&2
            exit "$EXIT_CANNOT_PREPARE"
        fi
        ;;
    *)
        echo "unknown filesystem $fs" >&2
        exit "$EXIT_CANNOT_PREPARE"
        ;;
esac

marker=.hgautomation-mount  # in the root of a filesystem this script mounted
if mountpoint -q "$work"; then
    if [ -e "$work/$marker" ]; then
        sudo_ umount "$work"
    elif [ "$fs" != default ]; then
        echo "$work is a mount point this tool did not create; not unmounting it for $fs" >&2
        exit "$EXIT_CANNOT_PREPARE"
    fi
fi

case "$fs" in
    default)
        # An existing /hgwork of ours (a plain directory or the user's own mount) is
        # reused, emptied but for the work tree: checkout.sh cleans that in place, so
        # an unchanged build survives from one run to the next.
        if [ -d "$work" ] && [ -O "$work" ]; then
            find "$work" -mindepth 1 -maxdepth 1 ! -name src -exec rm -rf {} +
            if [ -e "$work/src" ] && [ ! -O "$work/src" ]; then
                sudo_ rm -rf "$work/src"
            fi
        else
            sudo_ rm -rf "$work"
            sudo_ mkdir "$work"
            sudo_ chown "$me" "$work"
        fi
        ;;
    tmpfs)
        sudo_ mkdir -p "$work"
        sudo_ mount -t tmpfs -o size=90%,mode=0755 tmpfs "$work"
        sudo_ chown "$me" "$work"
        touch "$work/$marker"
        ;;
    *)
        case "$fs" in
            ext3|ext4) force=-F ;;
            xfs|btrfs) force=-f ;;
            jfs) force=-q ;;
        esac
        sudo_ mkdir -p "$work"
        sudo_ "mkfs.$fs" "$force" "$device" >/dev/null
        sudo_ mount "$device" "$work"
        sudo_ chown "$me" "$work"
        touch "$work/$marker"
        ;;
esac

mkdir -p "$work/tmp"
echo "/hgwork ready on $fs ($(df -h "$work" | awk 'NR==2 {print $4}') free)"
if [ -n "$node" ] && HGPLAIN=1 /hgdev/venv-bootstrap/bin/hg -R /hgdev/src log -r "$node" \
        -T x >/dev/null 2>&1; then
    echo "/hgdev/src has $node"
fi
