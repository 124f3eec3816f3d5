"""`publish-windows-artifacts`: the real CLI against pypiserver and a private sshd release host."""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from harness import hgsource, jsondoc
from unit.helpers import CI_WINDOWS_WHEELS, PYPROJECT_CIBUILDWHEEL, install_script

from hgautomation import platforms
from hgautomation.publish import artifacts
from hgautomation.windows import declared

VERSION = "7.2.1"


def hg(repo: Path, *args: str) -> None:
    hgsource.hg("-R", str(repo), *args, timeout=60)


def commit_declaration(repo: Path, pyproject: str | None, message: str,
                       ci: str | None = CI_WINDOWS_WHEELS) -> None:
    """The files a revision declares its Windows builds in (7.2.4's form: its CI names
    the wheels)."""
    (repo / "contrib").mkdir(exist_ok=True)
    (repo / declared.INSTALL_SCRIPT).write_text(install_script())
    for path, text in ((declared.PYPROJECT, pyproject), (declared.CI_FILE, ci)):
        if text is None:
            (repo / path).unlink(missing_ok=True)
        else:
            (repo / path).write_text(text)
    hg(repo, "commit", "-A", "-q", "-m", message)


def make_wheel(path: Path, version: str, tag: str, salt: str = "") -> None:
    """A minimal valid wheel: METADATA, WHEEL and a RECORD with real hashes."""
    info = f"mercurial-{version}.dist-info"
    files = {
        "mercurial/__init__.py": f"__version__ = {version!r}  # {salt}\n".encode(),
        f"{info}/METADATA": (
            "Metadata-Version: 2.1\nName: mercurial\n"
            f"Version: {version}\nSummary: test wheel\n"
            "Description-Content-Type: text/plain\n\nA test wheel.\n").encode(),
        f"{info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: hgautomation-tests\n"
                          f"Root-Is-Purelib: false\nTag: {tag}\n").encode(),
    }
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")


def _fill(path: Path, size: int, seed: str) -> None:
    """``size`` bytes that start as the installer's kind of file does (MZ, OLE)."""
    block = hashlib.sha256(seed.encode()).digest() * (1 << 15)  # 1 MiB
    magic = artifacts.MAGIC["inno" if path.suffix == ".exe" else "wix"]
    block = magic + block[len(magic):]
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[:left])
            left -= len(block)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_dist(dist: Path, version: str = VERSION, big_last: int = 0,
               pyproject: str | None = PYPROJECT_CIBUILDWHEEL,
               ci: str | None = CI_WINDOWS_WHEELS) -> dict[str, Path]:
    """Every artifact the declaration names; the last installer is ``big_last`` bytes
    if given."""
    dist.mkdir(parents=True, exist_ok=True)
    made = {}
    matrix = declared.parse(install_script(), pyproject, ci).matrix()
    for n, spec in enumerate(matrix):
        path = dist / spec.filename(version)
        if spec.kind == "wheel":
            tag = "cp" + spec.python.replace(".", "")
            make_wheel(path, version, f"{tag}-{tag}-{platforms.WHEEL_PLATFORM_TAGS[spec.arch]}")
        else:
            size = big_last if (big_last and n == len(matrix) - 1) else 200_000 + n
            _fill(path, size, path.name)
        made[path.name] = path
    return made


