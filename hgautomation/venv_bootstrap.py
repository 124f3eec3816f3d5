"""The virtualenv bootstrap behind ``automation.py`` (standard library only).

It lives in the package so that its bytecode is cached: a script run as
``__main__`` is recompiled on every start, and automation.py starts twice per
run (launcher, then venv). Behaviour, exit codes and environment variables are
described at the top of automation.py. Imports beyond ``os``/``sys`` happen only
on the slow path, so a run whose stamp matches costs a few reads and stats.
"""

from __future__ import annotations

import os
import sys

PROG = "automation.py"

EXIT_CONFIGURATION = 3  # = errors.ConfigurationError
EXIT_INTERNAL = 70  # = errors.INTERNAL_ERROR_EXIT
EXIT_VENV_FAILED = 73  # EX_CANTCREAT
EXIT_PIP_FAILED = 75  # EX_TEMPFAIL: nothing recorded, the next run retries
EXIT_INTERRUPTED = 130  # = errors.Interrupted
EXIT_TERMINATED = 143  # 128 + SIGTERM, = errors.SIGTERM_EXIT

# Set (to the venv path) when automation.py re-executes itself in the venv, so
# the second process runs the CLI instead of bootstrapping again.
MARKER = "HGAUTOMATION_BOOTSTRAPPED"
STAMP_NAME = "hgautomation-stamp.txt"
# Written into every venv this tool creates: only such a venv is ever deleted.
OURS_NAME = "hgautomation-created.txt"
# After Ctrl-C or SIGTERM, how long a child (venv, ensurepip, pip) may clean up.
CHILD_GRACE = 10.0
WINDOWS = os.name == "nt"
DEBIAN_HINT = "on Debian/Ubuntu: apt install python3-venv"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so children are stopped as for Ctrl-C."""


class BootstrapError(Exception):
    """A failure reported as one line with its own exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _trace(message: str) -> None:
    if os.environ.get("HGAUTOMATION_BOOTSTRAP_TRACE"):
        sys.stderr.write(f"{PROG}: [bootstrap] {message}\n")
        sys.stderr.flush()


def _note(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


# -- paths and the stamp (the fast path: a few reads and stats) -------------

def venv_dir(here: str) -> str:
    """The virtualenv directory: $HGAUTOMATION_VENV, else build/venv-automation."""
    configured = os.environ.get("HGAUTOMATION_VENV")
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    return os.path.join(here, "build", "venv-automation")


def venv_python(venv: str) -> str:
    """The interpreter of the virtualenv at ``venv``."""
    if WINDOWS:
        return os.path.join(venv, "Scripts", "python.exe")
    return os.path.join(venv, "bin", "python")


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _sha256_hex(data: bytes) -> str:
    # The builtin module avoids loading OpenSSL through hashlib.
    try:
        from _sha256 import sha256  # Python <= 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # Python >= 3.12
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


def _pyvenv_cfg(venv: str) -> dict[str, str] | None:
    """pyvenv.cfg as a dict, or None when there is none."""
    data = _read(os.path.join(venv, "pyvenv.cfg"))
    if data is None:
        return None
    cfg = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip().lower()] = value.strip()
    return cfg


def _file_identity(path: str) -> str:
    real = os.path.realpath(path)
    st = os.stat(real)
    return f"{real} {st.st_size} {st.st_mtime_ns}"


def expected_stamp(venv: str, requirements: str) -> str | None:
    """The stamp a ready venv carries for these requirements, or None.

    None when the venv or its interpreter is missing. The interpreter is named
    by version (pyvenv.cfg) and by resolved path, size and mtime, so an
    upgraded or removed Python is noticed without starting it.
    """
    req = _read(requirements)
    cfg = _pyvenv_cfg(venv)
    if req is None or cfg is None:
        return None
    lines = [f"requirements-sha256 {_sha256_hex(req)}",
             f"python-version {cfg.get('version', cfg.get('version_info', '?'))}"]
    try:
        lines.append("interpreter " + _file_identity(venv_python(venv)))
        if WINDOWS and cfg.get("home"):
            # Scripts\python.exe is a launcher; the interpreter proper is in home.
            lines.append("base " + _file_identity(os.path.join(cfg["home"], "python.exe")))
    except OSError:
        return None
    return "\n".join(lines) + "\n"


