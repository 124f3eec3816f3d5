#!/bin/bash
# Install the checkout's test requirements into each pyenv Python, as the contract user.
# Usage: python-requirements.sh [PIP_INDEX_URL]
# The file is Mercurial's own contrib/automation/linux-requirements-py3.txt at the tip
# of /hgdev/src (hash-pinned). Its pins are old: some no longer build on new Pythons,
# so each requirement is installed on its own (with its hashes) and what fails is
# listed, not fatal. The distro's /usr/bin/python3 gets its modules from apt instead.
set -uo pipefail

index_url=${1:-}
hg=/hgdev/venv-bootstrap/bin/hg
rel=contrib/automation/linux-requirements-py3.txt
export HGPLAIN=1

shims=$(ls /hgdev/pyenv/shims 2>/dev/null | grep -E '^(python3\.[0-9]+|pypy3\.[0-9]+)$' | sort -V)
if [ -z "$shims" ]; then
    echo "test requirements: no pyenv Pythons (system3 uses the distro's packages)"
    exit 0
fi
reqs=$(mktemp /tmp/hgautomation-requirements.XXXXXX)
trap 'rm -f "$reqs" "$reqs".*' EXIT
if ! why=$("$hg" --cwd /hgdev/src cat -r tip "$rel" 2>&1 >"$reqs") || [ ! -s "$reqs" ]; then
    echo "test requirements: no $rel at /hgdev/src's tip yet; skipped${why:+ ($why)}"
    exit 0
fi
pip_opts=(-q --disable-pip-version-check --no-deps --require-hashes)
if [ -n "$index_url" ]; then
    pip_opts+=(--isolated --index-url "$index_url")
fi
# One file per requirement (its line and its --hash continuation lines).
/usr/bin/python3 - "$reqs" <<'EOF'
import sys
path = sys.argv[1]
blocks, current = [], []
for line in open(path):
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        continue
    if not line[0].isspace() and current:
        blocks.append(current)
        current = []
    current.append(line.split(" #", 1)[0].rstrip() + "\n")
if current:
    blocks.append(current)
for n, block in enumerate(blocks):
    with open(f"{path}.{n:03d}", "w") as fh:
        fh.writelines(block)
EOF
for py in $shims; do
    ok=0
    failed=()
    for block in "$reqs".[0-9]*; do
        name=$(head -1 "$block" | sed 's/[=<>; ].*//')
        if "/hgdev/pyenv/shims/$py" -m pip install "${pip_opts[@]}" -r "$block" >/dev/null 2>&1; then
            ok=$((ok + 1))
        else
            failed+=("$name")
        fi
    done
    echo "test requirements for $py: $ok installed${failed[*]:+, not installable: ${failed[*]}}"
done
exit 0
