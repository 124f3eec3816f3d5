"""publish/artifacts.problem: what a release file must be before anything is sent."""

from __future__ import annotations

import zipfile

import pytest

from hgautomation.platforms import WindowsArtifact
from hgautomation.publish import artifacts

WHEEL = WindowsArtifact("wheel", "3.12", "x64")
EXE = WindowsArtifact("inno", "3.12", "x64")
MSI = WindowsArtifact("wix", "3.12", "x64")


def _wheel(path, *, name="mercurial", version="7.2.1", metadata=True):
    with zipfile.ZipFile(path, "w") as z:
        if metadata:
            z.writestr("mercurial-7.2.1.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
        z.writestr("mercurial/__init__.py", "")
    return path


def test_good_files_pass(tmp_path):
    assert artifacts.problem(_wheel(tmp_path / "w.whl"), WHEEL, "7.2.1") is None
    assert artifacts.problem(_wheel(tmp_path / "v.whl", name="Mercurial"), WHEEL,
                             "7.2.1") is None
    (tmp_path / "a.exe").write_bytes(b"MZ\x90\x00rest")
    (tmp_path / "a.msi").write_bytes(artifacts.MAGIC["wix"] + b"rest")
    assert artifacts.problem(tmp_path / "a.exe", EXE, "7.2.1") is None
    assert artifacts.problem(tmp_path / "a.msi", MSI, "7.2.1") is None


@pytest.mark.parametrize("make, spec, why", [
    (lambda p: p.symlink_to("/etc/passwd"), EXE, "is a symbolic link"),
    (lambda p: p.mkdir(), MSI, "is not a regular file"),
    (lambda p: p.write_bytes(b""), MSI, "is empty"),
    (lambda p: p.write_bytes(b"PK\x03\x04"), MSI, "is not an MSI package"),
    (lambda p: p.write_bytes(b"\x7fELF"), EXE, "is not a Windows executable"),
    (lambda p: p.write_bytes(b"not a zip"), WHEEL, "is not a wheel"),
    (lambda p: _wheel(p, metadata=False), WHEEL, "without one *.dist-info/METADATA"),
    (lambda p: _wheel(p, version="7.2.0"), WHEEL, "METADATA Version '7.2.0', not 7.2.1"),
    (lambda p: _wheel(p, name="evil"), WHEEL, "METADATA Name 'evil', not mercurial"),
], ids=["symlink", "directory", "empty", "msi-magic", "exe-magic", "not-zip", "no-metadata",
        "version", "name"])
def test_each_fault_is_named(tmp_path, make, spec, why):
    path = tmp_path / "artifact"
    make(path)
    assert why in artifacts.problem(path, spec, "7.2.1")
