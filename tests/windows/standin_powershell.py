#!/usr/bin/python3
"""Test stand-in for `powershell.exe` on the loopback sshd. It is NOT PowerShell.

It accepts exactly the command line hgautomation sends, decodes -EncodedCommand,
keeps the script under /C:/standin/scripts/, reads the generated `$Name = '...'`
parameters and acts out the script's effect on a POSIX tree where C:\\ is /C:/:
hg update/purge for real, an artifact file for a build, a chosen exit status for
run-tests (or one that depends on a file of the revision; with --json, a
report.json). Nothing of the script's PowerShell is executed.
"""

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path("/C:")
LOG = ROOT / "standin" / "scripts"
HEARTBEAT = "# hgautomation heartbeat:"
FLAGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand"]


def posix(path: str) -> str:
    return "/" + path[0].upper() + ":" + path[2:].replace("\\", "/") if path[1:2] == ":" else path


def params(script: str) -> dict:
    block = script.split("# -- parameters (generated) --\n", 1)[1].split("\n\n", 1)[0]
    found = {}
    for name, literal in re.findall(r"^\$([A-Za-z0-9]+) = '((?:[^']|'')*)'$", block, re.M):
        found[name] = literal.replace("''", "'")
    return found


def write_report(flags: str, status: int) -> None:
    """run-tests.py's report.json in the tests directory: the tests the flags name pass,
    but the first fails (with a diff) when the chosen exit status is 1."""
    names = re.findall(r"(?<![\w-])(test-[\w.-]+\.(?:t|py))", flags)
    results = {}
    for i, name in enumerate(names):
        failed = status == 1 and i == 0
        results[name] = {"result": "failure" if failed else "success", "time": "0.5",
                         "diff": "--- expected\n+++ got\n-  ok\n+  not ok on Windows\n"
                         if failed else ""}
    report = ROOT / "hgdev" / "src" / "tests" / "report.json"
    report.write_text("testreport =" + json.dumps(results, indent=4))


def main() -> int:
    args = sys.argv[1:]
    if args[:5] != FLAGS or len(args) != 6:
        print(f"stand-in powershell: unexpected arguments {args}", file=sys.stderr)
        return 64
    script = base64.b64decode(args[5], validate=True).decode("utf-16-le")
    if script.startswith(HEARTBEAT):
        # aws/scripts/heartbeat.ps1, sent as it is (no prelude, no parameters block).
        name, p = "heartbeat.ps1", {}
    else:
        name = re.findall(r"^# -- (\S+\.ps1) --$", script, re.M)[-1]
        p = params(script)
    LOG.mkdir(parents=True, exist_ok=True)
    number = len(list(LOG.iterdir())) + 1
    (LOG / f"{number:03d}-{name}").write_text(script)
    print(f"stand-in powershell: {name} {sorted(p)}")
    if name == "provision.ps1":
        if not Path(posix(p["DepsScript"])).is_file():
            print(f"stand-in: {p['DepsScript']} missing", file=sys.stderr)
            return 1
    elif name == "update_source.ps1":
        hg, src = posix(p["Hg"]), posix(p["Source"])
        for cmd in ([hg, "-R", src, "update", "--clean", p["Node"]],
                    [hg, "-R", src, "--config", "extensions.purge=", "purge", "--all"]):
            status = subprocess.call(cmd)
            if status:
                return status
    elif name in ("build_wheel.ps1", "build_wheel_cibuildwheel.ps1", "build_installer.ps1"):
        version = p.get("Version") or (ROOT / "standin" / "wheel-version").read_text().strip()
        dist = Path(posix(p["Dist"]))
        dist.mkdir(parents=True, exist_ok=True)
        artifact = dist / p["Pattern"].replace("*", version, 1)
        artifact.write_bytes(os.urandom(4096) + script.encode())
        print(f"hgautomation: artifact {artifact.name}")
    elif name == "run_tests.ps1":
        match = re.search(r"--standin-exit=(\d+)", p["TestFlags"])
        status = int(match.group(1)) if match else 0
        # --standin-fail-if=FILE: fail (exit 1) when the checked-out revision has FILE.
        fail_if = re.search(r"--standin-fail-if=(\S+)", p["TestFlags"])
        if fail_if:
            status = 1 if (ROOT / "hgdev" / "src" / fail_if.group(1)).exists() else 0
        if "--json" in p["TestFlags"].split():
            write_report(p["TestFlags"], status)
        return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
