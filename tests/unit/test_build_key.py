"""build.py's cache key: every input it documents is in it, under its own label.

The script is loaded under its dotted name, in process, with its file listing, interpreter
and wheelhouse stood in for: a key that left out the flavour, an extra, the recipe, the
interpreter or a build input would let one build be reused for another.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os

import pytest

from hgautomation import linux


@pytest.fixture
def build(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("hgautomation.linux.scripts.build",
                                                  linux.SCRIPTS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = tmp_path / "src"
    src.mkdir()
    (src / "setup.py").write_bytes(b"setup()\n")
    (src / "mercurial").mkdir()
    (src / "mercurial" / "bdiff.c").write_bytes(b"int x;\n")
    (src / "mercurial" / "util.py").write_bytes(b"x = 1\n")
    (src / "tests").mkdir()
    (src / "tests" / "test-a.t").write_bytes(b"  $ true\n")
    os.symlink("setup.py", src / "link")
    files = ["link", "mercurial/bdiff.c", "mercurial/util.py", "setup.py", "tests/test-a.t",
             "gone.c"]
    monkeypatch.setattr(module, "tracked_files", lambda s: list(files) if s == str(src) else [])
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    (wheels / "b-1.whl").write_bytes(b"")
    (wheels / "a-1.whl").write_bytes(b"")
    monkeypatch.setattr(module, "WHEELHOUSE", str(wheels))
    monkeypatch.setenv("HGAUTOMATION_BUILD_RECIPE", "recipe-hash")
    module.src = str(src)
    module.wheels = wheels
    module.files = files
    return module


def _expected(build, mode_line: bytes, wheelhouse: bytes | None = b"a-1.whl\nb-1.whl",
              recipe: bytes = b"recipe-hash") -> str:
    import sys
    import sysconfig

    digest = hashlib.sha256()
    parts = [("recipe", recipe),
             ("python", "\n".join([os.path.realpath(sys.executable), sys.version,
                                   sysconfig.get_config_var("EXT_SUFFIX") or ""]).encode()),
             ("mode", mode_line)]
    if wheelhouse is not None:
        parts.append(("wheelhouse", wheelhouse))
    parts += [("link", b"\0link setup.py"), ("mercurial/bdiff.c", b"int x;\n"),
              ("setup.py", b"setup()\n"), ("gone.c", b"\0missing")]
    for label, value in parts:
        digest.update(label.encode() + b"\0" + hashlib.sha256(value).digest())
    return digest.hexdigest()[:24]


def test_key_is_the_documented_digest(build):
    """Each input under its label, extras sorted; Python modules and tests/ left out
    (an editable install reads them from the tree). A dropped or relabelled input, or a
    changed separator, gives another digest."""
    assert build.build_key(build.src, "pure", ["rhg", "chg"]) == _expected(build,
                                                                          b"pure chg rhg")
    assert build.build_key(build.src, "default", []) == _expected(build, b"default")


def test_every_flavour_has_its_own_key(build):
    keys = {build.build_key(build.src, mode, extras)
            for mode in build.MODES for extras in ([], ["chg"], ["rhg"], ["chg", "rhg"])}
    assert len(keys) == len(build.MODES) * 4


def test_recipe_and_wheelhouse_are_inputs(build, monkeypatch):
    base = build.build_key(build.src, "default", [])
    monkeypatch.setenv("HGAUTOMATION_BUILD_RECIPE", "other")
    assert build.build_key(build.src, "default", []) == _expected(build, b"default",
                                                                  recipe=b"other") != base
    monkeypatch.delenv("HGAUTOMATION_BUILD_RECIPE")
    assert build.build_key(build.src, "default", []) == _expected(build, b"default",
                                                                  recipe=b"")
    monkeypatch.setenv("HGAUTOMATION_BUILD_RECIPE", "recipe-hash")
    (build.wheels / "c-1.whl").write_bytes(b"")
    assert build.build_key(build.src, "default", []) == _expected(
        build, b"default", wheelhouse=b"a-1.whl\nb-1.whl\nc-1.whl")
    monkeypatch.setattr(build, "WHEELHOUSE", str(build.wheels / "absent"))
    assert build.build_key(build.src, "default", []) == _expected(build, b"default",
                                                                  wheelhouse=None)


def test_a_changed_build_input_changes_the_key_and_a_live_file_does_not(build):
    from pathlib import Path

    src = Path(build.src)
    base = build.build_key(build.src, "default", [])
    (src / "mercurial" / "util.py").write_bytes(b"x = 2\n")
    (src / "tests" / "test-a.t").write_bytes(b"  $ false\n")
    assert build.build_key(build.src, "default", []) == base
    (src / "mercurial" / "bdiff.c").write_bytes(b"int y;\n")
    assert build.build_key(build.src, "default", []) != base


def test_an_interpreter_without_ext_suffix(build, monkeypatch):
    import sys
    from types import SimpleNamespace

    monkeypatch.setattr(build, "sysconfig", SimpleNamespace(get_config_var=lambda name: None))
    digest = hashlib.sha256()
    for label, value in [("recipe", b"recipe-hash"),
                         ("python", "\n".join([os.path.realpath(sys.executable), sys.version,
                                               ""]).encode()),
                         ("mode", b"default")]:
        digest.update(label.encode() + b"\0" + hashlib.sha256(value).digest())
    monkeypatch.setattr(build, "tracked_files", lambda s: [])
    monkeypatch.setattr(build, "WHEELHOUSE", "/nonexistent-wheelhouse")
    assert build.build_key(build.src, "default", []) == digest.hexdigest()[:24]
