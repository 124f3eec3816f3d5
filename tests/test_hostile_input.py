"""Every subcommand, every option, a list of hostile values: never exit 70, never a traceback.

Exit 70 means "a bug" (an exception the code did not expect). Plain bad input must
always get its own documented exit code and one line. The CLI runs in process
(``cli.main``), inside the suite's loopback-only network namespace: AWS is an
endpoint that refuses connections, host names do not resolve, and the working
directory holds no repository, so each case ends at the first check that refuses it.
"""

from __future__ import annotations

import os

import pytest

from hgautomation import catalog, cli, errors

HOSTILE = {
    "empty": "",
    "blank": "   ",
    "newline": "7.2.1\n",
    "long": "x" * 5000,
    "non-utf8": os.fsdecode(b"\xff\xfe-bad"),
    "unicode-digits": "\u00b2\u0661",
    "dotdot": "../..",
    "negative": "-1",
    "huge": "9" * 40,
    "idna": "box..example.org",
    "label": "a" * 64 + ".example.org",
}

# What a command needs besides the option under test to get past argparse.
REQUIRED = {"publish-windows-artifacts": ["7.2.1"]}
# Options that print help, or tracebacks on purpose.
SKIP = {"-h", "--help", "--debug"}  # --debug shows tracebacks on purpose


def _options(command: str) -> list[tuple[str, bool]]:
    """(option string, takes a value) for every option of ``command`` (its own and the
    global ones, as declared)."""
    found = []
    for option in (*catalog.command(command).options, *catalog.GLOBAL_OPTIONS):
        if option.positional or set(option.flags) & SKIP:
            continue
        found.append((max(option.flags, key=len), option.takes_value))
    return found


CASES = [(command, option, name)
         for command in catalog.COMMANDS
         for option, takes_value in _options(command)
         for name in (HOSTILE if takes_value else ["flag"])]


def test_every_subcommand_has_cases():
    assert {c for c, _, _ in CASES} == set(catalog.COMMANDS)
    assert len(CASES) > 800


@pytest.fixture
def hostile_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no Mercurial repository here
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # refuses at once
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("TWINE_USERNAME", "TWINE_PASSWORD", "HGAUTOMATION_OWNER"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize("command, option, value_name", CASES)
def test_hostile_values_get_a_documented_exit(hostile_env, capsys, command, option,
                                              value_name):
    argv = ["--state-path", str(hostile_env / "state"), command, *REQUIRED.get(command, []),
            option]
    if value_name != "flag":
        argv.append(HOSTILE[value_name])
    code = cli.main(argv, prog="hgautomation")
    out, err = capsys.readouterr()
    assert code != errors.INTERNAL_ERROR_EXIT, err[-3000:]
    assert "Traceback" not in err + out, err[-3000:]
    assert code in set(errors.EXIT_CODES) | {0}, (code, err[-3000:])
    if code != 0:
        lines = [line for line in err.splitlines() if not line.startswith(("warning:", "==>",
                                                                             "    "))]
        assert lines, "a failure must say why"
        assert len(lines[-1]) < 2000 or value_name == "long", lines[-1][:200]