def stamp_matches(venv: str, requirements: str) -> bool:
    """True when the venv was set up for exactly these requirements and interpreter."""
    stamp = expected_stamp(venv, requirements)
    return stamp is not None and _read(os.path.join(venv, STAMP_NAME)) == stamp.encode()


def _same_path(a: str, b: str) -> bool:
    norm = os.path.normcase
    return norm(os.path.realpath(a)) == norm(os.path.realpath(b))


# -- the slow path: create the venv, run pip, write the stamp ---------------

class _Lock:
    """An exclusive lock on a file, so two first runs do not build at once."""

    def __init__(self, path: str):
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if WINDOWS:
            import msvcrt
            import time

            while True:
                try:
                    msvcrt.locking(self.fd, msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    time.sleep(0.5)
        else:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if WINDOWS:
            import contextlib
            import msvcrt

            with contextlib.suppress(OSError):
                msvcrt.locking(self.fd, msvcrt.LK_UNLCK, 1)
        os.close(self.fd)


def venv_support_missing() -> list[str]:
    """Names of the stdlib modules venv creation needs but this Python lacks."""
    import importlib.util

    return [name for name in ("venv", "ensurepip") if importlib.util.find_spec(name) is None]


def _venv_problem(venv: str) -> str | None:
    """Why the existing venv cannot be reused as it is, or None if it can."""
    import subprocess

    cfg = _pyvenv_cfg(venv) or {}
    probe = "import sys, pip; sys.stdout.write('%d.%d' % sys.version_info[:2])"
    try:
        out = subprocess.run([venv_python(venv), "-I", "-c", probe], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=300, check=False).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"its interpreter does not run ({exc})"
    running = out.decode("ascii", "replace").strip()
    recorded = ".".join(cfg.get("version", cfg.get("version_info", "")).split(".")[:2])
    if not running:
        return "its interpreter does not start or has no pip"
    if running != recorded:
        return f"its interpreter is now Python {running}, it was built for {recorded}"
    return None


def _run_child(command: list[str], **kwargs) -> int:
    """Run a child in its own process group; on Ctrl-C or SIGTERM stop the whole group.

    The group gets SIGINT first, so pip and ensurepip remove their temporary files,
    then SIGKILL if it is still there after CHILD_GRACE seconds.
    """
    import subprocess

    child = subprocess.Popen(command, start_new_session=not WINDOWS, **kwargs)
    try:
        return child.wait()
    except BaseException:
        _stop_child(child)
        raise


def _stop_child(child) -> None:
    import signal
    import subprocess

    def send(sig: int) -> None:
        try:
            if WINDOWS:
                child.terminate()
            else:
                os.killpg(child.pid, sig)
        except OSError:
            pass  # already gone

    send(signal.SIGINT)
    try:
        child.wait(timeout=CHILD_GRACE)
    except subprocess.TimeoutExpired:
        send(getattr(signal, "SIGKILL", signal.SIGTERM))
        child.wait()
    if not WINDOWS:
        send(signal.SIGKILL)  # grandchildren left in the group (none expected)


def _create_venv(venv: str) -> None:
    import subprocess

    missing = venv_support_missing()
    if missing:
        raise BootstrapError(
            f"this Python ({sys.executable}) lacks the module(s) {', '.join(missing)} "
            f"needed to create a virtualenv ({DEBIAN_HINT})", EXIT_CONFIGURATION)
    import tempfile

    _note(f"creating virtualenv {venv}")
    with tempfile.TemporaryFile() as log:
        code = _run_child([sys.executable, "-m", "venv", venv], stdout=log,
                          stderr=subprocess.STDOUT)
        log.seek(0)
        output = log.read().decode("utf-8", "replace").strip()
    if code != 0:
        if output:
            sys.stderr.write(output + "\n")
        hint = f" ({DEBIAN_HINT})" if "ensurepip" in output else ""
        raise BootstrapError(f"creating the virtualenv {venv} failed with exit code "
                             f"{code}{hint}", EXIT_VENV_FAILED)
    _write_atomically(os.path.join(venv, OURS_NAME),
                      "created by hgautomation's automation.py; it may delete this venv\n")


def _is_ours(venv: str) -> bool:
    """Whether this tool created ``venv`` (its marker, or a stamp of older versions)."""
    return any(os.path.isfile(os.path.join(venv, name)) for name in (OURS_NAME, STAMP_NAME))


def _remove_venv(venv: str) -> None:
    """Delete a venv this tool created; anything else is left alone."""
    import shutil

    if _is_ours(venv):
        shutil.rmtree(venv, ignore_errors=True)


PIP_LOG_NAME = "hgautomation-pip.log"  # in the venv: pip's whole output, last install
PIP_TAIL = 25  # lines of that output shown when pip fails


def pip_log(venv: str) -> str:
    """Where the last install's pip output is kept (in the venv, overwritten each time)."""
    return os.path.join(venv, PIP_LOG_NAME)


def _pip_install(venv: str, requirements: str) -> None:
    log = pip_log(venv)
    _note(f"installing {os.path.basename(requirements)} into {venv} (pip's output: {log})")
    # pip's output goes to the log, not the terminal (a first run is one line per
    # phase); its tail is shown if it fails. The user's pip configuration (pip.conf,
    # PIP_* variables) applies as usual; it runs without input, so a prompt cannot hang
    # unseen.
    command = [venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check",
               "--no-input", "--require-hashes", "-r", requirements]
    import subprocess

    try:
        out = open(log, "wb")  # noqa: SIM115 - closed below, after the child
    except OSError as exc:
        raise BootstrapError(f"cannot write {log}: {exc.strerror}", EXIT_VENV_FAILED) from exc
    with out:
        code = _run_child(command, stdin=subprocess.DEVNULL, stdout=out,
                          stderr=subprocess.STDOUT)
    if code != 0:
        tail = _tail(log, PIP_TAIL)
        if tail:
            sys.stderr.write("".join(f"  pip: {line}\n" for line in tail))
        raise BootstrapError(
            f"pip install --require-hashes -r {requirements} failed with exit code {code} "
            f"(the end of its output is above, all of it in {log}); nothing was recorded, "
            "the next run tries again", EXIT_PIP_FAILED)


def _tail(path: str, count: int) -> list[str]:
    """The last ``count`` non-blank lines of the file at ``path`` (none if unreadable)."""
    data = _read(path) or b""
    lines = [ln.rstrip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-count:]


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def prepare(venv: str, requirements: str, inside: bool) -> None:
    """Make ``venv`` ready for ``requirements`` (the slow path) and write the stamp.

    ``inside``: this interpreter is the venv's own, which is then never rebuilt.
    """
    import signal

    # From here on SIGTERM stops the children and cleans up as Ctrl-C does.
    signal.signal(signal.SIGTERM, _on_sigterm)
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    with _Lock(venv + ".lock"):
        if stamp_matches(venv, requirements):
            _trace("stamp written meanwhile by another run")
            return
        if _read(requirements) is None:
            raise BootstrapError(f"cannot read {requirements}", EXIT_CONFIGURATION)
        if inside:
            _trace(f"running inside {venv}: installing into it, never rebuilding it")
        else:
            _make_venv_usable(venv)
        # The stamp describes the requirements as they were before pip ran: if
        # the file changes meanwhile, the next run sees it and reinstalls.
        stamp = expected_stamp(venv, requirements)
        if stamp is None:
            raise BootstrapError(f"the virtualenv {venv} has no usable interpreter",
                                 EXIT_VENV_FAILED)
        _pip_install(venv, requirements)
        _write_atomically(os.path.join(venv, STAMP_NAME), stamp)
        _trace("pip succeeded: stamp written")


def _make_venv_usable(venv: str) -> None:
    """Reuse the venv if its interpreter still works; otherwise (re)create it."""
    if os.path.isdir(venv) and _pyvenv_cfg(venv) is None:
        if os.listdir(venv):
            raise BootstrapError(f"{venv} exists but is not a virtualenv; remove it or "
                                 "point HGAUTOMATION_VENV elsewhere", EXIT_CONFIGURATION)
        os.rmdir(venv)
    if os.path.exists(venv):
        problem = _venv_problem(venv)
        if problem is None:
            _trace(f"reusing {venv}")
            return
        if not _is_ours(venv):
            raise BootstrapError(f"{venv} is a virtualenv this tool did not create, and "
                                 f"{problem}; remove it or point HGAUTOMATION_VENV elsewhere",
                                 EXIT_CONFIGURATION)
        _note(f"rebuilding virtualenv {venv}: {problem}")
        _remove_venv(venv)
    try:
        _create_venv(venv)
    except BaseException:
        # It did not exist before this call: whatever is there now is ours.
        import shutil

        shutil.rmtree(venv, ignore_errors=True)
        raise


# -- running ------------------------------------------------------------------

def run_cli(here: str, argv: list[str]) -> int:
    """Hand over to hgautomation.cli in this (the venv's) interpreter."""
    if here not in sys.path:
        sys.path.insert(0, here)
    from hgautomation import cli

    return cli.main(argv, prog=PROG)


def reexec(venv: str, script: str, argv: list[str]) -> int:
    """Run ``script`` again with the venv's interpreter; returns only on Windows."""
    python = venv_python(venv)
    os.environ[MARKER] = venv
    args = [python, script, *argv]
    _trace(f"re-executing with {python}")
    sys.stdout.flush()
    sys.stderr.flush()
    if WINDOWS:
        # Windows has no exec that keeps the console and the exit status: run a
        # child and pass its status on. Ctrl-C reaches the child directly.
        import subprocess

        child = subprocess.Popen(args)
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue
    os.execv(python, args)
    return EXIT_INTERNAL  # not reached


def main(script: str, argv: list[str]) -> int:
    """Bootstrap for ``script`` (automation.py) and run the CLI with ``argv``."""
    from hgautomation.streams import ensure_standard_fds

    ensure_standard_fds()
    here = os.path.dirname(script)
    venv = venv_dir(here)
    inside = _same_path(sys.prefix, venv)
    marker = os.environ.pop(MARKER, None)
    if marker is not None:
        # The second process: the launcher checked the stamp already.
        if not inside:
            raise BootstrapError(f"re-executed into {marker} but sys.prefix is {sys.prefix}; "
                                 "remove that virtualenv and run again", EXIT_VENV_FAILED)
        _trace(f"re-executed: sys.prefix={sys.prefix} sys.executable={sys.executable}")
        return run_cli(here, argv)
    requirements = os.path.join(here, "requirements.txt")
    if stamp_matches(venv, requirements):
        _trace("stamp matches: no venv or pip work")
    else:
        _trace(f"stamp missing or different: preparing {venv}")
        prepare(venv, requirements, inside)
    if inside:
        _trace(f"already in the venv: sys.prefix={sys.prefix}")
        return run_cli(here, argv)
    return reexec(venv, script, argv)


def _on_sigterm(signum, frame):
    raise Terminated()


def entry(script: str, argv: list[str]) -> None:
    """Run :func:`main`, turning failures into one line and an exit code; exits."""
    try:
        code = main(script, argv)
    except BootstrapError as exc:
        _note("error: " + exc.message)
        code = exc.exit_code
    except Terminated:
        _note("terminated")
        code = EXIT_TERMINATED
    except KeyboardInterrupt:
        _note("interrupted")
        code = EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - last resort for bugs here: still one line
        _note(f"internal error: {type(exc).__name__}: {exc}")
        code = EXIT_INTERNAL
    sys.exit(code)
