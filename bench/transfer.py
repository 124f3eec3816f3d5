"""Benchmark: 200 MB upload + download through hgautomation.ssh vs OpenSSH scp, on loopback.

Run as root (it starts a private sshd for the test user):

    build/venv-test/bin/python bench/transfer.py [--size-mb 200] [--rounds 2]

Prints MB/s for each direction and tool, the communicator/scp throughput ratio, and the
communicator's peak memory (ru_maxrss growth of a child process doing only transfers,
plus tracemalloc's peak of Python allocations in a separate child).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

CHILD = r"""
import json, resource, sys, time, tracemalloc
from pathlib import Path
sys.path.insert(0, {root!r})
from hgautomation import ssh
cfg = json.loads(sys.argv[1])
use_tracemalloc = cfg["tracemalloc"]
target = ssh.resolve(cfg["host"], port=cfg["port"], user=cfg["user"],
                     identity_files=[Path(cfg["key"])])
conn = ssh.connect(target, known_hosts=Path(cfg["known_hosts"]))
conn.sftp  # open the SFTP session before measuring
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if use_tracemalloc:
    tracemalloc.start()
t0 = time.monotonic()
conn.put(Path(cfg["local"]), cfg["remote"])
t1 = time.monotonic()
conn.get(cfg["remote"], Path(cfg["back"]))
t2 = time.monotonic()
peak_traced = tracemalloc.get_traced_memory()[1] if use_tracemalloc else None
conn.close()
print(json.dumps({{"put": t1 - t0, "get": t2 - t1, "base_rss_kb": base_rss,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "peak_traced": peak_traced}}))
"""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    from harness import sshd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/transfer.py needs root (it starts sshd for a test user)", file=sys.stderr)
        return 2

    workdir = sshd.make_workdir(prefix="bench-transfer-")
    daemon = sshd.start_sshd(workdir)
    host = daemon.host
    tmp = Path(tempfile.mkdtemp(prefix="bench-transfer-"))
    remote_dir = Path(f"/tmp/bench-transfer-{os.getpid()}")
    try:
        remote_dir.mkdir(mode=0o700)
        shutil.chown(remote_dir, host.user)
        local = tmp / "payload.bin"
        with open(local, "wb") as fh:
            for _ in range(opts.size_mb):
                fh.write(os.urandom(1 << 20))
        size_mb = local.stat().st_size / 1e6
        digest = sha256(local)
        remote = str(remote_dir / "payload.bin")

        scp_base = ["scp", "-q", "-F", "/dev/null", "-i", str(host.key_path), "-P",
                    str(host.port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                    "-o", f"UserKnownHostsFile={host.known_hosts_path}",
                    "-o", "StrictHostKeyChecking=yes"]
        best = {"scp put": 1e9, "scp get": 1e9, "ssh.py put": 1e9, "ssh.py get": 1e9}
        rss = []
        for _ in range(opts.rounds):
            t0 = time.monotonic()
            subprocess.run([*scp_base, str(local), f"{host.user}@{host.host}:{remote}"],
                           check=True)
            t1 = time.monotonic()
            subprocess.run([*scp_base, f"{host.user}@{host.host}:{remote}",
                            str(tmp / "scp-back.bin")], check=True)
            t2 = time.monotonic()
            best["scp put"] = min(best["scp put"], t1 - t0)
            best["scp get"] = min(best["scp get"], t2 - t1)

            cfg = {"host": host.host, "port": host.port, "user": host.user,
                   "key": str(host.key_path), "known_hosts": str(host.known_hosts_path),
                   "local": str(local), "remote": remote, "back": str(tmp / "ssh-back.bin"),
                   "tracemalloc": False}
            out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)),
                                  json.dumps(cfg)], check=True, capture_output=True, text=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            best["ssh.py put"] = min(best["ssh.py put"], res["put"])
            best["ssh.py get"] = min(best["ssh.py get"], res["get"])
            rss.append(res["peak_rss_kb"] - res["base_rss_kb"])
            if sha256(tmp / "ssh-back.bin") != digest:
                raise SystemExit("download through ssh.py is corrupt")

        cfg["tracemalloc"] = True
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)),
                              json.dumps(cfg)], check=True, capture_output=True, text=True)
        traced = json.loads(out.stdout.strip().splitlines()[-1])["peak_traced"]

        print(f"payload {size_mb:.0f} MB, best of {opts.rounds} rounds, loopback")
        for name, seconds in best.items():
            print(f"  {name:11s} {seconds:6.2f} s  {size_mb / seconds:7.1f} MB/s")
        for direction in ("put", "get"):
            ratio = best[f"scp {direction}"] / best[f"ssh.py {direction}"]
            print(f"  ratio ssh.py/scp {direction}: {ratio:.2f}")
        print(f"  ssh.py peak RSS growth during put+get: {max(rss) / 1024:.1f} MB "
              f"(per round: {', '.join(f'{r / 1024:.1f}' for r in rss)}; payload "
              f"{size_mb:.0f} MB)")
        print(f"  ssh.py peak Python allocations (tracemalloc): {traced / 1e6:.1f} MB")
        return 0
    finally:
        daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(remote_dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
