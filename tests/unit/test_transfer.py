"""The one atomic upload (ssh.transfer) over an in-memory SFTP server, and release_host's
two users of it: a file appears under its final name only complete and verified."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from hgautomation import errors, ssh
from hgautomation.publish import release_host

TARGET = ssh.Target(name="release", hostname="192.0.2.7", port=22, user="hg")
RELEASE = "/srv/release"
PART = re.compile(r"/srv/release/\.(.+)\.[0-9a-f]{8}\.hgautomation-part$")


class _File:
    def __init__(self, server: _Server, path: str):
        self.server, self.path, self.data = server, path, bytearray()

    def set_pipelined(self, pipelined: bool) -> None:
        pass

    def write(self, block: bytes) -> None:
        self.data += block

    def close(self) -> None:
        self.server.files[self.path] = bytes(self.data)


class _Server:
    """A host's files as SFTP sees them, and what was done to them, in order."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, int] = {}
        self.log: list[tuple[str, ...]] = []
        self.fail_rename = False

    def channel(self) -> _Server:
        return self  # every (re)opened SFTP channel sees the same files

    def open(self, path: str, mode: str) -> _File:
        self.log.append(("open", path))
        return _File(self, path)

    def stat(self, path: str):
        if path not in self.files:
            raise FileNotFoundError(2, "No such file", path)
        return SimpleNamespace(st_size=len(self.files[path]))

    def chmod(self, path: str, mode: int) -> None:
        self.log.append(("chmod", path, oct(mode)))
        self.modes[path] = mode

    def posix_rename(self, old: str, new: str) -> None:
        self.log.append(("rename", old, new))
        if self.fail_rename:
            raise PermissionError(13, "Permission denied")
        self.files[new] = self.files.pop(old)
        if old in self.modes:
            self.modes[new] = self.modes.pop(old)

    rename = posix_rename  # the fallback for servers without posix-rename

    def remove(self, path: str) -> None:
        self.log.append(("remove", path))
        del self.files[path]

    def get_channel(self):
        return SimpleNamespace(close=lambda: None)

    def close(self) -> None:
        pass


@pytest.fixture
def server():
    return _Server()


@pytest.fixture
def conn(server, captured):
    """A real Connection whose SFTP channels reach ``server``; ``output`` answers the
    release host's size+sha256 command from the server's files."""
    connection = ssh.Connection(SimpleNamespace(close=lambda: None), TARGET)
    connection._files.open_channel = server.channel
    hashed = []

    def output(argv, **kwargs):
        import hashlib

        path = argv[-1]
        hashed.append(path)
        data = server.files[path]
        return f"{len(data)}\n{hashlib.sha256(data).hexdigest()}  {path}"

    connection.output = output
    connection.hashed = hashed
    return connection