@pytest.fixture
def release(cli, ssh_host, pypi, tmp_path):
    """A fresh release dir on the ssh host, an empty index, and the CLI's environment."""
    for f in pypi.packages_dir.iterdir():
        f.unlink()
    user = pwd.getpwnam(ssh_host.user)
    rdir = ssh_host.workdir / f"release-{tmp_path.name}"
    rdir.mkdir()
    os.chown(rdir, user.pw_uid, user.pw_gid)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(ssh_host.known_hosts_path, home / ".ssh" / "known_hosts")
    ssh_config = tmp_path / "ssh_config"
    # The default --ssh-host, mapped to the fixture as a user would with ~/.ssh/config.
    ssh_config.write_text(f"Host mercurial-scm.org\n  HostName {ssh_host.host}\n"
                          f"  Port {ssh_host.port}\n  User {ssh_host.user}\n"
                          f"  IdentityFile {ssh_host.key_path}\n")
    repo = tmp_path / "hg"
    hgsource.hg("init", str(repo), timeout=60)
    # The released revision, tagged as Mercurial tags its releases (dist/ is ignored).
    (repo / ".hgignore").write_text("^dist/\n")
    commit_declaration(repo, PYPROJECT_CIBUILDWHEEL, "7.2.4-like declaration")
    hg(repo, "tag", VERSION)
    # Over the `cli` fixture's environment, which has no TWINE_* of its own.
    env = {"HOME": str(home), "TWINE_USERNAME": pypi.username,
           "TWINE_PASSWORD": pypi.password, "TWINE_NON_INTERACTIVE": "1"}

    class Release:
        dir = rdir
        dist = repo / "dist"
        hg_repo = repo
        state = tmp_path / "state"

        def __init__(self):
            self.env = env
            self.pypi = pypi
            self.ssh_host = ssh_host
            self.ssh_config = ssh_config
            self.home = home

        def args(self, *args: str, version: str = VERSION,
                 index: tuple = ("--repository-url", pypi.url),
                 with_ssh_config: bool = True) -> list[str]:
            config = ["--ssh-config", str(ssh_config)] if with_ssh_config else []
            return ["--hg-repo", str(repo), *config,
                    "publish-windows-artifacts", version, "--release-dir", str(rdir),
                    *index, *args]

        def run(self, *args: str, env: dict | None = None, timeout: float = 300,
                cwd: Path | None = repo, **kw):
            return cli.run(*self.args(*args, **kw), state=self.state, env=env or self.env,
                           cwd=cwd, timeout=timeout)

        def popen(self, *args: str, **popen_kw):
            """The CLI started for the test to interrupt (a context manager)."""
            return cli.popen(*self.args(*args), state=self.state, env=self.env, **popen_kw)

        def published(self) -> list[str]:
            return sorted(p.name for p in pypi.packages_dir.iterdir()) + \
                sorted(p.name for p in rdir.iterdir())

    yield Release()
    shutil.rmtree(rdir, ignore_errors=True)
    for f in pypi.packages_dir.iterdir():
        f.unlink()


def _last_line(proc) -> str:
    return proc.stderr.strip().splitlines()[-1]


def _expected_latest(names: list[str]) -> list[list[str]]:
    """The website's order: x86 exe, x64 exe, x86 msi, x64 msi (see test_latest_dat.py for
    the comparison with Mercurial's own generator)."""
    rows = []
    for name, what, arch, admin in (
            (f"Mercurial-{VERSION}-x86.exe", "Inno Setup installer", "x86",
             "does not require admin rights"),
            (f"Mercurial-{VERSION}-x64.exe", "Inno Setup installer", "x64",
             "does not require admin rights"),
            (f"mercurial-{VERSION}-x86.msi", "MSI installer", "x86", "requires admin rights"),
            (f"mercurial-{VERSION}-x64.msi", "MSI installer", "x64", "requires admin rights")):
        assert name in names
        regex = ".*Windows.*(WOW|x)64.*" if arch == "x64" else ".*Windows.*"
        rows.append(["10", VERSION, regex, f"https://mercurial-scm.org/release/windows/{name}",
                     f"Mercurial {VERSION} {what} - {arch} Windows (Python 3) - {admin}"])
    return rows


def test_dry_run_prints_plan_and_sends_nothing(release):
    made = build_dist(release.dist)
    proc = release.run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"PyPI: {release.pypi.url}" in proc.stderr
    assert f"release host: mercurial-scm.org:{release.dir}/" in proc.stderr
    table = [ln for ln in proc.stdout.splitlines() if ln.split(" ", 1)[0] in made]
    assert len(table) == len(made)
    assert max(len(ln) for ln in proc.stdout.splitlines()) <= 100  # fits a terminal
    for name, path in made.items():
        line = next(ln for ln in table if ln.startswith(name + " "))
        assert sha256(path)[:12] in line and sha256(path) not in line
        assert f"{path.stat().st_size:,}" in line
        # Every file goes to the release host, wheels to PyPI too.
        assert line.endswith("PyPI, release host" if name.endswith(".whl")
                             else "release host")
    assert "dry run: nothing sent" in proc.stdout
    assert release.published() == []
    verbose = release.run("--dry-run", "-v")  # the whole hash with -v
    assert all(sha256(path) in verbose.stdout for path in made.values())

    as_json = release.run("--dry-run", "-T", "json")
    assert as_json.returncode == 0, as_json.stderr
    document = jsondoc.check("publish-windows-artifacts", as_json.stdout)
    assert document["dry_run"] is True and document["version"] == VERSION
    assert {f["name"]: f["sha256"] for f in document["files"]} == \
        {name: sha256(path) for name, path in made.items()}
    for f in document["files"]:
        assert f"mercurial-scm.org:{release.dir}/{f['name']}" in f["destinations"]
        assert (release.pypi.url in f["destinations"]) == f["name"].endswith(".whl")
    assert document["pypi"] is None and document["release_host"] is None
    assert release.published() == []


