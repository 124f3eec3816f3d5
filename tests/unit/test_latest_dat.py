"""hgautomation.publish.release_host: latest.dat, and the parsing of the host's digests."""

from __future__ import annotations

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
                           path=Path("/dist") / spec.filename(VERSION), is_wheel=False)


ALL = [installer(k, a) for k in ("inno", "wix") for a in ("x86", "x64")]


def test_latest_dat_is_what_mercurials_own_generator_writes():
    """The website's reader is not ours: the file must be byte for byte what the tool
    this one replaces writes (contrib/automation's generate_latest_dat, from the sdist)."""
    from harness import oracles

    upstream = oracles.old_automation("windows")
    if upstream is None:
        pytest.skip("no Mercurial sdist in build/cache (tests/run downloads it)")
    for version in (VERSION, "6.9.1", "7.0rc0"):
        files = [installer(k, a) for k in ("wix", "inno") for a in ("x64", "x86")]
        files = [SimpleNamespace(**{**f.__dict__, "name": f.spec.filename(version)})
                 for f in files]
        assert release_host.latest_dat(version, files) == upstream.generate_latest_dat(version)


def test_latest_dat_lines_in_the_websites_order():
    lines = [line.split("\t") for line in release_host.latest_dat(VERSION, ALL).splitlines()]
    assert [line[3].rsplit("/", 1)[1] for line in lines] == [
        "Mercurial-7.2.4-x86.exe", "Mercurial-7.2.4-x64.exe",
        "mercurial-7.2.4-x86.msi", "mercurial-7.2.4-x64.msi"]
    assert lines[0][4] == ("Mercurial 7.2.4 Inno Setup installer - x86 Windows (Python 3) "
                           "- does not require admin rights")
    assert all(len(line) == 5 and line[0] == "10" for line in lines)


def test_wheels_are_not_in_latest_dat():
    wheel_spec = platforms.WindowsArtifact("wheel", "3.12", "x64")
    wheel = SimpleNamespace(spec=wheel_spec, name=wheel_spec.filename(VERSION), is_wheel=True)
    assert release_host.latest_dat(VERSION, [*ALL, wheel]) == \
        release_host.latest_dat(VERSION, ALL)


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


def test_every_field_of_every_line_is_pinned():
    """The whole file, field by field, without the sdist (the oracle test above checks the
    same against Mercurial's generator where the sdist is present). Breaking any word of
    USER_AGENTS, PRIORITY, BASE_URL, DESCRIPTIONS or LATEST_ORDER fails here."""
    base = "https://mercurial-scm.org/release/windows"
    x86_agent, x64_agent = ".*Windows.*", ".*Windows.*(WOW|x)64.*"
    inno = ("Mercurial 7.2.4 Inno Setup installer - {} Windows (Python 3) "
            "- does not require admin rights")
    wix = "Mercurial 7.2.4 MSI installer - {} Windows (Python 3) - requires admin rights"
    expected = [
        ["10", "7.2.4", x86_agent, f"{base}/Mercurial-7.2.4-x86.exe", inno.format("x86")],
        ["10", "7.2.4", x64_agent, f"{base}/Mercurial-7.2.4-x64.exe", inno.format("x64")],
        ["10", "7.2.4", x86_agent, f"{base}/mercurial-7.2.4-x86.msi", wix.format("x86")],
        ["10", "7.2.4", x64_agent, f"{base}/mercurial-7.2.4-x64.msi", wix.format("x64")],
    ]
    text = release_host.latest_dat(VERSION, list(reversed(ALL)))
    assert text == "\n".join("\t".join(line) for line in expected) + "\n"
    assert [line.split("\t") for line in text.splitlines()] == expected
