"""The IAM side of purge-ec2-resources --all-owners [--include-untagged] and of the
inventory, against moto's in-process IAM: what is ours goes, what is not stays."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws

from hgautomation.aws import iam as iam_
from hgautomation.aws import inventory as inv
from hgautomation.aws import purge
from hgautomation.aws import tags as T

from .helpers import make_session

TRUST = json.dumps(iam_.TRUST_POLICY)
OLD_ROLE, OLD_PROFILE = "hg-ephemeral-ec2-role-0", "hg-ephemeral-ec2-0"
STRANGER_ROLE, STRANGER_PROFILE = "team-build-role", "team-build-profile"
# Named like ours, but under another path and tagged by nobody: not ours either.
LOOKALIKE_ROLE = "hg-ephemeral-ec2-role-9"


def _list_instance_profiles_by_path(self):
    """ListInstanceProfiles as AWS answers it: only those under ``PathPrefix`` (moto 5.2
    ignores the parameter, which would list others' profiles as ours)."""
    from moto.core.responses import ActionResult

    prefix = self._get_param("PathPrefix", "/")
    return ActionResult({"InstanceProfiles": [
        p for p in self.backend.get_instance_profiles() if p.path.startswith(prefix)]})


@pytest.fixture
def account(monkeypatch):
    """An account with our older role + profile (under our path, tagged), the tool's
    predecessor's role + profile (our exact names, path /, no tags: *untagged*), and
    others' roles, a profile and a policy attached to both kinds of role."""
    # Fake credentials: without them botocore first asks the instance metadata service.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")  # a second per mock
    from moto.iam.responses import IamResponse

    monkeypatch.setattr(IamResponse, "list_instance_profiles", _list_instance_profiles_by_path)
    with mock_aws():
        session = make_session()
        iam = session.client("iam")
        tags = T.tag_list(T.ours(None))
        policy = iam.create_policy(PolicyName="team-policy",
                                   PolicyDocument=json.dumps({
                                       "Version": "2012-10-17", "Statement": [{
                                           "Effect": "Allow", "Action": "s3:ListBucket",
                                           "Resource": "*"}]}))["Policy"]["Arn"]
        for role, profile, path, role_tags in (
                (OLD_ROLE, OLD_PROFILE, iam_.PATH, tags),
                (T.ROLE_NAME, T.INSTANCE_PROFILE_NAME, "/", []),
                (STRANGER_ROLE, STRANGER_PROFILE, "/", []),
                (LOOKALIKE_ROLE, None, "/other/", [])):
            iam.create_role(RoleName=role, Path=path, AssumeRolePolicyDocument=TRUST,
                            Tags=role_tags)
            iam.attach_role_policy(RoleName=role, PolicyArn=policy)
            if profile:
                iam.create_instance_profile(InstanceProfileName=profile, Path=path,
                                            Tags=role_tags)
                iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
        yield session


def _roles(session) -> set[str]:
    return {r["RoleName"] for r in session.client("iam").list_roles()["Roles"]}


def _profiles(session) -> dict[str, list[str]]:
    return {p["InstanceProfileName"]: [r["RoleName"] for r in p["Roles"]]
            for p in session.client("iam").list_instance_profiles()["InstanceProfiles"]}


def _iam_actions(actions) -> list[tuple[str, str, str]]:
    return [(a.resource.kind, a.resource.name, a.action) for a in actions
            if a.resource.kind in ("role", "instance-profile")]


def test_the_inventory_counts_only_our_roles_and_profiles(account):
    """Ours (our path) as ours, the predecessor's same-named ones as untagged, nobody
    else's. Breaking it looks like listing roles without ``PathPrefix=PATH`` (every role
    of the account listed, and purged with --include-untagged) or marking every listed
    entry as tagged (the predecessor's then deleted without --include-untagged)."""
    rows = inv.iam_entries(account)
    assert sorted((r.kind, r.name, r.tagged, r.owner) for r in rows) == [
        ("instance-profile", OLD_PROFILE, True, ""),
        ("instance-profile", T.INSTANCE_PROFILE_NAME, False, ""),
        ("role", OLD_ROLE, True, ""),
        ("role", T.ROLE_NAME, False, ""),
    ]


def test_all_owners_leaves_untagged_iam_alone(account, captured):
    """--all-owners without --include-untagged: our role and profile go, the
    predecessor's (untagged) are skipped and still there, others' untouched. Breaking it
    looks like dropping ``not r.tagged and not sel.include_untagged`` from purge."""
    actions = purge.purge(account, purge.Selection(owner="alice", all_owners=True))
    assert _iam_actions(actions) == [
        ("instance-profile", OLD_PROFILE, "deleted"),
        ("instance-profile", T.INSTANCE_PROFILE_NAME, purge.UNTAGGED_SKIP),
        ("role", OLD_ROLE, "deleted"),
        ("role", T.ROLE_NAME, purge.UNTAGGED_SKIP),
    ]
    assert _roles(account) == {T.ROLE_NAME, STRANGER_ROLE, LOOKALIKE_ROLE}
    assert _profiles(account) == {T.INSTANCE_PROFILE_NAME: [T.ROLE_NAME],
                                  STRANGER_PROFILE: [STRANGER_ROLE]}
    iam = account.client("iam")
    for role in (T.ROLE_NAME, STRANGER_ROLE, LOOKALIKE_ROLE):  # their policies still on
        assert len(iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]) == 1


def test_include_untagged_takes_the_predecessors_iam_and_nothing_else(account, captured):
    """--all-owners --include-untagged: the predecessor's role and profile go too; others'
    roles, profile and policy stay (breaking it: listing IAM without our path)."""
    actions = purge.purge(account, purge.Selection(owner="alice", all_owners=True,
                                                   include_untagged=True))
    assert _iam_actions(actions) == [
        ("instance-profile", OLD_PROFILE, "deleted"),
        ("instance-profile", T.INSTANCE_PROFILE_NAME, "deleted"),
        ("role", OLD_ROLE, "deleted"),
        ("role", T.ROLE_NAME, "deleted"),
    ]
    assert _roles(account) == {STRANGER_ROLE, LOOKALIKE_ROLE}
    assert _profiles(account) == {STRANGER_PROFILE: [STRANGER_ROLE]}
    iam = account.client("iam")
    assert [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]] == [
        "team-policy"]
    assert len(iam.list_attached_role_policies(RoleName=STRANGER_ROLE)
               ["AttachedPolicies"]) == 1


@pytest.mark.parametrize("include_untagged", [False, True])
def test_one_owners_purge_never_touches_iam(account, captured, include_untagged):
    """IAM is shared: without --all-owners it is not even looked at (breaking it: the IAM
    step run for every purge)."""
    before = (_roles(account), _profiles(account))
    actions = purge.purge(account, purge.Selection(owner="alice",
                                                   include_untagged=include_untagged))
    assert _iam_actions(actions) == []
    assert (_roles(account), _profiles(account)) == before


def test_a_dry_run_of_everything_deletes_nothing(account, captured):
    before = (_roles(account), _profiles(account))
    actions = purge.purge(account, purge.Selection(owner="alice", all_owners=True,
                                                   include_untagged=True, dry_run=True))
    assert [a for _, _, a in _iam_actions(actions)] == ["would delete"] * 4
    assert (_roles(account), _profiles(account)) == before