def _local(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "Mercurial-7.2.4-x64.exe"
    path.write_bytes(data)
    return path


def test_atomic_put_goes_through_the_part_file(conn, server, tmp_path):
    conn.put(_local(tmp_path, b"payload"), "/srv/x.whl", atomic=True, mode=0o640)
    assert server.files == {"/srv/x.whl": b"payload"} and server.modes["/srv/x.whl"] == 0o640
    assert server.log == [("open", "/srv/x.whl.part"), ("chmod", "/srv/x.whl.part", "0o640"),
                          ("rename", "/srv/x.whl.part", "/srv/x.whl")]


def test_failed_rename_leaves_nothing(conn, server, tmp_path):
    server.fail_rename = True
    with pytest.raises(PermissionError):
        conn.put(_local(tmp_path, b"payload"), "/srv/x.whl", atomic=True)
    assert server.files == {}
    assert server.log[-1] == ("remove", "/srv/x.whl.part")


def test_verified_upload_checks_the_temporary_file_before_it_gets_its_name(
        conn, server, tmp_path):
    import hashlib

    data = b"installer bytes"
    local = _local(tmp_path, data)
    release_host.put_verified(conn, RELEASE, local, local.name, len(data),
                              hashlib.sha256(data).hexdigest())
    final = f"{RELEASE}/{local.name}"
    assert server.files == {final: data} and server.modes[final] == release_host.FILE_MODE
    (_, tmp), chmod, rename = server.log
    assert PART.match(tmp).group(1) == local.name
    assert conn.hashed == [tmp]  # verified on the server under its temporary name
    assert chmod == ("chmod", tmp, "0o664") and rename == ("rename", tmp, final)


def test_damaged_upload_is_refused_and_removed(conn, server, tmp_path):
    local = _local(tmp_path, b"installer bytes")
    with pytest.raises(errors.PublishError, match=r"arrived damaged .*expected 15 bytes"):
        release_host.put_verified(conn, RELEASE, local, local.name, 15, "0" * 64)
    assert server.files == {}  # no final file, no temporary file
    assert [entry[0] for entry in server.log] == ["open", "remove"]


def test_latest_dat_is_replaced_through_a_temporary_file(conn, server, tmp_path):
    conn.exists = lambda path: False
    backup = release_host.update_latest(conn, RELEASE, "new content\n", tmp_path)
    final = f"{RELEASE}/{release_host.LATEST}"
    assert backup is None
    assert server.files == {final: b"new content\n"}
    assert server.modes[final] == release_host.FILE_MODE
    (_, tmp), _, rename = server.log
    assert PART.match(tmp).group(1) == release_host.LATEST and rename == ("rename", tmp, final)


def test_putfo_without_atomic_writes_in_place(conn, server):
    conn.putfo(io.BytesIO(b"key"), "/home/hg/.ssh/key", size=3)
    assert server.files == {"/home/hg/.ssh/key": b"key"}
    assert server.log == [("open", "/home/hg/.ssh/key")]


@pytest.mark.parametrize("stored", [
    b"installer bytez",  # one byte changed
    b"\0" * 15,  # zeros of the right length (a sparse file of a full disk)
    b" bytesinstaller",  # the right bytes in another order
    b"installer byte",  # one byte short
    b"installer bytes\0",  # one byte more
    b"",  # nothing arrived
], ids=["changed", "zeros", "reordered", "truncated", "longer", "empty"])
def test_a_host_that_stores_other_bytes_than_were_sent_is_refused(
        conn, server, tmp_path, stored):
    """The release host keeps something else than the local file (a faulty disk, a proxy,
    a full file system): nothing gets the final name, the temporary file is removed.
    Same-sized damage is caught only by put_verified's sha256 comparison: breaking it
    looks like dropping ``or got[1].lower() != sha256`` (a damaged installer published
    under its final name); another size is caught by the SFTP size check first."""
    import hashlib

    data = b"installer bytes"
    local = _local(tmp_path, data)
    real_close = _File.close

    def close_damaged(self):  # the server writes ``stored`` whatever it was sent
        assert bytes(self.data) == data  # the client did send the right bytes
        self.data = bytearray(stored)
        real_close(self)

    _File.close = close_damaged
    try:
        with pytest.raises((errors.PublishError, errors.HostConnectionError)) as raised:
            release_host.put_verified(conn, RELEASE, local, local.name, len(data),
                                      hashlib.sha256(data).hexdigest())
    finally:
        _File.close = real_close
    if len(stored) == len(data):
        assert isinstance(raised.value, errors.PublishError)
        assert raised.value.message.startswith(f"hg@release: {local.name} arrived damaged "
                                               f"(server sees {len(data)} bytes, sha256 "
                                               f"{hashlib.sha256(stored).hexdigest()[:16]}")
    else:
        assert f"{len(stored)} of {len(data)} bytes" in raised.value.message
    assert server.files == {}  # neither the final name nor the temporary file
    assert not any(entry[0] in ("chmod", "rename") for entry in server.log)


def test_a_size_the_host_reports_otherwise_is_refused(conn, server, tmp_path):
    """The size the host's own ``stat`` gives the temporary file is compared too (the
    file changed after SFTP saw it whole). Breaking it: dropping
    ``got[0] != str(size)`` from put_verified's check."""
    import hashlib

    data = b"installer bytes"
    local = _local(tmp_path, data)
    plain = conn.output
    conn.output = lambda argv, **kwargs: plain(argv, **kwargs).replace("15\n", "16\n", 1)
    with pytest.raises(errors.PublishError, match=r"server sees 16 bytes, sha256 "):
        release_host.put_verified(conn, RELEASE, local, local.name, len(data),
                                  hashlib.sha256(data).hexdigest())
    assert server.files == {}


def test_the_servers_digest_is_compared_whatever_its_case(conn, server, tmp_path):
    """sha256sum prints lower case, but a host's may not: an upper-case digest of the
    right bytes is the same digest (breaking it: dropping ``.lower()`` refuses a good
    upload)."""
    import hashlib

    data = b"installer bytes"
    local = _local(tmp_path, data)
    plain = conn.output
    conn.output = lambda argv, **kwargs: plain(argv, **kwargs).upper()
    release_host.put_verified(conn, RELEASE, local, local.name, len(data),
                              hashlib.sha256(data).hexdigest())
    assert server.files == {f"{RELEASE}/{local.name}": data}
