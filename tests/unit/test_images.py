"""hgautomation.aws.images: fingerprints, image records, lookups and reuse (Stubber)."""

from __future__ import annotations

import hashlib

import pytest

from hgautomation import errors
from hgautomation.aws import images, instances
from hgautomation.aws import tags as T

FAMILY = "hg-linux-dev-debian12"


# -- fingerprint -----------------------------------------------------------------------

def test_fingerprint_is_sha256_hex_and_deterministic():
    fp = images.fingerprint({"a": 1}, [b"x"])
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert fp == images.fingerprint({"a": 1}, [b"x"])


def test_fingerprint_ignores_key_order_and_json_spacing():
    assert images.fingerprint({"a": 1, "b": [1, 2]}) == images.fingerprint({"b": [1, 2], "a": 1})


def test_fingerprint_of_config_only_is_the_canonical_json_hash():
    assert images.fingerprint({"b": 1, "a": "x"}) == \
        hashlib.sha256(b'{"a":"x","b":1}').hexdigest()


@pytest.mark.parametrize("other", [
    ({"a": 2}, [b"x"]),
    ({"a": 1}, [b"y"]),
    ({"a": 1}, [b"x", b""]),
    ({"a": 1}, []),
    ({"a": "1"}, [b"x"]),
])
def test_fingerprint_changes_with_any_input(other):
    assert images.fingerprint(*other) != images.fingerprint({"a": 1}, [b"x"])


def test_fingerprint_keeps_file_boundaries():
    assert images.fingerprint({}, [b"ab", b"c"]) != images.fingerprint({}, [b"a", b"bc"])
    assert images.fingerprint({}, [b"abc"]) != images.fingerprint({}, [b"ab", b"c"])


def test_fingerprint_reads_paths_like_bytes(tmp_path):
    script = tmp_path / "provision.sh"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    assert images.fingerprint({"v": 1}, [script]) == \
        images.fingerprint({"v": 1}, [b"#!/bin/sh\necho hi\n"])
    with pytest.raises(FileNotFoundError):
        images.fingerprint({}, [tmp_path / "missing"])


# -- Image.from_api -----------------------------------------------------------------------

