"""Benchmark: re-running one test on a warm `--host` (build reuse), against run-tests.py's
own install of the revision (what every run cost before).

Run as root, after tests/run has cached Mercurial's sdist repo, its wheel and the build
requirements:

    build/venv-test/bin/python bench/rerun.py [--test test-init.t]

A real sshd on loopback gives this machine's `hgtest` user the remote-machine contract
(/hgdev, /hgwork: created here, removed afterwards; refused if they exist). The real CLI
then runs `run-tests-linux --host` four times on a clone of Mercurial's source:

1. first run: the host builds the work tree (cold);
2. the same revision again: the build is reused;
3. after a one-line change to a Python file: reused, the change is live;
4. `--full-install`: run-tests.py pip-installs the revision (the old way; the baseline).

Printed per run: wall time, the test's own time (from run-tests.py's report), and the
tool's overhead (wall minus test), then the ratios of run 2 and 3 to the baseline. The
issue's targets (run 2 <= 5 s, the .py run <= 6 s) assume a test of about 2 s: on a slow
machine compare the overheads with 3 s and 4 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _load_linux_fixtures():
    spec = importlib.util.spec_from_file_location("linux_conftest",
                                                  ROOT / "tests" / "linux" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> int:
    from harness import hgsource, sshd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", default="test-init.t")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/rerun.py needs root (sshd for a test user, /hgdev and /hgwork)",
              file=sys.stderr)
        return 2
    fixtures = _load_linux_fixtures()
    sdist = hgsource.find_sdist()
    if sdist is None or fixtures._find_wheel() is None \
            or not any(fixtures.BUILD_WHEELS.glob("*.whl")):
        print("run tests/run once first (it caches the sdist, the mercurial wheel and the "
              "build requirements)", file=sys.stderr)
        return 2
    source = hgsource.build_cached_repo(sdist)
    workdir = sshd.make_workdir(prefix="bench-rerun-")
    tmp = Path(tempfile.mkdtemp(prefix="bench-rerun-"))
    daemon = sshd.start_sshd(workdir)
    host = daemon.host
    claimed: list[Path] = []
    pip_conf = Path(os.path.expanduser(f"~{host.user}")) / ".config" / "pip" / "pip.conf"
    made_pip_conf = False
    try:
        for path in (fixtures.HGDEV, fixtures.HGWORK):
            if not fixtures._claim(path):
                print(f"{path} exists and is not ours: not touching it", file=sys.stderr)
                return 2
            claimed.append(path)
        fixtures.lay_out_contract(host.user, source)
        subprocess.run(["chown", f"{host.user}:", str(fixtures.HGWORK)], check=True)
        if not pip_conf.exists():  # offline like the test host: the wheelhouse only
            pip_conf.parent.mkdir(parents=True, exist_ok=True)
            pip_conf.write_text("[global]\nno-index = true\n")
            made_pip_conf = True
        config = tmp / "ssh_config"
        config.write_text(f"Host devhost\n  HostName {host.host}\n  Port {host.port}\n"
                          f"  User {host.user}\n  IdentityFile {host.key_path}\n")
        state = tmp / "state"
        state.mkdir(mode=0o700)
        shutil.copy(host.known_hosts_path, state / "known_hosts")
        repo = hgsource.clone(source, tmp / "repo")
        env = dict(os.environ, **hgsource.hg_env(), PYTHONPATH=str(ROOT))

        def run(label: str, *extra: str) -> dict:
            results = tmp / f"results-{len(rows)}"
            argv = [sys.executable, "-m", "hgautomation", "--state-path", str(state),
                    "--ssh-config", str(config), "run-tests-linux", "--host", "devhost",
                    "--hg", hgsource.hg_executable(), "--results-dir", str(results), *extra,
                    opts.test]
            start = time.monotonic()
            proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True,
                                  timeout=1800, check=False)
            wall = time.monotonic() - start
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{label}: run-tests-linux exited {proc.returncode}")
            report = json.loads((results / "report.json").read_text().split("=", 1)[1])
            test_time = float(report[opts.test]["time"])
            timing = re.search(r"^timing: (.*)$", proc.stdout, re.M).group(1)
            row = {"label": label, "wall": wall, "test": test_time, "timing": timing}
            rows.append(row)
            return row

        rows: list[dict] = []
        run("1 first run (cold build)")
        run("2 same revision")
        commands = repo / "mercurial" / "commands.py"
        commands.write_text(commands.read_text() + "\n# bench: a one-line change\n")
        hgsource.hg("commit", "-q", "-u", hgsource.COMMIT_USER, "-m", "bench: .py change",
                    cwd=repo)
        run("3 after a .py change")
        run("4 --full-install (baseline)", "--full-install")
    finally:
        daemon.stop()
        if made_pip_conf:
            pip_conf.unlink()
        for path in claimed:
            fixtures._remove(path)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{opts.test} on a warm --host (sshd on loopback, this machine)")
    print(f"  {'run':<30} {'wall':>7} {'test':>7} {'overhead':>9}   tool's timing line")
    for row in rows:
        print(f"  {row['label']:<30} {row['wall']:6.1f}s {row['test']:6.1f}s "
              f"{row['wall'] - row['test']:8.1f}s   {row['timing']}")
    base = rows[3]
    for row in rows[1:3]:
        print(f"  {row['label'][2:]} / full install: wall {row['wall'] / base['wall']:.2f}, "
              f"overhead {(row['wall'] - row['test']) / (base['wall'] - base['test']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
