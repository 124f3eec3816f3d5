"""The Windows flows end to end through the real CLI: moto for EC2/SSM, loopback sshd for SSH.

moto's instances run nothing, so the test plays the instance's first boot: it
reads the user data the tool launched the instance with, takes the host key and
authorized key out of it (as userdata.ps1 would on Windows), starts a loopback
sshd with exactly that host key, and the tool's `--ssh-config` maps the
instance's address there. The tool then connects with the host key it pinned
before launch.

Without more, the first Windows-only step fails (SFTP path /C:/..., `powershell`):
the first tests assert the flow up to there, the clean error and the cleanup.
The `standin` tests add a C:\\ tree at /C: and a stand-in `powershell` program
(tests/windows/standin_powershell.py, NOT PowerShell: it decodes the command and
acts out each script's effect) so image creation, push, build, artifact
copy-back and exit-status propagation run to their end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from harness import hgsource, jsondoc, sshd, tryjobs
from harness.aws import LIVE
from harness.net import free_port
from harness.powershell import params_of

ROOT = Path(__file__).resolve().parents[1]
WINDOWS_2022_NEWEST = "ami-0481743ed9f9d2efe"  # Windows_Server-2022-English-Full-Base-2025.10.15
WINDOWS_2022_OLDER = "ami-0f9f77c37d00ba12e"  # Windows_Server-2022-English-Full-Base-2025.09.10
WINDOWS_2025_PATTERN = "Windows_Server-2025-English-Full-Base-*"
OWNER = "wintester"
CLI_TIMEOUT = 240


@pytest.fixture
def win(cli, aws_fresh, tmp_path, sshd_workdir):
    return WindowsRun(cli, aws_fresh, tmp_path, sshd_workdir)


class WindowsRun:
    """State dir, ssh config and the played first boot for one CLI run."""

    def __init__(self, cli, aws, tmp_path: Path, workdir: Path):
        self.cli = cli
        self.aws = aws
        self.ec2 = aws.client("ec2")
        self.state = tmp_path / "state"
        self.port = free_port()
        self.workdir = workdir
        self.ssh_config = tmp_path / "ssh_config"
        # Every instance address goes to the loopback sshd started below.
        self.ssh_config.write_text(
            f"Host *\n  HostName 127.0.0.1\n  Port {self.port}\n  User {sshd.DEFAULT_USER}\n")
        self.daemon = None

    def args(self, command: str, *extra: str) -> list[str]:
        return ["--ssh-config", str(self.ssh_config), "-v", command,
                "--owner", OWNER, "--ingress-cidr", "127.0.0.1/32", *extra]

    def run(self, command: str, *extra: str, cwd: Path) -> subprocess.CompletedProcess:
        return self.cli.run(*self.args(command, *extra), aws=self.aws, state=self.state,
                            cwd=cwd, timeout=CLI_TIMEOUT)

    def run_with_first_boot(self, command: str, *extra: str,
                            cwd: Path) -> tuple[subprocess.CompletedProcess, dict]:
        """Run the CLI, playing its instance's first boot; returns (result, instance)."""
        with self.cli.popen(*self.args(command, *extra), aws=self.aws, state=self.state,
                            cwd=cwd) as proc:
            instance = self.wait_for_instance(proc)
            self.first_boot(instance["InstanceId"])
            out, err = proc.communicate(timeout=CLI_TIMEOUT)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), instance

    def wait_for_instance(self, proc: subprocess.Popen, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.instances()
            if found:
                return found[0]
            if proc.poll() is not None:
                _out, err = proc.communicate()
                raise AssertionError(f"CLI exited {proc.returncode} before launching:\n{err}")
            time.sleep(0.2)
        raise AssertionError("no instance launched within the bound")

    def instances(self, states=None) -> list[dict]:
        filters = [{"Name": "tag:hgautomation:owner", "Values": [OWNER]}]
        if states:
            filters.append({"Name": "instance-state-name", "Values": states})
        reservations = self.ec2.describe_instances(Filters=filters)["Reservations"]
        return [i for r in reservations for i in r["Instances"]]

    def user_data(self, instance_id: str) -> str:
        value = self.ec2.describe_instance_attribute(
            InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
        return base64.b64decode(value).decode()

    def first_boot(self, instance_id: str) -> None:
        """What userdata.ps1 does on Windows: install the given host key and our public key."""
        # Volumes go with the instance: look at the root volume while it exists.
        (described,) = [i for i in self.instances() if i["InstanceId"] == instance_id]
        volume_ids = [m["Ebs"]["VolumeId"] for m in described["BlockDeviceMappings"]
                      if m["DeviceName"] == "/dev/sda1"]
        self.root_volumes = self.ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]
        data = self.user_data(instance_id)
        ours = data.split("# -- parameters (generated) --", 1)
        assert len(ours) == 2, data
        params = params_of("# -- parameters (generated) --" + ours[1])
        host_key = self.workdir / "injected_host_key"
        host_key.write_text(params["HostKey"])
        host_key.chmod(0o600)
        (self.workdir / "injected_host_key.pub").write_text(params["HostKeyPub"] + "\n")
        # On the port the ssh config already names; our key is there before sshd
        # answers, as userdata.ps1 installs it before starting sshd.
        self.daemon = sshd.start_sshd(self.workdir, host_key=host_key, port=self.port,
                                      authorized=[params["AuthorizedKey"]])
        self.params = params

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def sshd_log(self) -> str:
        return (self.workdir / "sshd.log").read_text()


@pytest.fixture
def played(win):
    yield win
    win.stop()


def our_public_key(state: Path) -> str:
    """The owner's ed25519 key: what the tool logs in with (user data installs it)."""
    pub = state / "keys" / f"hg-automation-{OWNER}.pub"
    return " ".join(pub.read_text().split()[:2])


def test_bootstrap_windows_dev_launches_connects_and_cleans_up(played, hg_source):
    win = played
    result, instance = win.run_with_first_boot("bootstrap-windows-dev", "--hg-repo",
                                               str(hg_source), cwd=hg_source)
    err = result.stderr
    # Connected with the pinned, injected host key and our key; SSM ran; then the
    # Linux stand-in cannot create C:\hgdev\provision over SFTP: a clean error.
    assert result.returncode == 10, err
    assert "cannot create C:\\hgdev\\provision (SFTP /C:" in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert f"Accepted publickey for {sshd.DEFAULT_USER}" in win.sshd_log()

    # Image lookup: the newest Amazon Windows Server 2022 image, our instance config.
    assert instance["ImageId"] == WINDOWS_2022_NEWEST
    assert instance["InstanceType"] == "m6i.xlarge"
    groups = win.ec2.describe_security_groups(
        GroupIds=[g["GroupId"] for g in instance["SecurityGroups"]])["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == [f"hg-windows-dev-1-{OWNER}"]
    assert [(r["FromPort"], r["ToPort"], r["IpRanges"][0]["CidrIp"])
            for r in groups[0]["IpPermissions"]] == [(22, 22, "127.0.0.1/32")]
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    assert tags["hgautomation:owner"] == OWNER
    assert [(v["Size"], v["VolumeType"]) for v in win.root_volumes] == [(100, "gp3")]

    # User data: dead-man switch + our first-boot script with our public key.
    data = win.user_data(instance["InstanceId"])
    assert data.startswith("<powershell>\n") and "</powershell>" in data
    assert "shutdown.exe /s" in data
    assert win.params["AuthorizedKey"] == our_public_key(win.state)
    assert win.params["AuthorizedKey"].startswith("ssh-ed25519 ")
    assert win.params["HostKeyPub"].startswith("ssh-ed25519 ")

    # Launched with the owner's RSA 2048 key pair: EC2 refuses ed25519 ones for Windows
    # AMIs (tests/harness/aws_rules.py), and the Administrator password (RDP) is
    # encrypted with it. The private key is PKCS#1 PEM, 0600, for
    # `aws ec2 get-password-data --priv-launch-key`.
    assert instance["KeyName"] == f"hg-automation-{OWNER}.windows"
    (pair,) = win.ec2.describe_key_pairs(KeyNames=[instance["KeyName"]])["KeyPairs"]
    assert pair["KeyType"] == "rsa"
    assert {t["Key"]: t["Value"] for t in pair["Tags"]}["hgautomation:owner"] == OWNER
    assert_windows_key_file(win.state / "keys" / instance["KeyName"])
    assert win.ec2.get_password_data(InstanceId=instance["InstanceId"])["PasswordData"]

    # SSM: the Windows feature step, on this instance, via AWS-RunPowerShellScript.
    commands = win.aws.client("ssm").list_commands()["Commands"]
    assert len(commands) == 1
    assert commands[0]["DocumentName"] == "AWS-RunPowerShellScript"
    assert commands[0]["InstanceIds"] == [instance["InstanceId"]]
    assert "Install-WindowsFeature -Name NET-Framework-Core | Out-Null" in \
        commands[0]["Parameters"]["commands"]

    # Nothing left: instance terminated, no image registered, per-run files gone.
    assert win.instances(LIVE) == []
    assert win.ec2.describe_images(Owners=["self"])["Images"] == []
    assert list((win.state / "runs").iterdir()) == []


def assert_windows_key_file(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(data, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048


def make_image(win, fingerprint: str, name: str, base: str | None = None) -> str:
    """An image of ours as the AWS layer tags it (built from a throwaway instance);
    *base*: the base image it says it was built on."""
    from hgautomation.aws import images
    from hgautomation.aws import tags as T

    reservation = win.ec2.run_instances(ImageId=WINDOWS_2022_NEWEST, MinCount=1, MaxCount=1,
                                        InstanceType="t3.micro")
    instance_id = reservation["Instances"][0]["InstanceId"]
    tags = T.ours(None, **{T.IMAGE: "hg-windows-dev", T.FINGERPRINT: fingerprint,
                           "Name": name, **({images.BASE_TAG: base} if base else {})})
    image_id = win.ec2.create_image(InstanceId=instance_id, Name=name,
                                    TagSpecifications=T.tag_specs(["image"], tags))["ImageId"]
    win.ec2.terminate_instances(InstanceIds=[instance_id])
    return image_id


def current_fingerprint(repo: Path, pattern: str | None = None) -> str:
    from hgautomation import hgrepo, platforms
    from hgautomation.windows import ec2

    local = hgrepo.LocalRepo(repo, hg=hgsource.hg_executable())
    node = hgrepo.resolve_revision(local, ".")
    return ec2.image_fingerprint(ec2.read_deps_files(local, node),
                                 pattern or platforms.DEFAULT_WINDOWS_BASE_IMAGE)


def test_bootstrap_reuses_the_image_with_the_same_fingerprint(win, hg_source):
    fp = current_fingerprint(hg_source)
    image_id = make_image(win, fp, "hg-windows-dev-current")
    stale_id = make_image(win, "0" * 64, "hg-windows-dev-stale")
    result = win.run("bootstrap-windows-dev", "--hg-repo", str(hg_source), cwd=hg_source)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [image_id, "hg-windows-dev-current"]
    assert win.instances(["pending", "running"]) == []  # nothing launched
    remaining = [i["ImageId"] for i in win.ec2.describe_images(Owners=["self"])["Images"]]
    assert remaining == [image_id]  # the stale one was deregistered
    assert stale_id not in remaining


def test_other_base_image_pattern_means_other_fingerprint(hg_source):
    assert current_fingerprint(hg_source) != \
        current_fingerprint(hg_source, WINDOWS_2025_PATTERN)


def test_a_newer_base_image_is_reported_not_rebuilt(played, hg_source):
    """An image of our recipe built on last month's Windows AMI is used as it is: the
    newer AMI is reported with the command that rebuilds, nothing launched or
    deregistered. With that command (--refresh-image) a build starts on the newest AMI
    (here it stops where the Linux stand-in cannot go on, exit 10) and the image stays."""
    win = played
    image_id = make_image(win, current_fingerprint(hg_source), "hg-windows-dev-current",
                          base=WINDOWS_2022_OLDER)
    result = win.run("bootstrap-windows-dev", "--hg-repo", str(hg_source), cwd=hg_source)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [image_id, "hg-windows-dev-current"]
    node = hgsource.hg("log", "-r", ".", "-T", "{node|short}", cwd=hg_source)
    assert ("a newer Windows base image is available (ami-0481743ed9f9d2efe "
            "Windows_Server-2022-English-Full-Base-2025.10.15; "
            f"{image_id} was built on {WINDOWS_2022_OLDER}): "
            f"bootstrap-windows-dev -r {node} --refresh-image rebuilds") in result.stderr
    assert win.instances() == []
    assert [i["ImageId"] for i in win.ec2.describe_images(Owners=["self"])["Images"]] == \
        [image_id]

    result, instance = win.run_with_first_boot(
        "bootstrap-windows-dev", "--refresh-image", "--hg-repo", str(hg_source),
        cwd=hg_source)
    assert result.returncode == 10, result.stderr
    assert instance["ImageId"] == WINDOWS_2022_NEWEST
    assert instance["KeyName"] == f"hg-automation-{OWNER}.windows"
    assert [i["ImageId"] for i in win.ec2.describe_images(Owners=["self"])["Images"]] == \
        [image_id]
    assert win.instances(LIVE) == []


def test_missing_dependency_script_is_a_clear_error(win, tmp_path):
    repo = tmp_path / "notmercurial"
    hgsource.hg("init", str(repo))
    (repo / "README").write_text("no contrib here\n")
    hgsource.hg("commit", "-A", "-m", "init", "-u", "t <t@example.com>", cwd=repo)
    result = win.run("bootstrap-windows-dev", "--hg-repo", str(repo), cwd=repo)
    assert result.returncode == 4, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("repository error: revision ")
    assert "has no contrib/install-windows-dependencies.ps1" in last
    assert win.instances() == []  # no machine was started


# -- with a stand-in for powershell.exe: the flows run to their end -------------------

STANDIN_PROGRAM = Path(__file__).parent / "windows" / "standin_powershell.py"
STANDIN_POWERSHELL = Path("/usr/local/bin/powershell")  # on sshd's default PATH
DRIVE = Path("/C:")  # C:\ of the stand-in (SFTP names it /C:/ as OpenSSH for Windows does)
MARKER = ".hgautomation-test-fixture"
VENV = sshd.DEFAULT_BASE / "standin-venv-bootstrap"  # venv refuses a path with ':'


@pytest.fixture(scope="module")
def standin_venv() -> Path:
    """A venv with Mercurial that the sshd user can run (system Python, cached wheel)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: use tests/run")
    wheels = sorted((ROOT / "build" / "cache").glob("wheels*/mercurial-7.2.4-*.whl"))
    if not wheels:
        pytest.skip("no cached mercurial wheel (tests/run downloads it before going offline)")
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(VENV)], check=True, timeout=120)
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--isolated", "-q",
                    "--no-index", "--find-links", str(wheels[0].parent), "mercurial==7.2.4"],
                   check=True, timeout=300)
    try:
        yield VENV
    finally:
        shutil.rmtree(VENV, ignore_errors=True)


@pytest.fixture
def standin(standin_venv):
    r"""C:\hgdev on a POSIX tree, and `powershell` answered by the stand-in program.

    /C: is reached absolutely over SFTP and, through ~hgtest/C: -> /C:, by the
    relative paths of `hg push` (ssh://host/C:/hgdev/src, remotecmd C:/hgdev/...).
    """
    home = sshd.ensure_user(sshd.DEFAULT_USER)
    link = home / "C:"
    if DRIVE.exists() and not (DRIVE / MARKER).exists():
        pytest.skip(f"{DRIVE} exists and is not this test's: not touching it")
    if (STANDIN_POWERSHELL.exists() or STANDIN_POWERSHELL.is_symlink()) and \
            not (STANDIN_POWERSHELL.is_symlink()
                 and Path(os.readlink(STANDIN_POWERSHELL)) == STANDIN_PROGRAM):
        pytest.skip(f"{STANDIN_POWERSHELL} exists and is not this test's stand-in")
    shutil.rmtree(DRIVE, ignore_errors=True)
    try:
        DRIVE.mkdir(mode=0o755)
        (DRIVE / MARKER).write_text("created by tests/test_windows_cli.py; safe to delete\n")
        scripts = DRIVE / "hgdev" / "venv-bootstrap" / "Scripts"
        scripts.mkdir(parents=True)
        (scripts / "hg.exe").symlink_to(standin_venv / "bin" / "hg")
        hgsource.hg("init", str(DRIVE / "hgdev" / "src"),
                    executable=str(standin_venv / "bin" / "hg"), timeout=60)
        (DRIVE / "standin").mkdir()
        (DRIVE / "standin" / "wheel-version").write_text("7.2.4\n")
        subprocess.run(["chown", "-R", f"{sshd.DEFAULT_USER}:", str(DRIVE)], check=True,
                       timeout=60)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(DRIVE)
        if not STANDIN_POWERSHELL.is_symlink():
            STANDIN_POWERSHELL.symlink_to(STANDIN_PROGRAM)
        yield DRIVE
    finally:
        if STANDIN_POWERSHELL.is_symlink():
            STANDIN_POWERSHELL.unlink()
        if link.is_symlink():
            link.unlink()
        shutil.rmtree(DRIVE, ignore_errors=True)


def scripts_run(drive: Path) -> list[tuple[str, str]]:
    """(script file name, full script text) of every command the stand-in received, but
    the heartbeats (checked: at least one came, as soon as the tool connected)."""
    log = drive / "standin" / "scripts"
    if not log.exists():
        return []
    ran = [(p.name.split("-", 1)[1], p.read_text()) for p in sorted(log.iterdir())]
    beats = [text for name, text in ran if name == "heartbeat.ps1"]
    assert beats, "no heartbeat reached the instance"
    assert "$Deadline = 'C:\\hgautomation\\deadline'" in beats[0]
    return [(name, text) for name, text in ran if name != "heartbeat.ps1"]


def hg_cat(repo: Path, path: str) -> bytes:
    return hgsource.hg_bytes("--cwd", str(repo), "cat", "-r", ".", path, timeout=60)


def test_bootstrap_windows_dev_builds_and_tags_the_image(played, hg_source, standin):
    from hgautomation.windows import recipes

    win = played
    result, instance = win.run_with_first_boot("bootstrap-windows-dev", "--hg-repo",
                                               str(hg_source), cwd=hg_source)
    assert result.returncode == 0, result.stderr
    fp = current_fingerprint(hg_source)
    image_id, name = result.stdout.split()
    assert name == f"hg-windows-dev-{fp[:16]}"
    (image,) = win.ec2.describe_images(ImageIds=[image_id])["Images"]
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    assert tags["hgautomation:fingerprint"] == fp
    assert tags["hgautomation:image"] == "hg-windows-dev"
    assert instance["ImageId"] == WINDOWS_2022_NEWEST
    # The checkout's own installer (and its settings file) went up unchanged ...
    provision = standin / "hgdev" / "provision"
    assert (provision / "install-windows-dependencies.ps1").read_bytes() == \
        hg_cat(hg_source, "contrib/install-windows-dependencies.ps1")
    assert (provision / "vs2022-settings.json").read_bytes() == \
        hg_cat(hg_source, "contrib/vs2022-settings.json")
    # ... and exactly these scripts ran, byte for byte what the recipes generate.
    ran = scripts_run(standin)
    assert [n for n, _ in ran] == ["provision.ps1", "prepare_image.ps1"]
    assert ran[0][1] == recipes.provision_script(
        "C:\\hgdev\\provision\\install-windows-dependencies.ps1").text
    assert ran[1][1] == recipes.prepare_image_script().text
    assert win.instances(LIVE) == []
    # A second run finds the image by its fingerprint and launches nothing.
    again = win.run("bootstrap-windows-dev", "--hg-repo", str(hg_source), cwd=hg_source)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == [image_id, name]
    assert len(win.instances()) == 1


def clone(source: Path, dest: Path) -> Path:
    hgsource.hg("clone", "-q", str(source), str(dest))
    return dest


def without_cibuildwheel(repo: Path) -> None:
    """Commit the form of an older branch: no Windows wheels declared for cibuildwheel,
    neither by its CI nor by its pyproject.toml."""
    pyproject = repo / "pyproject.toml"
    text = pyproject.read_text()
    assert "[tool.cibuildwheel.windows]" in text
    pyproject.write_text(text.replace("[tool.cibuildwheel.windows]", "[tool.not-windows]"))
    ci = repo / "contrib" / "heptapod-ci.yml"
    text = ci.read_text()
    assert '- "cibuildwheel.exe --output-dir wheels/win32"' in text
    ci.write_text(text.replace('- "cibuildwheel.exe --output-dir wheels/win32"',
                               '- "echo no wheels"'))
    hgsource.hg("commit", "-q", "-m", "no cibuildwheel windows", "-u", "test", cwd=repo)


@pytest.mark.parametrize("builder,pythons,arches,expected", [
    ("cibuildwheel", ["3.12", "3.13"], ["x64", "arm64"],
     [("3.12", "AMD64", "win_amd64"), ("3.12", "ARM64", "win_arm64"),
      ("3.13", "AMD64", "win_amd64"), ("3.13", "ARM64", "win_arm64")]),
    ("pip", ["3.12", "3.13"], ["x64"],
     [("3.12", "x64", "win_amd64"), ("3.13", "x64", "win_amd64")]),
])
def test_build_windows_wheel_copies_back_and_reports(played, hg_source, standin, tmp_path,
                                                     builder, pythons, arches, expected):
    """Wheels the way the revision declares them: through cibuildwheel (7.2.4's CI,
    ARM64 from 3.11 on), or one `pip wheel` per interpreter (older branches)."""
    win = played
    repo = clone(hg_source, tmp_path / "repo")
    if builder == "pip":
        without_cibuildwheel(repo)
    make_image(win, current_fingerprint(repo), "hg-windows-dev-current")
    result, instance = win.run_with_first_boot(
        "build-windows-wheel", "--python-version", *pythons, "--arch", *arches,
        "--hg-repo", str(repo), *(["-T", "json"] if builder == "pip" else []), cwd=repo)
    assert result.returncode == 0, result.stderr
    assert instance["InstanceType"] == "c6i.2xlarge"
    node = hgsource.hg("log", "-r", ".", "-T", "{node}", cwd=repo)
    # hg push + update really happened on the stand-in's C:\hgdev\src.
    remote_node = hgsource.hg(
        "-R", str(standin / "hgdev" / "src"), "log", "-r", ".", "-T", "{node}", timeout=60,
        executable=str(standin / "hgdev" / "venv-bootstrap" / "Scripts" / "hg.exe"))
    assert remote_node == node
    ran = scripts_run(standin)
    script = {"pip": "build_wheel.ps1", "cibuildwheel": "build_wheel_cibuildwheel.ps1"}
    assert [n for n, _ in ran] == ["update_source.ps1", script[builder]] * len(expected)
    for (_name, text), (py, arch, _tag) in zip(ran[1::2], expected):
        xy = py.replace(".", "")
        if builder == "pip":
            assert f"$Python = 'C:\\hgdev\\python{xy}-{arch}\\python.exe'" in text
        else:
            assert f"$Build = 'cp{xy}-*'" in text and f"$Archs = '{arch}'" in text
    names = [f"mercurial-7.2.4-cp{py.replace('.', '')}-cp{py.replace('.', '')}-{tag}.whl"
             for py, _arch, tag in expected]
    assert sorted(p.name for p in (repo / "dist").iterdir()) == sorted(names)
    if builder == "pip":  # -T json: the artifact table as a document, the table on stderr
        document = jsondoc.check("build-windows-wheel", result.stdout)
        assert document["revision"] == node and document["version"] is None
        assert [a["name"] for a in document["artifacts"]] == names
        for artifact in document["artifacts"]:
            data = Path(artifact["path"]).read_bytes()
            assert (artifact["size"], artifact["sha256"]) == \
                (len(data), hashlib.sha256(data).hexdigest())
            assert (artifact["kind"], artifact["arch"]) == ("wheel", "x64")
    table = result.stderr if builder == "pip" else result.stdout
    rows = [line.split() for line in table.splitlines()]
    for (_script_name, script_text), name in zip(ran[1::2], names):
        data = (repo / "dist" / name).read_bytes()
        assert data.endswith(script_text.encode())  # the very file that build made
        assert [name, str(len(data)), hashlib.sha256(data).hexdigest()] in rows
    assert ["artifact", "size", "sha256"] in rows
    declared = {"cibuildwheel": "16 wheels (cibuildwheel; x86, x64, arm64) in "
                                "contrib/heptapod-ci.yml",
                "pip": "12 wheels (pip wheel; x86, x64) in "
                       "contrib/install-windows-dependencies.ps1"}[builder]
    assert f"the revision declares {declared}" in result.stdout + result.stderr
    assert win.instances(LIVE) == []


@pytest.mark.parametrize("older,python", [(True, "3.12"), (False, "3.10")])
def test_undeclared_wheels_are_refused_before_aws(played, hg_source, tmp_path, older,
                                                  python):
    """An older branch declares no ARM64 wheel, and 7.2.4's CI (like its release on
    PyPI) none for 3.9 and 3.10, though its pyproject.toml does: asking for one stops
    before any resource exists, naming what the revision does declare."""
    win = played
    repo = clone(hg_source, tmp_path / "repo")
    if older:
        without_cibuildwheel(repo)
    result = win.run("build-windows-wheel", "--python-version", python, "--arch", "arm64",
                     "--hg-repo", str(repo), cwd=repo)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"usage error: this revision builds no Windows wheel for {python} "
                           "arm64; it declares 3.9 x86, 3.9 x64, ")
    assert ("3.11 arm64" in line) is not older
    assert win.instances() == []


def test_unexpected_artifact_name_fails_the_build(played, hg_source, standin, tmp_path):
    win = played
    repo = clone(hg_source, tmp_path / "repo")
    make_image(win, current_fingerprint(repo), "hg-windows-dev-current")
    (standin / "standin" / "wheel-version").write_text("7.2.3\n")  # the source says 7.2.3
    result, _ = win.run_with_first_boot("build-all-windows-packages", "--version", "7.2.4",
                                        "--hg-repo", str(repo), cwd=repo)
    assert result.returncode == 13, result.stderr
    # The plan: 7.2.4's release, its CI's 16 wheels and the 4 installers.
    assert "build-all-windows-packages: 20 artifacts of " in result.stderr
    assert "wheel 3.11 arm64" in result.stderr and "wheel 3.10 arm64" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "artifact error: expected mercurial-7.2.4-cp39-cp39-win32.whl in C:\\hgdev\\src\\dist")
    assert "found mercurial-7.2.3-cp39-cp39-win32.whl instead" in result.stderr
    assert not (repo / "dist").exists()
    assert win.instances(LIVE) == []


@pytest.mark.parametrize("status", [0, 3])
def test_run_tests_windows_propagates_the_exit_status(played, hg_source, standin, status):
    win = played
    make_image(win, current_fingerprint(hg_source), "hg-windows-dev-current")
    flags = f"--standin-exit={status} test-ancestor.py"
    result, _instance = win.run_with_first_boot(
        "run-tests-windows", "--python-version", "3.11", "--arch", "x86",
        "--test-flags", flags, "--hg-repo", str(hg_source), "-T", "json", cwd=hg_source)
    assert result.returncode == status, result.stderr
    document = jsondoc.check("run-tests-windows", result.stdout)
    assert (document["status"], document["passed"], document["arch"]) == \
        (status, status == 0, "x86")
    ran = scripts_run(standin)
    assert [n for n, _ in ran] == ["update_source.ps1", "run_tests.ps1"]
    assert "$Python = '/c/hgdev/python311-x86/python.exe'" in ran[1][1]
    assert f"$TestFlags = '{flags}'" in ran[1][1]
    if status:
        assert f"run-tests.py exited {status}" in result.stderr
    else:
        assert "tests passed" in result.stderr  # -T json: the human result on stderr
    assert win.instances(LIVE) == []


def test_try_agent_runs_a_windows_job(played, hg_source, standin, tmp_path):
    """A job named ``windows`` runs as run-tests-windows runs a revision: the try's
    bundle applied to a clone, pushed to a temporary Windows instance with no instance
    profile (tested code is untrusted), run-tests.py's report read back over SFTP; the
    failed test run again, then on the base (where it passes: a new failure)."""
    win = played
    make_image(win, current_fingerprint(hg_source), "hg-windows-dev-current")
    store = tryjobs.create_store(win.aws, ("windows",))
    repo = hgsource.clone(hg_source, tmp_path / "repo")
    (repo / "windows-only.txt").write_text("a change tried on Windows\n")
    hgsource.hg("add", "windows-only.txt", cwd=repo)
    hgsource.hg("commit", "-q", "-u", hgsource.COMMIT_USER, "-d", "1 0", "-m", "on Windows",
                cwd=repo)
    try_id, node = store.submit(repo, jobs_=("windows",))
    result, instance = win.run_with_first_boot(
        "try-agent", "--job", "windows", "--windows-python-version", "3.11",
        "--windows-arch", "x86", "--drain", "--hg", hgsource.hg_executable(),
        "--hg-repo", str(hg_source), "--", "--standin-fail-if=windows-only.txt",
        "test-ancestor.py", "test-commit.t", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "IamInstanceProfile" not in instance  # the job's instance has no credentials
    assert f"job windows of try {try_id}: failed (1 passed, 1 failed, 0 skipped)" \
        in result.stdout
    job = store.job(try_id, "windows")
    assert (job["state"], job["attempt"], job["passed"], job["failed"]) == \
        ("failed", 1, 1, ["test-ancestor.py"])
    assert "+  not ok on Windows" in job["failures"][0]["output"]
    ran = scripts_run(standin)
    # The run; the failed test again; the base checked out and the failed test there.
    assert [n for n, _ in ran] == ["update_source.ps1", "run_tests.ps1", "run_tests.ps1",
                                   "update_source.ps1", "run_tests.ps1"]
    base = hgsource.hg("log", "-r", ".^", "-T", "{node}", cwd=repo)
    assert f"$Node = '{node}'" in ran[0][1] and f"$Node = '{base}'" in ran[3][1]
    assert "$Python = '/c/hgdev/python311-x86/python.exe'" in ran[1][1]
    flags = "--standin-fail-if=windows-only.txt"
    assert f"$TestFlags = '{flags} test-ancestor.py test-commit.t --json'" in ran[1][1]
    assert f"$TestFlags = '{flags} test-ancestor.py --json'" in ran[2][1]
    assert f"$TestFlags = '{flags} test-ancestor.py --json'" in ran[4][1]
    log = store.object(job["log_key"]).decode()
    assert "run-tests.py with Windows Python 3.11 x86" in log
    assert sorted(json.loads(store.object(job["report_key"]))) == \
        ["test-ancestor.py", "test-commit.t"]
    assert win.instances(LIVE) == []
