"""Benchmark: how many of Mercurial's tests a Debian 12 host skips for a missing feature,
with the packages images had before (the contract's alone) and with the test toolchain
bootstrap-debian.sh installs now.

Run as root, with the network (the first run debootstraps the "before" root):

    build/venv-test/bin/python bench/suite_coverage.py

Both roots come from tests/linux/make-debian-root.sh (build/cache/debian-root is the one
tests/run makes; BASE_ONLY=1 gives build/cache/debian-root-base). Each is mounted as a
throwaway overlay in a private mount namespace; inside it the checkout's own
tests/hghave.py checks run as an unprivileged user with /usr/bin/python3 (the
product's features.py), after the two command-name fixes bootstrap-debian.sh makes
(pyflakes -> pyflakes3, clang-format -> clang-format-18). The counts use the sdist's
test-*.t files. The end-to-end test test_bootstrap_linux.py measures the same on a
root really provisioned by bootstrap-linux-dev --host and prints its figure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
CACHE = ROOT / "build" / "cache"
MAKE_ROOT = ROOT / "tests" / "linux" / "make-debian-root.sh"
FIXES = ("command -v pyflakes >/dev/null || { command -v pyflakes3 >/dev/null && "
         "ln -sf $(command -v pyflakes3) /usr/local/bin/pyflakes; }; "
         "command -v clang-format >/dev/null || { command -v clang-format-18 >/dev/null && "
         "ln -sf $(command -v clang-format-18) /usr/local/bin/clang-format; }; true")


def check_root(root: Path, tests_dir: Path, features: list[str]) -> dict:
    from hgautomation.linux import SCRIPTS

    work = Path(tempfile.mkdtemp(prefix="bench-coverage-"))
    try:
        upper, scratch, merged = work / "upper", work / "work", work / "merged"
        for d in (upper, scratch, merged):
            d.mkdir()
        probe = upper / "tmp" / "hgauto-features"
        probe.mkdir(parents=True)
        os.chmod(upper / "tmp", 0o1777)  # as the root's own /tmp (HOME of the check user)
        shutil.copy(tests_dir / "hghave.py", probe / "hghave.py")
        shutil.copy(SCRIPTS / "features.py", probe / "features.py")
        os.chmod(probe, 0o777)
        # A clean environment, as a login over SSH would have.
        inner = (f"{FIXES}; cd /tmp/hgauto-features && "
                 f"runuser -u nobody -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp "
                 f"LANG=C.UTF-8 TESTDIR=/tmp/hgauto-features "
                 f"/usr/bin/python3 features.py /tmp/hgauto-features {' '.join(features)}")
        script = " && ".join([
            f"mount -t overlay overlay -o lowerdir={root},upperdir={upper},workdir={scratch} "
            f"{merged}",
            f"mount -t proc proc {merged}/proc",
            f"mount --rbind /dev {merged}/dev",
            f"chroot {merged} /bin/sh -c '{inner}'",
        ])
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                               "sh", "-c", script], capture_output=True, text=True,
                              timeout=900, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"feature checks in {root} failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    from harness import hgsource

    from hgautomation.linux import features

    if os.geteuid() != 0:
        print("bench/suite_coverage.py needs root (overlay mounts, chroot)", file=sys.stderr)
        return 2
    sdist = hgsource.find_sdist()
    full_root = CACHE / "debian-root"
    if sdist is None or not any(full_root.glob(".ready-*")):
        print("run tests/run once first (it caches the sdist and the Debian root)",
              file=sys.stderr)
        return 2
    base_root = CACHE / "debian-root-base"
    subprocess.run([str(MAKE_ROOT), str(base_root)], check=True,
                   env=dict(os.environ, BASE_ONLY="1"))
    checkout = hgsource.build_cached_repo(sdist)
    tests_dir = checkout / "tests"
    requirements = features.test_requirements(tests_dir)
    wanted = list(features.HOST_FEATURES)
    rows = []
    for label, root in (("before (contract packages only)", base_root),
                        ("after (bootstrap-debian.sh's test toolchain)", full_root)):
        report = features.build_report(check_root(root, tests_dir, wanted), requirements,
                                       "debian12")
        rows.append((label, report))
    print(f"Debian 12 root, /usr/bin/python3, {rows[0][1].tests} test-*.t files of "
          f"{sdist.name}; {len(wanted)} host features checked")
    for label, report in rows:
        print(f"  {label}: {report.skipped} tests skipped for a missing host feature, "
              f"{len(report.missing)} features missing")
    after = rows[1][1]
    print("  still missing after:")
    for row in sorted(after.missing, key=lambda r: (-r.skipped_tests, r.feature)):
        print(f"    {row.feature:<18} {row.skipped_tests:>3} tests  "
              f"{row.why or 'NOT EXPLAINED: the distro may provide it'}")
    before = rows[0][1]
    if before.skipped:
        print(f"  skipped after / before: {after.skipped / before.skipped:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
