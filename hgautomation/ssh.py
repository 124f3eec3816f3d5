"""The SSH communicator: connect (bounded wait, verified host keys), run, put/get.

Stable API (reused by publishing and by every Linux flow)::

    from hgautomation import ssh

    target = ssh.resolve("box.example.org", user="hg", port=None,
                         ssh_config=Path("~/.ssh/config"), identity_files=())
    with ssh.connect(target, known_hosts=ctx.state.known_hosts,
                     extra_known_hosts=[ssh.USER_KNOWN_HOSTS],   # read-only
                     accept_new_host_key=False, wait=60) as conn:
        status = conn.run("uname -a")                # streams lines, raises on != 0
        status = conn.run("false", check=False)       # returns the status instead
        conn.run("bash -s -- arg", stdin=script_bytes)  # feed a script on stdin
        text = conn.output("cat /etc/os-release")    # quiet, returns stdout+stderr
        conn.put(Path("big.whl"), "/srv/big.whl", atomic=True)   # .part + rename
        conn.get("/hgwork/report.json", Path("report.json"))
        conn.remove_quietly("/srv/big.whl.part")   # bounded, safe after an interrupt
        conn.rename("/srv/a", "/srv/b"); conn.chmod("/srv/b", 0o644)

* :func:`resolve` applies an OpenSSH client config (``paramiko.SSHConfig``):
  HostName, Port, User, IdentityFile, ProxyCommand, ProxyJump, HostKeyAlias,
  ConnectTimeout, ConnectionAttempts. Values given explicitly win, as with ``ssh``.
* Host keys are checked against ``known_hosts`` (the tool's file, the only one ever
  written, and only with ``accept_new_host_key``) plus ``extra_known_hosts``
  (read-only). Unknown or mismatching keys raise :class:`errors.HostKeyError`;
  refused, timed out or failed authentication raise :class:`errors.HostConnectionError`.
* A failed or interrupted (Ctrl-C/SIGTERM) ``put``/``putfo``/``get`` returns promptly and
  leaves no partial file: the SFTP channel is dropped without waiting for replies.
* :func:`openssh_config` writes the same target as an OpenSSH config block, so
  that ``ssh``-based tools (``hg push``) connect exactly like the communicator.

paramiko is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import collections
import contextlib
import getpass
import os
import shlex
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hgautomation import console, errors

USER_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
DEFAULT_CONNECT_TIMEOUT = 15.0
# Lines of output kept for a RemoteCommandError.
TAIL_LINES = 20
# Files at least this large get a progress bar.
PROGRESS_THRESHOLD = 1 << 20
# Downloads read ahead one segment at a time (all of its 32 KiB requests in flight):
# memory is bounded by the segment by construction. paramiko's whole-file prefetch was
# as fast but once held a whole 200 MB payload in memory under load, and capping its
# requests makes it busy-wait (≈5 MB/s at 64; TESTING-NOTES). 32 MiB measured
# 131-174 MB/s on loopback vs 95-101 MB/s for 8 MiB.
DOWNLOAD_SEGMENT = 32 << 20
# SFTP read request size for OpenSSH servers: 4x fewer requests and replies to handle in
# Python than paramiko's 32 KiB default; sftp-server serves up to 261,120 bytes per READ
# (SFTP_MAX_READ_LENGTH). Other servers keep the 32 KiB every server must accept, since a
# short reply would make paramiko fall back to one synchronous read per request.
OPENSSH_READ_CHUNK = 128 << 10
READ_CHUNK = 32768  # paramiko's largest SFTP read request
WRITE_CHUNK = 32768  # and write request
# Max SSH packet we accept on the SFTP channel (paramiko's default is 32 KiB): sshd then
# sends fewer, larger packets, each one costing a pass through paramiko's transport thread.
SFTP_MAX_PACKET = 256 << 10
# Seconds a failed or interrupted transfer spends removing its partial remote file.
CLEANUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """Where and how to connect, after the ssh config has been applied."""

    name: str  # what the user named (host of --host, an instance address)
    hostname: str  # where TCP goes (ssh config HostName)
    port: int
    user: str
    identity_files: tuple[Path, ...] = ()
    proxy_command: str | None = None
    proxy_jump: str | None = None
    host_key_alias: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    connection_attempts: int = 1
    ssh_config: Path | None = None
    # False: also try the agent and ~/.ssh default keys after identity_files.
    identities_only: bool = True

    @property
    def known_hosts_name(self) -> str:
        """The key under which the host key is pinned (as OpenSSH spells it)."""
        if self.host_key_alias:
            return self.host_key_alias
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.name}" + ("" if self.port == 22 else f":{self.port}")


def parse_host_spec(spec: str) -> tuple[str | None, str, int | None]:
    """Split ``[user@]address[:port]`` (IPv6 as ``[addr]:port``) into its parts."""
    user = None
    if "@" in spec:
        user, _, spec = spec.rpartition("@")
        if not user:
            raise errors.UsageError(f"empty user name in host {spec!r}")
    port = None
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise errors.UsageError(f"bad host address {spec!r}")
        port_text = rest[1:] if rest else None
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
    else:
        host, port_text = spec, None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise errors.UsageError(f"bad port in host {spec!r}")
        port = int(port_text)
    if not host:
        raise errors.UsageError(f"empty address in host {spec!r}")
    return user, host, port


def _load_config(path: Path | None):
    import paramiko

    if path is None:
        return paramiko.SSHConfig()
    path = Path(path).expanduser()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except FileNotFoundError:
        raise errors.ConfigurationError(f"ssh config {path} does not exist") from None
    except (OSError, paramiko.ssh_exception.ConfigParseError, ValueError) as exc:
        raise errors.ConfigurationError(f"cannot read ssh config {path}: {exc}") from None


def resolve(host: str, *, user: str | None = None, port: int | None = None,
            ssh_config: Path | None = None, identity_files: Sequence[Path] = (),
            default_user: str | None = None, host_key_alias: str | None = None,
            fallback_identity: Path | None = None) -> Target:
    """Apply ``ssh_config`` to ``host``; explicit ``user``/``port``/identities win.

    ``fallback_identity`` (e.g. the tool's own key) is tried when neither the caller
    nor the config names an identity, followed by the agent and default keys.
    """
    options = _load_config(ssh_config).lookup(host)

    def number(key: str, default: float) -> float:
        try:
            return float(options.get(key, default))
        except ValueError:
            raise errors.ConfigurationError(
                f"ssh config: bad {key} {options[key]!r} for {host}") from None

    identities = tuple(Path(p).expanduser() for p in identity_files)
    if not identities:
        identities = tuple(Path(p).expanduser() for p in options.get("identityfile", []))
    identities_only = bool(identities)
    if not identities and fallback_identity is not None and Path(fallback_identity).exists():
        identities = (Path(fallback_identity),)
    proxy_command = options.get("proxycommand")
    if proxy_command and proxy_command.lower() == "none":
        proxy_command = None
    proxy_jump = options.get("proxyjump")
    if proxy_jump and proxy_jump.lower() == "none":
        proxy_jump = None
    return Target(
        name=host,
        hostname=options.get("hostname", host),
        port=int(port or number("port", 22)),
        user=user or options.get("user") or default_user or getpass.getuser(),
        identity_files=identities,
        proxy_command=proxy_command,
        proxy_jump=proxy_jump,
        host_key_alias=host_key_alias or options.get("hostkeyalias"),
        connect_timeout=number("connecttimeout", DEFAULT_CONNECT_TIMEOUT),
        connection_attempts=max(1, int(number("connectionattempts", 1))),
        ssh_config=Path(ssh_config).expanduser().absolute() if ssh_config else None,
        identities_only=identities_only,
    )


# -- host keys -----------------------------------------------------------------

def fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a paramiko key."""
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def pin_host_key(known_hosts: Path, name: str, key_line: str) -> None:
    """Pin ``key_line`` ("type base64") for ``name`` in ``known_hosts``, replacing old pins."""
    known_hosts = Path(known_hosts)
    kept = []
    if known_hosts.exists():
        for line in known_hosts.read_text().splitlines():
            fields = line.split()
            if fields and name in fields[0].split(","):
                continue
            kept.append(line)
    kept.append(f"{name} {' '.join(key_line.split()[:2])}")
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = known_hosts.with_name(f".{known_hosts.name}.tmp")
    tmp.write_text("\n".join(kept) + "\n")
    os.replace(tmp, known_hosts)


def _policy(known_hosts: Path, accept_new: bool):
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        """Refuse unknown keys, or pin them in the tool's file when asked to."""

        def missing_host_key(self, client, hostname, key):
            # Only called when nothing at all is pinned under this name (a pinned
            # key of another type is a mismatch in paramiko too).
            if not accept_new:
                raise errors.HostKeyError(
                    f"unknown host key for {hostname}: {key.get_name()} {fingerprint(key)}",
                    hint="verify it, then pass --accept-new-host-key to pin it")
            pin_host_key(known_hosts, hostname, f"{key.get_name()} {key.get_base64()}")
            console.get().info(f"pinned new host key for {hostname}: "
                               f"{key.get_name()} {fingerprint(key)} in {known_hosts}")

    return Policy()


# -- connecting ------------------------------------------------------------------

def _open_socket(target: Target):
    """A connected socket-like object for ``target``: direct, ProxyCommand or ProxyJump."""
    import paramiko

    if target.proxy_command:
        return paramiko.ProxyCommand(target.proxy_command)
    sock = socket.create_connection((target.hostname, target.port),
                                    timeout=target.connect_timeout)
    # paramiko sends each SSH packet with its own send(); with Nagle the small ones (SFTP
    # read requests, window adjusts) wait for the peer's delayed ACK and the pipeline stalls
    # (bench/transfer.py with all of this file's transfer settings, ratio to scp over five
    # runs: upload 0.92-1.02 and download 0.82-1.21, against 0.67-1.16 and 0.56-0.71 before).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Connection:
    """An open SSH connection: run commands, move files (see the module docstring)."""

    def __init__(self, client, target: Target, jumps: Sequence[Connection] = ()):
        self.client = client
        self.target = target
        self._jumps = list(jumps)
        self._sftp = None

    # -- lifecycle
    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._sftp is not None:
                self._sftp.close()
        with contextlib.suppress(Exception):
            self.client.close()
        for jump in reversed(self._jumps):
            jump.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def sftp(self):
        """The (lazily opened) paramiko SFTPClient."""
        if self._sftp is None:
            import paramiko

            try:
                self._sftp = self._open_sftp()
            except (paramiko.SSHException, OSError) as exc:
                raise errors.HostConnectionError(
                    f"{self.target}: SFTP is not available: {exc}") from None
        return self._sftp

    # -- commands
    def run(self, command: str, *, check: bool = True, prefix: str = "",
            env: dict[str, str] | None = None, timeout: float | None = None,
            quiet: bool = False, sink: list[str] | None = None,
            stdin: bytes | None = None) -> int:
        """Run ``command`` (a shell string), streaming combined output line by line.

        Returns the exit status; with ``check`` a non-zero status raises
        :class:`errors.RemoteCommandError` carrying the command and the last lines.
        ``sink`` collects every line; ``quiet`` keeps them off the console;
        ``stdin`` is sent to the command, then end-of-file.
        """
        import paramiko

        if env:
            command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) \
                + " " + command
        # Merge stderr into stdout on the host: SSH carries them as two streams, and
        # joining them here could splice a line of one into a partial line of the other.
        wire = "exec 2>&1\n" + command
        out = console.get()
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

        def emit(raw: bytes) -> None:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            tail.append(line)
            if sink is not None:
                sink.append(line)
            if not quiet:
                out.remote_line(prefix, line)

        try:
            channel = self.client.get_transport().open_session()
        except (paramiko.SSHException, OSError, AttributeError) as exc:
            raise errors.HostConnectionError(f"{self.target}: cannot open a session: {exc}") \
                from None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            channel.set_combine_stderr(True)
            channel.settimeout(1.0)
            channel.exec_command(wire)
            if stdin is not None:
                channel.settimeout(None if timeout is None else timeout)
                channel.sendall(stdin)
                channel.shutdown_write()
                channel.settimeout(1.0)
            pending = b""
            while True:
                try:
                    chunk = channel.recv(65536)
                except socket.timeout:
                    if deadline is not None and time.monotonic() > deadline:
                        raise errors.WaitTimeout(
                            f"{self.target}: command did not finish within {timeout:.0f}s: "
                            f"{_short(command)}") from None
                    if channel.closed or not self.client.get_transport().is_active():
                        break
                    continue
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    emit(raw)
            if pending:
                emit(pending)
            if not channel.exit_status_ready() and not \
                    channel.status_event.wait(timeout=30):
                raise errors.HostConnectionError(
                    f"{self.target}: connection lost while running {_short(command)}")
            status = channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as exc:
            raise errors.HostConnectionError(
                f"{self.target}: connection lost while running {_short(command)}: {exc}") \
                from None
        finally:
            channel.close()
        if status == -1:
            raise errors.HostConnectionError(
                f"{self.target}: no exit status for {_short(command)} (connection lost?)")
        if check and status != 0:
            last = "\n".join(tail)
            raise errors.RemoteCommandError(
                f"{self.target}: exit status {status} from {_short(command)}"
                + (f"; last output: {tail[-1]}" if tail else ""),
                command=command, status=status, output_tail=last)
        return status

    def output(self, command: str, *, check: bool = True, timeout: float | None = 120,
               stdin: bytes | None = None) -> str:
        """Run ``command`` quietly and return its combined output."""
        lines: list[str] = []
        self.run(command, check=check, quiet=True, sink=lines, timeout=timeout, stdin=stdin)
        return "\n".join(lines)

    # -- files
    #
    # An SFTP call cut by Ctrl-C/SIGTERM (a KeyboardInterrupt in the main thread) can
    # leave paramiko's SFTP stream out of step: half a reply read, writes or prefetched
    # reads still in flight. Closing the file politely then waits forever for replies
    # that never come. So a failed transfer drops the shared SFTP channel hard (see
    # _drop_sftp) and removes its partial file over a fresh channel, within a bound.

    def put(self, local: Path, remote: str, *, atomic: bool = False,
            mode: int | None = None, description: str | None = None) -> None:
        """Upload ``local`` to ``remote`` (pipelined; with ``atomic`` via ``remote.part``)."""
        local = Path(local)
        size = local.stat().st_size
        dest = f"{remote}.part" if atomic else remote
        with open(local, "rb") as fh:
            self.putfo(fh, dest, size=size, description=description or local.name)
        try:
            if mode is not None:
                self.sftp.chmod(dest, mode)
            if atomic:
                self.rename(dest, remote)
        except BaseException:
            self.remove_quietly(dest)
            raise

    def putfo(self, fh: IO[bytes], remote: str, *, size: int = 0,
              description: str = "upload") -> None:
        """Upload a file object; a failed or interrupted upload leaves no partial file.

        Constant memory, pipelined writes (unpipelined SFTP writes crawl at ~1 MB/s).
        """
        import paramiko

        remote_fh = None
        try:
            with self._progress(description, size) as callback:
                remote_fh = self.sftp.open(remote, "wb")
                remote_fh.set_pipelined(True)
                sent = 0
                for block in iter(lambda: fh.read(WRITE_CHUNK), b""):
                    remote_fh.write(block)
                    sent += len(block)
                    if callback is not None:
                        callback(sent, size)
                remote_fh.close()  # waits until every pipelined write is acknowledged
                remote_fh = None
            got = self.sftp.stat(remote).st_size
            if got != sent:
                raise errors.HostConnectionError(
                    f"{self.target}: upload to {remote} incomplete: {got} of {sent} bytes")
        except BaseException as exc:
            self._drop_sftp(remote_fh)
            self.remove_quietly(remote)
            if isinstance(exc, (paramiko.SSHException, OSError, EOFError)) and \
                    not isinstance(exc, errors.HgAutomationError):
                raise errors.HostConnectionError(
                    f"{self.target}: upload to {remote} failed: {_describe(exc)}") from None
            raise

    def get(self, remote: str, local: Path, *, description: str | None = None) -> None:
        """Download ``remote`` to ``local`` (pipelined; no partial file on failure)."""
        import paramiko

        local = Path(local)
        tmp = local.with_name(f".{local.name}.part")
        remote_fh = None
        try:
            size = self.sftp.stat(remote).st_size or 0
            with self._progress(description or Path(remote).name, size) as callback, \
                    open(tmp, "wb") as fh:
                remote_fh = self.sftp.open(remote, "rb")
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
                remote_fh = None
            os.replace(tmp, local)
        except BaseException as exc:
            # Interrupted, the reply stream may be cut, and readv's prefetch thread may
            # still have requests in flight: never wait on that channel again.
            self._drop_sftp(remote_fh)
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, FileNotFoundError) and not isinstance(exc, errors.HgAutomationError):
                raise errors.RemoteCommandError(
                    f"{self.target}: {remote} does not exist") from None
            if isinstance(exc, (paramiko.SSHException, OSError, EOFError)) and \
                    not isinstance(exc, errors.HgAutomationError):
                raise errors.HostConnectionError(
                    f"{self.target}: download of {remote} failed: {_describe(exc)}") from None
            raise

    def remove_quietly(self, path: str, *, timeout: float = CLEANUP_TIMEOUT) -> bool:
        """Best-effort removal of ``path`` within ``timeout`` seconds; True if it is gone.

        Safe right after an interrupted SFTP call: it works over a fresh SFTP channel.
        """
        import threading

        import paramiko

        self._drop_sftp(None)  # it may be waiting for a reply that will never come
        gone = threading.Event()
        opened: list = []

        def remove() -> None:
            deadline = time.monotonic() + timeout
            sftp = None
            try:
                sftp = self._open_sftp()
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

    def _open_sftp(self):
        """A new SFTP client on its own channel of this connection."""
        import paramiko

        return paramiko.SFTPClient.from_transport(self.client.get_transport(),
                                                  max_packet_size=SFTP_MAX_PACKET)

    def _drop_sftp(self, remote_fh) -> None:
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

    def rename(self, old: str, new: str) -> None:
        """Rename on the host, replacing ``new`` (POSIX rename where supported)."""
        try:
            self.sftp.posix_rename(old, new)
        except OSError:
            self.sftp.rename(old, new)

    def chmod(self, path: str, mode: int) -> None:
        self.sftp.chmod(path, mode)

    def exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    @contextlib.contextmanager
    def _progress(self, description: str, size: int) -> Iterator:
        if size < PROGRESS_THRESHOLD:
            yield None
            return
        with console.get().progress(description, total=size) as bar:
            yield lambda done, total: bar.update(done)


