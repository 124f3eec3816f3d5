"""Reconcile the account state a run needs: key pair, security groups, IAM profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hgautomation import console
from hgautomation.aws import iam, keys, security_groups
from hgautomation.aws.session import AWSSession


@dataclass(frozen=True)
class AccountState:
    """What instances of this owner are launched with."""

    owner: str
    key_name: str
    key_path: Path
    public_key: str
    security_group_ids: dict[str, str] = field(default_factory=dict)  # kind -> sg id
    instance_profile_arn: str = ""


def ensure_account_state(ctx, session: AWSSession, owner: str, ingress_cidr: str | None,
                         *, kinds: tuple[str, ...] = ("linux", "windows"),
                         rdp: bool = False) -> AccountState:
    """Create or repair what *owner* needs; a second call makes no mutating AWS call.

    *ingress_cidr* None asks a public echo service for this machine's address.
    """
    con = console.get()
    with con.step(f"reconcile AWS account state for owner {owner}"):
        cidr = ingress_cidr or security_groups.caller_cidr()
        pair = keys.ensure_key_pair(session, ctx.state.keys, owner)
        groups = {kind: security_groups.ensure_security_group(session, kind, owner, cidr,
                                                              rdp=rdp)
                  for kind in kinds}
        profile_arn = iam.ensure_instance_profile(session)
    return AccountState(owner=owner, key_name=pair.name, key_path=pair.private_key_path,
                        public_key=pair.public_key, security_group_ids=groups,
                        instance_profile_arn=profile_arn)


def resolve_owner(session: AWSSession, explicit: str | None) -> str:
    """--owner / HGAUTOMATION_OWNER, else derived from the caller's identity."""
    import os

    from hgautomation import errors
    from hgautomation.aws import tags as T

    raw = explicit or os.environ.get("HGAUTOMATION_OWNER")
    if not raw:
        raw = T.owner_from_arn(session.caller_identity()["Arn"])
    owner = T.normalize_owner(raw)
    if not owner:
        raise errors.UsageError(f"invalid owner {raw!r}",
                                hint="use letters, digits and dashes (--owner)")
    return owner
