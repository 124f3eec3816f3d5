"""hgautomation.venv_bootstrap: venv location, the stamp, and refusals (no venv, no pip run)."""

from __future__ import annotations

import os
import sys

import pytest

from hgautomation import venv_bootstrap as vb


@pytest.fixture
def fake_venv(tmp_path):
    """A directory that looks like a venv: pyvenv.cfg and an interpreter file."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n"
                                     "include-system-site-packages = false\n"
                                     "Version = 3.11.7\n")
    (venv / "bin" / "python").write_text("#!fake\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("boto3==1.0 --hash=sha256:00\n")
    return venv, requirements


def test_venv_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("HGAUTOMATION_VENV", raising=False)
    assert vb.venv_dir("/src/hgautomation") == "/src/hgautomation/build/venv-automation"
    monkeypatch.setenv("HGAUTOMATION_VENV", "~/venvs/hga")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert vb.venv_dir("/src") == str(tmp_path / "venvs" / "hga")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HGAUTOMATION_VENV", "rel")
    assert vb.venv_dir("/src") == str(tmp_path / "rel")


def test_venv_python():
    assert vb.venv_python("/v") == os.path.join("/v", "bin", "python")


def test_expected_stamp_names_requirements_python_and_interpreter(fake_venv):
    venv, requirements = fake_venv
    stamp = vb.expected_stamp(str(venv), str(requirements))
    lines = stamp.splitlines()
    import hashlib

    assert lines[0] == "requirements-sha256 " + hashlib.sha256(
        requirements.read_bytes()).hexdigest()
    assert lines[1] == "python-version 3.11.7"  # keys are case-insensitive
    assert lines[2].startswith(f"interpreter {venv / 'bin' / 'python'} 7 ")
    assert stamp.endswith("\n") and len(lines) == 3


@pytest.mark.parametrize("remove", ["pyvenv.cfg", "bin/python", "requirements"])
def test_no_stamp_without_venv_interpreter_or_requirements(fake_venv, remove):
    venv, requirements = fake_venv
    (requirements if remove == "requirements" else venv / remove).unlink()
    assert vb.expected_stamp(str(venv), str(requirements)) is None
    assert vb.stamp_matches(str(venv), str(requirements)) is False


def test_stamp_matches_until_requirements_or_interpreter_change(fake_venv):
    venv, requirements = fake_venv
    assert not vb.stamp_matches(str(venv), str(requirements))  # never written
    (venv / vb.STAMP_NAME).write_text(vb.expected_stamp(str(venv), str(requirements)))
    assert vb.stamp_matches(str(venv), str(requirements))
    requirements.write_text("boto3==2.0 --hash=sha256:11\n")
    assert not vb.stamp_matches(str(venv), str(requirements))
    (venv / vb.STAMP_NAME).write_text(vb.expected_stamp(str(venv), str(requirements)))
    assert vb.stamp_matches(str(venv), str(requirements))
    (venv / "bin" / "python").write_text("#!a different interpreter\n")
    assert not vb.stamp_matches(str(venv), str(requirements))


def test_stamp_follows_a_symlinked_interpreter(fake_venv, tmp_path):
    venv, requirements = fake_venv
    real = tmp_path / "python3.11"
    real.write_text("real interpreter")
    (venv / "bin" / "python").unlink()
    (venv / "bin" / "python").symlink_to(real)
    assert f"interpreter {real} 16 " in vb.expected_stamp(str(venv), str(requirements))
    real.unlink()  # a dangling link: the interpreter is gone
    assert vb.expected_stamp(str(venv), str(requirements)) is None


def test_reexecuted_into_the_wrong_venv_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(vb.MARKER, str(tmp_path / "some-venv"))
    monkeypatch.setenv("HGAUTOMATION_VENV", str(tmp_path / "some-venv"))
    with pytest.raises(vb.BootstrapError) as raised:
        vb.main(str(tmp_path / "automation.py"), [])
    assert raised.value.exit_code == vb.EXIT_VENV_FAILED == 73
    assert f"but sys.prefix is {sys.prefix}" in raised.value.message
    assert vb.MARKER not in os.environ  # consumed, so a child would bootstrap normally


def test_entry_turns_errors_into_one_line_and_an_exit_code(monkeypatch, capsys, tmp_path):
    def fail(script, argv):
        raise vb.BootstrapError("cannot read requirements.txt", vb.EXIT_CONFIGURATION)

    monkeypatch.setattr(vb, "main", fail)
    with pytest.raises(SystemExit) as exited:
        vb.entry(str(tmp_path / "automation.py"), [])
    assert exited.value.code == 3
    assert capsys.readouterr().err == "automation.py: error: cannot read requirements.txt\n"

    monkeypatch.setattr(vb, "main", lambda script, argv: 1 / 0)
    with pytest.raises(SystemExit) as exited:
        vb.entry("automation.py", [])
    assert exited.value.code == 70
    assert capsys.readouterr().err == \
        "automation.py: internal error: ZeroDivisionError: division by zero\n"


def test_venv_support_missing_names_only_missing_modules():
    missing = vb.venv_support_missing()
    assert set(missing) <= {"venv", "ensurepip"}

