"""hgautomation.windows.ec2's image policy: keyed by our recipe, a newer base AMI reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hgautomation import platforms
from hgautomation.aws import account, images
from hgautomation.aws import tags as T
from hgautomation.options import AWSOptions
from hgautomation.windows import ec2

NODE = "0123456789ab" + "c" * 28
OLD_BASE = images.Image("ami-old", "Windows_Server-2022-English-Full-Base-2025.10.15", "1")
NEW_BASE = images.Image("ami-new", "Windows_Server-2022-English-Full-Base-2025.11.12", "2")


def _deps(script: bytes = b"# install\n", settings: bytes = b"{}") -> ec2.DepsFiles:
    return ec2.DepsFiles(NODE, {ec2.DEPS_SCRIPT: script, ec2.DEPS_COMPANIONS[0]: settings})


def test_fingerprint_is_our_recipe_not_the_base_ami_of_the_month(tmp_path, monkeypatch):
    """The base image id once was in it: every monthly Windows AMI meant a new image."""
    fp = ec2.image_fingerprint(_deps())
    assert fp == ec2.image_fingerprint(_deps(), platforms.DEFAULT_WINDOWS_BASE_IMAGE)
    assert fp != ec2.image_fingerprint(_deps(), "Windows_Server-2025-English-Full-Base-*")
    assert fp != ec2.image_fingerprint(_deps(script=b"# install 2\n"))
    assert fp != ec2.image_fingerprint(_deps(settings=b'{"x": 1}'))
    scripts = tmp_path / "scripts"
    shutil.copytree(ec2.SCRIPTS_DIR, scripts)
    with (scripts / "provision.ps1").open("a") as f:
        f.write("# changed\n")
    monkeypatch.setattr(ec2, "SCRIPTS_DIR", scripts)
    assert fp != ec2.image_fingerprint(_deps())


def _aws() -> account.AWS:
    state = account.AccountState(
        owner="alice", key_name="hg-automation-alice", key_path=Path("/k/a"),
        public_key="ssh-ed25519 AAAA", security_group_ids={"windows": "sg-w"},
        windows_key_name="hg-automation-alice.windows",
        windows_key_path=Path("/k/hg-automation-alice.windows"))
    return account.AWS(object(), "alice", AWSOptions(), state)


@pytest.fixture
def account_images(monkeypatch):
    """Our one hg-windows-dev image of the current recipe, built on OLD_BASE; NEW_BASE is
    the newest Amazon image. Records what is built and deregistered."""
    fp = ec2.image_fingerprint(_deps())
    ours = [images.Image("ami-dev", f"hg-windows-dev-{fp[:16]}", "1", tags={
        T.FINGERPRINT: fp, T.IMAGE: ec2.IMAGE_FAMILY, images.BASE_TAG: OLD_BASE.id})]
    done = {"built": [], "deregistered": []}

    def build_image(session, spec, *, family, fp, provision, extra_tags):
        done["built"].append((spec, fp, dict(extra_tags)))
        image = images.Image("ami-rebuilt", f"{family}-{fp[:16]}", "3",
                             tags={T.FINGERPRINT: fp, **extra_tags})
        ours.append(image)
        return image

    monkeypatch.setattr(images, "find_base_image", lambda session, owner, pattern: NEW_BASE)
    monkeypatch.setattr(images, "find_ours", lambda session, family: list(ours))
    monkeypatch.setattr(images, "build_image", build_image)
    monkeypatch.setattr(images, "deregister",
                        lambda session, gone: done["deregistered"].extend(i.id for i in gone))
    return done


def test_a_newer_base_is_reported_not_acted_on(account_images, captured):
    image = ec2.ensure_image(None, _aws(), _deps())
    assert image.id == "ami-dev"
    assert account_images == {"built": [], "deregistered": []}
    assert (f"a newer Windows base image is available (ami-new {NEW_BASE.name}; ami-dev was "
            f"built on ami-old): bootstrap-windows-dev -r {NODE[:12]} --refresh-image "
            "rebuilds") in captured.err_text


def test_refresh_builds_on_the_newest_base_and_says_what_it_deregisters(account_images,
                                                                        captured):
    image = ec2.ensure_image(None, _aws(), _deps(), refresh=True)
    ((spec, fp, tags),) = account_images["built"]
    assert image.id == "ami-rebuilt" and fp == ec2.image_fingerprint(_deps())
    assert (spec.image_id, spec.platform, spec.key_name) == (
        "ami-new", "windows", "hg-automation-alice.windows")  # the RSA pair, not ed25519
    assert tags == {images.BASE_TAG: "ami-new"}
    assert account_images["deregistered"] == ["ami-dev"]
    assert "deregistering 1 stale image of hg-windows-dev: ami-dev" in captured.err_text
    assert "a newer Windows base image" not in captured.err_text


def test_the_rebuild_command_names_a_non_default_base_pattern():
    pattern = "Windows_Server-2025-English-Full-Base-*"
    assert ec2.rebuild_command(_deps(), pattern) == (
        f"bootstrap-windows-dev -r {NODE[:12]} --base-image-name "
        f"'{pattern}' --refresh-image")
    assert ec2.rebuild_command(_deps(), platforms.DEFAULT_WINDOWS_BASE_IMAGE) == \
        f"bootstrap-windows-dev -r {NODE[:12]} --refresh-image"
