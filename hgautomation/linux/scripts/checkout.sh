#!/bin/bash
# Copy /hgdev/src to /hgwork/src and bring it cleanly to one changeset.
# Usage: checkout.sh NODE
set -euo pipefail

node=$1
hg=/hgdev/venv-bootstrap/bin/hg
export HGPLAIN=1

if [ ! -d /hgwork/src/.hg ]; then
    "$hg" clone -q --noupdate /hgdev/src /hgwork/src
else
    "$hg" -R /hgwork/src pull -q /hgdev/src
fi
cd /hgwork/src
"$hg" update -q --clean "$node"
"$hg" purge -q --all --no-confirm
echo "/hgwork/src at $("$hg" log -r . -T '{node|short} {desc|firstline}')"
