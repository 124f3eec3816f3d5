"""The AWS layer: session, account state, images, temporary instances, SSM, purge.

Public API (import the submodule you need; nothing heavy is imported here):

- ``session.open_session(ctx) -> AWSSession``: boto3 session for ``ctx.aws_region``
  (standard credential chain, ``AWS_ENDPOINT_URL`` honoured, adaptive retries,
  ``AWS_MAX_ATTEMPTS``); ``AWSSession.client(name)``, ``.region``, ``.counter``
  (``.summary()``: "N AWS calls, M mutating AWS calls"). ``session.translate_errors(action)``
  maps botocore failures to ``errors.AWSCredentialsError`` (6), ``AWSEndpointError`` (7),
  ``AWSError`` (5).
- ``account.resolve_owner(session, explicit) -> str``: ``--owner``, ``HGAUTOMATION_OWNER``,
  else from ``sts:GetCallerIdentity``.
- ``account.ensure_account_state(ctx, session, owner, ingress_cidr, kinds=("linux",
  "windows"), rdp=False) -> AccountState(owner, key_name, key_path, public_key,
  security_group_ids={kind: sg-id}, instance_profile_arn)``; idempotent; ``ingress_cidr``
  None asks https://checkip.amazonaws.com.
- ``instances.temporary_instances(session, *, owner, image_id, instance_type, count=1,
  security_group_ids=(), key_name=None, user_data="", platform="linux"|"windows",
  instance_profile_arn=None, purpose="temp", tags=None, block_device_mappings=None,
  subnet_id=None, spot=False, max_lifetime_minutes=240, wait_timeout=900,
  require_public_ip=True)``: context manager yielding ``list[Instance]``
  (``.id .public_ip .private_ip .address .instance_type .name .spot .tags``), all
  terminated on exit (success, error, Ctrl-C, SIGTERM).
- ``images.find_base_image(session, owner_id, name_pattern) -> Image``;
  ``images.fingerprint(config_dict, files) -> str``; ``images.ensure_image(session, *,
  family, fp, owner, base_image_id, instance_type, provision=callable(Instance),
  security_group_ids, key_name, instance_profile_arn, user_data, platform,
  block_device_mappings, spot) -> Image(.id .name .fingerprint)``; ``images.build_image``.
- ``ssm.wait_managed(session, instance_id, timeout)``; ``ssm.run_command(session,
  instance_id, commands, document=ssm.LINUX_DOCUMENT|ssm.WINDOWS_DOCUMENT, timeout)
  -> CommandResult(status, stdout, stderr)`` (failure: ``errors.RemoteCommandError``).
- ``linux.linux_hosts(ctx, *, count, distro, instance_type, needs_disk=False, owner=None,
  ingress_cidr=None, spot=False)``: context manager yielding ``list[LinuxInstance]``
  (``.instance .id .address .user .key_path .host_public_key .block_device``);
  ``linux.bootstrap_linux(ctx, args, script)`` for ``bootstrap-linux-dev`` on EC2.
- ``purge`` / ``inventory``: what ``terminate-ec2-instances``, ``purge-ec2-resources`` and
  ``list-ec2-resources`` use.
"""

from __future__ import annotations


def linux_hosts(ctx, **kwargs):
    """See :func:`hgautomation.aws.linux.linux_hosts` (imported lazily)."""
    from hgautomation.aws import linux

    return linux.linux_hosts(ctx, **kwargs)
