"""hgautomation.linux.ec2's image policy: what keys an image, which image serves a run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from hgautomation import platforms
from hgautomation.aws import account, deadman, images, instances
from hgautomation.aws import tags as T
from hgautomation.context import Context
from hgautomation.linux import ec2
from hgautomation.options import AWSOptions
from hgautomation.state import StateDir


@pytest.mark.parametrize("distro,title", [("debian12", "Debian 12"), ("debian13", "Debian 13"),
                                          ("ubuntu22.04", "Ubuntu 22.04"),
                                          ("ubuntu24.04", "Ubuntu 24.04")])
def test_distro_title(distro, title):
    assert platforms.distro_title(distro) == title


def test_recipe_is_ours_not_the_base_ami_of_the_day(tmp_path):
    base = ec2.recipe_fingerprint("debian12")
    assert base == ec2.recipe_fingerprint("debian12")  # nothing looked up, nothing dated
    assert base != ec2.recipe_fingerprint("debian13")
    assert base != ec2.recipe_fingerprint("debian12", clone_url="http://127.0.0.1:1/")
    assert base != ec2.recipe_fingerprint("debian12", rust=False)
    script = tmp_path / "bootstrap.sh"
    script.write_bytes(ec2.BOOTSTRAP_SCRIPT.read_bytes() + b"\n# changed\n")
    assert base != ec2.recipe_fingerprint("debian12", script=script)


def test_image_fingerprint_is_recipe_and_the_set_of_pythons():
    recipe = ec2.recipe_fingerprint("debian12")
    assert ec2.image_fingerprint(recipe, ["3.12", "system3"]) == \
        ec2.image_fingerprint(recipe, ["system3", "3.12", "3.12"])
    assert ec2.image_fingerprint(recipe, ["system3"]) != \
        ec2.image_fingerprint(recipe, ["system3", "3.12"])


def _image(id_, created, recipe, pythons, fp=None, scripts=None) -> images.Image:
    return images.Image(id=id_, name=id_, creation_date=created, tags={
        T.FINGERPRINT: fp or ec2.image_fingerprint(recipe, pythons.split(",")),
        ec2.RECIPE_TAG: recipe, ec2.PYTHONS_TAG: pythons,
        ec2.SCRIPTS_TAG: scripts or ec2.scripts_fingerprint("debian12")})


def test_image_pythons_always_include_system3():
    assert ec2.image_pythons(_image("a", "1", "r", "3.12")) == {"system3", "3.12"}
    assert ec2.image_pythons(images.Image(id="b", name="b", creation_date="1")) == {"system3"}


def test_stale_images_are_other_recipes_and_older_builds_of_the_same():
    new = _image("new", "3", "r2", "system3,3.12")
    is_stale = ec2._stale("r2")
    assert is_stale(_image("old-recipe", "1", "r1", "system3,3.12"), new)
    assert is_stale(_image("same-fp-older", "2", "r2", "system3,3.12"), new)
    # Same recipe, other Pythons: still serves runs of its Pythons.
    assert not is_stale(_image("subset", "2", "r2", "system3"), new)


class FakeAWS:
    session = object()


def test_image_for_tests_takes_the_newest_of_our_scripts_having_the_python(monkeypatch,
                                                                           captured):
    recipe = ec2.recipe_fingerprint("debian12")
    no_rust = ec2.recipe_fingerprint("debian12", rust=False)
    found = [_image("old-scripts-312", "1", "other", "system3,3.12", scripts="old"),
             _image("subset-312", "2", recipe, "system3,3.12"),
             _image("subset-313", "3", no_rust, "system3,3.13"),
             _image("all", "4", "other", ",".join(platforms.LINUX_PYTHONS), scripts="old")]
    monkeypatch.setattr(images, "find_ours", lambda session, family: found)
    reported = []
    monkeypatch.setattr(ec2, "report_newer_base", lambda aws, d, image: reported.append(image.id))
    built = []
    monkeypatch.setattr(ec2, "ensure_image", lambda *a, **k: built.append(a[3]) or "built")
    assert ec2.image_for_tests(None, FakeAWS(), "debian12", "3.12").id == "subset-312"
    assert ec2.image_for_tests(None, FakeAWS(), "debian12", "system3").id == "subset-313"
    assert reported == ["subset-312", "subset-313"] and built == []
    # None of the current recipe has 3.9: one with every Python is built.
    assert ec2.image_for_tests(None, FakeAWS(), "debian12", "3.9") == "built"
    assert built == [platforms.LINUX_PYTHONS]


def test_block_devices_use_the_images_root_device():
    (root,) = ec2._block_devices("/dev/sda1")
    assert root["DeviceName"] == "/dev/sda1" and root["Ebs"]["VolumeSize"] == ec2.ROOT_VOLUME_GB
    root, spare = ec2._block_devices("/dev/xvda", spare_gb=32)
    assert (root["DeviceName"], spare["DeviceName"]) == ("/dev/xvda", ec2.SPARE_DEVICE)


def test_temporary_hosts_launch_one_spec_of_the_account_state(monkeypatch, tmp_path):
    """The launch site: one LaunchSpec from the account state, each host with the Linux
    heartbeat (a field lost on the way, e.g. the spare disk, fails here)."""
    state = account.AccountState(
        owner="alice", key_name="hg-alice", key_path=Path("/keys/k"), public_key="ssh-ed25519 A",
        security_group_ids={"linux": "sg-l", "windows": "sg-w"}, instance_profile_arn="arn:p")
    aws = account.AWS(object(), "alice", AWSOptions(spot=True), state)
    image = images.Image("ami-dev", "dev", "1", root_device_name="/dev/xvda")
    monkeypatch.setattr(ec2, "image_for_tests", lambda ctx, aws, distro, python: image)
    launched = []

    @contextlib.contextmanager
    def fake_launch(session, spec, *, count=1):
        launched.append((spec, count))
        yield [instances.Instance(f"i-{n}", f"192.0.2.{n}", None) for n in range(count)]

    monkeypatch.setattr(ec2, "temporary_instances", fake_launch)
    ctx = Context(state=StateDir.at(tmp_path / "state"))
    with ec2.temporary_hosts(ctx, aws, count=2, distro="debian12", instance_type="c5.xlarge",
                             needs_disk=True) as hosts:
        assert [h.instance_id for h in hosts] == ["i-0", "i-1"]
        assert all(h.heartbeat == deadman.heartbeat("linux") for h in hosts)
        assert hosts[0].block_device == ec2.SPARE_DEVICE
    ((spec, count),) = launched
    assert count == 2
    assert (spec.owner, spec.image_id, spec.instance_type, spec.platform, spec.purpose) == (
        "alice", "ami-dev", "c5.xlarge", "linux", "linux-debian12")
    assert (spec.key_name, spec.security_group_ids, spec.instance_profile_arn, spec.spot) == (
        "hg-alice", ("sg-l",), "arn:p", True)
    assert [m["DeviceName"] for m in spec.block_device_mappings] == ["/dev/xvda",
                                                                     ec2.SPARE_DEVICE]
    assert spec.user_data.startswith("#cloud-config")
