"""Benchmark: sync one new changeset to a host that has the clone vs a full clone, on loopback.

Run as root, after tests/run has cached Mercurial's sdist repo and wheel:

    build/venv-test/bin/python bench/sync.py [--rounds 3]

Both sides are the product's own `hgrepo.push` (hg push over OpenSSH with the temporary
ssh config) into a real sshd: "full" pushes Mercurial's whole source repository into an
empty remote repo (what a first run or a fresh clone costs), "incremental" pushes one
new changeset into a remote that already has the rest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
WHEELS = [ROOT / "build" / "cache" / "wheels-hg", ROOT / "build" / "cache" / "wheels"]


def main() -> int:
    from harness import hgsource, sshd

    from hgautomation import hgrepo, ssh

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/sync.py needs root (it starts sshd for a test user)", file=sys.stderr)
        return 2
    sdist = hgsource.find_sdist()
    wheel = next((w for d in WHEELS for w in sorted(d.glob("mercurial-*.whl"))), None)
    if sdist is None or wheel is None:
        print("run tests/run once first (it caches the sdist and the mercurial wheel)",
              file=sys.stderr)
        return 2
    source = hgsource.build_cached_repo(sdist)

    workdir = sshd.make_workdir(prefix="bench-sync-")
    daemon = sshd.start_sshd(workdir)
    host = daemon.host
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    # The remote side: a venv hg and repos in a directory the ssh user owns.
    remote_root = workdir / "remote"
    try:
        remote_root.mkdir()
        venv = remote_root / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--isolated", "-q",
                        "--no-index", "--find-links", str(wheel.parent), "mercurial"],
                       check=True)
        shutil.chown(remote_root, host.user)
        subprocess.run(["chown", "-R", f"{host.user}:", str(remote_root)], check=True)

        local = hgsource.clone(source, tmp / "local")
        repo = hgrepo.LocalRepo(local, hg=hgsource.hg_executable())
        target = ssh.resolve(host.host, port=host.port, user=host.user,
                             identity_files=[host.key_path])
        remote_hg = str(venv / "bin" / "hg")
        os.environ.update(hgsource.hg_env())

        def push(path: str) -> tuple[float, int]:
            node = hgrepo.resolve_revision(repo, ".")
            t0 = time.monotonic()
            result = hgrepo.push(repo, node, target, host.known_hosts_path,
                                 remote_path=path, remote_hg=remote_hg)
            return time.monotonic() - t0, result.changesets

        full, incremental = [], []
        with ssh.connect(target, known_hosts=host.known_hosts_path) as conn:
            for n in range(opts.rounds):
                path = str(remote_root / f"full-{n}")
                conn.run([remote_hg, "init", str(path)], quiet=True)
                seconds, count = push(path)
                full.append(seconds)
            for n in range(opts.rounds):
                (local / f"bench-{n}.txt").write_text(f"change {n}\n")
                hgsource.hg("add", f"bench-{n}.txt", cwd=local)
                hgsource.hg("commit", "-q", "-u", "bench <b@example.com>", "-m", f"bench {n}",
                            cwd=local)
                seconds, count = push(str(remote_root / "full-0"))
                assert count == 1, count
                incremental.append(seconds)
            size = conn.output(["du", "-sm", str(remote_root / "full-0" / ".hg")]).split()[0]

        files = len(hgsource.hg("files", cwd=local).splitlines())
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        print(f"repository: {files} files, remote .hg {size} MB; {opts.rounds} rounds, loopback")
        print(f"  full push into an empty repo: median {med(full):.2f} s  "
              f"({' '.join(f'{x:.2f}' for x in full)})")
        print(f"  one new changeset:            median {med(incremental):.2f} s  "
              f"({' '.join(f'{x:.2f}' for x in incremental)})")
        print(f"  incremental / full: {med(incremental) / med(full):.2f}")
        return 0
    finally:
        daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
