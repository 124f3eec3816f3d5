"""Temporary instances never leak: signals sent to real processes at several points.

Points: while the CLI waits for the (mapped, never-answering) SSH port of a fresh
instance; while RunInstances is in flight (moto has already created the instance,
a proxy holds the reply); and with several instances created in parallel.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aws_cli import HoldingProxy, cli_env, live_instances, popen_cli, wait_for
from harness.net import free_port

HERE = Path(__file__).resolve().parent
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _ssh_config(tmp_path: Path) -> Path:
    # Every host maps to a loopback port where nothing listens: the CLI waits for
    # "sshd" until interrupted, and no packet leaves the machine.
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  HostName 127.0.0.1\n  Port {free_port()}\n")
    return config


def _bootstrap(aws, tmp_path, env=None):
    return popen_cli(aws, tmp_path, "--ssh-config", str(_ssh_config(tmp_path)), "-v",
                     "bootstrap-linux-dev", "--distros", "debian12", "--pythons", "system3",
                     "--owner", "sig", "--ingress-cidr", "127.0.0.1/32", env=env)


def _finish(proc, sig):
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=90)
    assert proc.returncode == EXIT[sig], err
    assert err.strip().splitlines()[-1].startswith("interrupted"), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_waiting_for_ssh(aws_fresh, tmp_path, sig):
    ec2 = aws_fresh.client("ec2")
    proc = _bootstrap(aws_fresh, tmp_path)
    try:
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
        assert "shutdown -h +240" in user_data and "ssh_keys:" in user_data
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert {"hgautomation:run", "hgautomation:expires-at", "Name"} <= tags.keys()
        time.sleep(1.5)  # let the CLI reach its SSH wait (asserted below from its output)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=30)
        raise
    err = _finish(proc, sig)
    assert "==> connect to admin@" in err and "failed after" in err
    assert "terminate 1 temporary instance(s)" in err
    assert live_instances(ec2) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_run_instances_is_in_flight(aws_fresh, tmp_path, sig):
    ec2 = aws_fresh.client("ec2")
    proxy = HoldingProxy(aws_fresh.endpoint_url, hold_seconds=3.0)
    try:
        proc = _bootstrap(aws_fresh, tmp_path,
                          env=cli_env(aws_fresh, AWS_ENDPOINT_URL=proxy.url))
        try:
            wait_for(proxy.held.is_set, 60, "RunInstances to reach moto")
            # moto made the instance; the CLI has not seen its id yet.
            assert len(live_instances(ec2, **{"hgautomation:owner": "sig"})) == 1
        except BaseException:
            proc.kill()
            proc.communicate(timeout=30)
            raise
        _finish(proc, sig)
    finally:
        proxy.close()
    assert live_instances(ec2) == []


def test_run_instances_reply_lost_instances_found_by_run_tag(aws_fresh, tmp_path):
    """moto creates the instance but the CLI never gets the reply (nor its id)."""
    ec2 = aws_fresh.client("ec2")
    proxy = HoldingProxy(aws_fresh.endpoint_url, hold_seconds=0.2, drop=True)
    try:
        env = cli_env(aws_fresh, AWS_ENDPOINT_URL=proxy.url, AWS_MAX_ATTEMPTS="2")
        proc = _bootstrap(aws_fresh, tmp_path, env=env)
        _out, err = proc.communicate(timeout=120)
    finally:
        proxy.close()
    assert proc.returncode == 7, err  # the endpoint kept dropping the connection
    assert proxy.requests.count("RunInstances") == 2  # botocore retried once
    assert "terminate 2 temporary instance(s)" in err
    assert live_instances(ec2) == []


def _driver(aws, tmp_path, count, endpoint=None):
    env = cli_env(aws)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return subprocess.Popen([sys.executable, str(HERE / "aws_driver.py"), str(tmp_path),
                             str(count)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_parallel_creation_interrupted_in_flight(aws_fresh, tmp_path, sig):
    ec2 = aws_fresh.client("ec2")
    proxy = HoldingProxy(aws_fresh.endpoint_url, hold_seconds=3.0)
    try:
        proc = _driver(aws_fresh, tmp_path, 3, proxy.url)
        try:
            wait_for(lambda: proxy.requests.count("RunInstances") == 3, 60,
                     "three parallel RunInstances")
            wait_for(lambda: len(live_instances(ec2)) == 3, 30, "three instances in moto")
        except BaseException:
            proc.kill()
            proc.communicate(timeout=30)
            raise
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=90)
    finally:
        proxy.close()
    assert proc.returncode == EXIT[sig], err
    assert "READY" not in out
    assert live_instances(ec2) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_parallel_instances_interrupted_while_in_use(aws_fresh, tmp_path, sig):
    ec2 = aws_fresh.client("ec2")
    proc = _driver(aws_fresh, tmp_path, 4)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), proc.stderr.read() if proc.poll() is not None else line
        ids = line.split()[1:]
        assert len(ids) == 4 and len(live_instances(ec2)) == 4
    except BaseException:
        proc.kill()
        proc.communicate(timeout=30)
        raise
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=90)
    assert proc.returncode == EXIT[sig], err
    assert "terminate 4 temporary instance(s)" in err
    assert live_instances(ec2) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_parallel_image_builds_interrupted(aws_fresh, tmp_path, sig):
    """bootstrap-linux-dev --parallel: two builds wait for SSH at once, then a signal."""
    ec2 = aws_fresh.client("ec2")
    proc = popen_cli(aws_fresh, tmp_path, "--ssh-config", str(_ssh_config(tmp_path)), "-v",
                     "bootstrap-linux-dev", "--distros", "debian12,ubuntu24.04", "--parallel",
                     "--pythons", "system3", "--owner", "sig", "--ingress-cidr",
                     "127.0.0.1/32")
    try:
        wait_for(lambda: len([i for i in live_instances(ec2, **{"hgautomation:owner": "sig"})
                              if i["State"]["Name"] == "running"]) == 2, 60,
                 "two running instances of ours")
        time.sleep(1.5)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=30)
        raise
    err = _finish(proc, sig)
    assert err.count("==> connect to") == 2
    assert live_instances(ec2) == []