def test_publish_rerun_skips_and_latest_is_backed_up(release):
    made = build_dist(release.dist)
    old_latest = b"10\t7.2\t.*Windows.*\thttps://example/old.exe\told\n"
    (release.dir / "latest.dat").write_bytes(old_latest)
    old_inode = (release.dir / "latest.dat").stat().st_ino

    proc = release.run()
    assert proc.returncode == 0, proc.stderr
    assert "PyPI: 16 uploaded, 0 already there, all verified" in proc.stdout
    assert "mercurial-scm.org: 20 uploaded, 0 already there, all verified" in proc.stdout

    wheels = {n: p for n, p in made.items() if n.endswith(".whl")}
    on_index = {p.name: sha256(p) for p in release.pypi.packages_dir.iterdir()}
    assert on_index == {n: sha256(p) for n, p in wheels.items()}
    for name, path in made.items():  # the release directory gets wheels and installers
        remote = release.dir / name
        assert sha256(remote) == sha256(path)
        assert remote.stat().st_mode & 0o777 == 0o664
    assert sorted(p.name for p in release.dir.iterdir()) == sorted(
        [*made, "latest.dat"])  # no temp files left

    latest = release.dir / "latest.dat"
    rows = [line.split("\t") for line in latest.read_text().splitlines()]
    assert rows == _expected_latest(list(made))
    assert latest.stat().st_mode & 0o777 == 0o664
    assert latest.stat().st_ino != old_inode  # replaced by a rename, not rewritten in place
    backups = list((release.state / "backups").iterdir())
    assert len(backups) == 1 and backups[0].name.startswith("latest.dat.mercurial-scm.org.")
    assert backups[0].read_bytes() == old_latest

    # Run again: everything is there already, nothing is sent, nothing is backed up.
    mtimes = {p.name: p.stat().st_mtime_ns for p in release.dir.iterdir()}
    proc = release.run()
    assert proc.returncode == 0, proc.stderr
    assert "PyPI: 0 uploaded, 16 already there, all verified" in proc.stdout
    assert "mercurial-scm.org: 0 uploaded, 20 already there, all verified" in proc.stdout
    assert proc.stderr.count("already published (same sha256), skipped") == 36
    assert "latest.dat is already up to date" in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in release.dir.iterdir()} == mtimes
    assert len(list((release.state / "backups").iterdir())) == 1


def test_conflicting_wheel_is_refused_and_nothing_published(release):
    made = build_dist(release.dist)
    name = next(n for n in made if n.endswith(".whl"))
    make_wheel(release.pypi.packages_dir / name, VERSION, "cp39-cp39-win32", salt="other build")
    proc = release.run()
    assert proc.returncode == 11, proc.stderr
    assert _last_line(proc).startswith("publish error: ")
    assert "already has different file(s) with the same name: " + name in _last_line(proc)
    assert release.published() == [name]  # only the pre-existing one
    assert sha256(release.pypi.packages_dir / name) != sha256(made[name])


def test_missing_artifacts_listed(release):
    made = build_dist(release.dist)
    gone = [n for n in made if n.endswith(".msi")][:1] + \
        [n for n in made if "cp39" in n][:1]
    for n in gone:
        made[n].unlink()
    proc = release.run()
    assert proc.returncode == 13, proc.stderr
    last = _last_line(proc)
    assert last.startswith("artifact error: 2 of 20 artifacts for 7.2.1 missing")
    assert all(n in last for n in gone)
    assert len(proc.stderr.strip().splitlines()) <= 3  # the step line, its failure, the error
    assert release.published() == []


