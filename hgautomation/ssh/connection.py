"""Connecting: verified host keys, ProxyCommand/ProxyJump, bounded retries; the Connection.

:class:`Connection` is a thin front: commands go to :mod:`.runner`, files to
:mod:`.transfer`, host keys are checked by :mod:`.hostkeys`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

from hgautomation import errors, poll
from hgautomation.ssh import hostkeys, identity, proxy, runner, transfer
from hgautomation.ssh.target import Target, jump_hosts
from hgautomation.ssh.text import describe

# AES-GCM needs no separate HMAC pass, so it costs less CPU than paramiko's default
# aes128-ctr + hmac-sha2-256. The other ciphers stay as fallbacks.
_FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class Connection:
    """An open SSH connection: run commands, move files (see the package docstring)."""

    def __init__(self, client, target: Target, jumps: Sequence[Connection] = ()):
        self.client = client
        self.target = target
        self._jumps = list(jumps)
        self._files = transfer.Files(client, target)
        self.running: set[runner.Remote] = set()  # commands under way (see runner.run)
        self._stop_heartbeat: threading.Event | None = None

    # -- lifecycle
    def keep_alive(self, argv: Sequence[str], interval: float, *, posix: bool = True) -> None:
        """Run ``argv`` now and then every ``interval`` seconds, quietly, until closed
        (an instance's dead-man switch is pushed forward while we are connected)."""
        stop = self._stop_heartbeat = threading.Event()

        def beat() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):  # a lost connection shows elsewhere
                    self.run(argv, check=False, quiet=True, timeout=60, posix=posix)
                stop.wait(interval)

        threading.Thread(target=beat, name="hgautomation-heartbeat", daemon=True).start()

    def close(self) -> None:
        """Stop what still runs on the host (e.g. closed from another thread), then close."""
        if self._stop_heartbeat is not None:
            self._stop_heartbeat.set()
        for remote in list(self.running):
            remote.stop()
        self._files.close()
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
        return self._files.sftp

    # -- commands
    def run(self, argv: Sequence[str], *, check: bool = True, prefix: str = "",
            env: dict[str, str] | None = None, timeout: float | None = None,
            quiet: bool = False, sink: list[str] | None = None,
            stdin: bytes | None = None, posix: bool = True) -> int:
        """Run ``argv`` (quoted by :func:`command_line`), streaming combined output by line.

        Returns the exit status; with ``check`` a non-zero status raises
        :class:`errors.RemoteCommandError` carrying the command and the last lines.
        ``sink`` collects every line; ``quiet`` keeps them off the console; ``stdin`` is
        sent to the command, then end-of-file. Shell features come from an explicit
        shell (``["sh", "-c", script, ...]``). ``posix=False`` for a host whose shell
        is PowerShell. An interrupt stops the whole remote command (see :mod:`.runner`).
        """
        return runner.run(self, argv, check=check, prefix=prefix, env=env, timeout=timeout,
                          quiet=quiet, sink=sink, stdin=stdin, posix=posix)

    def output(self, argv: Sequence[str], *, check: bool = True,
               timeout: float | None = 120, stdin: bytes | None = None) -> str:
        """Run ``argv`` (as for :meth:`run`) quietly and return its combined output."""
        lines: list[str] = []
        self.run(argv, check=check, quiet=True, sink=lines, timeout=timeout, stdin=stdin)
        return "\n".join(lines)

    # -- files
    def put(self, local: Path, remote: str, *, atomic: bool = False,
            mode: int | None = None, description: str | None = None,
            part: str | None = None, verify: Callable[[str], None] | None = None) -> None:
        """Upload ``local`` to ``remote`` (pipelined; ``atomic`` as for :meth:`putfo`)."""
        self._files.put(local, remote, atomic=atomic, mode=mode, description=description,
                        part=part, verify=verify)

    def putfo(self, fh: IO[bytes], remote: str, *, size: int = 0,
              description: str = "upload", atomic: bool = False, mode: int | None = None,
              part: str | None = None, verify: Callable[[str], None] | None = None) -> None:
        """Upload a file object; a failed or interrupted upload leaves no partial file.

        With ``atomic`` it goes to ``part`` (default ``remote.part``), is checked by
        ``verify(part)``, gets ``mode`` and is renamed over ``remote``.
        """
        self._files.putfo(fh, remote, size=size, description=description, atomic=atomic,
                          mode=mode, part=part, verify=verify)

    def get(self, remote: str, local: Path, *, description: str | None = None) -> None:
        """Download ``remote`` to ``local`` (pipelined; no partial file on failure)."""
        self._files.get(remote, local, description=description)

    def remove_quietly(self, path: str, *, timeout: float = transfer.CLEANUP_TIMEOUT) -> bool:
        """Best-effort removal of ``path`` within ``timeout`` seconds; True if it is gone.

        Safe right after an interrupted SFTP call: it works over a fresh SFTP channel.
        """
        return self._files.remove_quietly(path, timeout=timeout)

    def rename(self, old: str, new: str) -> None:
        """Rename on the host, replacing ``new`` (POSIX rename where supported)."""
        transfer.rename(self.sftp, old, new)

    def chmod(self, path: str, mode: int) -> None:
        self.sftp.chmod(path, mode)

    def exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
        except FileNotFoundError:
            return False
        return True


