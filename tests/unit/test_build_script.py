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
