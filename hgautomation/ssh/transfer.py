"""Moving files over SFTP: pipelined put/get that leave nothing partial behind.

The transfer loops run in a helper thread (:meth:`Files.shielded`) while the caller
waits: Python delivers Ctrl-C and SIGTERM to the main thread only, so an interrupt
never lands inside one of paramiko's locks (which would stay held) or halfway through
a packet. An interrupted or failed transfer still leaves paramiko's SFTP stream out of
step (writes or prefetched reads in flight), and closing politely would wait for
replies that never come: so the shared SFTP channel is dropped hard
(:meth:`Files.drop`) and the partial file removed over a fresh channel, within a bound.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from hgautomation import console, errors
from hgautomation.ssh.text import describe

# Files at least this large get a progress bar.
PROGRESS_THRESHOLD = 1 << 20
# Downloads read ahead one segment at a time with all of its requests in flight, so
# memory is bounded by the segment (paramiko's whole-file prefetch is not bounded, and
# capped it busy-waits).
DOWNLOAD_SEGMENT = 32 << 20
# SFTP read request size for OpenSSH servers, whose sftp-server serves up to 261,120
# bytes per READ: fewer requests and replies to handle in Python. Other servers get the
# 32 KiB every server must accept, since a short reply would make paramiko fall back to
# one synchronous read per request.
OPENSSH_READ_CHUNK = 128 << 10
READ_CHUNK = 32768  # paramiko's largest SFTP read request
WRITE_CHUNK = 32768  # and write request
# Max SSH packet we accept on the SFTP channel (paramiko's default is 32 KiB): sshd then
# sends fewer, larger packets, each one costing a pass through paramiko's transport thread.
SFTP_MAX_PACKET = 256 << 10
# Seconds a failed or interrupted transfer spends removing its partial remote file.
CLEANUP_TIMEOUT = 10.0
# Seconds for an SFTP channel to open and its server to answer (its start included).
OPEN_TIMEOUT = 30.0
T = TypeVar("T")


class Files:
    """The SFTP side of one connection: a shared channel opened lazily, transfers."""

    def __init__(self, client, target):
        self.client = client
        self.target = target
        self._sftp = None

    @property
    def sftp(self):
        """The shared paramiko SFTPClient, opened on first use."""
        if self._sftp is None:
            import paramiko

            try:
                self._sftp = self.open_channel()
            except (paramiko.SSHException, OSError) as exc:
                raise errors.HostConnectionError(
                    f"{self.target}: SFTP is not available: {exc}") from exc
        return self._sftp

    def open_channel(self):
        """A new SFTP client on its own channel of this connection, within
        ``OPEN_TIMEOUT`` (an sftp-server started by a slow login shell); a session that
        did not get that far is signalled to end on the host."""
        import paramiko

        from hgautomation.ssh import runner

        channel = self.client.get_transport().open_session(
            max_packet_size=SFTP_MAX_PACKET, timeout=OPEN_TIMEOUT)
        try:
            channel.settimeout(OPEN_TIMEOUT)
            channel.invoke_subsystem("sftp")
            sftp = paramiko.SFTPClient(channel)
        except BaseException:
            runner.signal_session(channel, "KILL")
            channel.close()
            raise
        channel.settimeout(None)
        return sftp

    def drop(self, remote_fh) -> None:
        """Close the shared SFTP channel without waiting for replies; reopened lazily.

        ``remote_fh`` (an SFTPFile of that channel, or None) is marked closed without the
        polite close that would wait for its outstanding replies.
        """
        sftp, self._sftp = self._sftp, None
        if sftp is not None:
            with contextlib.suppress(Exception):
                sftp.get_channel().close()  # local close: pending reads now see EOF at once
        if remote_fh is not None:
            with contextlib.suppress(Exception):
                remote_fh.set_pipelined(False)  # skip waiting for the pipelined acks
                remote_fh.close()  # the CLOSE request fails fast on the closed channel

    def shielded(self, work: Callable[[], T]) -> T:
        """Run ``work`` (an SFTP loop) in a helper thread; the caller waits interruptibly.

        On Ctrl-C or SIGTERM the channel is dropped (from another helper, as a held
        lock must not hang the caller either), so the loop's blocking call returns; it
        gets a bounded moment to end, and the interrupt goes on up.
        """
        if threading.current_thread() is not threading.main_thread():
            return work()  # signals never reach other threads: nothing to shield
        outcome: dict = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["value"] = work()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="hgautomation-sftp", daemon=True).start()
        try:
            while not done.wait(0.2):
                pass
        except BaseException:
            threading.Thread(target=self.drop, args=(None,), name="hgautomation-sftp-drop",
                             daemon=True).start()
            done.wait(CLEANUP_TIMEOUT)
            raise
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def close(self) -> None:
        sftp, self._sftp = self._sftp, None
        if sftp is not None:
            with contextlib.suppress(Exception):
                sftp.close()

    def put(self, local: Path, remote: str, *, atomic: bool = False,
            mode: int | None = None, description: str | None = None,
            part: str | None = None, verify: Callable[[str], None] | None = None) -> None:
        """Upload ``local`` to ``remote`` (pipelined; ``atomic``, ``part`` and ``verify``
        as for :meth:`putfo`)."""
        local = Path(local)
        size = local.stat().st_size
        with open(local, "rb") as fh:
            self.putfo(fh, remote, size=size, description=description or local.name,
                       atomic=atomic, mode=mode, part=part, verify=verify)

    def putfo(self, fh: IO[bytes], remote: str, *, size: int = 0,
              description: str = "upload", atomic: bool = False, mode: int | None = None,
              part: str | None = None, verify: Callable[[str], None] | None = None) -> None:
        """Upload a file object; a failed or interrupted upload leaves no partial file.

        With ``atomic`` the data goes to ``part`` (default ``remote.part``), is checked by
        ``verify(part)`` (which raises if it is wrong), gets ``mode`` and is renamed
        over ``remote``: ``remote`` only ever appears complete. On any failure, the
        temporary file is removed.
        """
        dest = (part or f"{remote}.part") if atomic else remote
        self._stream(fh, dest, size, description)
        try:
            if verify is not None:
                verify(dest)
            if mode is not None:
                self.sftp.chmod(dest, mode)
            if atomic:
                rename(self.sftp, dest, remote)
        except BaseException:
            self.remove_quietly(dest)
            raise

    def _stream(self, fh: IO[bytes], remote: str, size: int, description: str) -> None:
        """Write ``fh`` to ``remote``: constant memory, pipelined writes (unpipelined
        SFTP writes crawl); a failed or interrupted write leaves no partial file."""
        import paramiko

        opened: list = []  # the remote file while it is open, for drop()

        def upload(callback) -> int:
            remote_fh = self.sftp.open(remote, "wb")
            opened.append(remote_fh)
            remote_fh.set_pipelined(True)
            sent = 0
            for block in iter(lambda: fh.read(WRITE_CHUNK), b""):
                remote_fh.write(block)
                sent += len(block)
                if callback is not None:
                    callback(sent, size)
            remote_fh.close()  # waits until every pipelined write is acknowledged
            opened.clear()
            return sent

        try:
            with _progress(description, size) as callback:
                sent = self.shielded(lambda: upload(callback))
            got = self.sftp.stat(remote).st_size
            if got != sent:
                raise errors.HostConnectionError(
                    f"{self.target}: upload to {remote} incomplete: {got} of {sent} bytes")
        except BaseException as exc:
            self.drop(opened[0] if opened else None)
            self.remove_quietly(remote)
            if isinstance(exc, (paramiko.SSHException, OSError, EOFError)) and \
                    not isinstance(exc, errors.HgAutomationError):
                raise errors.HostConnectionError(
                    f"{self.target}: upload to {remote} failed: {describe(exc)}") from exc
            raise

    def get(self, remote: str, local: Path, *, description: str | None = None) -> None:
        """Download ``remote`` to ``local`` (pipelined; no partial file on failure)."""
        import paramiko

        local = Path(local)
        tmp = local.with_name(f".{local.name}.part")
        opened: list = []  # the remote file while it is open, for drop()

        def download(fh, size: int, callback) -> None:
            remote_fh = self.sftp.open(remote, "rb")
            opened.append(remote_fh)
            request = READ_CHUNK
            if "OpenSSH" in (self.client.get_transport().remote_version or ""):
                request = remote_fh.MAX_REQUEST_SIZE = OPENSSH_READ_CHUNK
            done = 0
            while done < size:
                end = min(done + DOWNLOAD_SEGMENT, size)
                chunks = [(o, min(request, end - o)) for o in range(done, end, request)]
                for block in _read_segment(remote_fh, chunks):
                    if not block:
                        raise errors.RemoteCommandError(
                            f"{self.target}: {remote} shrank during the download")
                    fh.write(block)
                    done += len(block)
                    if callback is not None:
                        callback(done, size)
            remote_fh.close()
            opened.clear()

        try:
            size = self.sftp.stat(remote).st_size or 0
            with _progress(description or Path(remote).name, size) as callback, \
                    open(tmp, "wb") as fh:
                self.shielded(lambda: download(fh, size, callback))
            os.replace(tmp, local)
        except BaseException as exc:
            # Interrupted, the reply stream may be cut, and requests may still be in
            # flight: never wait on that channel again.
            self.drop(opened[0] if opened else None)
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError) and exc.filename == str(tmp):  # ours, not the host's
                raise errors.ConfigurationError(f"cannot write {local}: {exc.strerror}") from exc
            if isinstance(exc, FileNotFoundError) and not isinstance(exc, errors.HgAutomationError):
                raise errors.RemoteCommandError(
                    f"{self.target}: {remote} does not exist") from exc
            if isinstance(exc, (paramiko.SSHException, OSError, EOFError)) and \
                    not isinstance(exc, errors.HgAutomationError):
                raise errors.HostConnectionError(
                    f"{self.target}: download of {remote} failed: {describe(exc)}") from exc
            raise

    def remove_quietly(self, path: str, *, timeout: float = CLEANUP_TIMEOUT) -> bool:
        """Best-effort removal of ``path`` within ``timeout`` seconds; True if it is gone.

        Safe right after an interrupted SFTP call: it works over a fresh SFTP channel.
        """
        import paramiko

        self.drop(None)  # it may be waiting for a reply that will never come
        gone = threading.Event()
        opened: list = []

        def remove() -> None:
            deadline = time.monotonic() + timeout
            sftp = None
            try:
                sftp = self.open_channel()
                opened.append(sftp)
                while True:
                    try:
                        sftp.remove(path)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        # A generic failure (no errno): e.g. a Windows server still
                        # holding the file open for the dropped channel. Retry briefly.
                        if exc.errno is not None or time.monotonic() > deadline:
                            return
                        time.sleep(0.25)
                        continue
                    gone.set()
                    return
            except (paramiko.SSHException, OSError, EOFError):
                pass  # best effort: the caller raises the error that matters
            finally:
                if sftp is not None:
                    with contextlib.suppress(Exception):
                        sftp.close()

        worker = threading.Thread(target=remove, name="hgautomation-sftp-cleanup", daemon=True)
        worker.start()
        worker.join(timeout)
        for sftp in opened:  # still stuck after the bound: cut it loose
            with contextlib.suppress(Exception):
                sftp.close()
        return gone.is_set()


def rename(sftp, old: str, new: str) -> None:
    """Rename on the host, replacing ``new`` (POSIX rename where supported)."""
    try:
        sftp.posix_rename(old, new)
    except OSError:
        sftp.rename(old, new)


@contextlib.contextmanager
def _progress(description: str, size: int) -> Iterator:
    if size < PROGRESS_THRESHOLD:
        yield None
        return
    with console.get().progress(description, total=size) as bar:
        yield lambda done, total: bar.update(done)


def _read_segment(remote_fh, chunks: list[tuple[int, int]]) -> Iterator[bytes]:
    """Pipelined reads of ``chunks``: all requests sent first, then the replies in order."""
    # paramiko's readv() sends the requests from a helper thread and marks its prefetch
    # done whenever no request is outstanding. If the replies are consumed faster than
    # that thread sends, the rest of the segment silently degrades to one synchronous
    # read per request while the prefetched replies pile up unread. Sending every
    # request here, before any reply is read, removes the race. This uses paramiko 5.x
    # internals; without them, readv().
    if not hasattr(remote_fh, "_prefetch_thread"):
        yield from remote_fh.readv(chunks)
        return
    remote_fh._prefetching = True
    remote_fh._prefetch_done = False
    remote_fh._prefetch_thread(chunks, None)  # only sends; replies wait in the channel
    for offset, length in chunks:
        remote_fh.seek(offset)
        yield remote_fh.read(length)