def test_ssh_host_takes_user_host_and_port_as_ssh_does(release):
    """No ssh config at all: --ssh-host USER@HOST:PORT and -i, the key trusted in the
    user's known_hosts."""
    made = build_dist(release.dist)
    host = release.ssh_host
    proc = release.run("--no-pypi", "--ssh-host", f"{host.user}@{host.host}:{host.port}",
                       "-i", str(host.key_path), "-T", "json", with_ssh_config=False)
    assert proc.returncode == 0, proc.stderr
    assert f"connecting to {host.user}@{host.host}:{host.port}" in proc.stderr
    assert sorted(p.name for p in release.dir.iterdir()) == sorted([*made, "latest.dat"])
    document = jsondoc.check("publish-windows-artifacts", proc.stdout)
    assert document["pypi"] is None and document["dry_run"] is False
    assert sorted(document["release_host"]["uploaded"]) == sorted(made)
    assert document["release_host"]["already_there"] == []


def test_the_release_needs_only_the_files_mercurial_releases(release):
    """7.2.4's pyproject.toml alone would ask for cp39 and cp310 win_arm64 wheels, which
    its CI never builds and PyPI never had: the release is its CI's 16 wheels and the 4
    installers, and a stray wheel in dist/ is neither required nor sent."""
    made = build_dist(release.dist)
    assert len(made) == 20
    assert not any(n.endswith(("cp39-win_arm64.whl", "cp310-win_arm64.whl")) for n in made)
    stray = release.dist / f"mercurial-{VERSION}-cp39-cp39-win_arm64.whl"
    make_wheel(stray, VERSION, "cp39-cp39-win_arm64")
    proc = release.run("--dry-run", "-T", "json")
    assert proc.returncode == 0, proc.stderr
    document = jsondoc.check("publish-windows-artifacts", proc.stdout)
    assert sorted(f["name"] for f in document["files"]) == sorted(made)
    assert stray.name not in proc.stdout + proc.stderr
    # A revision whose CI builds no Windows wheel: pyproject's 18 are the release.
    commit_declaration(release.hg_repo, PYPROJECT_CIBUILDWHEEL, "no CI wheels", ci=None)
    proc = release.run("--dry-run", "--revision", "tip")
    assert proc.returncode == 13, proc.stderr
    assert _last_line(proc).startswith("artifact error: 1 of 22 artifacts for 7.2.1 missing")
    assert f"missing in {release.dist}: mercurial-{VERSION}-cp310-cp310-win_arm64.whl " \
        in _last_line(proc)
    assert release.published() == []


def test_the_released_revisions_declaration_names_the_files(release):
    """An older declaration (no cibuildwheel: one pip wheel per interpreter, no ARM64)
    asks for its 16 files; the tag is the default revision, --revision names another."""
    made = build_dist(release.dist, pyproject=None, ci=None)
    assert len(made) == 16
    commit_declaration(release.hg_repo, None, "older declaration, untagged", ci=None)
    proc = release.run("--dry-run")  # the tag: the 7.2.4 declaration, 16 wheels
    assert proc.returncode == 13, proc.stderr
    assert _last_line(proc).startswith("artifact error: 4 of 20 artifacts for 7.2.1 missing")
    assert "win_arm64.whl" in _last_line(proc)
    proc = release.run("--dry-run", "--revision", "tip")
    assert proc.returncode == 0, proc.stderr
    assert f"Mercurial {VERSION}: 16 files" in proc.stdout
    assert release.published() == []


def test_an_untagged_release_needs_its_revision(release):
    build_dist(release.dist)
    proc = release.run("--dry-run", version="7.2.2")
    assert proc.returncode == 4, proc.stderr
    assert "cannot resolve revision '7.2.2'" in proc.stderr
    assert "tag the release, or name its revision with --revision" in proc.stderr
    assert release.published() == []


