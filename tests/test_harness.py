"""Tests of the test harness itself: each stand-in server really works, offline guards hold."""

from __future__ import annotations

import dataclasses
import errno
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from harness import hgsource, sshd
from harness.aws import base_images
from harness.net import endpoint_guard_error
from harness.pypi import make_wheel

DEBIAN, CANONICAL, AMAZON = "136693071363", "099720109477", "801119661308"


# --- guards -------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://ec2.us-west-2.amazonaws.com", "http://54.1.2.3:5000", "http://10.0.0.1",
    "http://localhost.example.com", "not a url",
])
def test_endpoint_guard_rejects_non_loopback(url):
    assert endpoint_guard_error({"AWS_ENDPOINT_URL": url})
    assert endpoint_guard_error({"AWS_ENDPOINT_URL_EC2": url, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"})


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5000", "http://127.9.9.9", "http://localhost:5000", "http://[::1]:5000",
])
def test_endpoint_guard_accepts_loopback(url):
    assert endpoint_guard_error({"AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_SSM": url}) is None
    assert endpoint_guard_error({"HOME": "/root"}) is None


def test_guard_stops_the_run_before_any_test():
    # A nested pytest over one harmless test, with a real AWS endpoint in its environment:
    # the conftest hook must end the session (exit 3) before that test runs.
    env = {**os.environ, "AWS_ENDPOINT_URL_EC2": "https://ec2.us-west-2.amazonaws.com"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         f"{__file__}::test_session_environment_is_isolated"],
        cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "AWS endpoint outside loopback" in result.stdout + result.stderr
    assert "1 passed" not in result.stdout


def test_session_environment_is_isolated():
    assert "AWS_PROFILE" not in os.environ
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "HGRCPATH"):
        assert Path(os.environ[name]).read_text() == ""
    assert Path(os.environ["AWS_CONFIG_FILE"]).resolve() != Path("~/.aws/config").expanduser()


@pytest.mark.skipif(os.environ.get("HGAUTOMATION_TEST_NETNS") != "1",
                    reason="only inside tests/run's loopback-only network namespace")
def test_network_namespace_has_only_loopback():
    # Look before sending anything: in this namespace the only interface is lo.
    assert sorted(os.listdir("/sys/class/net")) == ["lo"]
    with pytest.raises(OSError) as excinfo:
        socket.create_connection(("192.0.2.1", 9), timeout=2)  # TEST-NET-1, never routed
    assert excinfo.value.errno == errno.ENETUNREACH


# --- aws (moto) -----------------------------------------------------------------------------

@pytest.mark.parametrize("owner, pattern, newest", [
    (DEBIAN, "debian-12-amd64-*", "debian-12-amd64-20251001-2251"),
    (DEBIAN, "debian-13-amd64-*", "debian-13-amd64-20251006-2257"),
    (CANONICAL, "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
     "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20250925"),
    (CANONICAL, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
     "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251001"),
    (AMAZON, "Windows_Server-2022-English-Full-Base-*",
     "Windows_Server-2022-English-Full-Base-2025.10.15"),
    (AMAZON, "Windows_Server-2025-English-Full-Base-*",
     "Windows_Server-2025-English-Full-Base-2025.10.15"),
])
def test_aws_base_images_have_two_versions(aws, owner, pattern, newest):
    images = aws.client("ec2").describe_images(
        Owners=[owner], Filters=[{"Name": "name", "Values": [pattern]}])["Images"]
    assert len(images) == 2
    assert max(images, key=lambda i: i["CreationDate"])["Name"] == newest
    assert all(i["State"] == "available" for i in images)
    if owner == AMAZON:
        assert all(i["Platform"] == "windows" for i in images)


def test_aws_reset_forgets_resources_but_keeps_base_images(aws):
    ec2 = aws.client("ec2")
    ec2.create_key_pair(KeyName="harness-probe")
    aws.reset()
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    names = {i["Name"] for i in ec2.describe_images(Owners=[DEBIAN, CANONICAL, AMAZON])["Images"]}
    assert names == {i["name"] for i in base_images()}