def connect(target: Target, *, known_hosts: Path,
            extra_known_hosts: Iterable[Path] = (), accept_new_host_key: bool = False,
            wait: float = 0.0, password: str | None = None) -> Connection:
    """Open a verified connection to ``target``.

    Refused connections, timeouts and banner errors are retried for up to ``wait``
    seconds (at least ``target.connection_attempts`` attempts); authentication and
    host key failures are not retried.
    """
    extra_known_hosts = tuple(extra_known_hosts)  # read again on every attempt and hop
    hostkeys.check_known_hosts(known_hosts, writable=accept_new_host_key)
    hostkeys.check_extra_known_hosts(extra_known_hosts)
    # ProxyJump: connect to each hop in turn and tunnel through it with a
    # direct-tcpip channel, as ssh -J does.
    jumps: list[Connection] = []
    try:
        for hop in jump_hosts(target):
            jumps.append(_connect_one(hop, known_hosts, extra_known_hosts,
                                      accept_new_host_key, wait, None,
                                      jumps[-1] if jumps else None))
        return _connect_one(target, known_hosts, extra_known_hosts, accept_new_host_key,
                            wait, password, jumps[-1] if jumps else None, jumps)
    except BaseException:
        for jump in reversed(jumps):
            jump.close()
        raise


def _connect_one(target: Target, known_hosts: Path, extra_known_hosts: Iterable[Path],
                 accept_new: bool, wait: float, password: str | None,
                 via: Connection | None = None, jumps: Sequence[Connection] = ()) -> Connection:
    import paramiko

    known_hosts = Path(known_hosts)
    _check_proxy_command(target)
    keys = _check_identities(target)
    wait = max(wait, 0.0)
    attempts = 0
    last_error = "no attempt made"

    def attempt() -> Connection | None:
        """One connection attempt: a Connection, None to retry, or a final error."""
        nonlocal attempts, last_error
        attempts += 1
        client = paramiko.SSHClient()
        sock = None
        ok = False
        try:
            hostkeys.load_known_hosts(client, known_hosts, extra_known_hosts, accept_new)
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
                key_filename=[str(p) for p in keys] or None,
                look_for_keys=not target.identities_only,
                allow_agent=not target.identities_only,
                password=password, timeout=target.connect_timeout,
                banner_timeout=target.connect_timeout, auth_timeout=target.connect_timeout)
            ok = True
            return Connection(client, target, jumps)
        except errors.HgAutomationError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise hostkeys.key_changed(target.known_hosts_name, exc.key, exc.expected_key,
                                       known_hosts) from exc
        except paramiko.AuthenticationException as exc:
            raise _auth_failed(target, keys, str(exc)) from exc
        except FileNotFoundError as exc:
            raise errors.ConfigurationError(
                f"{target}: identity file missing: {exc.filename}") from exc
        except paramiko.IncompatiblePeer as exc:
            # Another protocol version or no common algorithm: no retry changes that.
            raise errors.HostConnectionError(
                f"cannot connect to {where(target)}: not a usable SSH server "
                f"({describe(exc)})") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if isinstance(exc, paramiko.SSHException) and _authenticating(client):
                # Past key exchange and the host key check: the server said no to our
                # keys (paramiko reports the last key class it tried, not the refusal).
                raise _auth_failed(target, keys, "") from exc
            last_error = _connect_failure(exc, sock, client.get_transport())
            if _banner_not_text(exc):
                raise errors.HostConnectionError(
                    f"cannot connect to {where(target)}: {last_error}") from exc
            return None
        finally:
            if not ok:
                client.close()
                if sock is not None:
                    with contextlib.suppress(Exception):
                        sock.close()  # a ProxyCommand the transport never took over

    def gave_up() -> errors.HostConnectionError:
        return errors.HostConnectionError(
            f"cannot connect to {where(target)}: {last_error}"
            + (f" (gave up after {attempts} attempts)" if attempts > 1 else ""))

    # Refused, timed out or cut: retried for ``wait`` seconds (a host still booting
    # says so while we wait), and at least ConnectionAttempts times, 1 s apart as ssh.
    return poll.until(attempt, timeout=wait, interval=2.0 if wait else 1.0,
                      min_interval=0.2 if wait else 1.0,
                      min_attempts=target.connection_attempts, timeout_error=gave_up,
                      what=lambda: f"{target} to answer SSH ({last_error})",
                      quiet=not wait)


def where(target: Target) -> str:
    """The host as the user named it, and where that led when the name was an alias."""
    if target.proxy_command:
        return f"{target} (through its ProxyCommand)"
    if target.hostname != target.name:
        return f"{target.user}@{target.name} ({target.hostname}:{target.port})"
    return str(target)


