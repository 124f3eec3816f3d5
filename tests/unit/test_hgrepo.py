"""hgautomation.hgrepo: how hg is run and how its answers and failures are read (no hg run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hgautomation import errors, hgrepo, ssh

NODE = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def fake_run(monkeypatch):
    """Replace subprocess.run; returns the list of (argv, kwargs) it was called with."""
    calls = []

    def install(result=None, raises=None):
        def run(argv, **kwargs):
            calls.append((argv, kwargs))
            if raises is not None:
                raise raises
            return subprocess.CompletedProcess(argv, *result)
        monkeypatch.setattr(subprocess, "run", run)
        return calls
    return install


def test_command_prefixes_the_hg_and_the_repository():
    repo = hgrepo.LocalRepo(Path("/src/hg"), hg="/opt/hg/bin/hg")
    assert repo.command("log", "-r", ".") == ["/opt/hg/bin/hg", "--cwd", "/src/hg", "log",
                                             "-r", "."]
    assert hgrepo.LocalRepo(Path("/r")).command("id") == ["hg", "--cwd", "/r", "id"]


def test_run_uses_hgplain_no_stdin_and_a_timeout(fake_run, monkeypatch):
    monkeypatch.setenv("HGPLAIN", "0")
    monkeypatch.setenv("KEEP_ME", "1")
    calls = fake_run((0, b"out", b""))
    result = hgrepo.LocalRepo(Path("/r")).run("status", timeout=12, env={"HGUSER": "x"})
    assert result.stdout == b"out"
    ((argv, kwargs),) = calls
    assert argv == ["hg", "--cwd", "/r", "status"]
    assert kwargs["env"]["HGPLAIN"] == "1" and kwargs["env"]["KEEP_ME"] == "1"
    assert kwargs["env"]["HGUSER"] == "x"
    assert kwargs["timeout"] == 12 and kwargs["stdin"] == subprocess.DEVNULL
    assert kwargs["capture_output"] is True


def test_failing_hg_is_a_local_repo_error_with_its_last_line(fake_run):
    fake_run((255, b"", b"warning: x\nabort: no repository found in '/r'!\n\n"))
    with pytest.raises(errors.LocalRepoError) as raised:
        hgrepo.LocalRepo(Path("/r")).run("status")
    assert raised.value.exit_code == 4
    assert raised.value.message == "no repository found in '/r'!"


def test_failing_hg_without_stderr(fake_run):
    fake_run((3, b"", b""))
    with pytest.raises(errors.LocalRepoError, match="hg status exited 3"):
        hgrepo.LocalRepo(Path("/r")).run("status")


def test_unchecked_failure_is_returned(fake_run):
    fake_run((1, b"", b"no changes found\n"))
    assert hgrepo.LocalRepo(Path("/r")).run("bundle", check=False).returncode == 1


def test_missing_hg_is_a_configuration_error(fake_run):
    fake_run(raises=FileNotFoundError(2, "No such file", "hgx"))
    with pytest.raises(errors.ConfigurationError, match="'hgx' not found") as raised:
        hgrepo.LocalRepo(Path("/r"), hg="hgx").run("id")
    assert raised.value.exit_code == 3 and "PATH" in raised.value.hint


def test_hanging_hg_is_a_wait_timeout(fake_run):
    fake_run(raises=subprocess.TimeoutExpired(["hg"], 5))
    with pytest.raises(errors.WaitTimeout, match="'hg log -r' did not finish within 5s"):
        hgrepo.LocalRepo(Path("/r")).run("log", "-r", "x", timeout=5)


# -- resolve_revision ---------------------------------------------------------------------------

@pytest.mark.parametrize("result,message", [
    ((255, b"", b"abort: unknown revision 'nope'\n"),
     "cannot resolve revision 'nope' in /r: unknown revision 'nope'"),
    ((0, b"", b""), "revision 'nope' names 0 changesets in /r; name exactly one"),
    ((0, f"{NODE}\n{NODE}\n".encode(), b""), "names 2 changesets"),
])
def test_resolve_revision_errors(fake_run, result, message):
    fake_run(result)
    with pytest.raises(errors.LocalRepoError, match=message):
        hgrepo.resolve_revision(hgrepo.LocalRepo(Path("/r")), "nope")


def test_resolve_revision(fake_run):
    calls = fake_run((0, f"{NODE}\n".encode(), b""))
    assert hgrepo.resolve_revision(hgrepo.LocalRepo(Path("/r")), "tip") == NODE
    assert calls[0][0][3:] == ["log", "-r", "tip", "-T", "{node}\\n"]


# -- push ------------------------------------------------------------------------------------------

TARGET = ssh.Target(name="box", hostname="192.0.2.5", port=2222, user="hg",
                    identity_files=(Path("/keys/id"),))


def test_push_counts_added_changesets_and_pins_the_key(monkeypatch, tmp_path, captured):
    seen = {}

    def run(argv, **kwargs):
        config = argv[argv.index("--config") + 1].split("ssh -F ", 1)[1]
        seen["config"] = Path(config).read_text()
        seen["argv"] = argv
        out = b"pushing to ssh://hgautomation-target//hgdev/src\nremote: added 2 changesets " \
              b"with 5 changes to 3 files\nremote: added 1 changeset with 1 changes\n"
        return subprocess.CompletedProcess(argv, 0, out, b"")

    monkeypatch.setattr(subprocess, "run", run)
    result = hgrepo.push(hgrepo.LocalRepo(tmp_path), NODE, TARGET, tmp_path / "known_hosts")
    assert result.pushed and result.changesets == 3
    assert "  HostKeyAlias [192.0.2.5]:2222" in seen["config"]
    assert f"UserKnownHostsFile {tmp_path}/known_hosts" in seen["config"]
    argv = seen["argv"]
    assert argv[-8:] == ["push", "-v", "-f", "-r", NODE, "-r", "file(.hgtags)",
                         "ssh://hgautomation-target//hgdev/src"]
    assert "ui.remotecmd=/hgdev/venv-bootstrap/bin/hg" in argv


def test_push_with_nothing_to_push(fake_run, tmp_path, captured):
    fake_run((1, b"no changes found\n", b""))
    result = hgrepo.push(hgrepo.LocalRepo(tmp_path), NODE, TARGET, tmp_path / "kh")
    assert (result.pushed, result.changesets) == (False, 0)
    assert result.output == ["no changes found"]


def test_push_failure_is_a_remote_command_error(fake_run, tmp_path, captured):
    fake_run((255, b"pushing\n", b"remote: Permission denied (publickey).\n"
                                 b"abort: no suitable response from remote hg\n"))
    with pytest.raises(errors.RemoteCommandError) as raised:
        hgrepo.push(hgrepo.LocalRepo(tmp_path), NODE, TARGET, tmp_path / "kh")
    exc = raised.value
    assert exc.exit_code == 10 and exc.status == 255 and exc.command == "hg push"
    assert exc.message == ("hg push to hg@box:2222 failed (exit 255): "
                           "abort: no suitable response from remote hg")
    assert "Permission denied" in exc.output_tail


def test_a_revset_parse_error_keeps_its_reason(fake_run):
    # hg prints the reason first, then lines that only point at the position.
    fake_run((255, b"", b"hg: parse error at 4: not a prefix: end\n(foo(\n     ^ here)\n"))
    with pytest.raises(errors.LocalRepoError) as raised:
        hgrepo.resolve_revision(hgrepo.LocalRepo(Path("/r")), "foo(")
    assert raised.value.message == ("cannot resolve revision 'foo(' in /r: "
                                    "parse error at 4: not a prefix: end")


def test_the_null_revision_of_an_empty_repository_is_refused(fake_run):
    fake_run((0, b"0000000000000000000000000000000000000000\n", b""))
    with pytest.raises(errors.LocalRepoError, match="null revision: /r has no changeset"):
        hgrepo.resolve_revision(hgrepo.LocalRepo(Path("/r")), ".")
