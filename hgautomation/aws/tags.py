"""Our tag keys, naming scheme and the server-side filters that select what is ours.

Every resource we create is named ``hg-...`` and tagged ``hgautomation:managed=1``
plus its owner and creation time. Personal resources embed the owner in their
name (key pairs, security groups, instances); shared ones (images, IAM) do not.
"""

from __future__ import annotations

import datetime as _dt

from hgautomation.options import normalize_owner

PREFIX = "hg-"
MANAGED = "hgautomation:managed"
OWNER = "hgautomation:owner"
CREATED_AT = "hgautomation:created-at"
EXPIRES_AT = "hgautomation:expires-at"
RUN = "hgautomation:run"
PURPOSE = "hgautomation:purpose"
FINGERPRINT = "hgautomation:fingerprint"
IMAGE = "hgautomation:image"  # the image family, e.g. hg-linux-dev-debian12


def owner_from_arn(arn: str) -> str:
    """A readable owner from a caller ARN: the user name or the role session name."""
    # arn:aws:iam::123:user/path/alice  |  arn:aws:sts::123:assumed-role/Role/alice@example
    resource = arn.split(":", 5)[-1]
    return normalize_owner(resource.rsplit("/", 1)[-1].split("@", 1)[0])


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


def iso(when: _dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> _dt.datetime | None:
    try:
        return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=_dt.timezone.utc)
    except (TypeError, ValueError):
        return None


def ours(owner: str | None, **extra: str) -> dict[str, str]:
    """The tags of a resource we create now (owner None: shared, no owner tag)."""
    tags = {MANAGED: "1", CREATED_AT: iso(now())}
    if owner:
        tags[OWNER] = owner
    tags.update(extra)
    return tags


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_dict(tag_list_: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in (tag_list_ or [])}


def tag_specs(resource_types: list[str] | str, tags: dict[str, str]) -> list[dict]:
    if isinstance(resource_types, str):
        resource_types = [resource_types]
    return [{"ResourceType": rt, "Tags": tag_list(tags)} for rt in resource_types]


def filters(owner: str | None, **extra: str | list[str]) -> list[dict]:
    """EC2 server-side filters for our resources; owner None means every owner's.

    Extra keyword filters use underscores for dashes: ``instance_state_name=[...]``.
    """
    result = [{"Name": f"tag:{MANAGED}", "Values": ["1"]}]
    if owner:
        result.append({"Name": f"tag:{OWNER}", "Values": [owner]})
    for name, values in extra.items():
        result.append({"Name": name.replace("_", "-"),
                       "Values": values if isinstance(values, list) else [values]})
    return result


def tag_filter(key: str, *values: str) -> dict:
    return {"Name": f"tag:{key}", "Values": list(values)}


def is_ours(tags: dict[str, str], owner: str | None = None) -> bool:
    if tags.get(MANAGED) != "1":
        return False
    return owner is None or tags.get(OWNER) == owner


def is_untagged(tags: dict[str, str]) -> bool:
    """Made by an older tool: no hgautomation tag at all (``managed=0`` means "not ours")."""
    return not any(k.startswith("hgautomation:") for k in tags)


# -- names --------------------------------------------------------------------

def key_pair_name(owner: str) -> str:
    return f"hg-automation-{owner}"


def windows_key_pair_name(owner: str) -> str:
    """The owner's RSA launch key pair for Windows: ``hg-automation-<owner>.windows``.

    The dot cannot occur in an owner (``[a-z0-9-]``), so no owner's
    :func:`key_pair_name` is ever this name (``-windows`` could be: owner ``a-windows``).
    """
    return f"{key_pair_name(owner)}.windows"


def security_group_name(kind: str, owner: str) -> str:
    """kind: 'linux' or 'windows' -> hg-linux-dev-1-<owner>."""
    return f"hg-{kind}-dev-1-{owner}"


ROLE_NAME = "hg-ephemeral-ec2-role-1"
INSTANCE_PROFILE_NAME = "hg-ephemeral-ec2-1"
