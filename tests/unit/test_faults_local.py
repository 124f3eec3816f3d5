"""The pure parts of the local fault handling (tests/test_faults_local.py runs the CLI):
settings files and variables, paths, the log's rotation, options before the command."""

from __future__ import annotations

import io
import os

import pytest

from hgautomation import arguments, cli, console, errors, settings, state
from hgautomation.aws import session as session_mod
from hgautomation.context import Context
from hgautomation.state import StateDir

# -- settings: files read capped and never from a FIFO; [DEFAULT]; variables -------------

def test_read_small_file(tmp_path):
    path = tmp_path / "config"
    assert settings.read_small_file(path) is None  # absent
    path.write_bytes(b"[aws]\n")
    assert settings.read_small_file(path) == b"[aws]\n"
    path.write_bytes(b"x" * 11)
    with pytest.raises(errors.ConfigurationError, match="larger than 10 bytes"):
        settings.read_small_file(path, limit=10)


@pytest.mark.parametrize("kind, says", [("fifo", "a FIFO"), ("dir", "a directory"),
                                        ("dev", "a device")])
def test_read_small_file_refuses_what_is_not_a_regular_file(tmp_path, kind, says):
    """A FIFO with no writer would block open() for ever: it must be refused at once."""
    path = tmp_path / "config"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(errors.ConfigurationError, match=f"it is {says}, not a regular"):
        settings.read_small_file(path)


def keys() -> settings.Keys:
    return settings.Keys(["aws.region", "aws.profile"], lambda: ["linux.distro"])


@pytest.mark.parametrize("text, says", [
    ("[DEFAULT]\nregoin = x\n", r"a \[DEFAULT\] section is not supported"),
    ("[DEFAULT]\nregion = x\n", r"a \[DEFAULT\] section is not supported"),
    ("[Default]\nregion = x\n[aws]\n", r"a \[Default\] section is not supported"),
    ("[awss]\n", r"unknown section \[awss\]"),
    ("[aws]\nregoin = x\n", "unknown setting 'aws.regoin'"),
])
def test_read_file_refuses_defaults_and_unknown_sections(tmp_path, text, says):
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(errors.ConfigurationError, match=says):
        settings.read_file(path, keys())


def test_read_file_reads_known_sections_of_other_commands(tmp_path):
    path = tmp_path / "config"
    path.write_text("[aws]\nregion = us-east-1\n[linux]\n")
    assert settings.read_file(path, keys()) == {"aws.region": ("us-east-1", str(path))}


@pytest.mark.parametrize("value, expected", [(None, 7), ("", 7), ("1", 1), ("60", 60)])
def test_env_number_takes_whole_numbers_in_range(value, expected):
    environ = {} if value is None else {"X": value}
    assert settings.env_number("X", 7, 1, 60, environ) == expected


@pytest.mark.parametrize("value", ["abc", "-5", "0", "61", "9" * 20, "\uff15", "5.5", " 5",
                                   "5 "])
def test_env_number_refuses_anything_else_naming_the_variable(value):
    with pytest.raises(errors.ConfigurationError, match=r"^X=.*: expected a whole number "
                                                        "from 1 to 60$"):
        settings.env_number("X", 7, 1, 60, {"X": value})


def test_tuning_bounds_the_credential_process_by_the_aws_timeout():
    assert session_mod.Tuning.from_environment({}).credential_process_timeout == 60
    tuned = session_mod.Tuning.from_environment({"HGAUTOMATION_AWS_TIMEOUT": "5"})
    assert tuned.credential_process_timeout == 5


def test_every_botocore_process_provider_runs_a_bounded_process():
    """botocore's own ProcessProvider waits without a bound: ours replaces it."""
    from botocore import credentials

    session_mod.bound_credential_processes()
    session_mod.bound_credential_processes()  # idempotent
    provider = credentials.ProcessProvider("p", lambda: {})
    assert provider._popen.func is session_mod.CredentialProcess
    assert provider._popen.args == ("p",)


def test_a_credential_process_must_answer_a_json_object():
    process = object.__new__(session_mod.CredentialProcess)
    process.profile, process.program = "p", "creds"
    process._check_json(b'{"Version": 1}')
    for answer in (b"notjson", b"[1]", b"\xff\xfe", b""):
        with pytest.raises(errors.AWSCredentialsError, match="other than a JSON object"):
            process._check_json(answer)


# -- paths: ~user, no home -----------------------------------------------------------------

def test_local_path_of_an_unknown_user_is_a_configuration_error():
    with pytest.raises(errors.ConfigurationError,
                       match="--x ~nosuchuser4711/a: no user 'nosuchuser4711'"):
        state.local_path("~nosuchuser4711/a", "--x")


