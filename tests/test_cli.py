"""The CLI surface through `python -m hgautomation`: help, options, errors, exit codes."""

from __future__ import annotations

import functools
import re
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from hgautomation import cli, errors

TIMEOUT = 60


@pytest.fixture
def hgautomation(cli):
    """The `cli` fixture's run() (here `cli` is hgautomation.cli), bounded by TIMEOUT."""
    return functools.partial(cli.run, timeout=TIMEOUT)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_python_m_hgautomation_prints_help(tmp_path, hgautomation):
    result = hgautomation("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: hgautomation")
    for name in cli.COMMANDS:
        assert name in result.stdout


def test_top_level_help_lists_global_options_and_stays_light(tmp_path, hgautomation):
    # The top-level help documents every global option and never loads the heavy
    # libraries (bench/startup.py measures the start-up cost itself).
    result = hgautomation("-h", program=("-X", "importtime", "-m", "hgautomation"),
                          env={"PYTHONNOUSERSITE": "1"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert "hgautomation.cli" in imported
    assert not imported & {"boto3", "botocore", "paramiko", "twine", "requests"}
    for option in cli.GLOBAL_OPTIONS:
        assert option.flags[-1] in result.stdout
    # Combined with another global option, argparse parses and the same help appears.
    again = hgautomation("--state-path", str(tmp_path / "s"), "--help", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout


def test_no_arguments_prints_help(tmp_path, hgautomation):
    result = hgautomation(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: hgautomation")


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_subcommand_has_help(name, tmp_path, hgautomation):
    result = hgautomation(name, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: hgautomation {name}")
    assert "--state-path" in result.stdout  # global options on every subcommand
    examples = result.stdout.split("\nexamples:\n", 1)[1].splitlines()
    assert examples and all(f"{line} ".startswith(f"  hgautomation {name} ") for line in examples)
    # `help COMMAND` is the same text.
    assert hgautomation("help", name, cwd=tmp_path).stdout == result.stdout


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_example_is_a_valid_command_line(name):
    import shlex

    from hgautomation import arguments, catalog

    examples = catalog.command(name).examples
    assert examples
    for line in examples:
        words = shlex.split(line.format(prog="hgautomation"))
        argv = words[1:words.index(">")] if ">" in words else words[1:]  # no redirection
        parsed = arguments.parse_args(argv, "hgautomation")  # UsageError if not
        assert parsed.command.name == name


def test_version(tmp_path, hgautomation):
    from hgautomation import __version__

    for argv in (["--version"], ["--state-path", str(tmp_path / "s"), "--version"]):
        result = hgautomation(*argv, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == f"hgautomation {__version__}"
        assert lines[1].startswith("Python 3.")
        assert re.fullmatch(r"boto3 \d[\w.]*, paramiko \d[\w.]*, twine \d[\w.]*", lines[2])
    # After a build command, --version is still that command's Mercurial version.
    line = assert_one_line_error(hgautomation("build-wix", "--version", "7.x", cwd=tmp_path), 2)
    assert "invalid version '7.x'" in line


def test_help_without_a_command_is_the_overview(tmp_path, hgautomation):
    result = hgautomation("help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == hgautomation("--help", cwd=tmp_path).stdout
    assert "help [COMMAND]" in result.stdout and "--version" in result.stdout


@pytest.mark.parametrize("argv,guess", [
    (["purg-ec2-resources"], "purge-ec2-resources"),
    (["help", "purg-ec2"], "purge-ec2-resources"),
    (["run-test-linux"], "run-tests-linux"),
    (["run-tests-linux", "--distro", "debain12"], "debian12"),
    (["list-ec2-resources", "--all-owner"], "--all-owners"),
    (["try", "--revison", "."], "--revision"),
])
def test_a_misspelling_gets_a_suggestion(argv, guess, tmp_path, hgautomation):
    line = assert_one_line_error(hgautomation(*argv, cwd=tmp_path), 2)
    assert f"(did you mean '{guess}'? see 'hgautomation" in line, line
    assert "choose from" not in line  # the list is in --help, not in the error


def test_dash_R_is_the_repository(tmp_path, hgautomation):
    not_a_repo = tmp_path / "elsewhere"
    not_a_repo.mkdir()
    line = assert_one_line_error(hgautomation("try", "-R", str(not_a_repo), cwd=tmp_path), 4)
    assert f"{not_a_repo} is not a Mercurial repository" in line


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_and_after_the_subcommand(where, tmp_path, hgautomation):
    not_a_repo = tmp_path / "not-a-repo"
    not_a_repo.mkdir()
    options = ["--hg-repo", str(not_a_repo), "--state-path", str(tmp_path / "state")]
    argv = [*options, "try"] if where == "before" else ["try", *options]
    line = assert_one_line_error(hgautomation(*argv, cwd=tmp_path), 4)
    assert f"{not_a_repo} is not a Mercurial repository" in line
    assert line.endswith(".log]")

    # --debug adds the traceback in either position.
    debug = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    result = hgautomation(*debug, cwd=tmp_path)
    assert result.returncode == 4
    assert "Traceback" in result.stderr


@pytest.mark.parametrize("argv", [
    ["run-tests-linux", "--distro", "nosuch"],
    ["run-tests-linux", "--filesystem", "fat32"],
    ["build-inno", "--arch", "arm64"],
    ["build-windows-wheel", "--python-version", "2.7"],
    ["bootstrap-linux-dev", "--distros", "debian12,nosuch"],
    ["no-such-command"],
    ["--no-such-option"],
])
def test_bad_choices_are_one_line_exit_2(argv, tmp_path, hgautomation):
    line = assert_one_line_error(hgautomation(*argv, cwd=tmp_path), 2)
    assert line.startswith("usage error: ")
    assert "see 'hgautomation" in line


def _error_classes() -> list[type[errors.HgAutomationError]]:
    found, stack = [], [errors.HgAutomationError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return [cls for cls in found if cls is not errors.HgAutomationError]


def test_every_error_class_has_its_own_exit_code():
    # A class that does not set exit_code refines its parent's fault (e.g. the two
    # kinds of host key error): it shares the parent's code on purpose.
    refinements = [cls for cls in _error_classes() if "exit_code" not in vars(cls)]
    assert {c.__name__ for c in refinements} == {"UnknownHostKeyError",
                                                 "HostKeyMismatchError"}
    assert all(c.exit_code == errors.HostKeyError.exit_code for c in refinements)
    classes = [cls for cls in _error_classes() if "exit_code" in vars(cls)]
    codes = [cls.exit_code for cls in classes]
    assert len(classes) >= 10
    duplicates = {c: [k.__name__ for k in classes if k.exit_code == c]
                  for c in codes if codes.count(c) > 1}
    assert not duplicates, duplicates
    assert errors.INTERNAL_ERROR_EXIT not in codes
    assert errors.UsageError.exit_code == 2
    assert errors.Interrupted.exit_code == 130
    assert sorted(errors.EXIT_CODES) == sorted(codes)


def test_an_error_raised_by_a_flow_is_one_line_with_its_code(tmp_path, hgautomation):
    # A subcommand whose flow raises one of our errors, run through cli.main.
    program = textwrap.dedent(f"""
        import dataclasses, sys, types
        from hgautomation import cli
        from hgautomation import errors
        from hgautomation.declare import Command

        module = types.ModuleType("hgautomation.commands.fake_flow")
        def main(ctx, opts):
            raise errors.RemoteCommandError("make exited 2", hint="see the output above")
        Nothing = dataclasses.make_dataclass("Nothing", [], frozen=True)
        module.COMMAND = Command("fake-flow", options=(), record=Nothing, flow=main,
                                 examples=())
        sys.modules[module.__name__] = module
        cli.COMMANDS["fake-flow"] = ("a flow that is not there", "fake_flow:COMMAND")
        sys.exit(cli.main(["--state-path", {str(tmp_path / 'state')!r}, "fake-flow"],
                          prog="hgautomation"))
    """)
    result = hgautomation(program=("-c", program), cwd=tmp_path)
    line = assert_one_line_error(result, 10)
    log = next((tmp_path / "state" / "logs").glob("*-fake-flow.log"))
    assert line == f"remote command failed: make exited 2 (see the output above) [log: {log}]"


def test_a_failed_run_names_its_full_log(tmp_path, hgautomation):
    state = tmp_path / "state"
    logs = state / "logs"
    logs.mkdir(parents=True)
    for n in range(105):  # older runs' logs: the newest 100 are kept
        (logs / f"20200101T0000{n:03d}Z-try.log").write_text("old\n")
    not_a_repo = tmp_path / "nr"
    not_a_repo.mkdir()
    line = assert_one_line_error(
        hgautomation("--state-path", str(state), "try", "-R", str(not_a_repo), cwd=tmp_path), 4)
    match = re.fullmatch(r"repository error: .* \[log: (.*)\]", line)
    assert match, line
    log = Path(match.group(1))
    assert log.parent == logs and re.fullmatch(r"\d{8}T\d{6}\.\d{3}Z-try\.log", log.name)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert f"try -R {not_a_repo}" in text.splitlines()[0]
    assert "Traceback (most recent call last)" in text  # the full detail, without --debug
    assert text.rstrip().endswith("(exit 4)")
    assert len(list(logs.iterdir())) == 100
    assert not (logs / "20200101T0000000Z-try.log").exists()


def test_bash_completion_is_generated_and_works_when_sourced(tmp_path, hgautomation):
    script = hgautomation("completion", "bash", cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    path = tmp_path / "hgautomation.bash"
    path.write_text(script.stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(("hgautomation", *words))
        program = (f"source {path}\n"
                   f"COMP_WORDS=(hgautomation {' '.join(words)}); "
                   f"COMP_CWORD={len(words)}; COMP_LINE='{line}'; COMP_POINT={len(line)}\n"
                   "_shtab_hgautomation\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
        result = subprocess.run(["bash", "--norc", "--noprofile", "-c", program],
                                capture_output=True, text=True, timeout=TIMEOUT, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("pur") == ["purge-ec2-resources"]
    assert complete("purge-ec2-resources", "--all") == ["--all-owners"]
    assert "debian12" in complete("run-tests-linux", "--distro", "")
    assert set(complete("build-windows-wheel", "--arch", "")) == {"x86", "x64", "arm64"}


def test_zsh_completion_is_generated_and_completes_in_an_interactive_zsh(tmp_path,
                                                                         hgautomation):
    """The script goes where `compinit` finds it; Tab in a real zsh on a pty completes."""
    script = hgautomation("completion", "zsh", cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("#compdef hgautomation")
    functions = tmp_path / "zfunc"
    functions.mkdir()
    (functions / "_hgautomation").write_text(script.stdout)

    assert "purge-ec2-resources " in _zsh_tab(functions, "hgautomation pur", "resources ")
    assert "--all-owners" in _zsh_tab(functions, "hgautomation purge-ec2-resources --all",
                                      "--all-owners")
    # A list of choices, sorted: x86 is the last.
    listed = _zsh_tab(functions, "hgautomation build-windows-wheel --arch ", "x86")
    assert set(re.findall(r"\b(x86|x64|arm64)\b", listed)) == {"x86", "x64", "arm64"}
    assert "debian12" in _zsh_tab(functions, "hgautomation run-tests-linux --distro ",
                                  "debian12")


def _zsh_tab(functions: Path, line: str, until: str) -> str:
    """What an interactive zsh (no rc files) shows after `line` and a Tab, read until
    `until` appears (or TIMEOUT)."""
    import os
    import select
    import time

    from harness.process import reaped

    master, slave = os.openpty()
    env = {"PATH": os.environ["PATH"], "TERM": "dumb", "HOME": str(functions)}
    proc = subprocess.Popen(["zsh", "-f", "-i"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, seconds: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + seconds
        while marker not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:  # the shell is gone
                    return

    try:
        with reaped(proc):
            os.write(master, f"fpath=({functions} $fpath); autoload -Uz compinit; "
                             "compinit -u -D; print READY$((6*7))\n".encode())
            read_until(b"READY42", TIMEOUT)
            assert b"READY42" in seen, seen.decode(errors="replace")
            seen = b""
            os.write(master, line.encode() + b"\t")
            read_until(until.encode(), TIMEOUT)
    finally:
        os.close(master)
    return seen.decode(errors="replace")
