"""The shared IAM role and instance profile that let our instances talk to SSM.

Role ``hg-ephemeral-ec2-role-1`` (trusted by ec2.amazonaws.com, only
AmazonSSMManagedInstanceCore) inside profile ``hg-ephemeral-ec2-1``. Both live
under the IAM path ``/hgautomation/`` so our entries are listed server-side.
"""

from __future__ import annotations

import json
import urllib.parse

from hgautomation import console
from hgautomation.aws import tags as T
from hgautomation.aws.session import AWSSession, client_error_code, translate_errors

PATH = "/hgautomation/"
SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }],
}


def _get(call, **kwargs) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)
    except ClientError as exc:
        if client_error_code(exc) == "NoSuchEntity":
            return None
        raise


def _policy_doc(value) -> dict:
    if isinstance(value, str):
        value = json.loads(urllib.parse.unquote(value))
    return value


def _same_trust(doc: dict) -> bool:
    def norm(d: dict):
        out = []
        for st in d.get("Statement", []):
            principal = st.get("Principal", {}).get("Service")
            principal = sorted(principal) if isinstance(principal, list) else [principal]
            action = st.get("Action")
            action = sorted(action) if isinstance(action, list) else [action]
            out.append((st.get("Effect"), tuple(principal), tuple(action)))
        return sorted(out)

    return norm(doc) == norm(TRUST_POLICY)


def ensure_role(session: AWSSession) -> str:
    """Create or repair the role; returns its name."""
    con = console.get()
    iam = session.client("iam")
    name = T.ROLE_NAME
    with translate_errors(f"IAM role {name}"):
        role = _get(iam.get_role, RoleName=name)
        if role is None:
            con.info(f"IAM role {name}: creating")
            iam.create_role(RoleName=name, Path=PATH,
                            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                            Description="hgautomation ephemeral instances (SSM only)",
                            Tags=T.tag_list(T.ours(None)))
            attached: set[str] = set()
            inline: list[str] = []
        else:
            role = role["Role"]
            if not T.is_ours(T.tag_dict(role.get("Tags"))):
                # Made by the tool this one replaces: same name and purpose, adopt it.
                con.info(f"IAM role {name}: adopting (tagging as ours)")
                iam.tag_role(RoleName=name, Tags=T.tag_list(T.ours(None)))
            if not _same_trust(_policy_doc(role["AssumeRolePolicyDocument"])):
                con.info(f"IAM role {name}: resetting the trust policy")
                iam.update_assume_role_policy(RoleName=name,
                                              PolicyDocument=json.dumps(TRUST_POLICY))
            attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(
                RoleName=name)["AttachedPolicies"]}
            inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
        for arn in sorted(attached - {SSM_POLICY_ARN}):
            con.info(f"IAM role {name}: detaching {arn}")
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
        for policy in inline:
            con.info(f"IAM role {name}: deleting inline policy {policy}")
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        if SSM_POLICY_ARN not in attached:
            iam.attach_role_policy(RoleName=name, PolicyArn=SSM_POLICY_ARN)
    return name


def ensure_instance_profile(session: AWSSession) -> str:
    """Role + profile holding exactly that role; returns the profile ARN."""
    con = console.get()
    iam = session.client("iam")
    role = ensure_role(session)
    name = T.INSTANCE_PROFILE_NAME
    with translate_errors(f"IAM instance profile {name}"):
        profile = _get(iam.get_instance_profile, InstanceProfileName=name)
        if profile is None:
            con.info(f"IAM instance profile {name}: creating")
            profile = iam.create_instance_profile(InstanceProfileName=name, Path=PATH,
                                                  Tags=T.tag_list(T.ours(None)))
        profile = profile["InstanceProfile"]
        roles = [r["RoleName"] for r in profile.get("Roles", [])]
        for other in roles:
            if other != role:
                iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=other)
        if role not in roles:
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
        remove_extra(session)
    return profile["Arn"]


def list_ours(session: AWSSession) -> tuple[list[dict], list[dict]]:
    """Our roles and instance profiles (under our path, or with our exact names)."""
    iam = session.client("iam")
    with translate_errors("list IAM roles"):
        roles = [r for page in iam.get_paginator("list_roles").paginate(PathPrefix=PATH)
                 for r in page["Roles"]]
        profiles = [p for page in iam.get_paginator("list_instance_profiles").paginate(
            PathPrefix=PATH) for p in page["InstanceProfiles"]]
        names = {r["RoleName"] for r in roles}
        if T.ROLE_NAME not in names:
            legacy = _get(iam.get_role, RoleName=T.ROLE_NAME)
            if legacy is not None:
                roles.append(legacy["Role"])
        if T.INSTANCE_PROFILE_NAME not in {p["InstanceProfileName"] for p in profiles}:
            legacy = _get(iam.get_instance_profile, InstanceProfileName=T.INSTANCE_PROFILE_NAME)
            if legacy is not None:
                profiles.append(legacy["InstanceProfile"])
    return roles, profiles


def remove_extra(session: AWSSession) -> list[str]:
    """Delete roles/profiles under our path other than the current ones (older versions)."""
    iam = session.client("iam")
    removed = []
    with translate_errors("list IAM roles"):
        roles = [r for page in iam.get_paginator("list_roles").paginate(PathPrefix=PATH)
                 for r in page["Roles"]]
        profiles = [p for page in iam.get_paginator("list_instance_profiles").paginate(
            PathPrefix=PATH) for p in page["InstanceProfiles"]]
    for p in profiles:
        if p["InstanceProfileName"] != T.INSTANCE_PROFILE_NAME:
            delete_instance_profile(session, p)
            removed.append(p["InstanceProfileName"])
    for r in roles:
        if r["RoleName"] != T.ROLE_NAME:
            delete_role(session, r["RoleName"])
            removed.append(r["RoleName"])
    if removed:
        console.get().info(f"IAM: removed outdated {', '.join(removed)}")
    return removed


def delete_instance_profile(session: AWSSession, profile: dict) -> None:
    iam = session.client("iam")
    name = profile["InstanceProfileName"]
    with translate_errors(f"delete instance profile {name}"):
        for r in profile.get("Roles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=name,
                                                  RoleName=r["RoleName"])
        iam.delete_instance_profile(InstanceProfileName=name)


def delete_role(session: AWSSession, name: str) -> None:
    iam = session.client("iam")
    with translate_errors(f"delete role {name}"):
        for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=p["PolicyArn"])
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for p in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
            iam.remove_role_from_instance_profile(InstanceProfileName=p["InstanceProfileName"],
                                                  RoleName=name)
        iam.delete_role(RoleName=name)


