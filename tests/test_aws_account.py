"""AWS account state, ownership, listing, terminate and purge: the real CLI against moto."""

from __future__ import annotations

import functools
import re
import stat
from pathlib import Path

import pytest
from harness import jsondoc
from harness.aws import live_instances
from harness.cli import mutating_calls, total_calls

from hgautomation.aws.purge import UNTAGGED_SKIP

DEBIAN = "ami-0f3271e513def6192"  # tests/harness/amis.json
CIDR_A = "198.51.100.7/32"
CIDR_B = "198.51.100.8/32"


@pytest.fixture
def run_cli(cli, aws, tmp_path):
    """The CLI against moto, with tmp_path its state directory and working directory."""
    return functools.partial(cli.run, aws=aws, state=tmp_path, cwd=tmp_path, timeout=120)


def _ok(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def _setup(run_cli, owner, cidr=CIDR_A, *extra):
    return _ok(run_cli("-v", "setup-ec2-account", "--owner", owner, "--ingress-cidr", cidr,
                       *extra))


def _ingress(ec2, name):
    group = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"][0]
    return sorted((p["FromPort"], r["CidrIp"]) for p in group["IpPermissions"]
                  for r in p.get("IpRanges", []))


def _our_instance(ec2, owner, name, count=1, managed="1"):
    tags = [{"Key": "Name", "Value": name}, {"Key": "hgautomation:owner", "Value": owner},
            {"Key": "hgautomation:managed", "Value": managed}]
    reply = ec2.run_instances(ImageId=DEBIAN, MinCount=count, MaxCount=count,
                              InstanceType="c5.large",
                              TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    return [i["InstanceId"] for i in reply["Instances"]]


def test_reconcile_creates_then_second_run_mutates_nothing(aws_fresh, tmp_path, run_cli):
    first = _setup(run_cli, "alice")
    assert mutating_calls(first.stderr) >= 8
    key = tmp_path / "keys" / "hg-automation-alice"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")

    ec2, iam = aws_fresh.client("ec2"), aws_fresh.client("iam")
    pair = ec2.describe_key_pairs(KeyNames=["hg-automation-alice"],
                                  IncludePublicKey=True)["KeyPairs"][0]
    assert pair["KeyType"] == "ed25519"
    assert pair["PublicKey"].split()[:2] == (tmp_path / "keys" / "hg-automation-alice.pub") \
        .read_text().split()[:2]
    tags = {t["Key"]: t["Value"] for t in pair["Tags"]}
    assert tags["hgautomation:managed"] == "1" and tags["hgautomation:owner"] == "alice"
    assert "hgautomation:created-at" in tags
    # The Windows launch key pair: RSA 2048 (EC2 refuses ed25519 for Windows AMIs), its
    # private key PKCS#1 PEM 0600 (what `aws ec2 get-password-data --priv-launch-key`
    # reads), tagged like the other.
    windows = tmp_path / "keys" / "hg-automation-alice.windows"
    assert stat.S_IMODE(windows.stat().st_mode) == 0o600
    assert windows.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    pair = ec2.describe_key_pairs(KeyNames=["hg-automation-alice.windows"],
                                  IncludePublicKey=True)["KeyPairs"][0]
    assert pair["KeyType"] == "rsa"
    assert pair["PublicKey"].split()[:2] == (tmp_path / "keys" /
                                             "hg-automation-alice.windows.pub").read_text().split()
    tags = {t["Key"]: t["Value"] for t in pair["Tags"]}
    assert tags["hgautomation:managed"] == "1" and tags["hgautomation:owner"] == "alice"
    assert re.search(r"^private key \(Windows\): .*/keys/hg-automation-alice\.windows$",
                     first.stdout, re.M), first.stdout
    for kind in ("linux", "windows"):
        assert _ingress(ec2, f"hg-{kind}-dev-1-alice") == [(22, CIDR_A)]
    attached = iam.list_attached_role_policies(RoleName="hg-ephemeral-ec2-role-1")
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == \
        ["AmazonSSMManagedInstanceCore"]
    profile = iam.get_instance_profile(InstanceProfileName="hg-ephemeral-ec2-1")
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == \
        ["hg-ephemeral-ec2-role-1"]

    second = _setup(run_cli, "alice")
    assert mutating_calls(second.stderr) == 0, second.stderr


def test_address_change_updates_security_groups(aws_fresh, run_cli):
    _setup(run_cli, "alice", CIDR_A, "--rdp")
    ec2 = aws_fresh.client("ec2")
    assert _ingress(ec2, "hg-windows-dev-1-alice") == [(22, CIDR_A), (3389, CIDR_A)]
    moved = _setup(run_cli, "alice", CIDR_B)
    assert _ingress(ec2, "hg-linux-dev-1-alice") == [(22, CIDR_B)]
    assert _ingress(ec2, "hg-windows-dev-1-alice") == [(22, CIDR_B)]
    assert mutating_calls(moved.stderr) == 4  # one revoke + one authorize per group
    assert mutating_calls(_setup(run_cli, "alice", CIDR_B).stderr) == 0


def test_key_pair_half_present_or_mismatched_is_repaired(aws_fresh, tmp_path, run_cli):
    _setup(run_cli, "alice")
    ec2 = aws_fresh.client("ec2")
    pub = tmp_path / "keys" / "hg-automation-alice.pub"

    def remote_key():
        return ec2.describe_key_pairs(KeyNames=["hg-automation-alice"],
                                      IncludePublicKey=True)["KeyPairs"][0]["PublicKey"]

    ec2.delete_key_pair(KeyName="hg-automation-alice")  # only the local half left
    result = _setup(run_cli, "alice")
    assert "importing" in result.stderr
    assert remote_key().split()[:2] == pub.read_text().split()[:2]

    old = pub.read_text()
    (tmp_path / "keys" / "hg-automation-alice").unlink()  # only the remote half left
    result = _setup(run_cli, "alice")
    assert "replacing" in result.stderr
    assert pub.read_text() != old
    assert remote_key().split()[:2] == pub.read_text().split()[:2]
    assert mutating_calls(_setup(run_cli, "alice").stderr) == 0


def test_foreign_key_pair_with_our_name_is_refused(aws_fresh, run_cli):
    aws_fresh.client("ec2").create_key_pair(KeyName="hg-automation-carol")
    result = run_cli("-q", "setup-ec2-account", "--owner", "carol", "--ingress-cidr", CIDR_A)
    assert result.returncode == 5
    assert result.stderr.count("\n") == 1 and "not tagged as ours" in result.stderr


def test_owner_defaults_to_caller_identity_and_env(aws_fresh, run_cli):
    result = _ok(run_cli("setup-ec2-account", "--ingress-cidr", CIDR_A))
    assert "owner moto" in result.stdout  # moto's caller ARN is .../user/moto
    # The table names and ids; the two long values get lines of their own.
    assert re.search(r"^instance profile +hg-ephemeral-ec2-1$", result.stdout, re.M)
    key = re.search(r"^private key: (.+)$", result.stdout, re.M).group(1)
    assert stat.S_IMODE(Path(key).stat().st_mode) == 0o600
    assert re.search(r"^instance profile: arn:aws:iam::\d{12}:instance-profile/"
                     r"hgautomation/hg-ephemeral-ec2-1$", result.stdout, re.M), result.stdout
    result = _ok(run_cli("setup-ec2-account", "--ingress-cidr", CIDR_A,
                         env={"HGAUTOMATION_OWNER": "Dave-Smith"}))
    assert "hg-linux-dev-1-dave-smith" in result.stdout  # capitals count as lower case
    # An owner that would have to be changed to be used is refused, not normalised:
    # "Dave.Smith" and "Dave-Smith" would otherwise share resources.
    refused = run_cli("setup-ec2-account", "--ingress-cidr", CIDR_A,
                      env={"HGAUTOMATION_OWNER": "Dave.Smith"})
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(
        "configuration error: HGAUTOMATION_OWNER: --owner: invalid owner 'Dave.Smith'")


def test_two_owners_and_look_alikes(aws_fresh, run_cli, tmp_path):
    ec2, iam = aws_fresh.client("ec2"), aws_fresh.client("iam")
    _setup(run_cli, "alice")
    _setup(run_cli, "bob")
    alice = _our_instance(ec2, "alice", "hg-temp-alice-1", count=2)
    bob = _our_instance(ec2, "bob", "hg-temp-bob-1")
    # Look-alikes: another prefix, our prefix without our tag, other tags.
    ec2.create_key_pair(KeyName="hgx-automation-alice")
    ec2.create_key_pair(KeyName="hg-automation")  # an older tool's, untagged
    ec2.create_security_group(GroupName="hg-linux-dev-1", Description="old tool")
    ec2.create_security_group(GroupName="hgx-linux-dev-1-alice", Description="x")
    untagged = ec2.run_instances(ImageId=DEBIAN, MinCount=1, MaxCount=1, TagSpecifications=[{
        "ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "hg-old"}]}]
    )["Instances"][0]["InstanceId"]
    hgx = ec2.run_instances(ImageId=DEBIAN, MinCount=1, MaxCount=1, TagSpecifications=[{
        "ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "hgx-alice"},
                                             {"Key": "hgautomation:owner", "Value": "alice"}]}]
    )["Instances"][0]["InstanceId"]
    other = _our_instance(ec2, "alice", "hg-temp-alice-9", managed="0")[0]
    # A shared image named as the tool names them (family and a 16-digit fingerprint).
    image = ec2.create_image(InstanceId=bob[0], Name="hg-linux-dev-debian12-0123456789abcdef",
                             TagSpecifications=[{"ResourceType": "image", "Tags": [
                                 {"Key": "hgautomation:managed", "Value": "1"},
                                 {"Key": "hgautomation:image",
                                  "Value": "hg-linux-dev-debian12"}]}])["ImageId"]

    listing = _ok(run_cli("list-ec2-resources", "--owner", "alice"))
    assert image in listing.stdout
    # Both of alice's key pairs, and the untagged one of an older tool.
    assert re.search(r"^3 key pairs:$", listing.stdout, re.M), listing.stdout
    assert re.search(r"^key-\S+ +hg-automation-alice\.windows +alice ", listing.stdout, re.M)
    # A table per type, each without its empty columns, within 100 columns.
    assert re.search(r"^3 instances:\nid +name +owner +age +state +\$/hour$",
                     listing.stdout, re.M), listing.stdout
    assert re.search(r"^1 image:\nid +name +owner +age +state$", listing.stdout, re.M)
    assert max(map(len, listing.stdout.splitlines())) <= 100, listing.stdout
    # Every run leaves a full-detail log: each AWS call, the table, the timings.
    listed = jsondoc.check("list-ec2-resources", _ok(run_cli(
        "list-ec2-resources", "--owner", "alice", "-T", "json")).stdout)
    ids = {r["id"] for r in listed["resources"]}
    assert set(alice) | {untagged} <= ids and not ids & set(bob + [hgx, other])
    assert listed["owner"] == "alice" and listed["all_owners"] is False
    assert listed["running_instances"] == sum(r["hourly_usd"] is not None
                                              for r in listed["resources"])
    (log, _json_log) = sorted((tmp_path / "logs").glob("*-list-ec2-resources.log"))
    text = log.read_text()
    assert "aws ec2.DescribeInstances" in text and "aws ec2.DescribeImages" in text
    assert "aws ec2.DescribeInstances" not in listing.stderr  # not shown without -v
    assert alice[0] in text and text.rstrip().endswith("exit 0")
    for iid in alice + [untagged]:
        assert iid in listing.stdout
    for iid in bob + [hgx, other]:
        assert iid not in listing.stdout
    assert re.search(r"^\d+ running instances?, estimated \$", listing.stdout, re.M)

    dry = _ok(run_cli("-v", "purge-ec2-resources", "--owner", "alice", "--dry-run"))
    assert mutating_calls(dry.stderr) == 0
    assert "would terminate (2):" in dry.stdout and alice[1] in dry.stdout
    assert f"{UNTAGGED_SKIP} (" in dry.stdout
    assert max(map(len, dry.stdout.splitlines())) <= 100, dry.stdout
    assert len(live_instances(ec2, **{"hgautomation:owner": "alice"})) == 4
    plan = jsondoc.check("purge-ec2-resources", _ok(run_cli(
        "purge-ec2-resources", "--owner", "alice", "--dry-run", "-T", "json")).stdout)
    assert plan["dry_run"] is True
    planned = {a["id"]: a["action"] for a in plan["actions"]}
    assert all(planned[i] == "would terminate" for i in alice)
    assert planned[untagged].startswith("skipped") and not set(planned) & set(bob)
    assert plan["removed"] + plan["skipped"] == len(plan["actions"])

    purge = _ok(run_cli("purge-ec2-resources", "--owner", "alice"))
    assert "removed" in purge.stdout
    assert "skipped: untagged" in purge.stdout and "hg-old" in purge.stdout
    live = {i["InstanceId"] for i in live_instances(ec2)}
    assert not set(alice) & live
    assert set(bob) | {untagged, hgx, other} <= live
    keys = {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert keys == {"hg-automation-bob", "hg-automation-bob.windows", "hgx-automation-alice",
                    "hg-automation"}
    groups = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert {"hg-linux-dev-1-bob", "hg-windows-dev-1-bob", "hg-linux-dev-1",
            "hgx-linux-dev-1-alice"} <= groups
    assert not {"hg-linux-dev-1-alice", "hg-windows-dev-1-alice"} & groups
    assert iam.get_role(RoleName="hg-ephemeral-ec2-role-1")  # shared: kept

    # The explicit flag removes our-prefix untagged resources, and still nothing else.
    _ok(run_cli("purge-ec2-resources", "--owner", "alice", "--include-untagged"))
    live = {i["InstanceId"] for i in live_instances(ec2)}
    assert untagged not in live and set(bob) | {hgx, other} <= live
    keys = {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert keys == {"hg-automation-bob", "hg-automation-bob.windows", "hgx-automation-alice"}
    groups = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert "hg-linux-dev-1" not in groups and "hgx-linux-dev-1-alice" in groups


def test_terminate_dry_run_and_all_owners(aws_fresh, run_cli):
    ec2 = aws_fresh.client("ec2")
    alice = _our_instance(ec2, "alice", "hg-temp-alice-1", count=2)
    bob = _our_instance(ec2, "bob", "hg-temp-bob-1")
    dry = _ok(run_cli("terminate-ec2-instances", "--owner", "alice", "--dry-run"))
    assert dry.stdout.count("would terminate") == 1  # one table of both
    assert "would terminate (2):" in dry.stdout and all(i in dry.stdout for i in alice)
    assert len(live_instances(ec2)) == 3
    as_json = _ok(run_cli("terminate-ec2-instances", "--owner", "alice", "--dry-run",
                          "-T", "json"))
    document = jsondoc.check("terminate-ec2-instances", as_json.stdout)
    assert document["dry_run"] is True and document["removed"] == 2
    assert sorted(a["id"] for a in document["actions"]) == sorted(alice)
    assert {a["action"] for a in document["actions"]} == {"would terminate"}
    assert "would terminate" in as_json.stderr  # the table, on stderr
    _ok(run_cli("terminate-ec2-instances", "--owner", "alice"))
    assert {i["InstanceId"] for i in live_instances(ec2)} == set(bob)
    result = _ok(run_cli("terminate-ec2-instances", "--owner", "alice", "--all-owners", "--yes"))
    assert "terminated" in result.stdout and bob[0] in result.stdout
    assert live_instances(ec2) == [] and alice


def test_purge_call_budget(aws_fresh, run_cli):
    _setup(run_cli, "alice")
    ec2 = aws_fresh.client("ec2")
    _our_instance(ec2, "alice", "hg-temp-alice-1", count=10)
    _our_instance(ec2, "bob", "hg-temp-bob-1", count=5)
    result = _ok(run_cli("-v", "purge-ec2-resources", "--owner", "alice"))
    assert total_calls(result.stderr) <= 15, result.stderr
    assert "TerminateInstances=1" in result.stderr
    assert live_instances(ec2, **{"hgautomation:owner": "alice"}) == []
    assert len(live_instances(ec2, **{"hgautomation:owner": "bob"})) == 5


@pytest.mark.parametrize("case, code", [
    ("no-credentials", 6), ("bad-region", 7), ("unreachable", 7)])
def test_bad_input_one_line_and_exit_code(aws, tmp_path, case, code, run_cli):
    env = {"AWS_MAX_ATTEMPTS": "2"}
    args = ["list-ec2-resources", "--owner", "alice"]
    if case == "no-credentials":
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env[name] = None  # unset
        empty = tmp_path / "empty-credentials"
        empty.write_text("")
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(empty)
    elif case == "bad-region":
        args = ["--aws-region", "moon-central-1"] + args
    else:
        from harness.net import free_port

        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    result = run_cli(*args, env=env)
    assert result.returncode == code, result.stderr
    # One line of error; before it, at most the announcement of each retry.
    lines = result.stderr.splitlines()
    assert len(lines) == (2 if case == "unreachable" else 1), result.stderr
    assert all("retrying (" in line for line in lines[:-1])
    log = Path(re.search(r" \[log: (.*\.log)\]$", lines[-1]).group(1)).read_text()
    assert lines[-1].split(" [log: ")[0] in log  # the error line, also in the log
    if case == "unreachable":
        assert "retrying (" in log
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    quiet = run_cli("-q", *args, env=env)
    assert quiet.returncode == code and quiet.stderr.count("\n") == 1, quiet.stderr


def test_iam_legacy_adopted_and_extra_roles_reconciled_away(aws_fresh, run_cli):
    import json

    iam = aws_fresh.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    # The old tool's role: same name, no tags, wrong trust, an extra policy.
    iam.create_role(RoleName="hg-ephemeral-ec2-role-1", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName="hg-ephemeral-ec2-role-1", PolicyName="extra",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                            "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    # An outdated role of ours (older version, our path) and a foreign hg- role.
    iam.create_role(RoleName="hg-ephemeral-ec2-role-0", Path="/hgautomation/",
                    AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="hg-someone-elses-role", AssumeRolePolicyDocument=trust)
    _setup(run_cli, "alice")
    role = iam.get_role(RoleName="hg-ephemeral-ec2-role-1")["Role"]
    assert {"Key": "hgautomation:managed", "Value": "1"} in role["Tags"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] == \
        "ec2.amazonaws.com"
    assert iam.list_role_policies(RoleName="hg-ephemeral-ec2-role-1")["PolicyNames"] == []
    names = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert "hg-ephemeral-ec2-role-0" not in names and "hg-someone-elses-role" in names
    assert mutating_calls(_setup(run_cli, "alice").stderr) == 0


def test_rejected_credentials_map_to_their_exit_code():
    from botocore.exceptions import ClientError

    from hgautomation import errors
    from hgautomation.aws.session import translate_errors

    with pytest.raises(errors.AWSCredentialsError) as caught, \
            translate_errors("describe instances"):
        raise ClientError({"Error": {"Code": "AuthFailure", "Message": "bad key"}},
                          "DescribeInstances")
    assert caught.value.exit_code == 6 and "AuthFailure" in caught.value.one_line()


def test_shared_images_go_only_with_images_flag(aws_fresh, run_cli):
    ec2 = aws_fresh.client("ec2")
    builder = _our_instance(ec2, "bob", "hg-image-build-bob-1")[0]
    image_tags = [{"Key": "hgautomation:managed", "Value": "1"},
                  {"Key": "hgautomation:image", "Value": "hg-linux-dev-debian12"}]
    ours = ec2.create_image(InstanceId=builder, Name="hg-linux-dev-debian12-0123",
                            TagSpecifications=[{"ResourceType": "image",
                                                "Tags": image_tags}])["ImageId"]
    foreign = ec2.create_image(InstanceId=builder, Name="hgx-image")["ImageId"]
    snaps = [m["Ebs"]["SnapshotId"] for m in ec2.describe_images(ImageIds=[ours])["Images"][0][
        "BlockDeviceMappings"]]
    _ok(run_cli("purge-ec2-resources", "--owner", "alice"))
    assert {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]} == \
        {ours, foreign}
    refused = run_cli("purge-ec2-resources", "--owner", "alice", "--images")
    assert refused.returncode == 2 and "purge-ec2-resources --images removes" in refused.stderr
    assert ours in {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    result = _ok(run_cli("purge-ec2-resources", "--owner", "alice", "--images", "-y"))
    assert ours in result.stdout and "deleted" in result.stdout
    assert {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]} == {foreign}
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not set(snaps) & left


def _on_a_terminal(cli, aws, state, answer: str, *args: str):
    """The CLI with a pseudo-terminal as stdin, `answer` typed into it."""
    import os
    import subprocess

    master, slave = os.openpty()
    try:
        with cli.popen(*args, aws=aws, state=state, cwd=state, stdin=slave) as proc:
            os.close(slave)
            slave = -1
            os.write(master, answer.encode())
            out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_wide_removal_asks_on_a_terminal_and_refuses_without(aws_fresh, cli, tmp_path,
                                                            run_cli):
    ec2 = aws_fresh.client("ec2")
    alice = _our_instance(ec2, "alice", "hg-temp-alice-1")
    bob = _our_instance(ec2, "bob", "hg-temp-bob-1")
    args = ("terminate-ec2-instances", "--owner", "alice", "--all-owners")

    # No terminal, no --yes: refused before any change, one line, exit 2.
    refused = run_cli(*args)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip() == (
        "usage error: terminate-ec2-instances --all-owners removes other people's or shared "
        "resources; nothing removed (review with --dry-run, then run on a terminal or add "
        "--yes)")
    assert len(live_instances(ec2)) == 2

    # On a terminal: the plan, then the question; anything but yes removes nothing.
    declined = _on_a_terminal(cli, aws_fresh, tmp_path, "n\n", *args)
    assert declined.returncode == 2, declined.stderr
    assert bob[0] in declined.stdout and alice[0] in declined.stdout
    assert "terminate-ec2-instances --all-owners: remove 2 resources? [y/N]" in declined.stderr
    assert declined.stderr.strip().endswith("not confirmed; nothing removed")
    assert len(live_instances(ec2)) == 2

    accepted = _on_a_terminal(cli, aws_fresh, tmp_path, "y\n", *args)
    assert accepted.returncode == 0, accepted.stderr
    assert "removed 2 resources" in accepted.stdout
    assert live_instances(ec2) == []
    # With nothing of anybody's left, there is nothing to ask about.
    _ok(run_cli(*args))


def test_settings_precedence_command_line_env_file_default(aws_fresh, run_cli, tmp_path):
    """--region/--config > HGAUTOMATION_* > <state>/config > default, seen in the region
    a listing reports; --debug names where each value came from."""
    def region(*args, env=None):
        result = _ok(run_cli("list-ec2-resources", "--owner", "alice", "-T", "json", *args,
                             env=env))
        return jsondoc.check("list-ec2-resources", result.stdout)["region"], result.stderr

    default, _ = region()
    (tmp_path / "config").write_text("# my defaults\n[aws]\nregion = eu-west-3\n"
                                     "[linux]\ndistro = ubuntu24.04\n")
    assert default != "eu-west-3"
    assert region()[0] == "eu-west-3"
    env = {"HGAUTOMATION_AWS_REGION": "ap-south-1"}
    assert region(env=env)[0] == "ap-south-1"
    assert region("--config", "aws.region=ca-central-1", env=env)[0] == "ca-central-1"
    found, stderr = region("--region", "us-east-2", "--debug", env=env)
    assert found == "us-east-2" and "setting aws_region" not in stderr
    _found, stderr = region("--debug", env=env)
    assert "setting aws_region = 'ap-south-1' (from HGAUTOMATION_AWS_REGION)" in stderr

    # A bad value or an unknown key in the file: exit 3, naming the file and the key.
    (tmp_path / "config").write_text("[linux]\ndistro = nosuch\n")
    bad = run_cli("run-tests-linux", "-r", ".")
    assert bad.returncode == 3, bad.stderr
    assert bad.stderr.strip().startswith(
        f"configuration error: {tmp_path / 'config'} (linux.distro): --distro: invalid "
        "choice 'nosuch'")
    (tmp_path / "config").write_text("[aws]\nregoin = eu-west-3\n")
    typo = run_cli("list-ec2-resources")
    assert typo.returncode == 3
    assert "unknown setting 'aws.regoin' (did you mean 'aws.region'?)" in typo.stderr


def test_profile_as_the_aws_cli_takes_it(aws_fresh, run_cli, tmp_path):
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(f"[hg]\naws_access_key_id = {aws_fresh.env['AWS_ACCESS_KEY_ID']}\n"
                           f"aws_secret_access_key = {aws_fresh.env['AWS_SECRET_ACCESS_KEY']}\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    _ok(run_cli("list-ec2-resources", "--owner", "alice", "--profile", "hg", env=env))
    missing = run_cli("list-ec2-resources", "--owner", "alice", "--profile", "nosuch", env=env)
    assert missing.returncode == 6, missing.stderr
    assert "nosuch" in missing.stderr.splitlines()[-1]
    assert "Traceback" not in missing.stderr
