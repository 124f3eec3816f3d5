"""AWS layer pieces called in-process against the moto server: throttling, spot fallback,
images, SSM, fingerprints. (What needs no server, e.g. botocore Stubber tests, is in
tests/unit.)
"""

from __future__ import annotations

import io

import pytest

from hgautomation.aws import account, images, instances, keys, purge, ssm
from hgautomation.aws.session import AWSSession
from hgautomation.context import Context
from hgautomation.state import StateDir

DEBIAN = "ami-0f3271e513def6192"
EC2_THROTTLE = (503, b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                     b"<Message>Request limit exceeded.</Message></Error></Errors>"
                     b"<RequestID>t</RequestID></Response>")
IAM_THROTTLE = (400, b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                     b"<Message>Rate exceeded</Message></Error><RequestId>t</RequestId>"
                     b"</ErrorResponse>")
NO_CAPACITY = (500, b"<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code>"
                    b"<Message>no spot capacity</Message></Error></Errors>"
                    b"<RequestID>t</RequestID></Response>")


class _Raw:
    def __init__(self, body: bytes):
        self._body = io.BytesIO(body)

    def stream(self, *args, **kwargs):
        yield self._body.read()


def _response(request, status: int, body: bytes):
    from botocore.awsrequest import AWSResponse

    return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Raw(body))


@pytest.fixture
def session(aws_fresh, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_fresh.endpoint_url)
    return AWSSession(aws_fresh.region)


@pytest.fixture
def ctx(tmp_path):
    return Context(state=StateDir.at(tmp_path / "state"))


def test_throttling_is_retried_and_the_work_succeeds(session, ctx, aws_fresh):
    injected = {"ec2": 0, "iam": 0}

    def throttle(request, **kwargs):
        service = "iam" if "iam" in kwargs["event_name"] else "ec2"
        sent = injected.setdefault(f"{service}-sent", 0) + 1
        injected[f"{service}-sent"] = sent
        # Every other attempt of the first ones fails: each is retried once.
        if sent % 2 == 1 and injected[service] < 2:
            injected[service] += 1
            status, body = EC2_THROTTLE if service == "ec2" else IAM_THROTTLE
            return _response(request, status, body)
        return None

    session.client("ec2").meta.events.register("before-send.ec2", throttle)
    session.client("iam").meta.events.register("before-send.iam", throttle)
    state = account.ensure_account_state(session, "alice", ctx.state.keys, "192.0.2.1/32")
    assert injected["ec2"] == 2 and injected["iam"] == 2
    assert state.security_group_ids["linux"].startswith("sg-")
    actions = purge.purge(session, purge.Selection(owner="alice"))
    assert {a.resource.name for a in actions} >= {"hg-automation-alice",
                                                  "hg-linux-dev-1-alice"}
    assert aws_fresh.client("ec2").describe_key_pairs()["KeyPairs"] == []


def test_spot_falls_back_to_on_demand(session, aws_fresh):
    refused = []

    def no_spot(request, **kwargs):
        body = request.body or b""
        if "InstanceMarketOptions" in (body.decode() if isinstance(body, bytes) else body):
            refused.append(1)
            status, body = NO_CAPACITY
            return _response(request, status, body)
        return None

    spec = instances.LaunchSpec(owner="alice", image_id=DEBIAN, instance_type="c5.large",
                                spot=True, poll_interval=0.1)
    with instances.temporary_instances(session, spec) as [spot]:
        assert spot.spot
    session.client("ec2").meta.events.register("before-send.ec2.RunInstances", no_spot)
    with instances.temporary_instances(session, spec) as [plain]:
        assert not plain.spot and plain.public_ip
    assert refused
    ec2 = aws_fresh.client("ec2")
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()[
        "Reservations"] for i in r["Instances"]}
    assert states == {spot.id: "terminated", plain.id: "terminated"}


def test_error_inside_the_context_terminates_and_propagates(session, aws_fresh):
    spec = instances.LaunchSpec(owner="alice", image_id=DEBIAN, instance_type="c5.large",
                                poll_interval=0.1)
    with pytest.raises(RuntimeError, match="boom"), instances.temporary_instances(
            session, spec, count=3) as found:
        assert len({i.id for i in found}) == 3
        raise RuntimeError("boom")
    ec2 = aws_fresh.client("ec2")
    assert all(i["State"]["Name"] == "terminated" for r in ec2.describe_instances()[
        "Reservations"] for i in r["Instances"])


def test_image_build_reuse_and_stale_cleanup(session, aws_fresh):
    ec2 = aws_fresh.client("ec2")
    provisioned = []

    def provision(instance):
        state = ec2.describe_instances(InstanceIds=[instance.id])["Reservations"][0][
            "Instances"][0]["State"]["Name"]
        provisioned.append((instance.id, state))

    base = images.find_base_image(session, "136693071363", "debian-12-amd64-*")
    assert base.id == DEBIAN  # the newer of the two debian-12 images
    spec = instances.LaunchSpec(owner="alice", image_id=base.id, instance_type="c5.large",
                                poll_interval=0.1, wait_timeout=30)
    options = dict(family="hg-linux-dev-debian12", provision=provision)
    fp1 = images.fingerprint({"v": 1}, [b"script one"])
    first = images.ensure_image(session, spec, fp=fp1, **options)
    assert provisioned and provisioned[0][1] == "running"
    assert first.fingerprint == fp1 and first.name.startswith("hg-linux-dev-debian12-")
    assert ec2.describe_instances(InstanceIds=[provisioned[0][0]])["Reservations"][0][
        "Instances"][0]["State"]["Name"] == "terminated"
    snaps = first.snapshot_ids
    assert snaps
    snap_tags = ec2.describe_snapshots(SnapshotIds=list(snaps))["Snapshots"][0]["Tags"]
    assert {"Key": "hgautomation:fingerprint", "Value": fp1} in snap_tags

    again = images.ensure_image(session, spec, fp=fp1, **options)
    assert again.id == first.id and len(provisioned) == 1

    fp2 = images.fingerprint({"v": 2}, [b"script one"])
    second = images.ensure_image(session, spec, fp=fp2, **options)
    assert second.id != first.id and len(provisioned) == 2
    ours = [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert ours == [second.id]
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not set(snaps) & left


def test_ssm_run_command_against_moto(session, aws_fresh):
    ec2 = aws_fresh.client("ec2")
    iid = ec2.run_instances(ImageId=DEBIAN, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"]
    result = ssm.run_command(session, iid, ["echo hello"], timeout=30, interval=0.1)
    assert result.status == "Success" and result.instance_id == iid


def test_key_fingerprints_match_what_ec2_reports(session, aws_fresh, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    ec2 = aws_fresh.client("ec2")
    pair = keys.ensure_key_pair(session, tmp_path, "alice")
    remote = ec2.describe_key_pairs(KeyNames=[pair.name])["KeyPairs"][0]
    assert remote["KeyFingerprint"] in keys.fingerprints(pair.public_key)
    # AWS's documented form for imported ed25519: base64 SHA-256 without padding.
    import base64
    import hashlib

    blob = base64.b64decode(pair.public_key.split()[1])
    assert base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=") in \
        keys.fingerprints(pair.public_key)
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key() \
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    reply = ec2.import_key_pair(KeyName="rsa", PublicKeyMaterial=rsa_pub)
    assert reply["KeyFingerprint"] in keys.fingerprints(rsa_pub.decode())
    assert reply["KeyFingerprint"] not in keys.fingerprints(pair.public_key)
