"""linux/scripts/build.py's pure parts: which files key the build, and its refusals."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from hgautomation import linux

SCRIPT = linux.SCRIPTS / "build.py"


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("hgauto_build_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", [
    "mercurial/cext/parsers.c", "mercurial/cext/util.h", "mercurial/thirdparty/sha1dc/lib/sha1.c",
    "hgext/fsmonitor/pywatchman/bser.c", "setup.py", "setup.cfg", "pyproject.toml",
    "MANIFEST.in", "hg", "rust/hg-core/src/lib.rs", "rust/Cargo.lock", "contrib/chg/chg.c",
    "contrib/python-zstandard/setup_zstd.py", "i18n/de.po", ".hgtags",
])
def test_build_inputs(build, path):
    assert build.is_build_input(path)


@pytest.mark.parametrize("path", [
    "mercurial/commands.py", "mercurial/templates/map-cmdline.default",
    "mercurial/helptext/config.txt", "hgext/rebase.py", "hgext3rd/__init__.py",
    "hgdemandimport/__init__.py", "tests/test-init.t", "tests/run-tests.py", "doc/hg.1.txt",
])
def test_live_files_need_no_build(build, path):
    assert not build.is_build_input(path)


def test_bad_usage_exits_2():
    for args in ([], ["/src", "/cache"], ["/src", "/cache", "fast"], ["/src", "/cache", "default",
                                                                        "--frobnicate"]):
        proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 2, args
        assert "MODE" in proc.stderr


def test_restore_refuses_unsafe_members(build, tmp_path):
    import tarfile

    archive = tmp_path / "evil.tar"
    victim = tmp_path / "data"
    victim.write_text("x")
    with tarfile.open(archive, "w") as tar:
        tar.add(victim, arcname="../escaped")
    with pytest.raises(SystemExit, match="unsafe member"):
        build.restore(str(tmp_path / "src"), str(archive))
    assert not (tmp_path / "escaped").exists()


# -- the cache key names the flavour ----------------------------------------------------

FLAVOURS = [(mode, extras) for mode in ("default", "pure", "rust")
            for extras in ([], ["chg"], ["rhg"], ["chg", "rhg"])]


@pytest.fixture
def no_inputs(build, monkeypatch, tmp_path):
    """build.py over an empty checkout: no tracked file, no wheelhouse; only the flavour
    (and the interpreter, the recipe) can make two keys differ."""
    monkeypatch.setattr(build, "tracked_files", lambda src: [])
    monkeypatch.setattr(build, "WHEELHOUSE", str(tmp_path / "no-wheelhouse"))
    monkeypatch.setenv("HGAUTOMATION_BUILD_RECIPE", "recipe")
    return build


def test_every_flavour_has_its_own_key(no_inputs):
    """Every MODE and every set of extras (--chg, --rhg) gives another key, whatever the
    order the extras come in. Breaking it looks like dropping ``add("mode", ...)`` from
    build_key or leaving ``extras`` out of it: a pure run could get a C build back."""
    assert set(no_inputs.MODES) == {mode for mode, _ in FLAVOURS}
    keys = {(mode, tuple(extras)): no_inputs.build_key("/src", mode, extras)
            for mode, extras in FLAVOURS}
    assert len(set(keys.values())) == len(FLAVOURS) == 12
    assert no_inputs.build_key("/src", "rust", ["rhg", "chg"]) == keys[("rust", ("chg", "rhg"))]
    assert no_inputs.build_key("/src", "pure", []) == keys[("pure", ())]  # a key is stable


def test_a_build_of_another_flavour_is_never_reused(no_inputs, tmp_path, capsys,
                                                   monkeypatch):
    """main(): the same checkout built as each flavour in turn is built each time, never
    reused from the tree nor restored from the cache; then asked again, each flavour gets
    its own build back. Breaking it looks like main passing no extras (or another mode) to
    build_key: ``restored`` or ``reused`` where ``built`` is due."""
    src, cache = tmp_path / "src", tmp_path / "cache"
    (src / ".hg").mkdir(parents=True)
    built = []

    def fake_build(where, mode, extras):
        built.append((mode, tuple(extras)))
        (src / "build-output").write_text(f"{mode} {extras}")
        if "rhg" in extras:
            rhg = src / "rust" / "target" / "release" / "rhg"
            rhg.parent.mkdir(parents=True, exist_ok=True)
            rhg.write_text("rhg")

    monkeypatch.setattr(no_inputs, "build", fake_build)

    def run(mode, extras):
        assert no_inputs.main([str(src), str(cache), mode, *(f"--{e}" for e in extras)]) == 0
        how, key = capsys.readouterr().out.splitlines()[-1].split()[1:3]
        return how, key

    flavours = [("default", []), ("pure", []), ("rust", []), ("default", ["chg"]),
                ("default", ["rhg"]), ("pure", ["chg", "rhg"])]
    first = [run(mode, extras) for mode, extras in flavours]
    assert [how for how, _ in first] == ["built"] * len(flavours)
    assert built == [(mode, tuple(extras)) for mode, extras in flavours]
    assert len({key for _, key in first}) == len(flavours)
    # Each back from the cache, with its own output.
    for (mode, extras), (_, key) in zip(flavours, first):
        assert run(mode, extras) == ("restored", key)
        assert (src / "build-output").read_text() == f"{mode} {extras}"
    assert run("pure", ["chg", "rhg"]) == ("reused", first[-1][1])
    assert len(built) == len(flavours)


def test_the_tool_asks_build_py_for_the_plans_flavour():
    """linux.build passes the plan's mode and extras to build.py (breaking it: leaving
    ``--chg``/``--rhg`` or the mode out of its argv)."""
    from types import SimpleNamespace

    seen = []

    def run(argv, **kwargs):
        seen.append(argv)
        kwargs["sink"].append("build: built 0123abcd 1.0")
        return 0

    conn = SimpleNamespace(run=run, target="host")
    for flags in ([], ["--pure"], ["--rust", "--chg"], ["--rhg"], ["--pure", "--rhg", "--chg"]):
        plan = linux.build_plan(flags)
        linux.build(conn, "python3", plan)
    tails = [argv[argv.index("/hgdev/builds") + 1:] for argv in seen]
    assert tails == [["default"], ["pure"], ["rust", "--chg"], ["default", "--rhg"],
                     ["pure", "--chg", "--rhg"]]
