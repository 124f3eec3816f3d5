"""The SSH communicator: connect (bounded wait, verified host keys), run, put/get.

Stable API (every flow that reaches a host goes through it)::

    from hgautomation import ssh

    target = ssh.resolve("box.example.org", user="hg", port=None,
                         ssh_config=Path("~/.ssh/config"), identity_files=())
    with ssh.connect(target, known_hosts=ctx.state.known_hosts,
                     extra_known_hosts=target.user_known_hosts,  # read-only
                     accept_new_host_key=False, wait=60) as conn:
        conn.run(["uname", "-a"])                     # streams lines, raises on != 0
        status = conn.run(["false"], check=False)     # the exit status instead
        conn.run(["sh", "-c", "cd /hgwork && ls"])    # shell features: an explicit shell
        conn.run(["bash", "-s", "--", "arg"], stdin=script_bytes)  # a script on stdin
        text = conn.output(["cat", "/etc/os-release"])  # quiet, returns stdout+stderr
        conn.put(Path("big.whl"), "/srv/big.whl", atomic=True)   # .part + rename
        conn.get("/hgwork/report.json", Path("report.json"))
        conn.remove_quietly("/srv/big.whl.part")   # bounded, safe after an interrupt
        conn.rename("/srv/a", "/srv/b")
        conn.chmod("/srv/b", 0o644)

* :func:`resolve` applies the OpenSSH client config (``--ssh-config``, else
  ``~/.ssh/config``) as ``ssh -G`` reports it (Include, Match, aliases):
  HostName, Port, User, IdentityFile, ProxyCommand, ProxyJump, HostKeyAlias,
  ConnectTimeout, ConnectionAttempts, UserKnownHostsFile (``Target.user_known_hosts``,
  read-only). Values given explicitly win, as with ``ssh``.
* ``run``/``output`` take an argv (a sequence of ``str``; a ``str`` is refused with
  ``TypeError``), quoted by :func:`command_line`, the one place that quotes.
* Host keys are checked against ``known_hosts`` (the tool's file, the only one ever
  written, and only with ``accept_new_host_key``) plus ``extra_known_hosts``
  (read-only). An unknown key raises :class:`errors.UnknownHostKeyError`, a changed
  one :class:`errors.HostKeyMismatchError` (both :class:`errors.HostKeyError`, with
  ``hostname``/``offered`` data, and ``expected`` for a changed one); refused,
  timed out or failed authentication raise :class:`errors.HostConnectionError`.
* A failed or interrupted (Ctrl-C/SIGTERM) ``put``/``putfo``/``get`` returns promptly and
  leaves no partial file: the SFTP channel is dropped without waiting for replies.
* :func:`openssh_config` writes the same target as an OpenSSH config block, so
  that ``ssh``-based tools (``hg push``) connect exactly like the communicator.

Modules: :mod:`.target` (where to connect), :mod:`.hostkeys` (verification),
:mod:`.identity` (key files, read before connecting), :mod:`.connection` (connect,
Connection), :mod:`.proxy` (ProxyCommand), :mod:`.group` (local helper processes,
stopped whole), :mod:`.runner` (remote commands), :mod:`.transfer` (SFTP),
:mod:`.text` (quoting and message wording).
paramiko is imported inside the functions: importing this package is cheap.
"""

from __future__ import annotations

from hgautomation.ssh.connection import Connection, connect
from hgautomation.ssh.hostkeys import USER_KNOWN_HOSTS, fingerprint, pin_host_key
from hgautomation.ssh.target import ALIAS, Target, openssh_config, resolve
from hgautomation.ssh.text import command_line

__all__ = [
    "ALIAS",
    "USER_KNOWN_HOSTS",
    "Connection",
    "Target",
    "command_line",
    "connect",
    "fingerprint",
    "openssh_config",
    "pin_host_key",
    "resolve",
]
