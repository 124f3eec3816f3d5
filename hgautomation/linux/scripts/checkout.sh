#!/bin/bash
# Bring /hgwork/src cleanly to one changeset from /hgdev/src.
# Usage: checkout.sh NODE
# A work tree kept from an earlier run (the default filesystem keeps it) is updated
# in place: `update --clean` and `purge --all` make it exactly the changeset, except
# for the build outputs build.py recorded (it checks their key before each run) and
# Python's bytecode caches (validated against each source file by Python itself).
set -euo pipefail

node=$1
hg=/hgdev/venv-bootstrap/bin/hg
export HGPLAIN=1

state=kept
if [ -d /hgwork/src/.hg ] && ! "$hg" -R /hgwork/src pull -q /hgdev/src; then
    echo "the kept /hgwork/src is unusable; cloning it again"
    rm -rf /hgwork/src
fi
if [ ! -d /hgwork/src/.hg ]; then
    rm -rf /hgwork/src
    "$hg" clone -q --noupdate /hgdev/src /hgwork/src
    state=fresh
fi
cd /hgwork/src
"$hg" update -q --clean "$node"
keep=(-X 'glob:**/__pycache__')
if [ -f .hg/hgautomation-build.exclude ]; then
    keep+=(-X listfile:.hg/hgautomation-build.exclude)
fi
"$hg" --config extensions.purge= purge -q --all --no-confirm "${keep[@]}"
echo "/hgwork/src ($state) at $("$hg" log -r . -T '{node|short} {desc|firstline}')"