def _api_image(image_id="ami-1", name="img", created="2025-01-01T00:00:00.000Z",
               state="available", tags=None, snapshots=("snap-1",)):
    data = {"ImageId": image_id, "Name": name, "CreationDate": created, "State": state,
            "BlockDeviceMappings": [{"DeviceName": f"/dev/sd{c}", "Ebs": {"SnapshotId": s}}
                                    for c, s in zip("abcdef", snapshots)]}
    data["BlockDeviceMappings"].append({"DeviceName": "/dev/sdz", "VirtualName": "ephemeral0"})
    if tags is not None:
        data["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return data


def test_image_from_api():
    image = images.Image.from_api(_api_image(
        tags={T.FINGERPRINT: "f" * 64, "Name": "x"}, snapshots=("snap-1", "snap-2")))
    assert image.id == "ami-1" and image.name == "img" and image.state == "available"
    assert image.creation_date == "2025-01-01T00:00:00.000Z"
    assert image.snapshot_ids == ("snap-1", "snap-2")
    assert image.fingerprint == "f" * 64


def test_image_from_api_minimal():
    image = images.Image.from_api({"ImageId": "ami-2"})
    assert (image.name, image.creation_date, image.state, image.snapshot_ids) == ("", "", "", ())
    assert image.fingerprint == ""


# -- lookups ----------------------------------------------------------------------------------

def test_find_base_image_takes_the_newest(stub, aws_session):
    stub("ec2").add_response("describe_images", {"Images": [
        _api_image("ami-old", created="2024-01-01T00:00:00.000Z"),
        _api_image("ami-new", created="2025-06-01T00:00:00.000Z"),
        _api_image("ami-mid", created="2025-01-01T00:00:00.000Z"),
    ]}, {"Owners": ["136693071363"], "Filters": [
        {"Name": "name", "Values": ["debian-12-amd64-*"]},
        {"Name": "state", "Values": ["available"]}]})
    assert images.find_base_image(aws_session, "136693071363", "debian-12-amd64-*").id \
        == "ami-new"


def test_find_base_image_none_found(stub, aws_session):
    stub("ec2").add_response("describe_images", {"Images": []})
    with pytest.raises(errors.AWSError, match="no image of owner 1 matches 'x-\\*' in us-west-2"):
        images.find_base_image(aws_session, "1", "x-*")


def _ours(image_id, fp, created, state="available", snapshots=("snap-x",)):
    return _api_image(image_id, f"{FAMILY}-{fp[:16]}", created, state,
                      tags={T.MANAGED: "1", T.IMAGE: FAMILY, T.FINGERPRINT: fp},
                      snapshots=snapshots)


def _expect_find_ours(stub, found):
    stub("ec2").add_response("describe_images", {"Images": found}, {
        "Owners": ["self"], "Filters": [
            {"Name": "tag:hgautomation:managed", "Values": ["1"]},
            {"Name": "tag:hgautomation:image", "Values": [FAMILY]}]})


def test_find_image_wants_the_fingerprint_and_available(stub, aws_session):
    fp = "a" * 64
    _expect_find_ours(stub, [_ours("ami-pending", fp, "2025-02-01", state="pending"),
                             _ours("ami-other", "b" * 64, "2025-03-01"),
                             _ours("ami-good", fp, "2025-01-01")])
    assert images.find_image(aws_session, FAMILY, fp).id == "ami-good"
    _expect_find_ours(stub, [_ours("ami-other", "b" * 64, "2025-03-01")])
    assert images.find_image(aws_session, FAMILY, fp) is None


def test_ensure_image_reuses_and_deregisters_stale_ones_with_snapshots(stub, aws_session,
                                                                       captured):
    fp = "c" * 64
    current = _ours("ami-cur", fp, "2025-05-01", snapshots=("snap-cur",))
    stale = _ours("ami-old", "d" * 64, "2025-01-01", snapshots=("snap-o1", "snap-o2"))
    _expect_find_ours(stub, [current, stale])
    _expect_find_ours(stub, [stale, current])
    ec2 = stub("ec2")
    ec2.add_response("deregister_image", {}, {"ImageId": "ami-old"})
    ec2.add_response("delete_snapshot", {}, {"SnapshotId": "snap-o1"})
    ec2.add_response("delete_snapshot", {}, {"SnapshotId": "snap-o2"})
    spec = instances.LaunchSpec(owner="alice", image_id="ami-base", instance_type="c5.large")
    image = images.ensure_image(aws_session, spec, family=FAMILY, fp=fp,
                                provision=lambda machine: pytest.fail("built, not reused"))
    assert image.id == "ami-cur"
    assert "is up to date" in captured.err_text
    assert "deregistering 1 stale image of hg-linux-dev-debian12: ami-old" \
        in captured.err_text


def test_find_untagged_keeps_only_images_without_our_tags(stub, aws_session):
    stub("ec2").add_response("describe_images", {"Images": [
        _api_image("ami-legacy", "hg-legacy", tags={"Name": "hg-legacy"}),
        _api_image("ami-notours", "hg-x", tags={T.MANAGED: "0"}),
        _api_image("ami-bare", "hg-bare"),
    ]}, {"Owners": ["self"], "Filters": [{"Name": "name", "Values": ["hg-*"]}]})
    assert [i.id for i in images.find_untagged(aws_session)] == ["ami-legacy", "ami-bare"]


# -- wait_available --------------------------------------------------------------------------

def test_wait_available(stub, aws_session, captured):
    ec2 = stub("ec2")
    ec2.add_response("describe_images", {"Images": []}, {"ImageIds": ["ami-1"]})
    ec2.add_response("describe_images", {"Images": [_api_image(state="pending")]})
    ec2.add_response("describe_images", {"Images": [_api_image(state="available")]})
    assert images.wait_available(aws_session, "ami-1", 30, interval=0).state == "available"


@pytest.mark.parametrize("state", ["failed", "invalid", "error", "deregistered"])
def test_wait_available_stops_on_a_dead_image(stub, aws_session, captured, state):
    stub("ec2").add_response("describe_images", {"Images": [_api_image(state=state)]})
    with pytest.raises(errors.AWSError, match=f"image ami-1 became {state}"):
        images.wait_available(aws_session, "ami-1", 30, interval=0)


def test_wait_available_times_out(stub, aws_session, captured):
    stub("ec2").add_response("describe_images", {"Images": [_api_image(state="pending")]})
    with pytest.raises(errors.WaitTimeout, match="image ami-1 still pending after 0s"):
        images.wait_available(aws_session, "ami-1", 0, interval=0)


# -- the image policy shared by Linux and Windows ------------------------------------------

def test_recipe_fingerprint_is_the_base_choice_config_and_files():
    fp = images.recipe_fingerprint("f", "123", "debian-12-*", {"v": 1}, [b"s"])
    assert fp == images.fingerprint({"family": "f", "base_owner": "123",
                                     "base_pattern": "debian-12-*", "v": 1}, [b"s"])
    assert fp != images.recipe_fingerprint("f", "123", "debian-13-*", {"v": 1}, [b"s"])


def test_a_newer_base_is_reported_with_the_rebuild_command(captured):
    base = images.Image("ami-new", "base-2", "2")
    built = images.Image("ami-dev", "dev", "1", tags={images.BASE_TAG: "ami-old"})
    assert images.report_newer_base(built, base, title="Debian 12", rebuild="do-it")
    assert captured.err_text.strip() == (
        "a newer Debian 12 base image is available (ami-new base-2; ami-dev was built on "
        "ami-old): do-it rebuilds")
    # Built on the newest one, or by a version that did not record its base: silence.
    on_newest = images.Image("ami-dev", "dev", "1", tags={images.BASE_TAG: "ami-new"})
    assert not images.report_newer_base(on_newest, base, title="x", rebuild="y")
    assert not images.report_newer_base(images.Image("ami-x", "x", "1"), base, title="x",
                                        rebuild="y")
    assert captured.err_text.count("newer") == 1
