"""Give /hgwork/src a build of its checkout that run-tests.py --local can use.

Run on the host by the interpreter the tests will use, program read from stdin:

    PYTHON - SRC CACHE_DIR MODE [--chg] [--rhg] [--rebuild]

MODE is default, pure or rust (the setup.py flavour run-tests.py checks for).

The build is an editable install in SRC/.local-venv (what ``make local`` makes), so
Python modules, templates and help text are read from the work tree: changing them
needs no rebuild. Everything else that setup.py compiles or copies (C and Rust
sources, setup files, translations, contrib/) is a *build input*: the build is keyed
by a hash of those files' contents, the interpreter, MODE and this script. The
outputs are recorded in SRC/.hg/hgautomation-build.json and kept as
CACHE_DIR/<key>.tar, so a later checkout with the same inputs gets them back in a
second, and a changed input always means another key, hence a build.

The last line printed is "build: reused|restored|built KEY SECONDS".
Exit status: 0 done, 1 the build failed (its output is above), 2 usage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time

HG = "/hgdev/venv-bootstrap/bin/hg"
WHEELHOUSE = "/hgdev/wheelhouse"
STATE = os.path.join(".hg", "hgautomation-build.json")
EXCLUDE = os.path.join(".hg", "hgautomation-build.exclude")  # for `hg purge -X listfile:`
KEEP = 6  # cache entries kept per host (newest used first)
MODES = ("default", "pure", "rust")
# Package directories: what an editable install reads from the tree, except native code.
PACKAGES = ("mercurial/", "hgext/", "hgext3rd/", "hgdemandimport/")
NATIVE = (".c", ".h", ".cc", ".cpp", ".pyx", ".pxd", ".rs")
LIVE_TREES = ("tests/", "doc/")


def is_build_input(path: str) -> bool:
    """True when a change to tracked file *path* can change the build's outputs."""
    if path.startswith(LIVE_TREES):
        return False
    if path.startswith(PACKAGES):
        return path.endswith(NATIVE)
    return True


def tracked_files(src: str) -> list[str]:
    env = dict(os.environ, HGPLAIN="1")
    # From the root, so the paths are relative to it.
    out = subprocess.run([HG, "files", "-0"], cwd=src, check=True, env=env,
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL).stdout
    return sorted(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p)


def build_key(src: str, mode: str, extras: list[str]) -> str:
    digest = hashlib.sha256()

    def add(label: str, value: bytes) -> None:
        digest.update(label.encode() + b"\0" + hashlib.sha256(value).digest())

    # The tool passes this script's own hash: read from stdin, it cannot see itself.
    add("recipe", os.environ.get("HGAUTOMATION_BUILD_RECIPE", "").encode())

    add("python", "\n".join([os.path.realpath(sys.executable), sys.version,
                             sysconfig.get_config_var("EXT_SUFFIX") or ""]).encode())
    add("mode", " ".join([mode, *sorted(extras)]).encode())
    if os.path.isdir(WHEELHOUSE):
        add("wheelhouse", "\n".join(sorted(os.listdir(WHEELHOUSE))).encode())
    for path in tracked_files(src):
        if is_build_input(path):
            full = os.path.join(src, path)
            if os.path.islink(full):  # hg tracks the link itself, not its target
                content = b"\0link " + os.readlink(full).encode()
            else:
                try:
                    with open(full, "rb") as fh:
                        content = fh.read()
                except FileNotFoundError:  # tracked, removed by the applied diff
                    content = b"\0missing"
            add(path, content)
    return digest.hexdigest()[:24]


def read_state(src: str) -> dict:
    try:
        with open(os.path.join(src, STATE)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def write_state(src: str, key: str, outputs: list[str]) -> None:
    with open(os.path.join(src, STATE), "w") as fh:
        json.dump({"key": key, "outputs": outputs}, fh)
    with open(os.path.join(src, EXCLUDE), "w") as fh:
        fh.writelines(f"path:{p}\n" for p in outputs)


def remove_outputs(src: str, outputs: list[str]) -> None:
    for rel in outputs:
        path = os.path.join(src, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)
    for name in (STATE, EXCLUDE):
        if os.path.exists(os.path.join(src, name)):
            os.unlink(os.path.join(src, name))


def untracked(src: str, tracked: set[str]) -> list[str]:
    """Untracked paths: .local-venv as one entry, other files one by one; Python's
    bytecode caches (kept between runs, checked by Python) are not counted."""
    found = []
    for top, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel_top = os.path.relpath(top, src)
        rel_top = "" if rel_top == "." else rel_top + "/"
        if rel_top == "":
            dirs[:] = [d for d in dirs if d not in (".hg",)]
            if ".local-venv" in dirs:
                dirs.remove(".local-venv")
                found.append(".local-venv")
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            rel = rel_top + name
            if rel not in tracked:
                found.append(rel)
    return sorted(found)


def run(argv: list[str], **kwargs) -> None:
    print("+ " + " ".join(argv), flush=True)
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, **kwargs)