def test_bad_version(release):
    build_dist(release.dist)
    proc = release.run(version="7.2.x", timeout=120, cwd=None)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "usage error: argument VERSION: invalid version '7.2.x' (e.g. 7.2.1 or 7.2rc0) "
        "(see 'hgautomation publish-windows-artifacts --help')")
    assert release.published() == []


def test_wrong_password(release):
    build_dist(release.dist)
    env = dict(release.env, TWINE_PASSWORD="not-the-password")
    proc = release.run(env=env)
    assert proc.returncode == 11, proc.stderr
    assert "refused the credentials (HTTP 403" in _last_line(proc)
    assert "not-the-password" not in proc.stderr + proc.stdout
    assert release.published() == []


def test_unknown_host_key(release):
    build_dist(release.dist)
    (release.home / ".ssh" / "known_hosts").unlink()
    proc = release.run()
    assert proc.returncode == 9, proc.stderr
    assert _last_line(proc).startswith("host key error: unknown host key for ")
    assert release.published() == []


def test_killed_mid_upload_leaves_no_partial_file_and_resumes(release):
    big = 400 * 1024 * 1024
    made = build_dist(release.dist, big_last=big)
    installers = list(made)  # all of them go to the release host
    big_name = next(n for n in installers if made[n].stat().st_size == big)
    with release.popen("--no-pypi", stderr=subprocess.STDOUT, text=False) as proc:
        deadline = time.monotonic() + 120
        caught = False
        while time.monotonic() < deadline and proc.poll() is None:
            parts = [p for p in release.dir.iterdir()
                     if p.name.startswith(f".{big_name}.") and p.name.endswith("-part")]
            if parts and 0 < parts[0].stat().st_size < big:
                os.kill(proc.pid, signal.SIGKILL)
                caught = True
                break
            time.sleep(0.02)
    assert caught, "the upload of the big file was never seen in flight"
    names = {p.name for p in release.dir.iterdir()}
    assert big_name not in names  # no partial file under the final name
    finished = [n for n in installers if n in names]
    assert finished, "nothing had finished before the kill; the test proves little"
    for n in finished:  # whatever is under a final name is complete
        assert sha256(release.dir / n) == sha256(made[n])
    inodes = {n: (release.dir / n).stat().st_ino for n in finished}

    proc2 = release.run("--no-pypi")
    assert proc2.returncode == 0, proc2.stderr
    for n in finished:
        assert f"{n} already published (same sha256), skipped" in proc2.stderr
        assert (release.dir / n).stat().st_ino == inodes[n]
    assert f"uploading {big_name}" in proc2.stderr
    assert sha256(release.dir / big_name) == sha256(made[big_name])
    assert sorted(p.name for p in release.dir.iterdir()) == sorted(installers + ["latest.dat"])


def test_pypirc_repository_and_missing_credentials(release):
    made = build_dist(release.dist)
    env = {k: v for k, v in release.env.items() if not k.startswith("TWINE_")}
    env["TWINE_NON_INTERACTIVE"] = "1"
    # No credentials anywhere: one line, nothing sent.
    proc = release.run("--no-mercurial-scm-org", env=env)
    assert proc.returncode == 3, proc.stderr
    assert _last_line(proc).startswith("configuration error: no PyPI credentials for ")
    assert release.published() == []
    # The repository and its credentials from ~/.pypirc, as twine users keep them.
    (release.home / ".pypirc").write_text(
        "[distutils]\nindex-servers = staging\n\n[staging]\n"
        f"repository = {release.pypi.url}\nusername = {release.pypi.username}\n"
        f"password = {release.pypi.password}\n")
    proc = release.run("--no-mercurial-scm-org", env=env, index=("--repository", "staging"))
    assert proc.returncode == 0, proc.stderr
    assert "PyPI: 16 uploaded" in proc.stdout
    assert sorted(p.name for p in release.pypi.packages_dir.iterdir()) == sorted(
        n for n in made if n.endswith(".whl"))
    assert list(release.dir.iterdir()) == []  # --no-mercurial-scm-org
    # TWINE_REPOSITORY_URL works like --repository-url; all 16 are now skipped.
    env.update(TWINE_REPOSITORY_URL=release.pypi.url, TWINE_USERNAME="nobody",
               TWINE_PASSWORD="unused")
    proc = release.run("--no-mercurial-scm-org", env=env, index=())
    assert proc.returncode == 0, proc.stderr
    assert "PyPI: 0 uploaded, 16 already there, all verified" in proc.stdout


