#!/bin/bash
# Bring /hgwork/src cleanly to one changeset of /hgdev/src.
# Usage: checkout.sh NODE
# /hgwork/src shares /hgdev/src's store (`hg share`): what was pushed there is here
# without a pull. A work tree kept from an earlier run (the default filesystem keeps
# it) is updated in place: `update --clean` and `purge --all` make it exactly the
# changeset, except for the build outputs build.py recorded (it checks their key
# before each run) and Python's bytecode caches (checked by Python against each
# source file).
set -euo pipefail

node=$1
hg=/hgdev/venv-bootstrap/bin/hg
export HGPLAIN=1

state=kept
if [ ! -f /hgwork/src/.hg/sharedpath ] \
        || [ "$(cat /hgwork/src/.hg/sharedpath)" != /hgdev/src/.hg ]; then
    rm -rf /hgwork/src
    "$hg" --config extensions.share= share -q --noupdate /hgdev/src /hgwork/src
    state=fresh
fi
cd /hgwork/src
"$hg" update -q --clean "$node"
keep=(-X 'glob:**/__pycache__')
if [ -f .hg/hgautomation-build.exclude ]; then
    keep+=(-X listfile:.hg/hgautomation-build.exclude)
fi
"$hg" --config extensions.purge= purge -q --all --no-confirm "${keep[@]}"
echo "/hgwork/src ($state) at ${node:0:12}"