def _read_segment(remote_fh, chunks: list[tuple[int, int]]) -> Iterator[bytes]:
    """Pipelined reads of ``chunks``: all requests sent first, then the replies in order."""
    # paramiko's readv() sends the requests from a helper thread and marks its prefetch
    # done whenever no request is outstanding. If the replies are consumed faster than
    # that thread sends (more likely with TCP_NODELAY, or a loaded machine), the rest of
    # the segment silently degrades to one synchronous read per request while the
    # prefetched replies pile up unread (bench/transfer.py: rounds at 23-35 MB/s, up to
    # 150 MB of Python allocations). Sending every request here, before any reply is
    # read, removes the race. This uses paramiko 5.x internals; without them, readv().
    if not hasattr(remote_fh, "_prefetch_thread"):
        yield from remote_fh.readv(chunks)
        return
    remote_fh._prefetching = True
    remote_fh._prefetch_done = False
    remote_fh._prefetch_thread(chunks, None)  # only sends; replies wait in the channel
    for offset, length in chunks:
        remote_fh.seek(offset)
        yield remote_fh.read(length)


def _short(command: str, limit: int = 120) -> str:
    one = " ".join(command.split())
    return one if len(one) <= limit else one[:limit - 3] + "..."


def connect(target: Target, *, known_hosts: Path,
            extra_known_hosts: Iterable[Path] = (), accept_new_host_key: bool = False,
            wait: float = 0.0, password: str | None = None) -> Connection:
    """Open a verified connection to ``target``.

    Refused connections, timeouts and banner errors are retried for up to ``wait``
    seconds (at least ``target.connection_attempts`` attempts); authentication and
    host key failures are not retried.
    """
    jumps: list[Connection] = []
    if target.proxy_jump:
        # ProxyJump: connect to each hop in turn (resolved with the same config) and
        # tunnel through it with a direct-tcpip channel, as ssh -J does.
        hops = [h.strip() for h in target.proxy_jump.split(",") if h.strip()]
        try:
            via = None
            for hop in hops:
                hop_user, hop_host, hop_port = parse_host_spec(hop)
                hop_target = resolve(hop_host, user=hop_user, port=hop_port,
                                     ssh_config=target.ssh_config)
                hop_target = _without_jump(hop_target)
                via = _connect_one(hop_target, known_hosts, extra_known_hosts,
                                   accept_new_host_key, wait, None, via)
                jumps.append(via)
            return _connect_one(target, known_hosts, extra_known_hosts, accept_new_host_key,
                                wait, password, via, jumps)
        except BaseException:
            for jump in reversed(jumps):
                jump.close()
            raise
    return _connect_one(target, known_hosts, extra_known_hosts, accept_new_host_key, wait,
                        password)


