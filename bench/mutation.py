"""Benchmark: the unit tier's mutation score over the modules that own the risky paths
(option validation, ownership tags, purge and inventory, the release host upload and
latest.dat, the Windows build declaration, the Try payload and reply, the build-cache key,
host-key pinning and private-file modes).

    python3 bench/mutation.py                  # every module: ~11 min (2,568 mutants)
    python3 bench/mutation.py --module tags    # one module; --list names them

On a shared 2-core machine under nice, --max-children 2 took 5.5 minutes.

mutmut (pinned below) runs in build/venv-mutation, made on first use from the project's
requirements files. It mutates a copy of the checkout (build/mutation/work/mutants), never
the tree itself, and runs for each mutant only the unit tests that reach the mutated
function. The unit tests that read the package's own source (docstrings, layers, the
modules' listing) are left out: mutmut's trampolines rewrite that source.
Survivors named in bench/mutation-equivalent.txt (one mutant a line, `# why`) are judged
equivalent to the original and leave the count; the script says how many. The last line is
`mutation score: K of N killed (P%)`. A bench, not part of CI.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
VENV = BUILD / "venv-mutation"
WORK = BUILD / "mutation" / "work"
EQUIVALENT = ROOT / "bench" / "mutation-equivalent.txt"
MUTMUT = "mutmut==3.8.1"

# name -> (file, mutant-name globs). A glob narrows a module to the functions that own
# the behaviour (the Try client's payload and reply; the build script's cache key).
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "options": ("hgautomation/options.py", ("*",)),
    "tags": ("hgautomation/aws/tags.py", ("*",)),
    "purge": ("hgautomation/aws/purge.py", ("*",)),
    "inventory": ("hgautomation/aws/inventory.py", ("*",)),
    "release_host": ("hgautomation/publish/release_host.py", ("*",)),
    "windows_declared": ("hgautomation/windows/declared.py", ("*",)),
    "try_payload": ("hgautomation/tryserver.py",
                    ("x_build_payload__*", "x__text__*", "x_parse_response__*")),
    "build_key": ("hgautomation/linux/scripts/build.py", ("x_build_key__*",)),
    "build_plan": ("hgautomation/linux/__init__.py", ("x_build_plan__*",)),
    "hostkeys": ("hgautomation/ssh/hostkeys.py", ("*",)),
    "keygen": ("hgautomation/keygen.py", ("*",)),
    "state": ("hgautomation/state.py", ("*",)),
}

# Unit tests that parse the package's source files, which mutmut rewrites.
SOURCE_READERS = ("tests/unit/test_docstrings.py", "tests/unit/test_layers.py")
# Unit tests that measure the interpreter's stack, which mutmut's trampolines deepen.
STACK_DEPTH = ("tests/unit/test_tryserver.py::test_parse_response_element_too_deep_to_print",)

KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout",
          152: "timeout", 255: "timeout"}


def dotted(path: str) -> str:
    mod = path.removesuffix(".py").replace("/", ".")
    return mod.removesuffix(".__init__")


def ensure_venv() -> Path:
    """build/venv-mutation: the product's and the tests' requirements, and mutmut."""
    mutmut = VENV / "bin" / "mutmut"
    if mutmut.exists():
        return mutmut
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    # requirements.txt is hashed, so it goes alone; the unhashed ones after it.
    subprocess.run([*pip, "-r", str(ROOT / "requirements.txt")], check=True)
    subprocess.run([*pip, "-r", str(ROOT / "requirements-dev.txt"), MUTMUT], check=True)
    return mutmut


def prepare(files: list[str]) -> None:
    """A fresh copy of the checkout's files (tracked and new) with mutmut's configuration."""
    shutil.rmtree(WORK, ignore_errors=True)
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if not src.is_file() or name.startswith("build/"):
            continue
        dest = WORK / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    # The downloaded sdist and caches, as the unit tier sees them in this checkout.
    (WORK / "mutants" / "build").mkdir(parents=True)
    if (BUILD / "cache").exists():
        (WORK / "mutants" / "build" / "cache").symlink_to(BUILD / "cache")
    also = sorted({n.split("/")[0] for n in filter(None, listed)}
                  - {"hgautomation", "tests", "build", "pyproject.toml", "setup.cfg"})
    deselect = [a for path in SOURCE_READERS for a in ("--ignore", path)]
    deselect += [a for test in STACK_DEPTH for a in ("--deselect", test)]
    conf = {
        "source_paths": ["hgautomation"],
        "only_mutate": files,
        "also_copy": also,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-p", "no:randomly"],
        "pytest_add_cli_args_test_selection": ["tests/unit", *deselect],
        "use_git_change_detection": False,
    }
    with open(WORK / "pyproject.toml", "a") as f:
        f.write("\n[tool.mutmut]\n")
        for key, value in conf.items():
            f.write(f"{key} = {json.dumps(value)}\n")


def results(names: list[str]) -> dict[str, dict[str, int | None]]:
    """Every mutant of the chosen modules, with its exit code (None: not run)."""
    out: dict[str, dict[str, int | None]] = {}
    for name in names:
        path, globs = MODULES[name]
        meta = WORK / "mutants" / (path + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        prefix = dotted(path) + "."
        out[name] = {k: v for k, v in codes.items()
                     if any(fnmatch.fnmatchcase(k[len(prefix):], g) for g in globs)}
    return out


def equivalents() -> dict[str, str]:
    found = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            name, _, why = line.partition("#")
            if name.strip():
                found[name.strip()] = why.strip()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES),
                        help="a module to mutate (repeatable; default: all)")
    parser.add_argument("--list", action="store_true", help="name the modules and exit")
    parser.add_argument("--survivors", action="store_true",
                        help="list each surviving mutant before the table")
    parser.add_argument("--report-only", action="store_true",
                        help="read the last run's results, run nothing")
    parser.add_argument("--max-children", type=int, default=1,
                        help="mutants tested at once (default 1: the machine is shared)")
    args = parser.parse_args()
    if args.list:
        for name, (path, globs) in MODULES.items():
            print(f"{name:18} {path} {' '.join(globs)}")
        return 0
    names = args.module or list(MODULES)
    if not args.report_only:
        mutmut = ensure_venv()
        prepare(sorted({MODULES[n][0] for n in names}))
        patterns = [f"{dotted(MODULES[n][0])}.{g}" for n in names for g in MODULES[n][1]]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("CI", None)  # a skip is not a failure here; CI's own guard is not under test
        proc = subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children),
                               *patterns], check=False, cwd=WORK, env=env,
                              stdout=subprocess.DEVNULL if not os.environ.get("MUTATION_VERBOSE")
                              else None)
        if proc.returncode:
            print(f"mutmut run failed with exit code {proc.returncode} "
                  f"(MUTATION_VERBOSE=1 shows its output)", file=sys.stderr)
            return 1
    equivalent = equivalents()
    found = results(names)
    total_k = total_n = total_eq = 0
    rows = []
    for name in names:
        codes = found[name]
        survivors = sorted(k for k, v in codes.items() if v not in KILLED)
        eq = [k for k in survivors if k in equivalent]
        n = len(codes) - len(eq)
        k = sum(1 for v in codes.values() if v in KILLED)
        total_k, total_n, total_eq = total_k + k, total_n + n, total_eq + len(eq)
        rows.append((name, k, n, len(eq)))
        if args.survivors:
            for s in survivors:
                if s not in equivalent:
                    print(f"survived: {s} (exit {codes[s]})")
    print(f"{'module':18} {'killed':>6} {'of':>5} {'score':>7} {'equivalent':>10}")
    for name, k, n, eq in rows:
        print(f"{name:18} {k:6} {n:5} {100 * k / n if n else 100:6.1f}% {eq:10}")
    if total_eq:
        print(f"{total_eq} surviving mutants judged equivalent ({EQUIVALENT.relative_to(ROOT)}) "
              f"are not counted")
    pct = 100 * total_k / total_n if total_n else 100.0
    print(f"mutation score: {total_k} of {total_n} killed ({pct:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