def build(src: str, mode: str, extras: list[str]) -> None:
    venv = os.path.join(src, ".local-venv")
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    python = os.path.join(venv, "bin", "python")
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-e", src]
    if mode != "default":
        pip.append(f"--config-settings=--global-option=--{mode}")
    env = dict(os.environ)
    if mode == "rust":
        env["PATH"] = os.path.expanduser("~/.cargo/bin") + os.pathsep + env["PATH"]
    if os.path.isdir(WHEELHOUSE):
        try:  # the image's build requirements: no network needed
            run(pip + ["--no-index", "--find-links", WHEELHOUSE], env=env, cwd=src)
        except subprocess.CalledProcessError:
            print(f"build: {WHEELHOUSE} does not satisfy this revision's build "
                  "requirements; trying the package index", flush=True)
            run(pip + ["--find-links", WHEELHOUSE], env=env, cwd=src)
    else:
        run(pip, env=env, cwd=src)
    if "chg" in extras:
        run(["make", "-C", os.path.join(src, "contrib", "chg")], env=env)
    if "rhg" in extras:
        run(["cargo", "build", "--release"], env=env, cwd=os.path.join(src, "rust", "rhg"))


def store(src: str, cache: str, key: str, outputs: list[str]) -> None:
    os.makedirs(cache, exist_ok=True)
    final = os.path.join(cache, key + ".tar")
    partial = f"{final}.{os.getpid()}.part"
    try:
        with tarfile.open(partial, "w") as tar:
            for rel in outputs:
                tar.add(os.path.join(src, rel), arcname=rel)
        os.replace(partial, final)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    entries = sorted((e for e in os.listdir(cache) if e.endswith(".tar")),
                     key=lambda e: os.stat(os.path.join(cache, e)).st_mtime, reverse=True)
    for old in entries[KEEP:]:
        os.unlink(os.path.join(cache, old))


def restore(src: str, archive: str) -> list[str]:
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        for member in tar.getmembers():
            if member.name.startswith(("/", "..")) or "/../" in member.name:
                raise SystemExit(f"build: refusing {archive}: unsafe member {member.name}")
        if hasattr(tarfile, "tar_filter"):  # .local-venv/bin/python is an absolute link
            tar.extractall(src, filter="tar")
        else:
            tar.extractall(src)
    os.utime(archive)  # most recently used
    return sorted({n.split("/", 1)[0] if n.startswith(".local-venv") else n for n in names})


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    if len(args) != 3 or args[2] not in MODES or flags - {"--chg", "--rhg", "--rebuild"}:
        print("usage: PYTHON - SRC CACHE_DIR MODE [--chg] [--rhg] [--rebuild]  "
              f"(MODE: {'|'.join(MODES)})", file=sys.stderr)
        return 2
    src, cache, mode = args
    extras = sorted(f[2:] for f in flags & {"--chg", "--rhg"})
    start = time.monotonic()
    key = build_key(src, mode, extras)
    state = read_state(src)
    outputs = state.get("outputs") or []
    present = outputs and all(os.path.lexists(os.path.join(src, p)) for p in outputs)
    if "--rebuild" not in flags and state.get("key") == key and present:
        how = "reused"
    else:
        remove_outputs(src, outputs)
        archive = os.path.join(cache, key + ".tar")
        if "--rebuild" not in flags and os.path.exists(archive):
            outputs = restore(src, archive)
            how = "restored"
        else:
            tracked = set(tracked_files(src))
            leftovers = untracked(src, tracked)
            if leftovers:  # the checkout step purges the tree: this is not ours to build on
                print("build: untracked files in the work tree: " + ", ".join(leftovers[:5]),
                      file=sys.stderr)
                return 1
            try:
                build(src, mode, extras)
            except subprocess.CalledProcessError as exc:
                print(f"build: failed: {' '.join(exc.cmd)} exited {exc.returncode}",
                      file=sys.stderr)
                return 1
            # rust/target holds gigabytes of intermediates: only rhg itself is kept.
            outputs = [o for o in untracked(src, tracked) if not o.startswith("rust/target/")]
            if "rhg" in extras:
                outputs.append("rust/target/release/rhg")
            store(src, cache, key, outputs)
            how = "built"
        write_state(src, key, outputs)
    print(f"build: {how} {key} {time.monotonic() - start:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
