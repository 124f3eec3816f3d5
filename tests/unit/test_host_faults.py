"""The pure parts behind tests/test_faults_hosts.py: key files read before connecting,
a command that never started, the check's verdict line, library logging, messages."""

from __future__ import annotations

import logging
import os
import socket

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from hgautomation import console, errors, linux, ssh
from hgautomation.ssh import connection, hostkeys, identity, runner

# -- key files ---------------------------------------------------------------------------


def _write(path, key, fmt, password: bytes = b""):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, encryption))
    return path


@pytest.fixture
def keys(tmp_path):
    ed = ed25519.Ed25519PrivateKey.generate()
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    good = _write(tmp_path / "id_ed25519", ed, serialization.PrivateFormat.OpenSSH)
    public = tmp_path / "id_ed25519.pub"
    public.write_bytes(ed.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH))
    data = good.read_bytes()
    lines = data.splitlines(keepends=True)
    found = {
        "good": good,
        "public": public,
        "ecdsa-pem": _write(tmp_path / "ecdsa_pem", ecdsa,
                            serialization.PrivateFormat.TraditionalOpenSSL),
        "pkcs8": _write(tmp_path / "pkcs8", ecdsa, serialization.PrivateFormat.PKCS8),
        "encrypted-pem": _write(tmp_path / "enc_pem", ecdsa,
                                serialization.PrivateFormat.TraditionalOpenSSL, b"secret"),
        "encrypted-openssh": _write(tmp_path / "enc_openssh", ed,
                                    serialization.PrivateFormat.OpenSSH, b"secret"),
    }
    for name, content in [("empty", b""), ("blank", b"\n \n"),
                          ("truncated", data[:len(data) // 2]),
                          ("middle", b"".join(lines[:2] + lines[-1:])),
                          ("random", os.urandom(2048)),
                          ("text", b"just some text\n")]:
        (tmp_path / name).write_bytes(content)
        found[name] = tmp_path / name
    return found


@pytest.mark.parametrize("name, expected", [
    ("public", "a public key, not a private key"),
    ("empty", "empty"),
    ("blank", "empty"),
    ("truncated", "truncated (no '-----END OPENSSH PRIVATE KEY-----' line)"),
    ("middle", "cannot be parsed: damaged or truncated?"),
    ("random", "not a private key (no '-----BEGIN ... PRIVATE KEY-----' line)"),
    ("text", "not a private key"),
    ("pkcs8", "PKCS#8 format is not supported"),
    ("encrypted-pem", "protected by a passphrase"),
    ("encrypted-openssh", "protected by a passphrase"),
])
def test_a_key_file_that_cannot_be_used_says_why(keys, name, expected):
    with pytest.raises(errors.ConfigurationError) as failure:
        identity.load(keys[name])
    assert failure.value.message.startswith(f"identity file {keys[name]}: {expected}")
    assert failure.value.exit_code == 3


@pytest.mark.parametrize("name, kind", [("good", paramiko.Ed25519Key),
                                        ("ecdsa-pem", paramiko.ECDSAKey)])
def test_usable_keys_load_in_either_format(keys, name, kind):
    assert isinstance(identity.load(keys[name]), kind)


def test_a_fifo_or_a_directory_is_not_read(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it to read would block: it must not be opened
    for path in (fifo, tmp_path):
        with pytest.raises(errors.ConfigurationError, match="not a regular file"):
            identity.load(path)


def test_a_huge_file_is_not_read_whole(tmp_path):
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(identity.MAX_KEY_BYTES + 1)
    with pytest.raises(errors.ConfigurationError, match="too large"):
        identity.load(big)


def test_usable_skips_missing_and_warns_about_bad_ones_next_to_good_ones(keys, captured,
                                                                         tmp_path):
    paths = [tmp_path / "missing", keys["empty"], keys["good"]]
    assert identity.usable(paths) == [keys["good"]]
    assert f"warning: identity file {keys['empty']}: empty; not offered" in captured.err_text
    with pytest.raises(errors.ConfigurationError, match="empty"):
        identity.usable([tmp_path / "missing", keys["empty"]])
    assert identity.usable([tmp_path / "missing"]) == []


def test_connect_reads_the_keys_before_any_socket(keys, monkeypatch, tmp_path):
    """A bad -i is exit 3 before the network (once: six attempts, then exit 8)."""
    monkeypatch.setattr(connection, "_open_socket",
                        lambda target: pytest.fail("a socket was opened"))
    target = ssh.Target(name="box", hostname="box", port=22, user="hg",
                        identity_files=(keys["public"],))
    with pytest.raises(errors.ConfigurationError, match="a public key"):
        ssh.connect(target, known_hosts=tmp_path / "kh")


def test_a_known_hosts_file_of_the_config_that_is_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(errors.ConfigurationError, match="is not a regular file"):
        hostkeys.check_extra_known_hosts([tmp_path / "missing", fifo])
    hostkeys.check_extra_known_hosts([tmp_path / "missing", os.devnull])  # means "none"


# -- messages ---------------------------------------------------------------------------------

def test_errors_name_the_host_as_typed():
    alias = ssh.Target(name="box", hostname="10.0.0.5", port=2222, user="hg")
    assert connection.where(alias) == "hg@box (10.0.0.5:2222)"
    plain = ssh.Target(name="10.0.0.5", hostname="10.0.0.5", port=22, user="hg")
    assert connection.where(plain) == "hg@10.0.0.5"
    proxied = ssh.Target(name="box", hostname="10.0.0.5", port=22, user="hg",
                         proxy_command="nc %h %p")
    assert connection.where(proxied) == "hg@box (through its ProxyCommand)"


def _banner_error(cause: BaseException) -> paramiko.SSHException:
    """paramiko's banner failure as its transport thread raises it (``cause`` chained)."""
    exc = paramiko.SSHException("Error reading SSH protocol banner" + str(cause))
    exc.__context__ = cause
    return exc


@pytest.mark.parametrize("exc, text", [
    (_banner_error(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")),
     "the server's SSH banner is not text (not an SSH server?)"),
    (_banner_error(ConnectionResetError(104, "Connection reset by peer")),
     "the connection closed before the server's SSH banner"),
    (_banner_error(EOFError()), "the connection closed before the server's SSH banner"),
    (_banner_error(socket.timeout()), "no SSH banner within the ConnectTimeout"),
    (paramiko.SSHException("No existing session"),
     "no SSH handshake within the ConnectTimeout"),
    (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
])
def test_connection_failures_in_a_few_words(exc, text):
    assert connection._connect_failure(exc, None, None) == text


# -- a command the login shell never started ---------------------------------------------------

class _Channel:
    """A channel whose output is `script` (bytes), then end-of-file and `status`."""

    def __init__(self, script, status=None):
        self.script = list(script)
        self.closed = False
        self.status = status
        self.sent = b""

        class Event:
            def wait(inner, timeout=None):
                return status is not None

        self.status_event = Event()

    def settimeout(self, timeout):
        pass

    def set_combine_stderr(self, value):
        pass

    def exec_command(self, command):
        pass

    def recv(self, size):
        if self.script:
            return self.script.pop(0)
        self.closed = True
        return b""

    def recv_ready(self):
        return False

    def exit_status_ready(self):
        return self.status is not None

    def recv_exit_status(self):
        return self.status

    def sendall(self, data):
        self.sent += data

    def shutdown_write(self):
        pass


class _Transport:
    def __init__(self, channel):
        self.channel = channel

    def open_session(self, timeout=None):
        return self.channel

    def is_active(self):
        return True


class _Client:
    def __init__(self, channel):
        self.transport = _Transport(channel)

    def get_transport(self):
        return self.transport


def _start(script, status=None, stdin=None):
    channel = _Channel(script, status)
    lines: list[str] = []
    remote = runner.Remote(_Client(channel), "hg@box",
                           on_line=lambda line, shown: lines.append(line))
    remote.start(["bash", "-s"], stdin)
    return remote, channel, lines


def test_a_login_shell_that_exits_first_is_a_contract_failure():
    """Once: exit status 0 and no output, taken for a successful command."""
    with pytest.raises(errors.HostContractError) as failure:
        _start([], status=0)
    assert failure.value.message == ("hg@box: the login shell ended (exit 0, no output) "
                                     "before running bash -s")


def test_what_the_login_shell_said_is_named():
    with pytest.raises(errors.HostContractError, match=r"ended \(exit 1; its output: bye\)"):
        _start([b"motd\nbye\n"], status=1)


def test_a_login_shell_that_closed_its_output_is_not_waited_for():
    with pytest.raises(errors.HostContractError, match=r"closed its output \(no output\)"):
        _start([], status=None)


def test_stdin_is_sent_once_the_command_started():
    remote, channel, lines = _start([b"hello\nhgautomation-pgid 77\n"], stdin=b"script")
    assert remote.group == 77 and channel.sent == b"script" and lines == ["hello"]


def test_a_slow_login_shell_is_given_up_after_the_bound(monkeypatch):
    clock = [0.0]

    def monotonic():
        clock[0] += 4.0
        return clock[0]

    monkeypatch.setattr(runner.time, "monotonic", monotonic)
    channel = _Channel([])
    channel.recv = lambda size: (_ for _ in ()).throw(socket.timeout())
    remote = runner.Remote(_Client(channel), "hg@box", on_line=lambda line, shown: None)
    with pytest.raises(errors.WaitTimeout, match="did not start bash -s within 30s"):
        remote.start(["bash", "-s"])


# -- check-host's verdict ----------------------------------------------------------------------

class _Conn:
    target = "hg@box"

    def __init__(self, lines):
        self.lines = lines

    class sftp:  # stands in for the SFTP client
        @staticmethod
        def stat(path):
            return None

    def run(self, argv, *, sink=None, **kwargs):
        sink.extend(self.lines)
        return 0


def test_a_check_without_its_verdict_line_is_no_pass():
    """Once: no lines at all made a host that "meets the contract"."""
    with pytest.raises(errors.HostContractError, match="did not run to its end"):
        linux.check(_Conn([]))
    with pytest.raises(errors.HostContractError, match="last output: ok\trequired"):
        linux.check(_Conn(["ok\trequired\tshell\tbash"]))
    items = linux.check(_Conn(["ok\trequired\tshell\tbash", linux.CHECK_END]))
    assert [i.item for i in items] == ["sftp", "shell"]


def test_the_check_script_ends_with_its_verdict_line():
    text = linux.script("check-host.sh").decode()
    assert f'echo "{linux.CHECK_END}"\nexit 0\n' in text


# -- library logging --------------------------------------------------------------------------

def test_library_logging_goes_to_the_log_only(tmp_path, capsys):
    """Once: paramiko's transport thread printed tracebacks through logging's last
    resort handler (WARNING and up, on stderr)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        out = console.configure(console.NORMAL)
        out.open_log(tmp_path / "run.log", "header")
        logging.getLogger("paramiko.transport").error("Exception (client): boom")
        logging.getLogger("botocore.credentials").info("Found credentials")
        out.close_log()
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)
        console.configure(console.NORMAL)
    assert capsys.readouterr().err == ""
    log = (tmp_path / "run.log").read_text()
    assert "[paramiko.transport] ERROR: Exception (client): boom" in log
    assert "[botocore.credentials] INFO: Found credentials" in log


class _EndedChannel(_Channel):
    """The command ends before reading its input: the channel closes under the write."""

    def sendall(self, data):
        raise OSError("Socket is closed")


def test_a_command_that_ends_before_its_input_is_read_is_not_a_lost_connection():
    """``bash -s`` ended by a BASH_ENV before reading the script: the write fails on the
    closed channel, but the exit status came first: the run goes on to read what the
    command said (a contract failure later, not "connection lost").

    Breaking looks like: the OSError escapes start() whatever the status (exit 8)."""
    channel = _EndedChannel([b"hgautomation-pgid 7\n"], status=0)
    remote = runner.Remote(_Client(channel), "hg@box", on_line=lambda line, shown: None)
    remote.start(["bash", "-s"], b"script")
    assert remote.group == 7
    lost = _EndedChannel([b"hgautomation-pgid 7\n"], status=None)  # no status: gone
    remote = runner.Remote(_Client(lost), "hg@box", on_line=lambda line, shown: None)
    with pytest.raises(OSError, match="Socket is closed"):
        remote.start(["bash", "-s"], b"script")
