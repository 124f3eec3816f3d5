"""Mercurial in the tests: the one way to run ``hg`` (:func:`hg`), and a repository
holding Mercurial's own source, imported from its sdist."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SDIST_DIR = REPO_ROOT / "build" / "cache" / "sdist"
CACHE_DIR = REPO_ROOT / "build" / "cache" / "hg-source-repo"
COMMIT_USER = "test <test@example.com>"


def hg_executable() -> str:
    """The `hg` of the interpreter running the tests (the test venv), else the one on PATH."""
    candidate = Path(sys.executable).parent / "hg"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("hg")
    if not found:
        raise FileNotFoundError("no hg: install requirements-dev.txt into the test venv")
    return found


def hg_env(hgrc: Path | None = None) -> dict[str, str]:
    """os.environ with Mercurial isolated from the user's configuration and locale;
    commits made without ``-u`` are by COMMIT_USER."""
    env = dict(os.environ)
    # HGRCPATH replaces the whole config search path (~/.hgrc, /etc/mercurial).
    env["HGRCPATH"] = str(hgrc) if hgrc else os.devnull
    env["HGPLAIN"] = "1"
    env["HGENCODING"] = "utf-8"
    env["HGUSER"] = COMMIT_USER
    return env


def hg(*args: str, cwd: Path | None = None, timeout: float = 300,
       executable: str | None = None) -> str:
    """Run the test venv's hg (or ``executable``, e.g. a stand-in host's) with an
    isolated environment; return stdout (text)."""
    text = hg_bytes(*args, cwd=cwd, timeout=timeout, executable=executable).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as subprocess's text mode


def hg_bytes(*args: str, cwd: Path | None = None, timeout: float = 300,
             executable: str | None = None) -> bytes:
    """As :func:`hg`, stdout byte for byte (``hg cat`` of a file with CRLF lines)."""
    return subprocess.run([executable or hg_executable(), *args], cwd=cwd, env=hg_env(),
                          check=True, capture_output=True, timeout=timeout).stdout


def _version_key(path: Path) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", path.name))


def find_sdist(sdist_dir: Path = SDIST_DIR) -> Path | None:
    """The newest mercurial-*.tar.gz that tests/run downloaded, or None."""
    tarballs = sorted(sdist_dir.glob("mercurial-*.tar.gz"), key=_version_key)
    return tarballs[-1] if tarballs else None


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract an sdist, refusing members that would land outside ``dest``."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    # Python before 3.11.4 (e.g. Debian 12's 3.11.2) has no extraction filters.
    root = dest.resolve()
    for member in tar.getmembers():
        target = (dest / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
            raise ValueError(f"unexpected member in {tar.name}: {member.name}")
    tar.extractall(dest)


def build_cached_repo(sdist: Path, cache_dir: Path = CACHE_DIR) -> Path:
    """Import `sdist` into a one-commit repo under `cache_dir` (once per tarball name)."""
    name = sdist.name.removesuffix(".tar.gz")
    repo = cache_dir / name
    if (repo / ".hg" / "store").is_dir():
        return repo
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the cache and rename at the end, so an interrupted build never
    # looks like a finished one.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir))
    try:
        with tarfile.open(sdist) as tar:
            _extract(tar, staging)
        (top,) = staging.iterdir()  # the sdist's single "mercurial-X.Y.Z/" directory
        hg("init", str(top))
        hg("addremove", "-q", cwd=top)
        version = name.removeprefix("mercurial-")
        hg("commit", "-q", "-u", COMMIT_USER, "-d", "0 0", "-m", f"import mercurial {version}",
           cwd=top)
        try:
            top.rename(repo)
        except OSError:
            if not (repo / ".hg" / "store").is_dir():  # else a concurrent run won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return repo


def clone(source: Path, dest: Path) -> Path:
    """A local `hg clone` of `source` at `dest` (hardlinked store, fresh working copy)."""
    hg("clone", "-q", str(source), str(dest))
    return dest


@contextlib.contextmanager
def served(repo: Path) -> Iterator[str]:
    """`hg serve` of `repo` on a loopback port (stopped on exit); yields its http URL."""
    import socket

    from .net import LOOPBACK, free_port, wait_until
    from .process import stop_process

    port = free_port()
    proc = subprocess.Popen([hg_executable(), "serve", "-R", str(repo), "-a", LOOPBACK,
                             "-p", str(port)], env=hg_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        assert proc.poll() is None, f"hg serve exited {proc.returncode}"
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        wait_until(listening, 30, f"hg serve on {port}")
        yield f"http://{LOOPBACK}:{port}/"
    finally:
        stop_process(proc)
