"""The one AWS set-up path of every command: session, owner, account state, call count.

:func:`open_aws` opens the session (region, credentials), settles the owner and,
when asked, reconciles the account state a run needs (key pair, security groups,
IAM instance profile); :meth:`AWS.launch_spec` turns that state into the one record
instances are launched with. Commands run their local checks before calling it, since
reconciling may change the account.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hgautomation import console, errors
from hgautomation.aws import iam, keys, security_groups
from hgautomation.aws import tags as T
from hgautomation.aws.instances import LaunchSpec
from hgautomation.aws.session import AWSSession, open_session, translate_errors
from hgautomation.options import AWSOptions, normalize_owner


@dataclass(frozen=True)
class AccountState:
    """What instances of this owner are launched with."""

    owner: str
    key_name: str  # the owner's ed25519 key pair: Linux launches, SSH to every instance
    key_path: Path
    public_key: str
    security_group_ids: dict[str, str] = field(default_factory=dict)  # kind -> sg id
    instance_profile_arn: str = ""
    # The RSA key pair Windows instances launch with (EC2 refuses ed25519 there); its
    # private key decrypts the Administrator password. Only when "windows" was asked.
    windows_key_name: str = ""
    windows_key_path: Path | None = None


@dataclass(frozen=True)
class AWS:
    """An open AWS session for one command, its owner and (if reconciled) account state."""

    session: AWSSession
    owner: str
    options: AWSOptions
    account: AccountState | None = None

    @property
    def state(self) -> AccountState:
        if self.account is None:  # pragma: no cover - a flow asked for what it did not open
            raise errors.HgAutomationError("AWS account state was not reconciled")
        return self.account

    def launch_spec(self, platform: str, *, image_id: str, instance_type: str,
                    user_data: str = "", purpose: str = "temp",
                    block_device_mappings: Sequence[dict] = ()) -> LaunchSpec:
        """How this owner's *platform* instances are launched: the machine given here,
        the owner's key pair (the RSA one on Windows), security group and instance
        profile, ``--spot``."""
        state = self.state
        key_name = state.key_name
        if platform == "windows":
            if not state.windows_key_name:  # pragma: no cover - reconciled without "windows"
                raise errors.HgAutomationError("the Windows key pair was not reconciled")
            key_name = state.windows_key_name
        return LaunchSpec(
            owner=self.owner, image_id=image_id, instance_type=instance_type,
            platform=platform, purpose=purpose, user_data=user_data,
            key_name=key_name,
            security_group_ids=(state.security_group_ids[platform],),
            instance_profile_arn=state.instance_profile_arn or None,
            block_device_mappings=tuple(block_device_mappings), spot=self.options.spot)


@contextlib.contextmanager
def open_aws(region: str, options: AWSOptions, keys_dir: Path, *,
             kinds: Sequence[str] = (), rdp: bool = False,
             with_owner: bool = True) -> Iterator[AWS]:
    """Session + owner (+ account state for *kinds*); botocore errors become one line.

    ``with_owner=False`` skips settling the owner, for calls that create nothing of
    anyone's (``try``). ``-v`` prints the number of AWS calls made, whatever the outcome.
    """
    with translate_errors():
        session = open_session(region, profile=options.profile)
        try:
            owner = resolve_owner(session, options.owner) if with_owner else ""
            account = None
            if kinds:
                account = ensure_account_state(session, owner, keys_dir,
                                               options.ingress_cidr, kinds=tuple(kinds),
                                               rdp=rdp)
            yield AWS(session, owner, options, account)
        finally:
            console.get().detail(session.counter.summary())


def ensure_account_state(session: AWSSession, owner: str, keys_dir: Path,
                         ingress_cidr: str | None, *,
                         kinds: tuple[str, ...] = ("linux", "windows"),
                         rdp: bool = False) -> AccountState:
    """Create or repair what *owner* needs for instances of *kinds* (the Windows key
    pair only for "windows"); a second call makes no mutating AWS call.

    *ingress_cidr* None asks a public echo service for this machine's address.
    """
    con = console.get()
    with con.step(f"reconcile AWS account state for owner {owner}"):
        cidr = ingress_cidr or security_groups.caller_cidr()
        pair = keys.ensure_key_pair(session, keys_dir, owner)
        windows = (keys.ensure_key_pair(session, keys_dir, owner, windows=True)
                   if "windows" in kinds else None)
        groups = {kind: security_groups.ensure_security_group(session, kind, owner, cidr,
                                                              rdp=rdp)
                  for kind in kinds}
        profile_arn = iam.ensure_instance_profile(session)
    return AccountState(owner=owner, key_name=pair.name, key_path=pair.private_key_path,
                        public_key=pair.public_key, security_group_ids=groups,
                        instance_profile_arn=profile_arn,
                        windows_key_name=windows.name if windows else "",
                        windows_key_path=windows.private_key_path if windows else None)


def resolve_owner(session: AWSSession, explicit: str | None) -> str:
    """The owner given (--owner, HGAUTOMATION_OWNER, aws.owner: the settings layer),
    else derived from the caller's identity."""
    raw = explicit
    if not raw:
        raw = T.owner_from_arn(session.caller_identity()["Arn"])
    owner = normalize_owner(raw)
    if not owner:
        raise errors.UsageError(f"invalid owner {raw!r}",
                                hint="use letters, digits and dashes (--owner)")
    return owner