def test_aws_fresh_starts_empty_with_managed_policies(aws_fresh):
    assert aws_fresh.client("ec2").describe_instances()["Reservations"] == []
    policy = aws_fresh.client("iam").get_policy(
        PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    assert policy["Policy"]["PolicyName"] == "AmazonSSMManagedInstanceCore"


def test_aws_env_drives_a_subprocess(aws_fresh, tmp_path):
    # What a CLI test does: the product runs as a subprocess with aws.env on top.
    script = ("import boto3; ec2 = boto3.client('ec2'); "
              "print(ec2.meta.endpoint_url, ec2.meta.region_name, "
              "len(ec2.describe_images(Owners=['136693071363'])['Images']))")
    result = subprocess.run([sys.executable, "-c", script], env={**os.environ, **aws_fresh.env},
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == [aws_fresh.endpoint_url, "us-west-2", "4"]
    assert endpoint_guard_error(aws_fresh.env) is None


# --- ssh_host (sshd) -----------------------------------------------------------------------

def _ssh(host: sshd.SSHHost, *remote: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run(sshd.ssh_command(host, *remote), capture_output=True, text=True,
                          timeout=30, env=env, stdin=subprocess.DEVNULL, check=False)


def test_ssh_host_openssh_login(ssh_host):
    assert (ssh_host.key_path.stat().st_mode & 0o777) == 0o600
    assert ssh_host.known_hosts_path.read_text().startswith(
        f"[127.0.0.1]:{ssh_host.port} ssh-ed25519 ")
    result = _ssh(ssh_host, "echo", "hi", "&&", "id", "-un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["hi", ssh_host.user]


def test_ssh_host_sftp_put_get(ssh_host, tmp_path):
    import paramiko

    payload = os.urandom(1 << 20)
    (tmp_path / "up").write_bytes(payload)
    client = paramiko.SSHClient()
    client.load_host_keys(str(ssh_host.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(ssh_host.host, port=ssh_host.port, username=ssh_host.user,
                   key_filename=str(ssh_host.key_path), look_for_keys=False,
                   allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)
    try:
        with client.open_sftp() as sftp:
            sftp.put(str(tmp_path / "up"), "harness-sftp-probe")
            sftp.get("harness-sftp-probe", str(tmp_path / "down"))
            sftp.remove("harness-sftp-probe")
    finally:
        client.close()
    assert (tmp_path / "down").read_bytes() == payload


def test_ssh_host_refuses_wrong_key(ssh_host, tmp_path):
    wrong = sshd.generate_key(tmp_path / "wrong_key")
    result = _ssh(dataclasses.replace(ssh_host, key_path=wrong), "true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_second_sshd_with_new_host_key_is_detected(ssh_host, sshd_workdir):
    # A second daemon for the same user and key, but its own host key: a client that
    # trusts the first host key under that address must refuse it.
    with sshd.running_sshd(sshd_workdir, ssh_host.user, user_key=ssh_host.key_path) as second:
        assert second.port != ssh_host.port
        assert second.host_public_key != ssh_host.host_public_key
        assert _ssh(second, "true").returncode == 0
        stale = sshd_workdir / "stale_known_hosts"
        stale.write_text(f"[127.0.0.1]:{second.port} {ssh_host.host_public_key}\n")
        result = _ssh(dataclasses.replace(second, known_hosts_path=stale), "true")
        assert result.returncode == 255
        assert "HOST IDENTIFICATION HAS CHANGED" in result.stderr


# --- hg_source -----------------------------------------------------------------------------

def test_hg_source_is_a_mercurial_repo(hg_source):
    node = hgsource.hg("log", "-r", "tip", "-T", "{node}", cwd=hg_source)
    assert len(node) == 40
    description = hgsource.hg("log", "-r", "tip", "-T", "{desc}", cwd=hg_source)
    assert description.startswith("import mercurial ")
    assert (hg_source / "tests" / "run-tests.py").is_file()
    assert len(list((hg_source / "tests").glob("test-*.t"))) > 500
    assert hgsource.hg("status", cwd=hg_source) == ""


@pytest.mark.slow
def test_hg_source_runs_a_real_t_test(hg_source, ssh_host):
    # Mercurial's .t tests misbehave as root, so run one as the unprivileged ssh user,
    # in a copy that user owns. `--local` needs a `make local` build (C extensions);
    # `--with-hg=../hg --pure` runs the source tree's pure-Python hg instead.
    home = Path(pwd.getpwnam(ssh_host.user).pw_dir)
    workdir = Path(tempfile.mkdtemp(prefix="hg-t-", dir=home))
    try:
        src = workdir / "src"
        hgsource.hg("archive", "-R", str(hg_source), str(src))
        (workdir / "tmp").mkdir()
        subprocess.run(["chown", "-R", f"{ssh_host.user}:", str(workdir)], check=True, timeout=60)
        env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", "LANG=C.UTF-8",
               f"TMPDIR={workdir / 'tmp'}"]
        result = subprocess.run(
            ["runuser", "-u", ssh_host.user, "--", *env, "/usr/bin/python3", "run-tests.py",
             "--with-hg=../hg", "--pure", "--timeout=120", "test-empty.t"],
            cwd=src / "tests", capture_output=True, text=True, timeout=300, check=False)
        output = result.stdout + result.stderr  # run-tests.py prints its summary to stderr
        assert result.returncode == 0, output
        assert "# Ran 1 tests, 0 skipped, 0 failed." in output
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- pypi (pypiserver) ---------------------------------------------------------------------

def _twine_upload(pypi, wheel: Path, password: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", pypi.url, "-u", pypi.username, "-p", password, str(wheel)],
        capture_output=True, text=True, timeout=120, check=False)


def test_pypi_upload_list_download(pypi, tmp_path):
    wheel = make_wheel(tmp_path / "dist", "hgtest_upload_probe", "1.0")
    result = _twine_upload(pypi, wheel, pypi.password)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (pypi.packages_dir / wheel.name).is_file()
    with urllib.request.urlopen(pypi.simple_url + "hgtest-upload-probe/", timeout=10) as page:
        assert wheel.name in page.read().decode()
    # --isolated: this machine's pip.conf adds other indexes; talk to ours only.
    subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "-q", "--no-deps",
                    "--index-url", pypi.simple_url, "-d", str(tmp_path / "got"),
                    "hgtest-upload-probe==1.0"], check=True, timeout=120)
    assert (tmp_path / "got" / wheel.name).read_bytes() == wheel.read_bytes()


def test_pypi_refuses_wrong_password(pypi, tmp_path):
    wheel = make_wheel(tmp_path / "dist", "hgtest_denied_probe", "1.0")
    result = _twine_upload(pypi, wheel, "wrong-" + pypi.password)
    assert result.returncode != 0
    assert "403" in result.stdout + result.stderr
    assert not (pypi.packages_dir / wheel.name).exists()


# --- cli (the runner of the real CLI) ------------------------------------------------------

def test_cli_env_is_built_in_one_place(aws, monkeypatch):
    from harness.cli import PROJECT, cli_env

    monkeypatch.setenv("HGAUTOMATION_OWNER", "ambient")
    monkeypatch.setenv("TWINE_PASSWORD", "ambient")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "9")
    env = cli_env()
    assert not [k for k in env if k.startswith(("HGAUTOMATION_", "TWINE_"))]
    assert env["PYTHONPATH"] == str(PROJECT)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["AWS_MAX_ATTEMPTS"] == "9"  # without `aws`: the session's AWS_* as they are
    assert env["AWS_ACCESS_KEY_ID"] == os.environ["AWS_ACCESS_KEY_ID"]
    moto = cli_env(aws=aws)
    assert {k: v for k, v in moto.items() if k.startswith("AWS_")} == aws.env
    assert not [k for k in cli_env(aws=False) if k.startswith("AWS_")]
    extra = cli_env({"HGAUTOMATION_OWNER": "bob", "AWS_ACCESS_KEY_ID": None}, aws=aws)
    assert extra["HGAUTOMATION_OWNER"] == "bob" and "AWS_ACCESS_KEY_ID" not in extra


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is dead too
    except FileNotFoundError:
        return True


# A child that starts a grandchild in its process group, prints its pid and waits.
_PARENT = ("import subprocess, sys, time\n"
           "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
           "print(p.pid, flush=True)\n"
           "time.sleep(120)\n")


def test_cli_run_timeout_kills_the_process_group_and_raises(cli):
    from harness.net import wait_until

    with pytest.raises(subprocess.TimeoutExpired) as caught:
        cli.run(program=("-c", _PARENT), timeout=3)
    grandchild = int(caught.value.output.split()[0])  # the output read after the kill
    wait_until(lambda: _gone(grandchild), 10, f"grandchild {grandchild} to be killed")


def test_cli_popen_block_failing_kills_the_child_and_reraises(cli):
    from harness.net import wait_until

    with pytest.raises(KeyboardInterrupt), cli.popen(program=("-c", _PARENT)) as proc:
        grandchild = int(proc.stdout.readline())
        raise KeyboardInterrupt  # as Ctrl-C in the middle of a test
    assert proc.returncode == -9
    wait_until(lambda: _gone(grandchild), 10, f"grandchild {grandchild} to be killed")


def test_the_unit_tier_runs_as_a_plain_user(ssh_host):
    """No root, no sudo: ssh_host's login user is an ordinary account. (How long it takes
    is printed, not asserted: a timed test fails on a loaded machine, not on slow code.)"""
    import time

    root = Path(__file__).resolve().parents[1]
    user = ssh_host.user
    probe = subprocess.run(
        ["su", user, "-s", "/bin/sh", "-c",
         f"test -r '{root}/tests/unit/test_layers.py' && '{sys.executable}' -c pass"],
        capture_output=True, timeout=60, check=False)
    if probe.returncode != 0:
        pytest.skip("this checkout or the test venv's interpreter is not readable by "
                    "other users on this machine")
    start = time.monotonic()
    result = subprocess.run(
        ["su", user, "-s", "/bin/sh", "-c",
         f"cd '{root}' && '{sys.executable}' -m pytest tests/unit -q -p no:cacheprovider"],
        capture_output=True, text=True, timeout=300, check=False)
    seconds = time.monotonic() - start
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
    print(f"the unit tier as a plain user: {seconds:.1f}s")


def test_the_table_width_check_finds_a_wide_table():
    from harness.cli import check_table_width

    narrow = "title\na    b\n---  -\nx    y\n"
    check_table_width(narrow, ["list"])
    wide = "title\nname" + " " * 97 + "x\n" + "-" * 101 + "  -\n"
    with pytest.raises(AssertionError, match=r"a table of 104 columns .* from list:\nname "):
        check_table_width(wide, ["list"])
    check_table_width("-" * 101 + "x\n", ["list"])  # not a rule: remote output, a diff
