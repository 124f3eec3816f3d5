"""The AWS layer: pure EC2/IAM/SSM/STS operations, importing nothing above it.

Import the submodule you need (nothing heavy is imported here; boto3 only when a
session opens):

- ``account.open_aws(region, options, keys_dir, kinds=...)``: the one set-up path of
  every AWS command: session, owner, reconciled account state, call count (``-v``).
- ``session``: the boto3 session (standard credential chain, ``AWS_ENDPOINT_URL``,
  adaptive retries, call counter) and ``translate_errors`` (botocore failures to
  ``errors.AWSCredentialsError`` 6, ``AWSEndpointError`` 7, ``AWSError`` 5 with ``.code``).
- ``keys``, ``security_groups``, ``iam``: the per-owner key pair and security groups,
  the shared instance profile.
- ``instances.temporary_instances(session, spec)``: instances of one ``LaunchSpec``
  (``AWS.launch_spec`` makes it from the account state) terminated on every exit
  (success, error, Ctrl-C, SIGTERM).
- ``deadman``: the dead-man switch in their user data, for a process that dies, and
  the ``Heartbeat`` a connection sends to hold it off.
- ``images``: base image lookup; content-addressed dev images (fingerprint, reuse,
  stale ones deregistered).
- ``ssm``: wait until managed, run a command and poll it to a final status.
- ``purge`` / ``inventory``: what ``terminate-ec2-instances``, ``purge-ec2-resources``
  and ``list-ec2-resources`` use.
- ``tags``: our tag keys, names and the server-side filters that select what is ours.
"""
