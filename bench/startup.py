#!/usr/bin/env python3
"""Start-up cost of ``automation.py --help`` against a bare ``python -c pass``.

    python3 bench/startup.py [--runs N] [--python PATH]

Both commands run with the same interpreter (default: the one running this
script). The venv is prepared by one untimed warm-up call first, so the timed
runs take the stamp fast path. Prints the medians and their ratio; exits
non-zero only when a command fails, never because of the ratio.

PYTHONDONTWRITEBYTECODE is removed for the runs (a user's machine caches
bytecode; without the cache every start recompiles hgautomation's modules);
``--as-is`` keeps the environment untouched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _children_cpu() -> float:
    try:
        import resource
    except ImportError:  # Windows: wall time only
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    cpu = _children_cpu()
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return elapsed, _children_cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per command (>= 5)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to start automation.py with (default: this one)")
    parser.add_argument("--as-is", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE if it is set")
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    env = dict(os.environ)
    env.pop("HGAUTOMATION_BOOTSTRAP_TRACE", None)
    bytecode = "cached"
    if env.get("PYTHONDONTWRITEBYTECODE"):
        if args.as_is:
            bytecode = "not cached (PYTHONDONTWRITEBYTECODE is set)"
        else:
            del env["PYTHONDONTWRITEBYTECODE"]
            bytecode = "cached (PYTHONDONTWRITEBYTECODE removed for the runs)"
    automation = [args.python, str(ROOT / "automation.py"), "--help"]
    bare = [args.python, "-c", "pass"]
    try:
        # Warm-up: creates the venv if needed and fills the OS caches.
        subprocess.run(automation, stdout=subprocess.DEVNULL, env=env, cwd=ROOT, check=True)
        _time_once(bare, env)
        # Interleave the two so drifting machine load hits both alike.
        auto_times: list[tuple[float, float]] = []
        bare_times: list[tuple[float, float]] = []
        for _ in range(args.runs):
            auto_times.append(_time_once(automation, env))
            bare_times.append(_time_once(bare, env))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        sys.stderr.write(f"startup.py: error: {exc}\n")
        return 1
    auto = statistics.median(t[0] for t in auto_times)
    base = statistics.median(t[0] for t in bare_times)
    auto_cpu = statistics.median(t[1] for t in auto_times)
    base_cpu = statistics.median(t[1] for t in bare_times)
    print(f"python:                  {args.python}")
    print(f"runs:                    {args.runs}")
    print(f"bytecode:                {bytecode}")
    print(f"python -c pass:          {base * 1000:7.1f} ms wall, {base_cpu * 1000:6.1f} ms CPU "
          "(medians)")
    print(f"automation.py --help:    {auto * 1000:7.1f} ms wall, {auto_cpu * 1000:6.1f} ms CPU "
          "(medians)")
    if base_cpu > 0:
        # CPU time is steadier than wall time on a busy machine.
        print(f"CPU ratio:               {auto_cpu / base_cpu:7.2f}x")
    print(f"ratio:                   {auto / base:7.2f}x (wall; target <= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
