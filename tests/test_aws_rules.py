"""The AWS rules layer in front of moto (tests/harness/aws_rules.py) refuses what AWS refuses.

Each test shows both sides: moto alone accepts the request (so without the layer the
suite would be green where a real account fails), and the suite's endpoint refuses it
with AWS's reply.
"""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from harness.aws import base_images

WINDOWS_AMI = next(i["ami_id"] for i in base_images() if i.get("platform") == "windows")
LINUX_AMI = next(i["ami_id"] for i in base_images() if i["name"].startswith("debian-12"))


def openssh_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH)


def moto_direct(aws):
    """An EC2 client that bypasses the rules (moto as it is)."""
    import boto3

    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=aws.region).client(
        "ec2", endpoint_url=aws.rules.moto_url)


def test_the_whole_suite_talks_to_aws_through_the_rules(aws):
    assert aws.env["AWS_ENDPOINT_URL"] == aws.endpoint_url == aws.rules.url
    assert aws.rules.moto_url != aws.rules.url


def test_windows_ami_with_an_ed25519_key_pair_is_refused(aws_fresh):
    ec2 = aws_fresh.client("ec2")
    ec2.import_key_pair(KeyName="ed", PublicKeyMaterial=openssh_public(
        ed25519.Ed25519PrivateKey.generate()))
    ec2.import_key_pair(KeyName="rsa", PublicKeyMaterial=openssh_public(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)))

    # moto alone launches it: the leniency the layer exists for.
    direct = moto_direct(aws_fresh).run_instances(ImageId=WINDOWS_AMI, MinCount=1, MaxCount=1,
                                                  KeyName="ed")
    assert direct["Instances"]

    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId=WINDOWS_AMI, MinCount=1, MaxCount=1, KeyName="ed")
    assert refused.value.response["Error"]["Code"] == "Unsupported"
    assert "ED25519 key pairs are not supported with Windows AMIs" in str(refused.value)
    assert ("RunInstances", "Unsupported") in aws_fresh.rules.refused

    # What AWS accepts still passes: RSA on Windows, ED25519 on Linux, no key at all.
    assert ec2.run_instances(ImageId=WINDOWS_AMI, MinCount=1, MaxCount=1,
                             KeyName="rsa")["Instances"]
    assert ec2.run_instances(ImageId=LINUX_AMI, MinCount=1, MaxCount=1,
                             KeyName="ed")["Instances"]
    assert ec2.run_instances(ImageId=WINDOWS_AMI, MinCount=1, MaxCount=1)["Instances"]


def test_an_image_made_from_a_windows_instance_is_windows_too(aws_fresh):
    """Our dev images are made from Windows instances: launching one with an ED25519
    pair is refused like launching the base image."""
    ec2 = aws_fresh.client("ec2")
    ec2.import_key_pair(KeyName="ed", PublicKeyMaterial=openssh_public(
        ed25519.Ed25519PrivateKey.generate()))
    instance = ec2.run_instances(ImageId=WINDOWS_AMI, MinCount=1, MaxCount=1)["Instances"][0]
    image = ec2.create_image(InstanceId=instance["InstanceId"], Name="hg-windows-dev-x")
    with pytest.raises(ClientError, match="Unsupported"):
        ec2.run_instances(ImageId=image["ImageId"], MinCount=1, MaxCount=1, KeyName="ed")


@pytest.mark.parametrize("make, accepted", [
    (lambda: ed25519.Ed25519PrivateKey.generate(), True),
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), True),
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096), True),
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072), False),
    (lambda: ec.generate_private_key(ec.SECP256R1()), False),
], ids=["ed25519", "rsa2048", "rsa4096", "rsa3072", "ecdsa"])
def test_import_key_pair_takes_rsa_and_ed25519_only(aws_fresh, make, accepted):
    material = openssh_public(make())
    if accepted or b"ssh-rsa" in material:  # moto itself refuses ECDSA; not RSA 3072
        moto_direct(aws_fresh).import_key_pair(KeyName="direct", PublicKeyMaterial=material)
    ec2 = aws_fresh.client("ec2")
    if accepted:
        ec2.import_key_pair(KeyName="k", PublicKeyMaterial=material)
        return
    with pytest.raises(ClientError) as refused:
        ec2.import_key_pair(KeyName="k", PublicKeyMaterial=material)
    assert refused.value.response["Error"]["Code"] == "InvalidKeyPair.Format"
    assert ("ImportKeyPair", "InvalidKeyPair.Format") in aws_fresh.rules.refused


def test_garbage_key_material_is_refused(aws_fresh):
    with pytest.raises(ClientError, match=r"InvalidKeyPair\.Format"):
        aws_fresh.client("ec2").import_key_pair(
            KeyName="k", PublicKeyMaterial=b"ssh-ed25519 " + base64.b64encode(b"\0\0\0\x05abc"))
    assert ("ImportKeyPair", "InvalidKeyPair.Format") in aws_fresh.rules.refused
