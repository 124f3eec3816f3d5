"""release_host's steps around the upload: the directory check, leftover temporary files,
the upload loop and the read-back (a step that skipped its check, removed another file or
named the wrong file in its error fails here)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from hgautomation import errors
from hgautomation.publish import release_host

TARGET = SimpleNamespace(name="release")


class Conn:
    """Records commands; answers run() with a status, output() with canned text, and
    an SFTP listing of ``entries``."""

    def __init__(self, status: int = 0, text: str = "", entries=()):
        self.target = TARGET
        self.status, self.text = status, text
        self.calls: list = []
        self.entries = None if entries is None else list(entries)
        self.removed: list[str] = []
        self.sftp = SimpleNamespace(listdir=self._listdir, remove=self.removed.append)

    def _listdir(self, directory):
        self.calls.append(("listdir", directory))
        if self.entries is None:
            raise FileNotFoundError(directory)
        return self.entries

    def run(self, argv, **kwargs):
        self.calls.append(("run", argv, kwargs))
        return self.status

    def output(self, argv, **kwargs):
        self.calls.append(("output", argv, kwargs))
        return self.text


def test_check_directory(captured):
    conn = Conn(status=0)
    release_host.check_directory(conn, "/srv/rel")
    assert conn.calls == [("run", ["test", "-d", "/srv/rel", "-a", "-w", "/srv/rel"],
                           {"check": False, "quiet": True, "timeout": 60})]
    with pytest.raises(errors.PublishError) as raised:
        release_host.check_directory(Conn(status=1), "/srv/rel")
    assert raised.value.message == (f"{TARGET}: release directory /srv/rel does not exist "
                                    "or is not writable")
    assert raised.value.hint == "check --release-dir and --ssh-username"


def test_remove_stale_parts_removes_only_our_leftovers(captured):
    conn = Conn(entries=[".a.exe.1234abcd.hgautomation-part", ".a.exe.1234abcd.part",
                         "a.exe", ".b.msi.00000000.hgautomation-part", ".other.x.hgautomation-part",
                         "x.a.exe.hgautomation-part"])
    release_host.remove_stale_parts(conn, "/srv/rel/", ["a.exe", "b.msi"])
    assert conn.removed == ["/srv/rel/.a.exe.1234abcd.hgautomation-part",
                            "/srv/rel/.b.msi.00000000.hgautomation-part"]
    assert conn.calls == [("listdir", "/srv/rel/")]
    shown = captured.err_text + captured.out_text
    assert "removing leftover .a.exe.1234abcd.hgautomation-part" in shown
    gone = Conn(entries=None)
    release_host.remove_stale_parts(gone, "/srv/none", ["a.exe"])  # no directory: nothing
    assert gone.removed == []


def _artifact(name: str, data: bytes):
    return SimpleNamespace(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                           path=Path("/dist") / name)


def test_upload_puts_each_file_verified(monkeypatch, captured):
    calls = []
    monkeypatch.setattr(release_host, "put_verified",
                        lambda *args: calls.append(args))
    a, b = _artifact("a.exe", b"x" * 1234), _artifact("b.msi", b"yy")
    conn = Conn()
    release_host.upload(conn, "/srv/rel", [a, b])
    assert calls == [(conn, "/srv/rel", a.path, "a.exe", 1234, a.sha256),
                     (conn, "/srv/rel", b.path, "b.msi", 2, b.sha256)]
    assert "release: uploading a.exe (1,234 bytes)" in captured.err_text + captured.out_text


def test_verify_reads_back_every_file():
    a, b = _artifact("a.exe", b"aaa"), _artifact("b.msi", b"bb")
    good = Conn(text=f"3 {a.sha256}  /srv/rel/a.exe\n2 {b.sha256}  /srv/rel/b.msi\n")
    release_host.verify(good, "/srv/rel", [a, b])
    (call,) = good.calls
    assert call[1][-2:] == ["/srv/rel/a.exe", "/srv/rel/b.msi"]
    damaged = Conn(text=f"3 {a.sha256}  /srv/rel/a.exe\n2 {'0' * 64}  /srv/rel/b.msi\n")
    with pytest.raises(errors.PublishError) as raised:
        release_host.verify(damaged, "/srv/rel", [a, b])
    assert raised.value.message == f"{TARGET}:/srv/rel: after upload, wrong or missing: b.msi"
    missing = Conn(text=f"4 {a.sha256}  /srv/rel/a.exe\n")
    with pytest.raises(errors.PublishError) as raised:
        release_host.verify(missing, "/srv/rel", [a, b])
    assert raised.value.message.endswith("wrong or missing: a.exe, b.msi")


def test_remote_digests_command_and_timeout():
    conn = Conn(text="")
    release_host.remote_digests(conn, "/srv/rel//", ["a b.exe"])
    ((_, argv, kwargs),) = conn.calls
    assert argv == ["sh", "-c", 'for f in "$@"; do if [ -f "$f" ]; then '
                    'printf "%s " "$(stat -c %s -- "$f")"; sha256sum -- "$f"; fi; done',
                    "sh", "/srv/rel/a b.exe"]
    assert kwargs == {"timeout": release_host.HASH_TIMEOUT} and release_host.HASH_TIMEOUT == 600


def test_remote_digests_keeps_names_with_spaces():
    conn = Conn(text=f"7 {'A' * 64}  /srv/rel/a b.exe\n")
    assert release_host.remote_digests(conn, "/srv/rel", ["a b.exe"]) == {
        "a b.exe": (7, "a" * 64)}


def test_remove_stale_parts_in_a_directory_named_x(captured):
    conn = Conn(entries=[".a.exe.00000000.hgautomation-part"])
    release_host.remove_stale_parts(conn, "/srv/X/", ["a.exe"])
    assert conn.removed == ["/srv/X/.a.exe.00000000.hgautomation-part"]