def _without_jump(target: Target) -> Target:
    from dataclasses import replace

    return replace(target, proxy_jump=None)


def _connect_one(target: Target, known_hosts: Path, extra_known_hosts: Iterable[Path],
                 accept_new: bool, wait: float, password: str | None,
                 via: Connection | None = None, jumps: Sequence[Connection] = ()) -> Connection:
    import paramiko

    known_hosts = Path(known_hosts)
    deadline = time.monotonic() + max(wait, 0.0)
    attempt = 0
    last_error = "no attempt made"
    while True:
        attempt += 1
        client = paramiko.SSHClient()
        ok = False
        try:
            for extra in extra_known_hosts:
                extra = Path(extra).expanduser()
                if extra.exists():
                    client.load_system_host_keys(str(extra))  # read-only
            if known_hosts.exists():
                client.load_host_keys(str(known_hosts))
            client.set_missing_host_key_policy(_policy(known_hosts, accept_new))
            if via is not None:
                sock = via.client.get_transport().open_channel(
                    "direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0),
                    timeout=target.connect_timeout)
            else:
                sock = _open_socket(target)
            # With our own socket, hostname/port below only name the host key entry.
            key_host, key_port = target.hostname, target.port
            if target.host_key_alias:
                key_host, key_port = target.host_key_alias, 22
            client.connect(
                key_host, port=key_port, username=target.user, sock=sock,
                transport_factory=_transport,
                key_filename=[str(p) for p in target.identity_files] or None,
                look_for_keys=not target.identities_only,
                allow_agent=not target.identities_only,
                password=password, timeout=target.connect_timeout,
                banner_timeout=target.connect_timeout, auth_timeout=target.connect_timeout)
            ok = True
            return Connection(client, target, jumps)
        except errors.HgAutomationError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise errors.HostKeyError(
                f"host key for {target.known_hosts_name} has changed: server offers "
                f"{exc.key.get_name()} {fingerprint(exc.key)}, pinned is "
                f"{exc.expected_key.get_name()} {fingerprint(exc.expected_key)}",
                hint=f"possible man-in-the-middle; if the host was rebuilt, remove its "
                     f"line from {known_hosts}") from None
        except paramiko.AuthenticationException as exc:
            raise errors.HostConnectionError(
                f"authentication failed for {target.user}@{target.hostname}:{target.port} "
                f"({exc})", hint="check the user and IdentityFile (--ssh-config)") from None
        except FileNotFoundError as exc:
            raise errors.ConfigurationError(
                f"{target}: identity file missing: {exc.filename}") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            last_error = _describe(exc)
        finally:
            if not ok:
                client.close()
        if attempt >= target.connection_attempts and time.monotonic() >= deadline:
            break
        time.sleep(min(2.0, max(0.2, deadline - time.monotonic())) if wait else 1.0)
    raise errors.HostConnectionError(
        f"cannot connect to {target.user}@{target.hostname}:{target.port}: {last_error}"
        + (f" (gave up after {attempt} attempts)" if attempt > 1 else ""))


