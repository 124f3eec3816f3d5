"""Artifact copy-back over SFTP, against the loopback sshd, from a C:\\hgdev\\src\\dist-shaped dir.

A Windows host names that directory /C:/hgdev/src/dist over SFTP; the remote
directory is a parameter, so here it is a directory below the sshd fixture's
workdir whose path also contains a `C:` component.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from hgautomation import console, errors, ssh
from hgautomation.windows import artifacts


@pytest.fixture
def conn(ssh_host, tmp_path):
    target = ssh.resolve(ssh_host.host, user=ssh_host.user, port=ssh_host.port,
                         identity_files=[ssh_host.key_path])
    with ssh.connect(target, known_hosts=ssh_host.known_hosts_path, wait=10) as connection:
        yield connection


@pytest.fixture
def dist(ssh_host) -> Path:
    """<workdir>/<unique>/C:/hgdev/src/dist, readable by the sshd user."""
    base = Path(tempfile.mkdtemp(prefix="win-", dir=ssh_host.workdir))
    base.chmod(0o755)
    path = base / "C:" / "hgdev" / "src" / "dist"
    path.mkdir(parents=True)
    for p in (path, *path.parents):
        if p == base:
            break
        p.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(base, ignore_errors=True)


def put(directory: Path, name: str, data: bytes, mtime: float) -> bytes:
    path = directory / name
    path.write_bytes(data)
    path.chmod(0o644)
    os.utime(path, (mtime, mtime))
    return data


@pytest.fixture
def table_output(monkeypatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(console, "_current", console.Console(out=out, err=io.StringIO()))
    return out


def test_newest_matching_artifact_is_copied_and_reported(conn, dist, tmp_path, table_output):
    put(dist, "mercurial-7.2.3-cp312-cp312-win_amd64.whl", b"old wheel", 1_000_000)
    new = put(dist, "mercurial-7.2.4-cp312-cp312-win_amd64.whl", os.urandom(3 << 20), 2_000_000)
    put(dist, "mercurial-7.2.4-cp312-cp312-win32.whl", b"other arch", 3_000_000)
    msi = put(dist, "mercurial-7.2.4-x64.msi", b"msi" * 1000, 2_500_000)
    (dist / "mercurial-7.2.9-cp312-cp312-win_amd64.whl").mkdir()  # not a file: ignored
    local = tmp_path / "repo" / "dist"

    wheel = artifacts.fetch(conn, str(dist), "mercurial-*-cp312-cp312-win_amd64.whl", local,
                            expected="mercurial-7.2.4-cp312-cp312-win_amd64.whl")
    installer = artifacts.fetch(conn, str(dist), "mercurial-*-x64.msi", local)

    assert wheel.name == "mercurial-7.2.4-cp312-cp312-win_amd64.whl"
    assert (local / wheel.name).read_bytes() == new
    assert wheel.size == len(new) and wheel.sha256 == hashlib.sha256(new).hexdigest()
    assert installer.sha256 == hashlib.sha256(msi).hexdigest()
    assert sorted(p.name for p in local.iterdir()) == sorted([wheel.name, installer.name])

    artifacts.report([wheel, installer], title="artifacts")
    lines = table_output.getvalue().splitlines()
    assert lines[0] == "artifacts"
    assert lines[1].split() == ["artifact", "size", "sha256"]
    # Tables show 12 digits of the hash (all of it with -v; -T json has it whole).
    assert lines[3].split() == [wheel.name, str(len(new)), hashlib.sha256(new).hexdigest()[:12]]
    assert lines[4].split() == [installer.name, str(len(msi)),
                                hashlib.sha256(msi).hexdigest()[:12]]


def test_matching_ignores_case_like_windows(conn, dist, tmp_path):
    put(dist, "MERCURIAL-7.2.4-X64.MSI", b"x", 1_000_000)
    found = artifacts.fetch(conn, str(dist), "mercurial-*-x64.msi", tmp_path)
    assert found.name == "MERCURIAL-7.2.4-X64.MSI"


def test_missing_artifact_is_an_error_naming_it(conn, dist, tmp_path):
    put(dist, "mercurial-7.2.4-x86.msi", b"x86 only", 1_000_000)
    with pytest.raises(errors.ArtifactError,
                       match=r"no artifact matching mercurial-\*-x64\.msi"):
        artifacts.fetch(conn, str(dist), "mercurial-*-x64.msi", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unexpected_name_is_an_error(conn, dist, tmp_path):
    put(dist, "Mercurial-7.2.4rc0-x64.exe", b"rc", 1_000_000)
    with pytest.raises(errors.ArtifactError,
                       match=r"expected Mercurial-7\.2\.4-x64\.exe .* "
                             r"found Mercurial-7\.2\.4rc0-x64\.exe"):
        artifacts.fetch(conn, str(dist), "Mercurial-*-x64.exe", tmp_path,
                        expected="Mercurial-7.2.4-x64.exe")
    assert list(tmp_path.iterdir()) == []


def test_missing_dist_directory(conn, dist, tmp_path):
    with pytest.raises(errors.ArtifactError, match="does not exist"):
        artifacts.fetch(conn, str(dist / "nope"), "*.whl", tmp_path)


def test_windows_path_is_addressed_in_sftp_form(conn, dist, tmp_path, monkeypatch):
    # What the build commands pass is C:\hgdev\src\dist; record what SFTP is asked for.
    put(dist, "mercurial-7.2.4-x64.msi", b"msi", 1_000_000)
    asked = []
    real = conn.sftp.listdir_attr

    def listdir_attr(path):
        asked.append(path)
        return real(str(dist))

    monkeypatch.setattr(conn.sftp, "listdir_attr", listdir_attr)
    name, size = artifacts.newest_match(conn, "C:\\hgdev\\src\\dist", "mercurial-*-x64.msi")
    assert asked == ["/C:/hgdev/src/dist"]
    assert (name, size) == ("mercurial-7.2.4-x64.msi", 3)