def _auth_failed(target: Target, keys: Sequence[Path], why: str) -> errors.HostConnectionError:
    return errors.HostConnectionError(
        f"authentication failed for {where(target)} "
        f"({why + '; ' if why else ''}offered: {_offered(target, keys)})",
        hint="check the user and IdentityFile (--ssh-config)")


def _authenticating(client) -> bool:
    """Whether ``client``'s transport got as far as authentication (key exchange done,
    host key accepted) and is still up, unauthenticated."""
    transport = client.get_transport()
    return (transport is not None and transport.is_active()
            and getattr(transport, "session_id", None) is not None
            and not transport.is_authenticated())


def _connect_failure(exc: BaseException, sock, transport) -> str:
    """What went wrong with one attempt, in a few words (without paramiko's wording
    where it misleads)."""
    import paramiko

    ended = sock.ended() if isinstance(sock, proxy.ProxyCommand) else None
    if ended is not None:
        return f"its ProxyCommand ended ({ended})"
    if str(exc) == "No existing session":
        # paramiko's word for a handshake that did not complete: it died (say why),
        # or the ConnectTimeout ran out while it waited.
        inner = getattr(transport, "saved_exception", None)
        if inner is None:
            return "no SSH handshake within the ConnectTimeout"
        exc = inner
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, paramiko.SSHException) and str(exc).startswith(
            "Error reading SSH protocol banner"):
        if _banner_not_text(exc):
            return "the server's SSH banner is not text (not an SSH server?)"
        if isinstance(cause, (socket.timeout, TimeoutError)):
            return "no SSH banner within the ConnectTimeout"
        return "the connection closed before the server's SSH banner"
    if isinstance(exc, EOFError) and not str(exc):
        return "the connection closed during the SSH handshake"
    return describe(exc)


def _banner_not_text(exc: BaseException) -> bool:
    return isinstance(exc.__cause__ or exc.__context__, UnicodeDecodeError)


def _check_proxy_command(target: Target) -> None:
    """A ProxyCommand whose program cannot be found or run is known before connecting."""
    import shlex
    import shutil

    if not target.proxy_command:
        return
    try:
        words = shlex.split(target.proxy_command)
    except ValueError as exc:
        why = str(exc)
    else:
        if words and shutil.which(words[0]):
            return
        why = "No such file or directory" if words else "empty"
    raise errors.ConfigurationError(
        f"{target}: ProxyCommand cannot run ({why}): {target.proxy_command}",
        hint="check the ssh config (--ssh-config)")


def _check_identities(target: Target) -> list[Path]:
    """The identity files to offer, each read first: a key that cannot be used is
    exit 3 now (:mod:`.identity`), not a connection failure later. With only the
    named keys to offer, a missing key is known before connecting too."""
    if not target.identities_only:
        return identity.usable(target.identity_files)  # the agent and ~/.ssh may serve
    if not target.identity_files:
        raise errors.HostConnectionError(
            f"no key to offer to {where(target)}",
            hint="name one with IdentityFile in --ssh-config")
    missing = [str(p) for p in target.identity_files if not Path(p).exists()]
    if len(missing) == len(target.identity_files):
        raise errors.ConfigurationError(
            f"{target}: identity file missing: {', '.join(missing)}")
    return identity.usable(target.identity_files)


def _offered(target: Target, keys: Sequence[Path]) -> str:
    keys = [str(p) for p in keys]
    if not target.identities_only:
        keys.append("the ssh agent and ~/.ssh default keys")
    return ", ".join(keys) or "no key"


def _open_socket(target: Target):
    """A connected socket-like object for ``target``: direct or through ProxyCommand."""
    if target.proxy_command:
        try:
            return proxy.ProxyCommand(target.proxy_command)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise errors.ConfigurationError(
                f"{target}: ProxyCommand cannot run ({why}): "
                f"{target.proxy_command}", hint="check the ssh config (--ssh-config)") \
                from exc
    try:
        sock = socket.create_connection((target.hostname, target.port),
                                        timeout=target.connect_timeout)
    except (socket.gaierror, UnicodeError) as exc:
        # A name that does not resolve will not resolve in ten seconds either.
        raise errors.HostConnectionError(
            f"cannot connect to {where(target)}: {describe(exc)}",
            hint="check the host name (and --ssh-config)") from exc
    # paramiko sends each SSH packet with its own send(): with Nagle the small ones (SFTP
    # read requests, window adjusts) wait for the peer's delayed ACK and transfers stall.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _transport(sock, **kwargs):
    """paramiko's Transport, preferring the AES-GCM ciphers."""
    import paramiko

    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    options.ciphers = tuple(c for c in _FAST_CIPHERS if c in options.ciphers) + \
        tuple(c for c in options.ciphers if c not in _FAST_CIPHERS)
    return transport