def test_no_home_directory_is_a_configuration_error(monkeypatch):
    import pwd

    def no_entry(uid):
        raise KeyError(uid)

    monkeypatch.delenv("HOME")
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    with pytest.raises(errors.ConfigurationError, match="no home directory: HOME is unset"):
        state.check_home()
    with pytest.raises(errors.ConfigurationError, match="no home directory"):
        StateDir.at(None)


def test_local_path_is_absolute_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert state.local_path("rel/x", "--x") == tmp_path / "rel" / "x"


# -- the state directory and the checkout -------------------------------------------------

@pytest.mark.parametrize("where, refused", [("repo/state", True), ("repo", True),
                                            ("state", False), ("repo2/state", False)])
def test_state_directory_inside_the_checkout_is_refused(tmp_path, where, refused):
    (tmp_path / "repo" / ".hg").mkdir(parents=True)
    (tmp_path / "repo" / "sub").mkdir()
    ctx = Context(state=StateDir(tmp_path / where), cwd=tmp_path / "repo" / "sub")
    if refused:
        with pytest.raises(errors.ConfigurationError, match="inside the Mercurial checkout"):
            ctx.check_state_outside_checkout()
    else:
        ctx.check_state_outside_checkout()


def test_state_directory_check_uses_the_named_checkout(tmp_path):
    (tmp_path / "repo" / ".hg").mkdir(parents=True)
    ctx = Context(state=StateDir(tmp_path / "repo" / "s"), cwd=tmp_path,
                  explicit_hg_repo=tmp_path / "repo")
    with pytest.raises(errors.ConfigurationError):
        ctx.check_state_outside_checkout()
    # Without a checkout anywhere there is nothing to refuse.
    Context(state=StateDir(tmp_path / "s"), cwd=tmp_path).check_state_outside_checkout()


# -- the log -----------------------------------------------------------------------------

def test_rotation_skips_what_is_not_a_log_file(tmp_path):
    (tmp_path / "0000-odd.log").mkdir()
    for n in range(cli.LOGS_KEPT + 5):
        (tmp_path / f"{n + 1:04d}-x.log").write_text("")
    cli._rotate_logs(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert len(files) == cli.LOGS_KEPT - 1 and files[0] == "0007-x.log"
    assert (tmp_path / "0000-odd.log").is_dir()


class _Broken(io.StringIO):
    def write(self, text):
        raise OSError(28, "No space left on device")


def test_a_log_that_stops_taking_writes_is_said_once():
    err = io.StringIO()
    out = console.Console(err=err, out=io.StringIO())
    out._log = _Broken()
    out.info("one")
    out.info("two")
    lines = err.getvalue().splitlines()
    assert lines == ["warning: the rest of this run is not logged (cannot write its log: "
                     "No space left on device)", "one", "two"]


# -- first contact: a command's option before the command --------------------------------

@pytest.mark.parametrize("argv, says", [
    (["-T", "json", "list-ec2-resources"], "-T is an option of list-ec2-resources"),
    (["--state-path", "/x", "-Tjson", "list-ec2-resources"],
     "-T is an option of list-ec2-resources"),
    (["--owner", "x", "purge-ec2-resources"], "--owner is an option of purge-ec2-resources"),
    (["-T", "json"], "-T is an option of COMMAND, not a global one"),
])
def test_a_command_option_before_the_command(argv, says):
    with pytest.raises(errors.UsageError, match="put it after the command name") as raised:
        arguments.parse_args(argv, "prog")
    assert raised.value.message.startswith(says)


def test_what_is_not_a_command_option_before_the_command_is_left_alone(tmp_path):
    # -T after the command is where it belongs; the value of a global option that looks
    # like -T is argparse's to judge.
    environ = {"HGAUTOMATION_STATE_PATH": str(tmp_path)}
    parsed = arguments.parse_args(["-v", "list-ec2-resources", "-T", "json"], "prog",
                                  environ=environ)
    assert parsed.json
    with pytest.raises(errors.UsageError) as raised:
        arguments.parse_args(["--state-path", "-T", "list-ec2-resources"], "prog",
                             environ=environ)
    assert "put it after" not in raised.value.message


def test_the_pip_tail_is_its_last_lines(tmp_path):
    from hgautomation import venv_bootstrap as vb

    log = tmp_path / "pip.log"
    log.write_text("a\n\nb\nc\n")
    assert vb._tail(str(log), 2) == ["b", "c"]
    assert vb._tail(str(tmp_path / "none"), 2) == []
    assert vb.pip_log("/v") == os.path.join("/v", vb.PIP_LOG_NAME)


def test_owner_rule_is_in_the_option_help():
    from hgautomation import catalog

    owner = catalog.command("list-ec2-resources").option("owner")
    assert "ASCII letters, digits and dashes, at most 32" in owner.help