@pytest.mark.parametrize("fault", ["symlink", "empty-msi", "metadata-version", "not-an-exe",
                                   "metadata-name", "directory"])
def test_a_file_that_is_not_what_it_says_stops_everything(release, fault):
    """Issue 21, class 7: every file is a regular file in dist/, not empty, an installer
    of its kind, a wheel whose METADATA is mercurial at the released version; the first
    line names the file and why, and nothing is sent. Without the checks a symlink to
    /etc/passwd, a 0-byte MSI and a mislabelled wheel all reach the upload plan."""
    made = build_dist(release.dist)
    wheel = next(n for n in made if n.endswith(".whl"))
    msi = next(n for n in made if n.endswith(".msi"))
    exe = next(n for n in made if n.endswith(".exe"))
    info = f"mercurial-{VERSION}.dist-info"
    if fault == "symlink":
        made[exe].unlink()
        made[exe].symlink_to("/etc/passwd")
        name, why = exe, "is a symbolic link"
    elif fault == "empty-msi":
        made[msi].write_bytes(b"")
        name, why = msi, "is empty"
    elif fault == "not-an-exe":
        made[exe].write_bytes(b"#!/bin/sh\necho not an installer\n")
        name, why = exe, "is not a Windows executable"
    elif fault == "directory":
        made[msi].unlink()
        made[msi].mkdir()
        name, why = msi, "is not a regular file"
    else:
        version, pkg = ("7.2.0", "mercurial") if fault == "metadata-version" \
            else (VERSION, "mercurial-evil")
        with zipfile.ZipFile(made[wheel], "w") as z:
            z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {pkg}\n"
                                           f"Version: {version}\n\n")
        name, why = wheel, ("has METADATA Version '7.2.0', not 7.2.1" if pkg == "mercurial"
                            else "has METADATA Name 'mercurial-evil'")
    for dry_run in (("--dry-run",), ()):
        proc = release.run(*dry_run)
        assert proc.returncode == 13, proc.stderr
        last = _last_line(proc)
        assert last.startswith("artifact error: 1 of 20 artifacts for 7.2.1 in "), last
        assert f"{name} {why}" in last, last
        assert "Traceback" not in proc.stderr
        assert "root:" not in proc.stdout + proc.stderr  # /etc/passwd never read out
    assert release.published() == []


def test_twine_check_failure_stops_everything(release):
    made = build_dist(release.dist)
    bad = next(n for n in made if n.endswith(".whl"))
    info = f"mercurial-{VERSION}.dist-info"
    with zipfile.ZipFile(made[bad], "w") as z:
        z.writestr(f"{info}/METADATA",
                   "Metadata-Version: 2.1\nName: mercurial\nVersion: 7.2.1\n"
                   "Description-Content-Type: text/x-rst\n\n"
                   ".. this-directive-does-not-exist::\n\n=====\nTitle\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
                                    "Tag: cp39-cp39-win32\n")
        z.writestr(f"{info}/RECORD", "")
    proc = release.run()
    assert proc.returncode == 13, proc.stderr
    assert _last_line(proc).startswith("artifact error: twine check failed for 1 wheel: "
                                       + bad)
    assert release.published() == []


def test_sigterm_mid_upload_cleans_up(release):
    big = 400 * 1024 * 1024
    made = build_dist(release.dist, big_last=big)
    big_name = next(n for n in made if made[n].stat().st_size == big)
    with release.popen("--no-pypi") as proc:
        deadline = time.monotonic() + 120
        caught = False
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith(f".{big_name}.") for p in release.dir.iterdir()):
                proc.send_signal(signal.SIGTERM)
                caught = True
                break
            time.sleep(0.02)
        _, err = proc.communicate(timeout=60)
    assert caught, "the upload of the big file was never seen in flight"
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "interrupted (SIGTERM); cleanup done"
    names = {p.name for p in release.dir.iterdir()}
    assert big_name not in names
    assert not [n for n in names if n.endswith("-part")], names  # the temp file is gone too
