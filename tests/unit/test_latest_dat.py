"""hgautomation.publish.release_host: latest.dat, and the parsing of the host's digests."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from hgautomation import errors, platforms
from hgautomation.publish import release_host

VERSION = "7.2.4"


def installer(kind: str, arch: str, size: int = 100, sha256: str = "a" * 64):
    """An installer record as publishing hands it over (spec, name, size, sha256)."""
    spec = platforms.WindowsArtifact(kind, platforms.INSTALLER_PYTHON, arch)
    return SimpleNamespace(spec=spec, name=spec.filename(VERSION), size=size, sha256=sha256,
                           path=Path("/dist") / spec.filename(VERSION))


ALL = [installer(k, a) for k in ("inno", "wix") for a in ("x86", "x64")]


def test_latest_dat_lines():
    text = release_host.latest_dat(VERSION, ALL)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert text.splitlines() == [
        "10\t7.2.4\t.*Windows.*(WOW|x)64.*\t"
        "https://mercurial-scm.org/release/windows/Mercurial-7.2.4-x64.exe\t"
        "Mercurial 7.2.4 Inno Setup installer - x64 Windows - does not require admin rights",
        "10\t7.2.4\t.*Windows.*(WOW|x)64.*\t"
        "https://mercurial-scm.org/release/windows/mercurial-7.2.4-x64.msi\t"
        "Mercurial 7.2.4 MSI installer - x64 Windows - requires admin rights",
        "10\t7.2.4\t.*Windows.*\t"
        "https://mercurial-scm.org/release/windows/Mercurial-7.2.4-x86.exe\t"
        "Mercurial 7.2.4 Inno Setup installer - x86 Windows - does not require admin rights",
        "10\t7.2.4\t.*Windows.*\t"
        "https://mercurial-scm.org/release/windows/mercurial-7.2.4-x86.msi\t"
        "Mercurial 7.2.4 MSI installer - x86 Windows - requires admin rights",
    ]


def test_x64_browsers_get_an_x64_line_first():
    """The update check takes the first line whose regex matches the user agent."""
    lines = [line.split("\t") for line in
             release_host.latest_dat(VERSION, ALL).splitlines()]
    agents = {
        "x64": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
        "wow64": "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0)",
        "x86": "Mozilla/5.0 (Windows NT 10.0) Gecko/20100101 Firefox/115.0",
    }
    first = {name: next(f[3] for f in lines if re.fullmatch(f[2], agent))
             for name, agent in agents.items()}
    assert first["x64"].endswith("-x64.exe") and first["wow64"].endswith("-x64.exe")
    assert first["x86"].endswith("-x86.exe")
    assert all(len(f) == 5 for f in lines)


def test_latest_dat_follows_the_given_installers_only():
    text = release_host.latest_dat("7.3rc0", [installer("wix", "x86")])
    (line,) = text.splitlines()
    assert line.split("\t")[1] == "7.3rc0"
    assert line.split("\t")[3].endswith("/mercurial-7.2.4-x86.msi")  # the file's own name
    assert release_host.latest_dat(VERSION, []) == "\n"


# -- remote digests and the upload plan ------------------------------------------------------

class FakeConn:
    """Answers conn.output() with canned text and records the commands."""

    def __init__(self, text: str):
        self.text = text
        self.commands: list = []
        self.target = "hg@releases"

    def output(self, command, timeout=None):
        self.commands.append(command)
        return self.text


def test_remote_digests_parses_stat_and_sha256sum_output():
    conn = FakeConn(
        "1234 " + "A" * 64 + "  /srv/rel/Mercurial-7.2.4-x64.exe\n"
        "99 " + "b" * 64 + " */srv/rel/mercurial-7.2.4-x64.msi\n"
        "stat: cannot stat\n"
        "x " + "c" * 64 + "  /srv/rel/other\n")
    found = release_host.remote_digests(conn, "/srv/rel/", ["Mercurial-7.2.4-x64.exe",
                                                           "mercurial-7.2.4-x64.msi",
                                                           "it's here.msi"])
    assert found == {"Mercurial-7.2.4-x64.exe": (1234, "a" * 64),
                     "mercurial-7.2.4-x64.msi": (99, "b" * 64)}
    (argv,) = conn.commands
    # Names travel as words of the argv (quoted in one place, by the communicator).
    assert argv[:2] == ["sh", "-c"] and argv[3:] == [
        "sh", "/srv/rel/Mercurial-7.2.4-x64.exe", "/srv/rel/mercurial-7.2.4-x64.msi",
        "/srv/rel/it's here.msi"]


def test_remote_digests_of_nothing_asks_nothing():
    conn = FakeConn("")
    assert release_host.remote_digests(conn, "/srv", []) == {}
    assert conn.commands == []


def test_plan_skips_identical_files_and_refuses_different_ones():
    exe, msi = installer("inno", "x64", 10, "1" * 64), installer("wix", "x64", 20, "2" * 64)
    conn = FakeConn(f"10 {'1' * 64}  /srv/{exe.name}\n")
    plan = release_host.plan(conn, "/srv", [exe, msi])
    assert list(plan.to_upload) == [msi] and list(plan.already_there) == [exe]
    conn = FakeConn(f"10 {'1' * 64}  /srv/{exe.name}\n11 {'2' * 64}  /srv/{msi.name}\n")
    with pytest.raises(errors.PublishError, match="already has different file") as raised:
        release_host.plan(conn, "/srv", [exe, msi])
    assert raised.value.exit_code == 11
    assert msi.name in raised.value.message and exe.name not in raised.value.message
