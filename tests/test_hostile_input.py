"""Every subcommand, every option, a list of hostile values: each case exits with the code
it must get (from the table below), one line, never 70, never a traceback.

Exit 70 means "a bug" (an exception the code did not expect). Plain bad input must
always get its own documented exit code and one line. The CLI runs in process
(``cli.main``), inside the suite's loopback-only network namespace: AWS is an
endpoint that refuses connections, host names do not resolve, and the working
directory holds no repository, so each case ends at the first check that refuses it:
the option's own validator (exit 2) when it refuses the value, else the first check the
command makes of the world (``BASELINE``), unless the value itself fails a check made
before that one (``OWN_CHECK``). The expected code comes from these tables, written from
the code and docs/faults.rst, never from a run.

Breaking looks like: a validator removed or loosened (e.g. ``options.owner`` returning
its text unchecked) lets its hostile values through to the command's next check, and
their cases fail with 4 or 7 instead of 2; a check that moves (AWS before the repository)
fails every case of the command.
"""

from __future__ import annotations

import os

import pytest

from hgautomation import catalog, cli, errors

# The codes of docs/faults.rst that the cases end with.
USAGE = errors.UsageError.exit_code  # 2
CONFIG = errors.ConfigurationError.exit_code  # 3
REPO = errors.LocalRepoError.exit_code  # 4
CREDENTIALS = errors.AWSCredentialsError.exit_code  # 6
ENDPOINT = errors.AWSEndpointError.exit_code  # 7
CONNECTION = errors.HostConnectionError.exit_code  # 8

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

# What a command needs besides the option under test to get past its own checks of the
# command line, so that a case reaches the check the option's value must meet.
REQUIRED = {
    "publish-windows-artifacts": ["7.2.1"],
    "build-all-windows-packages": ["--version", "7.2.1"],
    "build-inno": ["--version", "7.2.1"],
    "build-wix": ["--version", "7.2.1"],
    "check-host": ["--host", "box.invalid"],  # .invalid never resolves (RFC 6761)
    "destroy-try-server": ["--yes"],
    "completion": ["bash"],
}
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


# Where each command stops with harmless input (REQUIRED and nothing else) in
# hostile_env: its first check of the world.
_AWS_FIRST = ("bootstrap-linux-dev", "terminate-ec2-instances", "purge-ec2-resources",
              "list-ec2-resources", "setup-ec2-account", "deploy-try-server",
              "destroy-try-server")  # AWS first: the endpoint refuses (faults.rst: 7)
_REPO_FIRST = ("bootstrap-windows-dev", "build-all-windows-packages", "build-inno",
               "build-wix", "build-windows-wheel", "run-tests-linux", "run-tests-windows",
               "publish-windows-artifacts", "try", "try-agent")  # no repository here: 4
BASELINE = {
    **dict.fromkeys(_AWS_FIRST, ENDPOINT),
    **dict.fromkeys(_REPO_FIRST, REPO),
    "check-host": CONNECTION,  # box.invalid does not resolve (faults.rst: 8)
    "completion": 0,  # prints the script; reads no AWS, repository or host
}

# The hostile values each validator (an Option's ``validator``) lets through; it refuses
# every other one (exit 2). Options with ``choices`` refuse them all.
ACCEPTS = {
    "parse_host_spec": {"unicode-digits", "negative", "huge"},  # well-formed names
    "version": {"huge"},  # 9999...: a PEP 440 version in normal form
    "table_name": {"huge", "idna", "label"},  # DynamoDB: [A-Za-z0-9_.-]{3,255}
    "_bucket_name": {"huge", "idna"},  # S3: 3-63 of [a-z0-9.-]
    "non_empty": set(HOSTILE) - {"empty", "blank"},
    "_job_name": set(), "job_name": set(), "parse": set(),  # parse: options.bounded_int
    "cidr": set(), "owner": set(), "port": set(), "repository_url": set(),
    "try_id": set(),  # a try id: 8 digits T 6 digits Z - 8 hex
}
# Options without a declared validator that cli.py checks before anything else.
EDGE_CHECKED = {
    "--identity": set(),  # must name a readable file (cli._identity): 2
    "--config": set(),  # SECTION.KEY=VALUE with a known key: 2
}


def _own_check(command: str, option: str, value_name: str) -> int | None:
    """The code of a check that an accepted value itself fails, before the command's
    first check of the world; None if it meets none."""
    if option == "--state-path" and value_name == "long":
        return CONFIG  # the state directory cannot be read: name too long
    if option == "--aws-profile" and command in _AWS_FIRST:
        return CREDENTIALS  # "the config profile (...) could not be found"
    if option == "--ssh-config" and command == "check-host" and value_name != "empty":
        return CONFIG  # "ssh config ... does not exist" ("": none given)
    if (command, option) == ("bootstrap-linux-dev", "--host"):
        return CONNECTION  # a host given: no AWS; the name does not resolve
    if (command, option) == ("try", "--failed"):
        return USAGE  # "--failed goes with --rerun ID"
    return None


def expected_exit(command: str, option: str, value_name: str) -> int:
    """The exit code the case must get, from the tables above."""
    if value_name != "flag":
        declared = next(o for o in (*catalog.command(command).options,
                                    *catalog.GLOBAL_OPTIONS) if option in o.flags)
        if declared.choices is not None:
            accepted: set[str] = set()
        elif declared.validator is not None:
            accepted = ACCEPTS[declared.validator.__name__]
        else:
            accepted = EDGE_CHECKED.get(option, set(HOSTILE))
        if value_name not in accepted:
            return USAGE
    own = _own_check(command, option, value_name)
    return own if own is not None else BASELINE[command]


CASES = [(command, option, name)
         for command in catalog.COMMANDS
         for option, takes_value in _options(command)
         for name in (HOSTILE if takes_value else ["flag"])]


def test_every_subcommand_has_cases():
    assert {c for c, _, _ in CASES} == set(catalog.COMMANDS) == set(BASELINE)
    assert len(CASES) > 800
    codes = [expected_exit(*case) for case in CASES]
    assert set(codes) <= set(errors.EXIT_CODES) | {0}
    # Most cases are refused by a validator; a good share go past it.
    assert codes.count(USAGE) > len(CASES) / 3 and len(CASES) - codes.count(USAGE) > 500


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
def test_hostile_values_get_their_exit_code(hostile_env, capsys, command, option,
                                           value_name):
    argv = ["--state-path", str(hostile_env / "state"), command, *REQUIRED.get(command, []),
            option]
    if value_name != "flag":
        argv.append(HOSTILE[value_name])
    code = cli.main(argv, prog="hgautomation")
    out, err = capsys.readouterr()
    assert code != errors.INTERNAL_ERROR_EXIT, err[-3000:]
    assert "Traceback" not in err + out, err[-3000:]
    assert code == expected_exit(command, option, value_name), (code, err[-3000:])
    if code != 0:
        lines = [line for line in err.splitlines() if not line.startswith(("warning:", "==>",
                                                                             "    "))]
        assert lines, "a failure must say why"
        assert len(lines[-1]) < 2000 or value_name == "long", lines[-1][:200]
