"""run-tests-linux through the EC2 path: moto instance + `--ssh-config` to a loopback sshd.

moto's instances run nothing, so the test plays the instance's first boot: it reads the
cloud-init user data the tool launched with, takes the host key the tool generated out
of it, and starts a loopback sshd with exactly that key on the port the ssh config's
`Host *` names. The tool pins that key (under the instance id) before connecting; the
contract (/hgdev, /hgwork) is the `linux_dev_host` fixture's.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from harness import hgsource, sshd
from harness.aws import injected_host_key
from harness.net import free_port

from hgautomation import platforms
from hgautomation.aws import tags as T
from hgautomation.linux import ec2 as linux_ec2

pytestmark = pytest.mark.slow

OWNER = "linuxtester"
DISTRO = "debian12"
LIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]
CLI_TIMEOUT = 300


def register_dev_image(ec2, pythons=("system3",), on_older_base=True) -> str:
    """A `hg-linux-dev-debian12` image of the current recipe, as bootstrap-linux-dev
    --pythons would leave it; built on the older of the two Debian 12 base images."""
    owner_id, pattern = platforms.LINUX_DISTROS[DISTRO]
    bases = sorted(ec2.describe_images(Owners=[owner_id], Filters=[
        {"Name": "name", "Values": [pattern]}])["Images"], key=lambda i: i["CreationDate"])
    assert len(bases) == 2  # tests/harness/amis.json
    base = bases[0] if on_older_base else bases[-1]
    recipe = linux_ec2.recipe_fingerprint(DISTRO)
    (builder,) = ec2.run_instances(ImageId=base["ImageId"], MinCount=1, MaxCount=1,
                                   InstanceType="t3.micro")["Instances"]
    image_id = ec2.create_image(InstanceId=builder["InstanceId"],
                                Name=f"{linux_ec2.family(DISTRO)}-prebuilt")["ImageId"]
    ec2.terminate_instances(InstanceIds=[builder["InstanceId"]])
    ec2.create_tags(Resources=[image_id], Tags=[
        {"Key": T.MANAGED, "Value": "1"}, {"Key": T.IMAGE, "Value": linux_ec2.family(DISTRO)},
        {"Key": T.FINGERPRINT, "Value": linux_ec2.image_fingerprint(recipe, pythons)},
        {"Key": linux_ec2.RECIPE_TAG, "Value": recipe},
        {"Key": linux_ec2.SCRIPTS_TAG, "Value": linux_ec2.scripts_fingerprint(DISTRO)},
        {"Key": linux_ec2.PYTHONS_TAG, "Value": ",".join(pythons)},
        {"Key": linux_ec2.BASE_TAG, "Value": base["ImageId"]}])
    return image_id


def our_instances(ec2, states=None) -> list[dict]:
    filters = [{"Name": f"tag:{T.OWNER}", "Values": [OWNER]}]
    if states:
        filters.append({"Name": "instance-state-name", "Values": states})
    return [i for r in ec2.describe_instances(Filters=filters)["Reservations"]
            for i in r["Instances"]]


def test_ec2_instance_runs_tests_and_is_terminated(cli, aws_fresh, linux_dev_host, hg_source,
                                                   sshd_workdir, tmp_path):
    ec2 = aws_fresh.client("ec2")
    image_id = register_dev_image(ec2)
    port = free_port()
    config = tmp_path / "ssh_config"
    # Every instance address (moto's 54.x …) goes to the loopback sshd started below.
    config.write_text(f"Host *\n  HostName 127.0.0.1\n  Port {port}\n"
                      f"  User {linux_dev_host.user}\n"
                      f"  IdentityFile {linux_dev_host.ssh.key_path}\n")
    state = tmp_path / "state"
    repo = hgsource.clone(hg_source, tmp_path / "repo")
    args = ["--ssh-config", str(config), "run-tests-linux", "--distro", DISTRO,
            "--instance-type", "c5.large", "--owner", OWNER, "--ingress-cidr", "127.0.0.1/32",
            "--hg", hgsource.hg_executable(), "--results-dir", str(tmp_path / "results"),
            "--with-hg=/hgdev/venv-bootstrap/bin/hg", "test-empty-dir.t", "test-issue1089.t"]
    # The instance's dead-man switch file, as its user data would have made it; the
    # tool's heartbeat must push the deadline an hour ahead. (No watcher runs here.)
    switch = Path("/run/hgautomation")
    assert not switch.exists(), "a dead-man switch directory on the test machine"
    switch.mkdir()
    (switch / "deadline").write_text("0\n")
    (switch / "deadline").chmod(0o666)
    daemon = None
    try:
        with cli.popen(*args, cwd=repo, aws=aws_fresh, state=state) as proc:
            deadline = time.monotonic() + 120
            while not our_instances(ec2):
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "no instance launched"
                time.sleep(0.2)
            (instance,) = our_instances(ec2)
            # First boot: sshd comes up with the host key the tool injected.
            host_key = sshd_workdir / "injected_host_key"
            private, public = injected_host_key(ec2, instance["InstanceId"])
            host_key.write_text(private)
            host_key.chmod(0o600)
            (sshd_workdir / "injected_host_key.pub").write_text(public + "\n")
            # On the port the ssh config already names.
            daemon = sshd.start_sshd(sshd_workdir, linux_dev_host.user, host_key=host_key,
                                     user_key=linux_dev_host.ssh.key_path, port=port)
            out, err = proc.communicate(timeout=CLI_TIMEOUT)
        beat = int((switch / "deadline").read_text())
    finally:
        if daemon is not None:
            daemon.stop()
        shutil.rmtree(switch, ignore_errors=True)

    assert proc.returncode == 0, err
    assert abs(beat - (time.time() + 3600)) < 300, beat  # renewed while connected
    # An image built with a subset of the Pythons serves a run of one of them; its
    # newer base image is reported, not acted on.
    assert instance["ImageId"] == image_id
    assert "a newer Debian 12 base image is available" in err
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [image_id]
    assert instance["InstanceType"] == "c5.large"
    # The root volume is resized on the image's own root device, no extra volume.
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    devices = [m["DeviceName"] for m in instance.get("BlockDeviceMappings", [])]
    assert devices == [image["RootDeviceName"]], (devices, image["RootDeviceName"])
    assert "passed 2, failed 0, skipped 0 (2 tests)" in out
    assert "pushed 0 changesets" in err or "nothing to push" in err
    assert (tmp_path / "results" / "report.json").exists()
    sshd_log = (sshd_workdir / "sshd.log").read_text()
    assert f"Accepted publickey for {linux_dev_host.user}" in sshd_log
    # The instance is gone and so is the per-run known_hosts.
    assert our_instances(ec2, LIVE) == []
    assert list((state / "runs").iterdir()) == []