# AES-GCM needs no separate HMAC pass: measured ~1.3x faster uploads than paramiko's
# default aes128-ctr + hmac-sha2-256 (bench/transfer.py). Others stay as fallbacks.
_FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _transport(sock, **kwargs):
    import paramiko

    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    options.ciphers = tuple(c for c in _FAST_CIPHERS if c in options.ciphers) + \
        tuple(c for c in options.ciphers if c not in _FAST_CIPHERS)
    return transport


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# -- OpenSSH interop -------------------------------------------------------------

ALIAS = "hgautomation-target"


def openssh_config(target: Target, known_hosts: Path,
                   extra_known_hosts: Iterable[Path] = (), alias: str = ALIAS) -> str:
    """An OpenSSH client config that reaches ``target`` as ``alias``, keys pinned, no prompts."""
    files = [str(Path(known_hosts).absolute())] + \
        [str(Path(p).expanduser()) for p in extra_known_hosts]
    lines = [
        f"Host {alias}",
        f"  HostName {target.hostname}",
        f"  Port {target.port}",
        f"  User {target.user}",
        f"  HostKeyAlias {target.known_hosts_name}",
        f"  ConnectTimeout {int(target.connect_timeout)}",
    ]
    for identity in target.identity_files:
        lines.append(f"  IdentityFile {_quote_cfg(str(identity))}")
    if target.identities_only:
        lines.append("  IdentitiesOnly yes")
    if target.proxy_command:
        lines.append(f"  ProxyCommand {target.proxy_command}")
    elif target.proxy_jump:
        lines.append(f"  ProxyJump {target.proxy_jump}")
    # First obtained value wins in OpenSSH: these apply to every host (also jump
    # hosts) before anything from the user's own config.
    lines += [
        "Match all",
        "  BatchMode yes",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  UserKnownHostsFile " + " ".join(_quote_cfg(f) for f in files),
        "  GlobalKnownHostsFile /dev/null",
    ]
    if target.ssh_config:
        lines.append(f"  Include {_quote_cfg(str(target.ssh_config))}")
    return "\n".join(lines) + "\n"


def _quote_cfg(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value
