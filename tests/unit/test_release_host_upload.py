"""release_host's verified upload and latest.dat replacement against a recording
connection: the server-side check's command and verdicts, the backup names, and what is
put where. Breaking it looks like: an upload whose sha256 or size differs accepted, a
backup overwritten, latest.dat put without its temporary name, or a message naming the
wrong figures."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from hgautomation import errors
from hgautomation.publish import release_host

SHA = "ab" * 32
PART = re.compile(r"^/srv/rel/\.(.+)\.[0-9a-f]{8}\.hgautomation-part$")


class Target:
    name = "release"

    def __str__(self) -> str:
        return "hg@release"


class Conn:
    def __init__(self, answer: str = "", remote: bytes | None = None):
        self.target = Target()
        self.answer, self.remote = answer, remote
        self.calls: list = []

    def output(self, argv, **kwargs):
        self.calls.append(("output", argv, kwargs))
        return self.answer

    def put(self, local, remote, **kwargs):
        self.calls.append(("put", local, remote, kwargs))

    def putfo(self, fo, remote, **kwargs):
        self.calls.append(("putfo", fo.read(), remote, kwargs))

    def exists(self, path):
        self.calls.append(("exists", path))
        return self.remote is not None

    def get(self, remote, local, **kwargs):
        self.calls.append(("get", remote, local, kwargs))
        Path(local).write_bytes(self.remote)


def _put(conn, size=10, sha256=SHA):
    release_host.put_verified(conn, "/srv/rel/", Path("/dist/a.exe"), "a.exe", size, sha256)
    ((_, local, remote, kwargs),) = conn.calls
    return local, remote, kwargs


def test_put_verified_puts_through_a_temporary_name():
    local, remote, kwargs = _put(Conn())
    assert (local, remote) == (Path("/dist/a.exe"), "/srv/rel/a.exe")
    assert PART.match(kwargs.pop("part")).group(1) == "a.exe"
    assert kwargs.pop("verify")
    assert kwargs == {"atomic": True, "mode": 0o664, "description": "a.exe"}


def test_the_server_side_check_accepts_only_the_same_size_and_sha256():
    conn = Conn()
    check = _put(conn)[2]["verify"]
    conn.calls.clear()
    conn.answer = f"10\n{SHA.upper()}  /srv/rel/.a.exe.1.hgautomation-part\n"
    check("/tmp/part")
    assert conn.calls == [("output", ["sh", "-c", 'stat -c %s -- "$1" && sha256sum -- "$1"',
                                      "sh", "/tmp/part"], {"timeout": 600})]
    for answer, seen in [
        (f"11\n{SHA}  x", f"server sees 11 bytes, sha256 {SHA[:16]}…"),
        (f"10\n{'0' * 64}  x", f"server sees 10 bytes, sha256 {'0' * 16}…"),
        ("10", "server sees 10 bytes, sha256 ?…"),
        ("", "server sees ? bytes, sha256 ?…"),
    ]:
        conn.answer = answer
        with pytest.raises(errors.PublishError) as raised:
            check("/tmp/part")
        assert raised.value.message == (f"hg@release: a.exe arrived damaged ({seen}; expected "
                                        f"10 bytes, {SHA[:16]}…)")


def test_latest_dat_created_when_there_is_none(tmp_path, captured):
    conn = Conn(remote=None)
    assert release_host.update_latest(conn, "/srv/rel/", "l1\n", tmp_path) is None
    (exists, (kind, data, remote, kwargs)) = conn.calls
    assert exists == ("exists", "/srv/rel/latest.dat")
    assert (kind, data, remote) == ("putfo", b"l1\n", "/srv/rel/latest.dat")
    assert PART.match(kwargs.pop("part")).group(1) == "latest.dat"
    assert kwargs == {"size": 3, "description": "latest.dat", "atomic": True, "mode": 0o664}
    assert "latest.dat created (there was none before)" in captured.err_text + captured.out_text
    assert list(tmp_path.iterdir()) == []


def test_latest_dat_unchanged_is_left_alone(tmp_path, captured):
    conn = Conn(remote="é\n".encode())
    assert release_host.update_latest(conn, "/srv/rel", "é\n", tmp_path) is None
    assert [c[0] for c in conn.calls] == ["exists", "get"]
    (_, remote, local, kwargs) = conn.calls[1]
    assert remote == "/srv/rel/latest.dat" and kwargs == {"description": "latest.dat"}
    assert local.parent == tmp_path and local.name.startswith(".latest.dat.")
    assert re.fullmatch(r"\.latest\.dat\.[0-9a-f]{8}\.download", local.name)
    assert list(tmp_path.iterdir()) == []
    assert "latest.dat is already up to date" in captured.err_text + captured.out_text


def test_latest_dat_replaced_with_a_backup_never_overwritten(tmp_path, captured, monkeypatch):
    formats = []
    monkeypatch.setattr(release_host.time, "strftime",
                        lambda fmt, t: formats.append((fmt, t)) or "20250102T030405Z")
    monkeypatch.setattr(release_host.time, "gmtime", lambda: "now")
    (tmp_path / "latest.dat.release.20250102T030405Z").write_text("first")
    (tmp_path / "latest.dat.release.20250102T030405Z-1").write_text("second")
    conn = Conn(remote=b"old\n")
    backup = release_host.update_latest(conn, "/srv/rel", "new\n", tmp_path)
    assert formats == [("%Y%m%dT%H%M%SZ", "now")]
    assert backup == tmp_path / "latest.dat.release.20250102T030405Z-2"
    assert backup.read_bytes() == b"old\n"
    assert (tmp_path / "latest.dat.release.20250102T030405Z").read_text() == "first"
    assert (tmp_path / "latest.dat.release.20250102T030405Z-1").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.dat.release.20250102T030405Z", "latest.dat.release.20250102T030405Z-1",
        "latest.dat.release.20250102T030405Z-2"]
    assert conn.calls[-1][:3] == ("putfo", b"new\n", "/srv/rel/latest.dat")
    shown = captured.err_text + captured.out_text
    assert f"saved the previous latest.dat as {backup}" in shown
    assert "created" not in shown


def test_plan_conflict_message():
    a = SimpleNamespace(name="a.exe", size=1, sha256="1" * 64)
    b = SimpleNamespace(name="b.exe", size=2, sha256="2" * 64)
    conn = Conn(f"9 {'1' * 64}  /srv/a.exe\n9 {'2' * 64}  /srv/b.exe\n")
    conn.target = "hg@rel"
    with pytest.raises(errors.PublishError) as raised:
        release_host.plan(conn, "/srv", [a, b])
    assert raised.value.message == ("hg@rel:/srv already has different file(s) with the same "
                                    "name: a.exe, b.exe")
    assert raised.value.hint == "a published file is never replaced"


def test_remote_digests_line_forms():
    conn = Conn("5 " + "c" * 64 + " */srv/rel/*star.exe\n5 x\n"
                "6 " + "d" * 64 + "  /srv/rel/two  spaces.exe\n")
    assert release_host.remote_digests(conn, "/srv/rel//", ["*star.exe"]) == {
        "*star.exe": (5, "c" * 64), "two  spaces.exe": (6, "d" * 64)}
    assert conn.calls[0][1][-1] == "/srv/rel/*star.exe"
    assert conn.calls[0][2] == {"timeout": 600}


def test_a_directory_named_with_x_and_a_trailing_slash(tmp_path, monkeypatch):
    """Only slashes are stripped from the end of the directory (an "X" is a name)."""
    conn = Conn(answer=f"10 {SHA}")
    release_host.put_verified(conn, "/srv/X/", Path("/dist/a.exe"), "a.exe", 10, SHA)
    (_, _, remote, kwargs) = conn.calls[0]
    assert remote == "/srv/X/a.exe" and kwargs["part"].startswith("/srv/X/.a.exe.")
    kwargs["verify"]("/srv/X/.part")  # two fields (no path) are enough
    conn = Conn(remote=None)
    release_host.update_latest(conn, "/srv/X//", "l\n", tmp_path)
    assert conn.calls[0] == ("exists", "/srv/X/latest.dat")
    conn = Conn(answer="")
    release_host.remote_digests(conn, "/srv/X/", ["a"])
    assert conn.calls[0][1][-1] == "/srv/X/a"


def test_a_damaged_two_field_answer_shows_its_sha256():
    conn = Conn()
    release_host.put_verified(conn, "/srv/rel", Path("/dist/a.exe"), "a.exe", 10, SHA)
    conn.answer = f"10 {'0' * 64}"
    with pytest.raises(errors.PublishError, match=f"sha256 {'0' * 16}…"):
        conn.calls[0][3]["verify"]("/tmp/part")


def test_the_first_backup_of_a_second_gets_dash_one(tmp_path, monkeypatch):
    monkeypatch.setattr(release_host.time, "strftime", lambda fmt, t: "S")
    (tmp_path / "latest.dat.release.S").write_text("first")
    backup = release_host.update_latest(Conn(remote=b"old"), "/srv", "new", tmp_path)
    assert backup == tmp_path / "latest.dat.release.S-1"


def test_a_name_ending_in_a_star_keeps_it():
    conn = Conn(f"5 {'c' * 64}  /srv/rel/a*\n")
    assert release_host.remote_digests(conn, "/srv/rel", ["a*"]) == {"a*": (5, "c" * 64)}
