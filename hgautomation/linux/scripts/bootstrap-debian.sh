#!/bin/bash
# Provision a Debian/Ubuntu machine into the remote-machine contract (docs/contract.rst).
# Run as root (or via sudo). Idempotent: a second run only adds what is missing.
# Usage: bootstrap-debian.sh USER PUBLIC_KEY_FILE PYTHONS [MERCURIAL_REQUIREMENT [PIP_INDEX_URL [CLONE_URL [RUST]]]]
#   PYTHONS: comma-separated, e.g. "system3,3.12,pypy3.10" ("system3" = /usr/bin/python3)
#   MERCURIAL_REQUIREMENT: pip requirement for venv-bootstrap (default "mercurial")
#   PIP_INDEX_URL: package index for that install (default: pip's, i.e. PyPI)
#   CLONE_URL: repository to clone into /hgdev/src when it has no changesets yet
#     (EC2 images: Mercurial's public repository; default: none, an empty repository)
#   RUST: "rust" installs the pinned Rust toolchain for the contract user (needs
#     static.rust-lang.org); anything else leaves it out
# Used for static hosts (bootstrap-linux-dev --host) and for building EC2 images.
set -euo pipefail

user=$1
pubkey_file=$2
pythons=$3
hg_req=${4:-mercurial}
index_url=${5:-}
clone_url=${6:-}
with_rust=${7:-}
export DEBIAN_FRONTEND=noninteractive

# What the contract and Mercurial's tests need (compilers: run-tests.py builds hg).
BASE_PACKAGES="sudo openssh-server ca-certificates python3 python3-venv python3-dev gcc g++ make gettext unzip zip rsync e2fsprogs xfsprogs btrfs-progs jfsutils"
# Only when pyenv builds Pythons.
PYENV_PACKAGES="git curl build-essential libbz2-dev libffi-dev liblzma-dev libncurses-dev libreadline-dev libsqlite3-dev libssl-dev tk-dev uuid-dev xz-utils zlib1g-dev"

BUILD_REQUIREMENTS="setuptools>=77 setuptools-scm>=8.1 wheel"

# What the test suite's `#require` features need (tests/hghave.py), on every distro
# (less its UNPACKAGED_ list below).
# Left out on purpose: docker.io, debhelper & co (only --allow-slow-tests packaging
# tests; debhelper's check wants dh_python2, which no supported distro ships), and
# python3-pygit2 (its one test also requires missing-correct-output, never true).
TEST_PACKAGES="build-essential git gnupg subversion python3-subversion cvs darcs brz xz-utils sqlite3 emacs-nox ncurses-bin python3-docutils python3-pygments python3-hypothesis python3-fuzzywuzzy python3-vcr python3-virtualenv pylint pyflakes3"
# Per distro (codename): what only some ship, and clang-format 11..18 (the check's range).
TEST_PACKAGES_bookworm="tla clang-format black"
TEST_PACKAGES_trixie="clang-format-18"
TEST_PACKAGES_jammy="tla clang-format"
TEST_PACKAGES_noble="clang-format"
# Per distro: what the lists above name that it does not package (left out there).
# tests/test_distro_packages.py resolves each distro's lists against its archive.
UNPACKAGED_noble="darcs"  # not in Ubuntu 24.04's archive (nor its -updates)
# black for the check-code tests must be 23.x (Mercurial's pyproject.toml): only
# bookworm packages that one; elsewhere it comes from PyPI into /hgdev/venv-tools.
BLACK_REQUIREMENT="black==23.*"

# Rust: rustup-init pinned by version and SHA-256 (published next to it on
# static.rust-lang.org), then the toolchain Mercurial's rust/ needs (its MSRV) and the
# nightly whose rustfmt test-check-rust-format.t uses.
RUSTUP_VERSION=1.29.0
RUSTUP_SHA256=4acc9acc76d5079515b46346a485974457b5a79893cfb01112423c89aeb5aa10
RUST_TOOLCHAIN=1.85.1
RUSTFMT_TOOLCHAIN=nightly-2024-07-16

step() { echo "--- $*"; }

wanted=()
IFS=',' read -r -a selection <<< "$pythons"
for py in "${selection[@]}"; do
    case "$py" in
        system3|"") ;;
        *) wanted+=("$py") ;;
    esac
done

# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")
extra_var=TEST_PACKAGES_$codename
packages="$BASE_PACKAGES $TEST_PACKAGES ${!extra_var:-}"
if [ "${#wanted[@]}" -gt 0 ]; then
    packages="$packages $PYENV_PACKAGES"
fi
if [ "$with_rust" = rust ]; then
    packages="$packages curl"
fi
unpackaged_var=UNPACKAGED_$codename
if [ -n "${!unpackaged_var:-}" ]; then
    kept=()
    for name in $packages; do
        [[ " ${!unpackaged_var} " == *" $name "* ]] || kept+=("$name")
    done
    packages="${kept[*]}"
fi
step "packages ($codename)"
# A box without a route to its mirror can still be provisioned when the packages are
# present already: install then has nothing to fetch (and fails if it does).
apt-get update -q || echo "warning: apt-get update failed; using the package lists present"
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $packages

# Commands the feature checks call by a name the distro does not use.
if ! command -v pyflakes >/dev/null && command -v pyflakes3 >/dev/null; then
    ln -sf "$(command -v pyflakes3)" /usr/local/bin/pyflakes
fi
if ! command -v clang-format >/dev/null && command -v clang-format-18 >/dev/null; then
    ln -sf "$(command -v clang-format-18)" /usr/local/bin/clang-format
fi

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

if ! black --version 2>/dev/null | grep -q ' 23\.'; then
    step "black 23 (/hgdev/venv-tools)"
    [ -x /hgdev/venv-tools/bin/python ] || as_user /usr/bin/python3 -m venv /hgdev/venv-tools
    as_user /hgdev/venv-tools/bin/python -m pip install "${pip_opts[@]}" "$BLACK_REQUIREMENT"
    ln -sf /hgdev/venv-tools/bin/black /usr/local/bin/black
fi

if [ "$with_rust" = rust ]; then
    step "rust $RUST_TOOLCHAIN (rustup $RUSTUP_VERSION) + rustfmt $RUSTFMT_TOOLCHAIN"
    if ! as_user "$home/.cargo/bin/rustup" --version >/dev/null 2>&1; then
        init=$(mktemp /tmp/rustup-init.XXXXXX)
        curl --proto '=https' --tlsv1.2 -sSf -o "$init" \
            "https://static.rust-lang.org/rustup/archive/$RUSTUP_VERSION/x86_64-unknown-linux-gnu/rustup-init"
        if ! echo "$RUSTUP_SHA256  $init" | sha256sum --check --quiet -; then
            rm -f "$init"
            echo "rustup-init does not have the pinned SHA-256; not running it" >&2
            exit 5
        fi
        chmod 0755 "$init"
        as_user "$init" -y --no-modify-path --profile minimal --default-toolchain "$RUST_TOOLCHAIN"
        rm -f "$init"
    fi
    as_user "$home/.cargo/bin/rustup" toolchain install "$RUST_TOOLCHAIN" --profile minimal
    as_user "$home/.cargo/bin/rustup" toolchain install "$RUSTFMT_TOOLCHAIN" --profile minimal \
        --component rustfmt
    for tool in rustup cargo rustc; do
        ln -sf "$home/.cargo/bin/$tool" "/usr/local/bin/$tool"
    done
fi

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
