"""bootstrap-linux-dev --host for real: a clean Debian 12 root in a chroot becomes a contract host.

The root comes from tests/linux/make-debian-root.sh (debootstrap, cached). The bootstrap
script runs as root over SSH; Mercurial comes from the loopback `pypi` fixture through
`--pip-index-url` (the namespace has no PyPI). Then check-host passes as the new user and
run-tests-linux runs real tests there.
"""

from __future__ import annotations

import re
import time

import pytest
from harness import hgsource

pytestmark = pytest.mark.slow

HG_VERSION = "7.2.4"


def test_bootstrap_then_check_host_then_run_tests(cli, debian_chroot_host, stocked_pypi,
                                                   hg_source, tmp_path):
    pypi = stocked_pypi
    host = debian_chroot_host
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host debroot\n  HostName 127.0.0.1\n  Port {host.port}\n  User root\n"
        f"  IdentityFile {host.root_key}\n"
        # As the contract user, no IdentityFile: the tool's own key is the default.
        f"Host debroot-hg\n  HostName 127.0.0.1\n  Port {host.port}\n  User hg\n")
    state = tmp_path / "state"
    repo = hgsource.clone(hg_source, tmp_path / "repo")
    common = ["--state-path", str(state), "--ssh-config", str(config)]

    start = time.monotonic()
    proc = cli.run(*common, "bootstrap-linux-dev", "--host", "debroot", "--accept-new-host-key",
                   "--pythons", "system3", "--pip-index-url", pypi.simple_url, "--no-rust",
                   "--hg", hgsource.hg_executable(), cwd=repo, timeout=600)
    bootstrap_seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert "1 host provisioned" in proc.stdout
    assert "pushed 1 changesets" in proc.stderr  # /hgdev/src seeded with the repo
    print(f"bootstrap-linux-dev --pythons system3: {bootstrap_seconds:.0f}s")
    assert (host.upper / "etc" / "sudoers.d" / "90-hgautomation-hg").exists()
    tool_pub = next((state / "keys").glob("*.pub")).read_text().split()[:2]
    authorized = (host.upper / "home" / "hg" / ".ssh" / "authorized_keys").read_text()
    assert " ".join(tool_pub) in authorized

    proc = cli.run(*common, "check-host", "--host", "debroot-hg", cwd=repo, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    # The feature report: Mercurial's own checks (the checkout's tests/hghave.py) on
    # the provisioned host. What the distro packages is there; every missing feature
    # has a reason (not packaged, left out on purpose, or Rust, which --no-rust left out).
    present = re.search(r"^test features present \(\d+ of \d+\): (.*)$", proc.stdout, re.M)
    assert present, proc.stdout
    for feature in ("git", "svn", "svn-bindings", "cvs", "darcs", "bzr", "tla", "gpg",
                    "clang-format", "black", "pyflakes", "pylint", "docutils", "pygments",
                    "emacs", "fuzzywuzzy", "vcr", "hypothesis", "gettext"):
        assert feature in present.group(1).split(), (feature, proc.stdout)
    missing = re.findall(r"^(\S+)\s+(\d+)\s+(.+)$", proc.stdout.split(
        "test features missing", 1)[-1], re.M)
    unexplained = [m for m in missing if m[2] == "not installed"]
    assert unexplained == [], proc.stdout
    skipped = re.search(r"^(\d+) of (\d+) tests would be skipped for a missing host feature$",
                        proc.stdout, re.M)
    assert skipped and int(skipped.group(2)) > 800, proc.stdout
    print(f"check-host on the provisioned Debian 12 root: {skipped.group(0)}")
    for item in ("sftp", "user", "passwordless sudo", "/hgdev", "venv-bootstrap hg",
                 "/hgdev/src", "/hgwork"):
        assert re.search(rf"^{re.escape(item)}\s+ok\s", proc.stdout, re.M), (item, proc.stdout)
    assert f"Mercurial Distributed SCM (version {HG_VERSION})" in proc.stdout

    proc = cli.run(*common, "run-tests-linux", "--host", "debroot-hg", "--filesystem", "tmpfs",
                   "--hg", hgsource.hg_executable(), "--with-hg=/hgdev/venv-bootstrap/bin/hg",
                   "test-empty-dir.t", "test-issue1089.t", cwd=repo, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "passed 2, failed 0, skipped 0 (2 tests)" in proc.stdout
    assert "host already has" in proc.stderr  # the seed made the run's push a no-op
    assert "/hgwork ready on tmpfs" in proc.stderr
