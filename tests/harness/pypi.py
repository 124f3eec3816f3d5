"""pypiserver on 127.0.0.1 with an htpasswd user, as the stand-in for PyPI uploads."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .net import LOOPBACK, free_port, wait_until
from .process import stop_process, tail

USERNAME = "hgtest-uploader"


@dataclass(frozen=True)
class PyPIServer:
    """A running package index: upload to `url`, install from `simple_url`."""

    url: str  # http://127.0.0.1:N/  (twine --repository-url)
    simple_url: str  # http://127.0.0.1:N/simple/  (pip --index-url)
    username: str
    password: str
    packages_dir: Path
    pid: int


@dataclass
class PyPIDaemon:
    server: PyPIServer
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """Stop pypi-server by its PID (TERM, bounded wait, KILL)."""
        stop_process(self.process)


def write_htpasswd(path: Path, username: str, password: str) -> None:
    """An Apache htpasswd file with one user (APR1-MD5, what `openssl passwd -apr1` makes)."""
    # libpass provides the `passlib` module; passlib itself breaks with bcrypt 5.
    from passlib.apache import HtpasswdFile

    htpasswd = HtpasswdFile(str(path), new=True, default_scheme="apr_md5_crypt")
    htpasswd.set_password(username, password)
    htpasswd.save()


def _pypi_server_executable() -> str:
    candidate = Path(sys.executable).parent / "pypi-server"
    return str(candidate) if candidate.exists() else (shutil.which("pypi-server") or "pypi-server")


def start_pypi(workdir: Path, timeout: float = 30.0) -> PyPIDaemon:
    """Start pypi-server with upload authentication and no fallback to the real PyPI."""
    workdir.mkdir(parents=True, exist_ok=True)
    packages = workdir / "packages"
    packages.mkdir(exist_ok=True)
    password = secrets.token_urlsafe(12)
    htpasswd = workdir / "htpasswd"
    write_htpasswd(htpasswd, USERNAME, password)

    port = free_port()
    log_path = workdir / "pypi-server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [_pypi_server_executable(), "run", "-i", LOOPBACK, "-p", str(port),
             "-P", str(htpasswd), "-a", "update",
             # Without this, unknown names redirect to pypi.org: keep every request local.
             "--disable-fallback", str(packages)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{LOOPBACK}:{port}/"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"pypi-server exited with {process.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(url + "health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(healthy, timeout, f"pypi-server on {url}", interval=0.1)
    except BaseException:
        stop_process(process)
        raise
    server = PyPIServer(url=url, simple_url=url + "simple/", username=USERNAME,
                        password=password, packages_dir=packages, pid=process.pid)
    return PyPIDaemon(server=server, process=process, log_path=log_path)


def make_wheel(dest: Path, name: str = "hgtest_dummy", version: str = "0.1") -> Path:
    """Write a minimal, valid pure-Python wheel for `name`==`version` into `dest`."""
    import base64
    import hashlib
    import zipfile

    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f'__version__ = "{version}"\n',
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                  "Summary: hgautomation test package\n"),
        f"{dist_info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: hgautomation-tests\n"
                               "Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"

    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel
