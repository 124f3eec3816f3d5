#!/bin/bash
# Provision a Debian/Ubuntu machine into the remote-machine contract (docs/contract.rst).
# Run as root (or via sudo). Idempotent: a second run only adds what is missing.
# Usage: bootstrap-debian.sh USER PUBLIC_KEY_FILE PYTHONS [MERCURIAL_REQUIREMENT [PIP_INDEX_URL [CLONE_URL]]]
#   PYTHONS: comma-separated, e.g. "system3,3.12,pypy3.10" ("system3" = /usr/bin/python3)
#   MERCURIAL_REQUIREMENT: pip requirement for venv-bootstrap (default "mercurial")
#   PIP_INDEX_URL: package index for that install (default: pip's, i.e. PyPI)
#   CLONE_URL: repository to clone into /hgdev/src when it has no changesets yet
#     (EC2 images: Mercurial's public repository; default: none, an empty repository)
# Used for static hosts (bootstrap-linux-dev --host) and for building EC2 images.
set -euo pipefail

user=$1
pubkey_file=$2
pythons=$3
hg_req=${4:-mercurial}
index_url=${5:-}
clone_url=${6:-}
export DEBIAN_FRONTEND=noninteractive

# What the contract and Mercurial's tests need (compilers: run-tests.py builds hg).
BASE_PACKAGES="sudo openssh-server ca-certificates python3 python3-venv python3-dev gcc g++ make gettext unzip zip rsync e2fsprogs xfsprogs btrfs-progs jfsutils"
# Only when pyenv builds Pythons.
PYENV_PACKAGES="git curl build-essential libbz2-dev libffi-dev liblzma-dev libncursesw5-dev libreadline-dev libsqlite3-dev libssl-dev tk-dev uuid-dev xz-utils zlib1g-dev"

BUILD_REQUIREMENTS="setuptools>=77 setuptools-scm>=8.1 wheel"

step() { echo "--- $*"; }

wanted=()
IFS=',' read -r -a selection <<< "$pythons"
for py in "${selection[@]}"; do
    case "$py" in
        system3|"") ;;
        *) wanted+=("$py") ;;
    esac
done

packages=$BASE_PACKAGES
if [ "${#wanted[@]}" -gt 0 ]; then
    packages="$packages $PYENV_PACKAGES"
fi
step "packages"
# A box without a route to its mirror can still be provisioned when the packages are
# present already: install then has nothing to fetch (and fails if it does).
apt-get update -q || echo "warning: apt-get update failed; using the package lists present"
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $packages

step "user $user"
if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user"
fi
# sshd without PAM refuses locked accounts ("!") even for key logins.
usermod -p '*' "$user"
echo "$user ALL=(ALL) NOPASSWD:ALL" > "/etc/sudoers.d/90-hgautomation-$user"
chmod 0440 "/etc/sudoers.d/90-hgautomation-$user"
home=$(getent passwd "$user" | cut -d: -f6)
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
key=$(cat "$pubkey_file")
touch "$home/.ssh/authorized_keys"
grep -qxF "$key" "$home/.ssh/authorized_keys" || echo "$key" >> "$home/.ssh/authorized_keys"
chown "$user:$user" "$home/.ssh/authorized_keys"
chmod 0600 "$home/.ssh/authorized_keys"

step "/hgdev"
install -d -o "$user" -g "$user" /hgdev

as_user() { sudo -u "$user" -H env HOME="$home" PYENV_ROOT=/hgdev/pyenv "$@"; }

if [ "${#wanted[@]}" -gt 0 ]; then
    step "pyenv: ${wanted[*]}"
    if [ ! -d /hgdev/pyenv/.git ]; then
        as_user git clone -q --depth 1 https://github.com/pyenv/pyenv.git /hgdev/pyenv
    fi
    versions=()
    for py in "${wanted[@]}"; do
        # "3.12" -> newest 3.12.x; "pypy3.10" -> newest pypy3.10-x.y.z
        full=$(as_user /hgdev/pyenv/bin/pyenv latest -k "$py")
        as_user /hgdev/pyenv/bin/pyenv install -s "$full"
        versions+=("$full")
    done
    as_user /hgdev/pyenv/bin/pyenv global system "${versions[@]}"
    as_user /hgdev/pyenv/bin/pyenv rehash
else
    install -d -o "$user" -g "$user" /hgdev/pyenv/shims
fi

step "venv-bootstrap ($hg_req)"
if [ ! -x /hgdev/venv-bootstrap/bin/python ]; then
    as_user /usr/bin/python3 -m venv /hgdev/venv-bootstrap
fi
pip_opts=(-q --disable-pip-version-check)
if [ -n "$index_url" ]; then
    pip_opts+=(--isolated --index-url "$index_url")
fi
as_user /hgdev/venv-bootstrap/bin/python -m pip install "${pip_opts[@]}" "$hg_req"

# Mercurial's build requirements (its pyproject.toml [build-system]): runs build the
# revision under test from here, without the network; /hgdev/builds keeps the builds.
step "wheelhouse: $BUILD_REQUIREMENTS"
install -d -o "$user" -g "$user" /hgdev/wheelhouse /hgdev/builds
# shellcheck disable=SC2086
as_user /hgdev/venv-bootstrap/bin/python -m pip download "${pip_opts[@]}" --only-binary :all: \
    -d /hgdev/wheelhouse $BUILD_REQUIREMENTS

step "/hgdev/src${clone_url:+ from $clone_url}"
hg_=/hgdev/venv-bootstrap/bin/hg
if [ -n "$clone_url" ] && { [ ! -d /hgdev/src/.hg ] \
        || [ -z "$(as_user "$hg_" -R /hgdev/src log -r 0 -T x 2>/dev/null)" ]; }; then
    rm -rf /hgdev/src
    as_user "$hg_" clone -q --noupdate "$clone_url" /hgdev/src
    echo "cloned $(( $(as_user "$hg_" -R /hgdev/src log -r tip -T '{rev}') + 1 )) changesets"
elif [ ! -d /hgdev/src/.hg ]; then
    as_user "$hg_" init /hgdev/src
fi
if ! grep -q '^publish *= *False' /hgdev/src/.hg/hgrc 2>/dev/null; then
    printf '[phases]\npublish = False\n' | as_user tee -a /hgdev/src/.hg/hgrc >/dev/null
fi

chown -R "$user:$user" /hgdev
step "done: $(/hgdev/venv-bootstrap/bin/hg version -q)"
