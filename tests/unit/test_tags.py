"""hgautomation.aws.tags: owner names, our tags, server-side filters, timestamps."""

from __future__ import annotations

import datetime as dt

import pytest

from hgautomation.aws import tags as T

UTC = dt.timezone.utc


@pytest.mark.parametrize("raw,expected", [
    ("alice", "alice"),
    ("  Alice  ", "alice"),
    ("Alice.Smith@Example.COM", "alice-smith-example-com"),
    ("a__b  c", "a-b-c"),
    ("--x--", "x"),
    ("日本", ""),
    ("", ""),
    ("a" * 40, "a" * 32),
    # Truncation must not leave a trailing dash.
    ("a" * 31 + "-bcd", "a" * 31),
])
def test_normalize_owner(raw, expected):
    assert T.normalize_owner(raw) == expected


def test_normalize_owner_output_is_always_a_valid_name_part():
    for raw in ["x" * 100, "Ünïcödé user", "a/b\\c:d", "-" * 5 + "q" * 40]:
        owner = T.normalize_owner(raw)
        assert len(owner) <= 32
        assert all(c.islower() or c.isdigit() or c == "-" for c in owner)
        assert not owner.startswith("-") and not owner.endswith("-")


@pytest.mark.parametrize("arn,owner", [
    ("arn:aws:iam::123456789012:user/alice", "alice"),
    ("arn:aws:iam::123456789012:user/path/to/Bob", "bob"),
    ("arn:aws:sts::123456789012:assumed-role/Admin/carol@example.org", "carol"),
    ("arn:aws:sts::123456789012:assumed-role/Role/i-0abc123", "i-0abc123"),
    ("arn:aws:sts::123456789012:federated-user/dave", "dave"),
    ("arn:aws:iam::123456789012:root", "root"),
])
def test_owner_from_arn(arn, owner):
    assert T.owner_from_arn(arn) == owner


def test_iso_and_parse_iso_round_trip():
    when = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert T.iso(when) == "2025-03-04T05:06:07Z"
    assert T.parse_iso("2025-03-04T05:06:07Z") == when


@pytest.mark.parametrize("text", [
    "", "2025-03-04", "2025-03-04T05:06:07", "2025-03-04T05:06:07.123Z",
    "2025-13-04T05:06:07Z", "2025-03-04T05:06:07+00:00", "yesterday", None, 12,
])
def test_parse_iso_rejects_everything_else(text):
    assert T.parse_iso(text) is None


def test_now_is_utc_without_microseconds():
    now = T.now()
    assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(0)
    assert now.microsecond == 0
    assert T.parse_iso(T.iso(now)) == now


def test_ours_with_owner_and_extra_tags():
    before = T.now()
    tags = T.ours("alice", **{T.RUN: "hg123", "Name": "hg-x"})
    after = T.now()
    assert tags[T.MANAGED] == "1"
    assert tags[T.OWNER] == "alice"
    assert tags[T.RUN] == "hg123" and tags["Name"] == "hg-x"
    created = T.parse_iso(tags[T.CREATED_AT])
    assert created is not None and before <= created <= after
    assert set(tags) == {T.MANAGED, T.OWNER, T.CREATED_AT, T.RUN, "Name"}


@pytest.mark.parametrize("owner", [None, ""])
def test_ours_for_shared_resources_has_no_owner(owner):
    tags = T.ours(owner)
    assert T.OWNER not in tags
    assert T.is_ours(tags)


def test_tag_list_dict_and_specs():
    tags = {"a": "1", "b": "2"}
    listed = T.tag_list(tags)
    assert listed == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    assert T.tag_dict(listed) == tags
    assert T.tag_dict(None) == {} and T.tag_dict([]) == {}
    assert T.tag_specs("image", tags) == [{"ResourceType": "image", "Tags": listed}]
    assert [s["ResourceType"] for s in T.tag_specs(["instance", "volume"], tags)] \
        == ["instance", "volume"]


def test_filters_for_one_owner_and_for_all():
    assert T.filters(None) == [{"Name": "tag:hgautomation:managed", "Values": ["1"]}]
    assert T.filters("alice") == [
        {"Name": "tag:hgautomation:managed", "Values": ["1"]},
        {"Name": "tag:hgautomation:owner", "Values": ["alice"]},
    ]


def test_filters_extra_keywords_become_dashed_names_and_lists():
    got = T.filters(None, instance_state_name=["running", "stopped"], image_id="ami-1")
    assert got[1:] == [
        {"Name": "instance-state-name", "Values": ["running", "stopped"]},
        {"Name": "image-id", "Values": ["ami-1"]},
    ]


def test_tag_filter():
    assert T.tag_filter(T.RUN, "a", "b") == {"Name": "tag:hgautomation:run",
                                             "Values": ["a", "b"]}
    assert T.tag_filter("Name") == {"Name": "tag:Name", "Values": []}


@pytest.mark.parametrize("tags,owner,expected", [
    ({T.MANAGED: "1", T.OWNER: "alice"}, None, True),
    ({T.MANAGED: "1", T.OWNER: "alice"}, "alice", True),
    ({T.MANAGED: "1", T.OWNER: "alice"}, "bob", False),
    ({T.MANAGED: "1"}, "alice", False),
    ({T.MANAGED: "0", T.OWNER: "alice"}, "alice", False),
    ({T.MANAGED: "true"}, None, False),
    ({}, None, False),
])
def test_is_ours(tags, owner, expected):
    assert T.is_ours(tags, owner) is expected


@pytest.mark.parametrize("tags,expected", [
    ({}, True),
    ({"Name": "hg-linux-dev-1-alice"}, True),
    ({"Name": "x", T.MANAGED: "0"}, False),  # managed=0 means "not ours", not "untagged"
    ({T.OWNER: "alice"}, False),
    ({"hgautomation": "x"}, True),  # no colon: not one of our keys
])
def test_is_untagged(tags, expected):
    assert T.is_untagged(tags) is expected


def test_names():
    assert T.key_pair_name("alice") == "hg-automation-alice"
    assert T.security_group_name("linux", "alice") == "hg-linux-dev-1-alice"
    assert T.security_group_name("windows", "bob") == "hg-windows-dev-1-bob"
    assert T.windows_key_pair_name("alice") == "hg-automation-alice.windows"
    # No owner's own key pair has that name ("a-windows" is a valid owner).
    assert T.windows_key_pair_name("a") != T.key_pair_name("a-windows")
    for name in (T.key_pair_name("a"), T.windows_key_pair_name("a"),
                 T.security_group_name("linux", "a"),
                 T.ROLE_NAME, T.INSTANCE_PROFILE_NAME):
        assert name.startswith(T.PREFIX)
