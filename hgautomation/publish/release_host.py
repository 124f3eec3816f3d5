"""mercurial-scm.org: release files over SFTP (temp name, verified on the server, renamed).

Also latest.dat, the update-check file, replaced the same way.

A file only ever appears under its final name complete and verified: it streams
to ``.<name>.<random>.hgautomation-part``, its size and sha256 are computed on
the server, then it is chmod 0664 and renamed into place. Leftover temp files of
an interrupted run are removed by the next one.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from hgautomation import console, errors, ssh
from hgautomation.artifacts import Artifact, UploadPlan

FILE_MODE = 0o664
PART_SUFFIX = ".hgautomation-part"
LATEST = "latest.dat"
BASE_URL = "https://mercurial-scm.org/release/windows"
# latest.dat is read by the website's own program, not ours: it gets exactly the
# lines it has always got (Mercurial's contrib/automation generator; the tests
# compare with it): x86 exe, x64 exe, x86 msi, x64 msi, these fields and words.
USER_AGENTS = {"x64": ".*Windows.*(WOW|x)64.*", "x86": ".*Windows.*"}
PRIORITY = "10"
LATEST_ORDER = (("inno", "x86"), ("inno", "x64"), ("wix", "x86"), ("wix", "x64"))
DESCRIPTIONS = {
    "inno": "Mercurial {version} Inno Setup installer - {arch} Windows (Python 3) "
            "- does not require admin rights",
    "wix": "Mercurial {version} MSI installer - {arch} Windows (Python 3) "
           "- requires admin rights",
}
HASH_TIMEOUT = 600


def remote_digests(conn: ssh.Connection, directory: str,
                   names: Sequence[str]) -> dict[str, tuple[int, str]]:
    """name → (size, sha256) for those of ``names`` that exist in ``directory``."""
    if not names:
        return {}
    paths = [f"{directory.rstrip('/')}/{n}" for n in names]
    # One round trip: size and hash of each existing file; missing ones are skipped.
    script = ('for f in "$@"; do if [ -f "$f" ]; then '
              'printf "%s " "$(stat -c %s -- "$f")"; sha256sum -- "$f"; fi; done')
    text = conn.output(["sh", "-c", script, "sh", *paths], timeout=HASH_TIMEOUT)
    found: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3 and fields[0].isdigit():
            found[Path(fields[2].lstrip("*")).name] = (int(fields[0]), fields[1].lower())
    return found


def check_directory(conn: ssh.Connection, directory: str) -> None:
    """The release directory exists and we may write into it."""
    status = conn.run(["test", "-d", directory, "-a", "-w", directory],
                      check=False, quiet=True, timeout=60)
    if status != 0:
        raise errors.PublishError(
            f"{conn.target}: release directory {directory} does not exist or is not "
            "writable", hint="check --release-dir and --ssh-username")


def plan(conn: ssh.Connection, directory: str, files: Sequence[Artifact]) -> UploadPlan:
    """Identical files are skipped; a same-named different file is an error."""
    present = remote_digests(conn, directory, [a.name for a in files])
    conflicts = [a.name for a in files
                 if a.name in present and present[a.name] != (a.size, a.sha256)]
    if conflicts:
        raise errors.PublishError(
            f"{conn.target}:{directory} already has different file(s) with the same "
            "name: " + ", ".join(conflicts), hint="a published file is never replaced")
    return UploadPlan(to_upload=[a for a in files if a.name not in present],
                    already_there=[a for a in files if a.name in present])


def remove_stale_parts(conn: ssh.Connection, directory: str, names: Sequence[str]) -> None:
    """Delete temp files an interrupted earlier run left for these names."""
    prefixes = tuple(f".{n}." for n in names)
    with contextlib.suppress(FileNotFoundError):
        for entry in conn.sftp.listdir(directory):
            if entry.startswith(prefixes) and entry.endswith(PART_SUFFIX):
                console.get().detail(f"    removing leftover {entry}")
                conn.sftp.remove(f"{directory.rstrip('/')}/{entry}")


def _temp_name(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/.{name}.{secrets.token_hex(4)}{PART_SUFFIX}"


def put_verified(conn: ssh.Connection, directory: str, local: Path, name: str,
                 size: int, sha256: str) -> None:
    """Stream to a temp name, check size + sha256 on the server, chmod, rename into place."""
    def check(tmp: str) -> None:
        got = conn.output(["sh", "-c", 'stat -c %s -- "$1" && sha256sum -- "$1"', "sh", tmp],
                          timeout=HASH_TIMEOUT).split()
        if len(got) < 2 or got[0] != str(size) or got[1].lower() != sha256:
            raise errors.PublishError(
                f"{conn.target}: {name} arrived damaged (server sees "
                f"{got[0] if got else '?'} bytes, sha256 {got[1][:16] if len(got) > 1 else '?'}…; "
                f"expected {size} bytes, {sha256[:16]}…)")

    # conn.put survives Ctrl-C/SIGTERM mid-write and removes its temporary file.
    conn.put(local, f"{directory.rstrip('/')}/{name}", atomic=True,
             part=_temp_name(directory, name), verify=check, mode=FILE_MODE, description=name)


def upload(conn: ssh.Connection, directory: str, files: Sequence[Artifact]) -> None:
    out = console.get()
    for a in files:
        with out.step(f"{conn.target.name}: uploading {a.name} ({a.size:,} bytes)"):
            put_verified(conn, directory, a.path, a.name, a.size, a.sha256)


def latest_dat(version: str, files: Sequence[Artifact]) -> str:
    """The update-check file: one line per installer (priority, version, user-agent
    regex, URL, description), tab-separated, in the order the website has always had."""
    by_cell = {(a.spec.kind, a.spec.arch): a for a in files if not a.is_wheel}
    lines = []
    for kind, arch in LATEST_ORDER:
        a = by_cell.get((kind, arch))
        if a is None:
            continue
        lines.append("\t".join([
            PRIORITY, version, USER_AGENTS[arch], f"{BASE_URL}/{a.name}",
            DESCRIPTIONS[kind].format(version=version, arch=arch)]))
    return "\n".join(lines) + "\n"


def update_latest(conn: ssh.Connection, directory: str, content: str,
                  backups: Path) -> Path | None:
    """Back the old latest.dat up locally, then replace it atomically; returns the backup."""
    out = console.get()
    final = f"{directory.rstrip('/')}/{LATEST}"
    data = content.encode("utf-8")
    backup = None
    if conn.exists(final):
        fetched = backups / f".{LATEST}.{secrets.token_hex(4)}.download"
        conn.get(final, fetched, description=LATEST)
        if fetched.read_bytes() == data:
            fetched.unlink()
            out.info(f"{LATEST} is already up to date")
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        backup = backups / f"{LATEST}.{conn.target.name}.{stamp}"
        n = 1
        while backup.exists():  # never overwrite an earlier backup
            backup = backups / f"{LATEST}.{conn.target.name}.{stamp}-{n}"
            n += 1
        os.replace(fetched, backup)
        out.info(f"saved the previous {LATEST} as {backup}")
    conn.putfo(io.BytesIO(data), final, size=len(data), description=LATEST, atomic=True,
               part=_temp_name(directory, LATEST), mode=FILE_MODE)
    if backup is None:
        out.info(f"{LATEST} created (there was none before)")
    return backup


def verify(conn: ssh.Connection, directory: str, files: Sequence[Artifact]) -> None:
    """Read back size, sha256 and mode of every file under its final name."""
    present = remote_digests(conn, directory, [a.name for a in files])
    wrong = [a.name for a in files if present.get(a.name) != (a.size, a.sha256)]
    if wrong:
        raise errors.PublishError(f"{conn.target}:{directory}: after upload, wrong or "
                                  "missing: " + ", ".join(wrong))
