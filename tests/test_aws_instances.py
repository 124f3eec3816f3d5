"""Temporary instances never leak: signals sent to real processes at several points.

Points: while the CLI waits for the (mapped, never-answering) SSH port of a fresh
instance; while RunInstances is in flight (moto has already created the instance,
a proxy holds the reply); and with several instances created in parallel.
"""

from __future__ import annotations

import base64
import signal
import time
from pathlib import Path

import pytest
from harness.aws import HoldingProxy, live_instances
from harness.net import free_port, wait_for

HERE = Path(__file__).resolve().parent
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _ssh_config(tmp_path: Path) -> Path:
    # Every host maps to a loopback port where nothing listens: the CLI waits for
    # "sshd" until interrupted, and no packet leaves the machine.
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  HostName 127.0.0.1\n  Port {free_port()}\n")
    return config


def _bootstrap(cli, aws, tmp_path, env=None):
    """The CLI building one image, started for the test to signal (a context manager)."""
    return cli.popen("--ssh-config", str(_ssh_config(tmp_path)), "-v",
                     "bootstrap-linux-dev", "--distros", "debian12", "--pythons", "system3",
                     "--owner", "sig", "--ingress-cidr", "127.0.0.1/32",
                     aws=aws, state=tmp_path, cwd=tmp_path, env=env)


def _finish(proc, sig):
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=90)
    assert proc.returncode == EXIT[sig], err
    assert err.strip().splitlines()[-1].startswith("interrupted"), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_waiting_for_ssh(cli, aws_fresh, tmp_path, sig):
    ec2 = aws_fresh.client("ec2")
    with _bootstrap(cli, aws_fresh, tmp_path) as proc:
        running = wait_for(lambda: [i for i in live_instances(ec2, **{
            "hgautomation:owner": "sig"}) if i["State"]["Name"] == "running"], 60,
            "a running instance of ours")
        instance = running[0]
        # The dead-man switch is armed on what was launched.
        attr = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"],
                                               Attribute="instanceInitiatedShutdownBehavior")
        assert attr["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
        data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"],
                                               Attribute="userData")["UserData"]["Value"]
        user_data = base64.b64decode(data).decode()
        assert "/run/hgautomation/deadline" in user_data and "+ 3600 ))" in user_data
        assert "ssh_keys:" in user_data
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert {"hgautomation:run", "hgautomation:expires-at", "Name"} <= tags.keys()
        time.sleep(1.5)  # let the CLI reach its SSH wait (asserted below from its output)
        err = _finish(proc, sig)
    assert "==> connect to admin@" in err and "failed after" in err
    assert "terminate 1 temporary instance" in err
    assert live_instances(ec2) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_run_instances_is_in_flight(cli, aws_fresh, tmp_path, sig):
    ec2 = aws_fresh.client("ec2")
    proxy = HoldingProxy(aws_fresh.endpoint_url, hold_seconds=3.0)
    try:
        with _bootstrap(cli, aws_fresh, tmp_path,
                        env={"AWS_ENDPOINT_URL": proxy.url}) as proc:
            wait_for(proxy.held.is_set, 60, "RunInstances to reach moto")
            # moto made the instance; the CLI has not seen its id yet.
            assert len(live_instances(ec2, **{"hgautomation:owner": "sig"})) == 1
            _finish(proc, sig)
    finally:
        proxy.close()
    assert live_instances(ec2) == []


def test_run_instances_reply_lost_instances_found_by_run_tag(cli, aws_fresh, tmp_path):
    """moto creates the instance but the CLI never gets the reply (nor its id)."""
    ec2 = aws_fresh.client("ec2")
    proxy = HoldingProxy(aws_fresh.endpoint_url, hold_seconds=0.2, drop=True)
    try:
        env = {"AWS_ENDPOINT_URL": proxy.url, "AWS_MAX_ATTEMPTS": "2"}
        with _bootstrap(cli, aws_fresh, tmp_path, env=env) as proc:
            _out, err = proc.communicate(timeout=120)
    finally:
        proxy.close()
    assert proc.returncode == 7, err  # the endpoint kept dropping the connection
    assert proxy.requests.count("RunInstances") == 2  # botocore retried once
    assert "terminate 2 temporary instances" in err
    assert live_instances(ec2) == []


def _driver(cli, aws, tmp_path, count, endpoint=None):
    """harness/aws_driver.py (not the CLI) in the CLI's environment; a context manager."""
    env = {"AWS_ENDPOINT_URL": endpoint} if endpoint else None
    return cli.popen(str(tmp_path), str(count), program=[str(HERE / "harness" / "aws_driver.py")],
                     aws=aws, env=env)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_parallel_creation_interrupted_in_flight(cli, aws_fresh, tmp_path, sig):
    ec2 = aws_fresh.client("ec2")
    proxy = HoldingProxy(aws_fresh.endpoint_url, hold_seconds=3.0)
    try:
        with _driver(cli, aws_fresh, tmp_path, 3, proxy.url) as proc:
            wait_for(lambda: proxy.requests.count("RunInstances") == 3, 60,
                     "three parallel RunInstances")
            wait_for(lambda: len(live_instances(ec2)) == 3, 30, "three instances in moto")
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=90)
    finally:
        proxy.close()
    assert proc.returncode == EXIT[sig], err
    assert "READY" not in out
    assert live_instances(ec2) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_parallel_instances_interrupted_while_in_use(cli, aws_fresh, tmp_path, sig):
    ec2 = aws_fresh.client("ec2")
    with _driver(cli, aws_fresh, tmp_path, 4) as proc:
        line = proc.stdout.readline()
        assert line.startswith("READY"), proc.stderr.read() if proc.poll() is not None else line
        ids = line.split()[1:]
        assert len(ids) == 4 and len(live_instances(ec2)) == 4
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=90)
    assert proc.returncode == EXIT[sig], err
    assert "terminate 4 temporary instances" in err
    assert live_instances(ec2) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_parallel_image_builds_interrupted(cli, aws_fresh, tmp_path, sig):
    """bootstrap-linux-dev --parallel: two builds wait for SSH at once, then a signal."""
    ec2 = aws_fresh.client("ec2")
    with cli.popen("--ssh-config", str(_ssh_config(tmp_path)), "-v",
                   "bootstrap-linux-dev", "--distros", "debian12,ubuntu24.04", "--parallel",
                   "--pythons", "system3", "--owner", "sig", "--ingress-cidr",
                   "127.0.0.1/32", aws=aws_fresh, state=tmp_path, cwd=tmp_path) as proc:
        wait_for(lambda: len([i for i in live_instances(ec2, **{"hgautomation:owner": "sig"})
                              if i["State"]["Name"] == "running"]) == 2, 60,
                 "two running instances of ours")
        time.sleep(1.5)
        err = _finish(proc, sig)
    assert err.count("==> connect to") == 2
    assert live_instances(ec2) == []
