"""Base image lookup, and our content-addressed dev images (shared by every owner).

Our images are named ``<family>-<fingerprint[:16]>`` (family e.g.
``hg-linux-dev-debian12``) and tagged with the full fingerprint: a hash of our
*recipe* (:func:`recipe_fingerprint`: the base image's owner and name pattern, the
instance config, the provisioning scripts), never of the base AMI of the day. A
matching image is reused; a newer base AMI is only reported
(:func:`report_newer_base`) and acted on when the user asks (``refresh``). Other
images of the family are stale and deregistered with their snapshots once a new
one is available.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from hgautomation import console, errors, platforms, poll
from hgautomation.aws import instances as inst
from hgautomation.aws import tags as T
from hgautomation.aws.session import AWSSession, translate_errors

BUILT_BY = "hgautomation:built-by"
BASE_TAG = "hgautomation:base-image"  # the base AMI an image was built on


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    creation_date: str
    state: str = "available"
    tags: dict[str, str] = field(default_factory=dict, compare=False)
    snapshot_ids: tuple[str, ...] = ()
    root_device_name: str = ""  # e.g. /dev/xvda (Debian), /dev/sda1 (Ubuntu)

    @property
    def fingerprint(self) -> str:
        return self.tags.get(T.FINGERPRINT, "")

    @classmethod
    def from_api(cls, data: dict) -> Image:
        snaps = tuple(m["Ebs"]["SnapshotId"] for m in data.get("BlockDeviceMappings", [])
                      if m.get("Ebs", {}).get("SnapshotId"))
        return cls(id=data["ImageId"], name=data.get("Name", ""),
                   creation_date=data.get("CreationDate", ""), state=data.get("State", ""),
                   tags=T.tag_dict(data.get("Tags")), snapshot_ids=snaps,
                   root_device_name=data.get("RootDeviceName", ""))


def fingerprint(config: dict, files: Sequence[Path | bytes] = ()) -> str:
    """sha256 over the instance config (as canonical JSON) and the given files' bytes."""
    h = hashlib.sha256()
    h.update(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    for item in files:
        data = item.read_bytes() if isinstance(item, Path) else item
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def recipe_fingerprint(family: str, base_owner: str, base_pattern: str, config: dict,
                       files: Sequence[Path | bytes] = ()) -> str:
    """:func:`fingerprint` of an image's recipe: the base image *choice* (owner and name
    pattern), *config* and *files*; a new base AMI alone does not change it."""
    return fingerprint({"family": family, "base_owner": base_owner,
                        "base_pattern": base_pattern, **config}, files)


def report_newer_base(image: Image, base: Image, *, title: str, rebuild: str) -> bool:
    """Say so (and True) when *base* is not the base image *image* was built on;
    *rebuild* is the command that builds on it. Nothing is acted on here."""
    built_on = image.tags.get(BASE_TAG, "")
    if not built_on or base.id == built_on:
        return False
    console.get().info(f"a newer {title} base image is available ({base.id} {base.name}; "
                       f"{image.id} was built on {built_on}): {rebuild} rebuilds")
    return True


def find_base_image(session: AWSSession, owner_id: str, name_pattern: str) -> Image:
    """The newest available image of *owner_id* whose name matches *name_pattern*."""
    with translate_errors("describe images"):
        found = session.client("ec2").describe_images(
            Owners=[owner_id], Filters=[{"Name": "name", "Values": [name_pattern]},
                                        {"Name": "state", "Values": ["available"]}])["Images"]
    if not found:
        raise errors.AWSError(f"no image of owner {owner_id} matches {name_pattern!r} "
                              f"in {session.region}")
    return Image.from_api(max(found, key=lambda i: i.get("CreationDate", "")))


def find_ours(session: AWSSession, family: str | None = None) -> list[Image]:
    """Our images (every owner's: images are shared), optionally of one family."""
    filters = T.filters(None)
    if family:
        filters.append(T.tag_filter(T.IMAGE, family))
    with translate_errors("describe images"):
        found = session.client("ec2").describe_images(Owners=["self"],
                                                      Filters=filters)["Images"]
    return sorted((Image.from_api(i) for i in found), key=lambda i: i.creation_date)


def find_untagged(session: AWSSession) -> list[Image]:
    """Images of this account named hg-... without our tag (older tools)."""
    with translate_errors("describe images"):
        found = session.client("ec2").describe_images(
            Owners=["self"], Filters=[{"Name": "name", "Values": [T.PREFIX + "*"]}])["Images"]
    return [Image.from_api(i) for i in found
            if T.is_untagged(T.tag_dict(i.get("Tags")))]


def find_image(session: AWSSession, family: str, fp: str) -> Image | None:
    """The newest available image of *family* with fingerprint *fp*."""
    for image in reversed(find_ours(session, family)):
        if image.fingerprint == fp and image.state == "available":
            return image
    return None


def deregister(session: AWSSession, images: Sequence[Image]) -> None:
    """Deregister images, then delete their snapshots."""
    ec2 = session.client("ec2")
    for image in images:
        with translate_errors(f"deregister {image.id}"):
            ec2.deregister_image(ImageId=image.id)
        for snap in image.snapshot_ids:
            with translate_errors(f"delete snapshot {snap}"):
                ec2.delete_snapshot(SnapshotId=snap)


def wait_available(session: AWSSession, image_id: str, timeout: float,
                   interval: float = 10.0) -> Image:
    state = "missing"

    def check() -> Image | None:
        nonlocal state
        with translate_errors("describe images"):
            found = session.client("ec2").describe_images(ImageIds=[image_id])["Images"]
        state = found[0]["State"] if found else "missing"
        if state == "available":
            return Image.from_api(found[0])
        if state in ("failed", "invalid", "error", "deregistered"):
            raise errors.AWSError(f"image {image_id} became {state}")
        return None

    return poll.until(check, timeout=timeout, interval=interval,
                      what=f"image {image_id} available",
                      timeout_error=lambda: f"image {image_id} still {state} "
                                              f"after {timeout:.0f}s")


def build_image(session: AWSSession, spec: inst.LaunchSpec, *, family: str, fp: str,
                provision: Callable[[inst.Instance], None],
                extra_tags: Mapping[str, str] | None = None,
                image_timeout: float = 3600.0) -> Image:
    """Temporary instance of *spec* (its image is the base) -> provision -> stop ->
    create image -> tag -> wait available. The instance is terminated whatever happens;
    it may take ``spec.wait_timeout`` to stop.
    """
    con = console.get()
    ec2 = session.client("ec2")
    name = f"{family}-{fp[:16]}"
    price = platforms.hourly_estimate(spec.instance_type, windows=spec.platform == "windows")
    con.info(f"building {name} on a {spec.instance_type} "
             + (f"(about ${price:.2f}/hour while it builds)" if price is not None
                else "(no price known for this type)"))
    builder = replace(spec, purpose="image-build")
    with inst.temporary_instances(session, builder) as [machine]:
        with con.step(f"provision {machine.id} for {name}"):
            provision(machine)
        with con.step(f"stop {machine.id}"):
            with translate_errors("stop instance"):
                ec2.stop_instances(InstanceIds=[machine.id])
            inst.wait_for_state(session, [machine.id], {"stopped"}, spec.wait_timeout,
                                what="instance")
        with con.step(f"create image {name}"):
            image_tags = T.ours(None, **{T.IMAGE: family, T.FINGERPRINT: fp, BUILT_BY: spec.owner,
                                         "Name": name, **(extra_tags or {})})
            with translate_errors("create image"):
                image_id = ec2.create_image(
                    InstanceId=machine.id, Name=name,
                    Description=f"hgautomation {family} (fingerprint {fp[:16]})",
                    TagSpecifications=T.tag_specs("image", image_tags),
                )["ImageId"]
            image = wait_available(session, image_id, image_timeout)
            if image.snapshot_ids:
                # Tagged afterwards: not every EC2 implementation takes snapshot
                # TagSpecifications on CreateImage (moto does not).
                with translate_errors("tag snapshots"):
                    ec2.create_tags(Resources=list(image.snapshot_ids),
                                    Tags=T.tag_list(image_tags))
    con.info(f"image {image.id} {image.name} available")
    return image


def ensure_image(session: AWSSession, spec: inst.LaunchSpec, *, family: str, fp: str,
                 provision: Callable[[inst.Instance], None],
                 extra_tags: Mapping[str, str] | None = None, refresh: bool = False,
                 is_stale: Callable[[Image, Image], bool] | None = None) -> Image:
    """Reuse the image of *family* with fingerprint *fp*, or build it
    (:func:`build_image`, same arguments); drop stale ones.

    ``refresh`` builds even when a matching image exists (say, on a newer base image).
    ``is_stale(other, image)`` tells which other images of the family go once *image*
    is there (default: all of them).
    """
    con = console.get()
    image = None if refresh else find_image(session, family, fp)
    if image is not None:
        con.info(f"image {image.id} {image.name} is up to date")
    else:
        image = build_image(session, spec, family=family, fp=fp, provision=provision,
                            extra_tags=extra_tags)
    stale = [i for i in find_ours(session, family)
             if i.id != image.id and (is_stale is None or is_stale(i, image))]
    if stale:
        con.info(f"deregistering {console.plural(len(stale), 'stale image')} of {family}: "
                 + " ".join(i.id for i in stale))
        deregister(session, stale)
    return image
