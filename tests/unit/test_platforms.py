"""hgautomation.platforms: the supported choices and the Windows artifact names."""

from __future__ import annotations

import pytest

from hgautomation import platforms

VERSION = "7.2.4"


def test_defaults_are_among_the_choices():
    assert platforms.DEFAULT_LINUX_DISTRO in platforms.LINUX_DISTROS
    assert platforms.DEFAULT_LINUX_PYTHON in platforms.LINUX_PYTHONS
    assert platforms.DEFAULT_WINDOWS_PYTHON in platforms.WINDOWS_PYTHONS
    assert platforms.INSTALLER_PYTHON in platforms.WINDOWS_PYTHONS
    assert "default" in platforms.FILESYSTEMS


def test_linux_pythons():
    assert platforms.LINUX_PYTHONS[0] == "system3"
    assert set(platforms.CPYTHON_VERSIONS) <= set(platforms.LINUX_PYTHONS)
    assert all(p.startswith("pypy3.") for p in platforms.PYPY_VERSIONS)
    assert len(set(platforms.LINUX_PYTHONS)) == len(platforms.LINUX_PYTHONS)


def test_linux_distros_name_an_owner_and_a_pattern():
    for owner, pattern in platforms.LINUX_DISTROS.values():
        assert owner.isdigit() and len(owner) == 12
        assert pattern.endswith("*")


def test_arches():
    assert set(platforms.INSTALLER_ARCHES) <= set(platforms.WINDOWS_ARCHES)
    assert set(platforms.WINDOWS_ARCHES) <= set(platforms.WINDOWS_WHEEL_ARCHES)
    assert set(platforms.WHEEL_PLATFORM_TAGS) == set(platforms.WINDOWS_WHEEL_ARCHES)


@pytest.mark.parametrize("cell,name", [
    (("wheel", "3.12", "x64"), "mercurial-7.2.4-cp312-cp312-win_amd64.whl"),
    (("wheel", "3.9", "x86"), "mercurial-7.2.4-cp39-cp39-win32.whl"),
    (("wheel", "3.14", "x86"), "mercurial-7.2.4-cp314-cp314-win32.whl"),
    (("wheel", "3.11", "arm64"), "mercurial-7.2.4-cp311-cp311-win_arm64.whl"),
    (("inno", "3.12", "x86"), "Mercurial-7.2.4-x86.exe"),
    (("wix", "3.12", "x64"), "mercurial-7.2.4-x64.msi"),
])
def test_file_names_follow_the_release_layout(cell, name):
    assert platforms.WindowsArtifact(*cell).filename(VERSION) == name


def test_unknown_kind_has_no_file_name():
    with pytest.raises(ValueError, match="unknown artifact kind 'zip'"):
        platforms.WindowsArtifact("zip", "3.12", "x64").filename(VERSION)


def test_artifacts_compare_by_value():
    a = platforms.WindowsArtifact("wix", "3.12", "x86")
    assert a == platforms.WindowsArtifact("wix", "3.12", "x86")
    assert a != platforms.WindowsArtifact("wix", "3.12", "x64")
    assert (a.kind, a.python, a.arch) == ("wix", "3.12", "x86")
    assert len({a, platforms.WindowsArtifact("wix", "3.12", "x86")}) == 1


def test_windows_instance_types_cover_every_flow():
    assert set(platforms.WINDOWS_INSTANCE_TYPES) == {"bootstrap", "build", "tests"}
