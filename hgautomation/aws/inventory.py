"""What we own in the account: selected with server-side filters on our tags.

Personal resources (instances, key pairs, security groups) are selected per
owner, or for every owner; shared ones (images, IAM) belong to nobody in
particular. Resources named ``hg-...`` without our tag (older tools) are listed
apart as *untagged*.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from hgautomation.aws import iam as iam_
from hgautomation.aws import images as images_
from hgautomation.aws import instances as inst
from hgautomation.aws import tags as T
from hgautomation.aws.session import AWSSession, translate_errors
from hgautomation.platforms import hourly_estimate


@dataclass(frozen=True)
class Resource:
    """One row of a listing or a purge plan."""

    kind: str  # instance, image, security-group, key-pair, instance-profile, role
    id: str
    name: str
    owner: str  # "" for shared or untagged
    created: str = ""  # ISO timestamp
    state: str = ""
    hourly: float | None = None
    tagged: bool = True
    extra: dict = field(default_factory=dict, compare=False)

    def age(self, now: _dt.datetime | None = None) -> str:
        when = T.parse_iso(self.created)
        if when is None:
            return "?"
        return _duration(int(((now or T.now()) - when).total_seconds()))

    def expires(self, now: _dt.datetime | None = None) -> str:
        """Time left before the dead-man switch, "EXPIRED", or "" when not set."""
        when = T.parse_iso(self.extra.get("expires", ""))
        if when is None:
            return ""
        left = int((when - (now or T.now())).total_seconds())
        return _duration(left) if left > 0 else "EXPIRED"


def _duration(seconds: int) -> str:
    if seconds < 3600:
        return f"{max(seconds, 0) // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def _created(tags: dict[str, str], fallback) -> str:
    if tags.get(T.CREATED_AT):
        return tags[T.CREATED_AT]
    if isinstance(fallback, _dt.datetime):
        return T.iso(fallback.astimezone(_dt.timezone.utc))
    if isinstance(fallback, str) and fallback:
        return fallback[:19] + "Z"
    return ""


def _instance(data: dict, tagged: bool = True) -> Resource:
    tags = T.tag_dict(data.get("Tags"))
    windows = data.get("Platform", "").lower() == "windows"
    state = data["State"]["Name"]
    return Resource("instance", data["InstanceId"], tags.get("Name", ""),
                    tags.get(T.OWNER, ""), _created(tags, data.get("LaunchTime")), state,
                    hourly_estimate(data.get("InstanceType", ""), windows)
                    if state in ("pending", "running") else None, tagged,
                    {"type": data.get("InstanceType", ""),
                     "spot": data.get("InstanceLifecycle") == "spot",
                     "expires": tags.get(T.EXPIRES_AT, "")})


def _image(image: images_.Image, tagged: bool = True) -> Resource:
    return Resource("image", image.id, image.name, "", _created(image.tags,
                    image.creation_date), image.state, None, tagged,
                    {"snapshots": list(image.snapshot_ids)})


def instances(session: AWSSession, owner: str | None) -> list[Resource]:
    return [_instance(i) for i in inst.find_ours(session, owner)]


def untagged_instances(session: AWSSession) -> list[Resource]:
    found = inst.describe(session, [{"Name": "tag:Name", "Values": [T.PREFIX + "*"]},
                                    {"Name": "instance-state-name",
                                     "Values": inst.LIVE_STATES}])
    return [_instance(i, tagged=False) for i in found
            if T.is_untagged(T.tag_dict(i.get("Tags")))]


def key_pairs(session: AWSSession, owner: str | None) -> list[Resource]:
    with translate_errors("describe key pairs"):
        found = session.client("ec2").describe_key_pairs(Filters=T.filters(owner))["KeyPairs"]
    return [_key(k) for k in found]


def _key(k: dict, tagged: bool = True) -> Resource:
    tags = T.tag_dict(k.get("Tags"))
    return Resource("key-pair", k.get("KeyPairId", k["KeyName"]), k["KeyName"],
                    tags.get(T.OWNER, ""), _created(tags, k.get("CreateTime")), "", None,
                    tagged)


def untagged_key_pairs(session: AWSSession) -> list[Resource]:
    with translate_errors("describe key pairs"):
        found = session.client("ec2").describe_key_pairs(
            Filters=[{"Name": "key-name", "Values": [T.PREFIX + "*"]}])["KeyPairs"]
    return [_key(k, False) for k in found if T.is_untagged(T.tag_dict(k.get("Tags")))]


def _group(g: dict, tagged: bool = True) -> Resource:
    tags = T.tag_dict(g.get("Tags"))
    return Resource("security-group", g["GroupId"], g["GroupName"], tags.get(T.OWNER, ""),
                    _created(tags, None), "", None, tagged)


def security_groups(session: AWSSession, owner: str | None) -> list[Resource]:
    with translate_errors("describe security groups"):
        found = session.client("ec2").describe_security_groups(
            Filters=T.filters(owner))["SecurityGroups"]
    return [_group(g) for g in found]


def untagged_security_groups(session: AWSSession) -> list[Resource]:
    with translate_errors("describe security groups"):
        found = session.client("ec2").describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [T.PREFIX + "*"]}])["SecurityGroups"]
    return [_group(g, False) for g in found if T.is_untagged(T.tag_dict(g.get("Tags")))]


def images(session: AWSSession) -> list[Resource]:
    return [_image(i) for i in images_.find_ours(session)]


def untagged_images(session: AWSSession) -> list[Resource]:
    return [_image(i, False) for i in images_.find_untagged(session)]


def iam_entries(session: AWSSession) -> list[Resource]:
    """Our role(s) and instance profile(s); legacy same-named untagged ones as untagged."""
    roles, profiles = iam_.list_ours(session)
    rows = []
    for p in profiles:
        tags = T.tag_dict(p.get("Tags"))
        rows.append(Resource("instance-profile", p["InstanceProfileName"],
                             p["InstanceProfileName"], "", _created(tags, p.get("CreateDate")),
                             "", None, T.is_ours(tags) or p.get("Path") == iam_.PATH,
                             {"profile": p}))
    for r in roles:
        tags = T.tag_dict(r.get("Tags"))
        rows.append(Resource("role", r["RoleName"], r["RoleName"], "",
                             _created(tags, r.get("CreateDate")), "", None,
                             T.is_ours(tags) or r.get("Path") == iam_.PATH))
    return rows
