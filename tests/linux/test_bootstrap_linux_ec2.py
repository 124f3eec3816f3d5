"""bootstrap-linux-dev on EC2 for real: moto's builder instance is a clean Debian chroot.

The base image and every EC2 call are moto's; the "instance" is the `debian_chroot_host`
fixture (sshd in an overlay of build/cache/debian-root), which every address reaches
through the ssh config's `Host *`. The test plays cloud-init's first boot: until the
tool has launched the builder, the chroot's sshd has no host key (connections drop, as
on a machine still booting); then it gets the host key from the instance's user data,
the distro's login user `admin` (passwordless sudo) and the EC2 key pair's public key.
The tool provisions it with bootstrap-debian.sh (Mercurial from the loopback `pypi`
fixture via --pip-index-url), stops it, creates, tags and waits for the image and
terminates the builder. A second identical run reuses the image.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import paramiko
import pytest
from harness import hgsource
from harness.aws import injected_host_key
from harness.net import LOOPBACK
from harness.process import tail

from hgautomation.aws import tags as T
from hgautomation.linux import ec2 as linux_ec2

pytestmark = pytest.mark.slow

OWNER = "imagetester"
DISTRO = "debian12"
HG_VERSION = "7.2.4"
HOST_KEY = "/etc/ssh/test_host_ed25519_key"  # the chroot sshd's -h (tests/linux/conftest.py)
CLI_TIMEOUT = 600
BUILD_WHEELS = Path(__file__).resolve().parents[2] / "build" / "cache" / "wheels-build"


class RootShell:
    """A root SSH session into the chroot, opened while its first host key is in place;
    it outlives that key, so the test can keep acting as "the machine" while booting."""

    def __init__(self, port: int, key: Path, host_public_key: str, known_hosts: Path):
        known_hosts.write_text(f"[{LOOPBACK}]:{port} {host_public_key}\n")
        self.client = paramiko.SSHClient()
        self.client.load_host_keys(str(known_hosts))
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self.client.connect(LOOPBACK, port=port, username="root", key_filename=str(key),
                            look_for_keys=False, allow_agent=False, timeout=30)

    def run(self, command: str, stdin: bytes = b"") -> str:
        chan = self.client.get_transport().open_session(timeout=30)
        chan.settimeout(120)
        chan.exec_command(command)
        chan.sendall(stdin)
        chan.shutdown_write()
        out = b""
        while True:
            data = chan.recv(65536)
            if not data:
                break
            out += data
        err = chan.makefile_stderr("rb").read()
        status = chan.recv_exit_status()
        assert status == 0, f"{command!r} exited {status}: {err.decode(errors='replace')}"
        return out.decode()

    def close(self) -> None:
        self.client.close()


def all_instances(ec2) -> list[dict]:
    return [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]


def test_bootstrap_linux_dev_builds_image_then_reuses_it(cli, aws_fresh, debian_chroot_host,
                                                         stocked_pypi, hg_source, tmp_path):
    ec2 = aws_fresh.client("ec2")
    pypi = stocked_pypi
    host = debian_chroot_host
    sshd_log = host.upper.parent / "sshd.log"
    # The "public repository" the image clones: a local one, served over http.
    public_repo = hgsource.clone(hg_source, tmp_path / "public")
    root = RootShell(host.port, host.root_key, host.host_public_key, tmp_path / "root_known")
    with hgsource.served(public_repo) as clone_url:
        _build_then_reuse(cli, aws_fresh, ec2, pypi, host, sshd_log, root, public_repo,
                          clone_url, tmp_path)


def _build_then_reuse(cli, aws_fresh, ec2, pypi, host, sshd_log, root, public_repo, clone_url,
                      tmp_path):
    try:
        # Not booted yet: no host key, so the tool's first connections are dropped and
        # retried (a key it did not inject would be a hard host-key error instead).
        root.run(f"rm -f {HOST_KEY} {HOST_KEY}.pub")

        config = tmp_path / "ssh_config"
        # Every instance address (moto's 54.x …) is the chroot; no User/IdentityFile:
        # the tool must bring the distro's login user and the EC2 key pair's key.
        config.write_text(f"Host *\n  HostName {LOOPBACK}\n  Port {host.port}\n")
        state = tmp_path / "state"
        workdir = tmp_path / "cwd"  # not a Mercurial repository
        workdir.mkdir()
        args = ["--state-path", str(state), "--ssh-config", str(config),
                "bootstrap-linux-dev", "--distros", DISTRO, "--pythons", "system3",
                "--owner", OWNER, "--ingress-cidr", "127.0.0.1/32",
                "--pip-index-url", pypi.simple_url, "--clone-url", clone_url, "--no-rust"]

        start = time.monotonic()
        with cli.popen(*args, cwd=workdir, aws=aws_fresh) as proc:
            deadline = time.monotonic() + 120
            while not all_instances(ec2):
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "no instance launched"
                time.sleep(0.2)
            (builder,) = all_instances(ec2)
            # cloud-init's first boot: the injected host key, the login user with
            # passwordless sudo, the key pair's public key for it.
            private, public = injected_host_key(ec2, builder["InstanceId"])
            (pair,) = ec2.describe_key_pairs(KeyNames=[builder["KeyName"]],
                                            IncludePublicKey=True)["KeyPairs"]
            login = linux_ec2.base_user(DISTRO)
            root.run(
                f"useradd --create-home --shell /bin/bash {login} && usermod -p '*' {login}"
                f" && echo '{login} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users"
                f" && chmod 0440 /etc/sudoers.d/90-cloud-init-users"
                f" && install -d -m 0700 -o {login} -g {login} /home/{login}/.ssh"
                f" && cat > /home/{login}/.ssh/authorized_keys"
                f" && chown {login}: /home/{login}/.ssh/authorized_keys",
                stdin=pair["PublicKey"].strip().encode() + b"\n")
            root.run(f"cat > {HOST_KEY}.pub", stdin=public.encode() + b"\n")
            root.run(f"umask 077 && cat > {HOST_KEY}.tmp && mv {HOST_KEY}.tmp {HOST_KEY}",
                     stdin=private.encode())
            out, err = proc.communicate(timeout=CLI_TIMEOUT)
        build_seconds = time.monotonic() - start
        assert proc.returncode == 0, err + "\n--- sshd log:\n" + tail(sshd_log)
        print(f"bootstrap-linux-dev (EC2, build): {build_seconds:.0f}s")

        # The image: ours, named and tagged with the fingerprint of our recipe (not of
        # the base AMI of the day) and its Pythons, and with the base it was built on.
        recipe = linux_ec2.recipe_fingerprint(DISTRO, clone_url, rust=False)
        fp = linux_ec2.image_fingerprint(recipe, ["system3"])
        family = linux_ec2.family(DISTRO)
        images = ec2.describe_images(Owners=["self"], Filters=[
            {"Name": f"tag:{T.MANAGED}", "Values": ["1"]}])["Images"]
        (image,) = images
        tags = T.tag_dict(image.get("Tags"))
        assert image["Name"] == f"{family}-{fp[:16]}"
        assert image["State"] == "available"
        assert tags[T.IMAGE] == family and tags[T.FINGERPRINT] == fp
        assert tags[linux_ec2.RECIPE_TAG] == recipe
        assert tags[linux_ec2.SCRIPTS_TAG] == linux_ec2.scripts_fingerprint(DISTRO)
        assert tags[linux_ec2.PYTHONS_TAG] == "system3"
        assert tags[linux_ec2.BASE_TAG] == builder["ImageId"]
        # The builder's root volume was resized on the base image's root device.
        (base,) = ec2.describe_images(ImageIds=[builder["ImageId"]])["Images"]
        assert [m["DeviceName"] for m in builder.get("BlockDeviceMappings", [])] \
            == [base["RootDeviceName"]]
        assert image["ImageId"] in out and image["Name"] in out
        assert f"image {image['ImageId']} {image['Name']} available" in err
        # The builder: launched from the base image, with its user data, then gone.
        (builder,) = all_instances(ec2)
        assert builder["State"]["Name"] == "terminated"
        # Sized for compiling the Pythons (8 vCPUs), its price said before the build.
        assert builder["InstanceType"] == linux_ec2.BUILD_INSTANCE_TYPE == "c5.2xlarge"
        assert (f"building {family}-{fp[:16]} on a c5.2xlarge (about $0.34/hour while it "
                "builds)") in err
        assert list((state / "runs").iterdir()) == []  # the per-build known_hosts

        # The provisioning really ran in the chroot, over SSH as admin with sudo.
        assert f"Accepted publickey for {login}" in sshd_log.read_text(errors="replace")
        assert (host.upper / "hgdev" / "venv-bootstrap" / "bin" / "hg").exists()
        assert re.search(r"^hg:", (host.upper / "etc" / "passwd").read_text(), re.M)
        assert (host.upper / "etc" / "sudoers.d" / "90-hgautomation-hg").exists()
        authorized = (host.upper / "home" / "hg" / ".ssh" / "authorized_keys").read_text()
        assert " ".join(pair["PublicKey"].split()[:2]) in authorized
        version = root.run("sudo -u hg /hgdev/venv-bootstrap/bin/hg version -q")
        assert f"Mercurial Distributed SCM (version {HG_VERSION})" in version
        # The clone is baked in: the public repository's history, non-publishing.
        public_tip = hgsource.hg("log", "-r", "tip", "-T", "{node}", cwd=public_repo)
        baked = root.run("sudo -u hg /hgdev/venv-bootstrap/bin/hg -R /hgdev/src log -r tip "
                         "-T '{node}\\n'; sudo -u hg /hgdev/venv-bootstrap/bin/hg -R /hgdev/src "
                         "config phases.publish")
        assert baked.split() == [public_tip, "False"]
        assert sorted(p.name for p in (host.upper / "hgdev" / "wheelhouse").iterdir()) \
            == sorted(p.name for p in BUILD_WHEELS.glob("*.whl"))

        # A run on a machine of that image pushes only what the public repository lacks.
        repo = hgsource.clone(public_repo, tmp_path / "mine")
        for n in (1, 2):
            (repo / f"mine-{n}.txt").write_text(f"{n}\n")
            hgsource.hg("add", f"mine-{n}.txt", cwd=repo)
            hgsource.hg("commit", "-q", "-u", hgsource.COMMIT_USER, "-m", f"mine {n}", cwd=repo)
        run_config = tmp_path / "ssh_config_hg"
        key = state / "keys" / T.key_pair_name(OWNER)
        run_config.write_text(f"Host machine\n  HostName {LOOPBACK}\n  Port {host.port}\n"
                              f"  User hg\n  IdentityFile {key}\n")
        proc = cli.run("--state-path", str(state), "--ssh-config", str(run_config),
                       "run-tests-linux", "--host", "machine", "--accept-new-host-key",
                       "--hg", hgsource.hg_executable(),
                       "--with-hg=/hgdev/venv-bootstrap/bin/hg", "test-empty-dir.t", cwd=repo,
                       timeout=CLI_TIMEOUT)
        assert proc.returncode == 0, proc.stderr
        assert "pushed 2 changesets" in proc.stderr

        # Same inputs again: the image is reused, nothing is launched or created.
        start = time.monotonic()
        with cli.popen("-v", *args, cwd=workdir, aws=aws_fresh) as proc:
            out, err = proc.communicate(timeout=CLI_TIMEOUT)
        reuse_seconds = time.monotonic() - start
        assert proc.returncode == 0, err
        print(f"bootstrap-linux-dev (EC2, reuse): {reuse_seconds:.1f}s")
        assert f"image {image['ImageId']} {image['Name']} is up to date" in err
        summary = next(line for line in err.splitlines() if "mutating AWS calls" in line)
        assert "RunInstances" not in summary and "CreateImage" not in summary, summary
        assert image["ImageId"] in out
        assert len(all_instances(ec2)) == 1
        assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] \
            == [image["ImageId"]]
    finally:
        root.close()
