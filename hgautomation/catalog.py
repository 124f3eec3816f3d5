"""The command registry: every subcommand's name, one-line help and declaration, and the
global options.

Read by :mod:`hgautomation.cli` (the top-level help, without argparse and without
importing any command) and by :mod:`hgautomation.arguments` (the parser). A command's
options, record, flow and examples are declared in its own ``commands/<module>.py``;
adding a command is that module plus one line here.
"""

from __future__ import annotations

from hgautomation.declare import Option

DESCRIPTION = "Build, test and release Mercurial on ephemeral EC2 instances or any SSH host."

# Declared once; on every subcommand too (before or after COMMAND).
GLOBAL_OPTIONS: tuple[Option, ...] = (
    Option("--state-path", metavar="DIR", settings=("HGAUTOMATION_STATE_PATH",),
           help="where keys, pinned host keys and results live (default: ~/.hgautomation)"),
    Option("--aws-region", "--region", metavar="REGION",
           settings=("aws.region", "HGAUTOMATION_AWS_REGION"),
           help="AWS region (default: AWS config/env, else us-west-2)"),
    Option("--aws-profile", "--profile", metavar="NAME",
           settings=("aws.profile", "HGAUTOMATION_AWS_PROFILE"),
           help="AWS profile, as the AWS CLI's --profile (default: AWS_PROFILE)"),
    Option("-R", "--hg-repo", metavar="DIR", settings=("HGAUTOMATION_HG_REPO",),
           help="Mercurial checkout to work on (default: the repository containing the "
                "current directory)"),
    Option("--ssh-config", metavar="FILE", settings=("ssh.config", "HGAUTOMATION_SSH_CONFIG"),
           help="OpenSSH client config for every SSH connection, read as ssh reads it "
                "(default: ~/.ssh/config)"),
    Option("-i", "--identity", metavar="FILE",
           settings=("ssh.identity", "HGAUTOMATION_IDENTITY"),
           help="private key for SSH hosts you name (--host, the release host), as "
                "ssh -i; the ssh config's IdentityFile otherwise"),
    Option("--config", kind="append", metavar="SECTION.KEY=VALUE",
           help="set a configuration value for this run (repeatable; the keys are in "
                "docs/configuration.rst)"),
    Option("-v", "--verbose", kind="count", settings=("HGAUTOMATION_VERBOSE",),
           help="more output"),
    Option("-q", "--quiet", kind="flag", settings=("HGAUTOMATION_QUIET",),
           help="only results and errors"),
    Option("--debug", kind="flag", settings=("HGAUTOMATION_DEBUG",),
           help="show tracebacks for errors"),
)

# name -> (one-line help, "module:ATTRIBUTE" of its declaration under hgautomation.commands).
COMMANDS: dict[str, tuple[str, str]] = {
    "bootstrap-linux-dev": (
        "build (or reuse) the Linux development images",
        "bootstrap_linux:COMMAND"),
    "bootstrap-windows-dev": (
        "build (or reuse) the Windows development image",
        "bootstrap_windows:COMMAND"),
    "build-all-windows-packages": (
        "build every Windows wheel and installer of a revision",
        "build_windows:BUILD_ALL"),
    "build-inno": (
        "build Inno Setup installers",
        "build_windows:BUILD_INNO"),
    "build-wix": (
        "build WiX (MSI) installers",
        "build_windows:BUILD_WIX"),
    "build-windows-wheel": (
        "build Windows wheels",
        "build_windows:BUILD_WHEEL"),
    "terminate-ec2-instances": (
        "terminate our EC2 instances",
        "ec2:TERMINATE"),
    "purge-ec2-resources": (
        "remove our EC2 instances, images, security groups, keys and IAM entries",
        "ec2:PURGE"),
    "list-ec2-resources": (
        "list our EC2 resources with their age and estimated cost",
        "ec2:LIST"),
    "setup-ec2-account": (
        "create or repair your key pair, security groups and the IAM instance profile",
        "ec2:SETUP"),
    "run-tests-linux": (
        "run Mercurial's tests on a Linux machine",
        "run_tests_linux:COMMAND"),
    "run-tests-windows": (
        "run Mercurial's tests on a Windows machine",
        "run_tests_windows:COMMAND"),
    "publish-windows-artifacts": (
        "publish Windows wheels and installers to PyPI and mercurial-scm.org",
        "publish:COMMAND"),
    "check-host": (
        "report which parts of the remote-machine contract a Linux host meets",
        "check_host:COMMAND"),
    "try": (
        "send draft changesets to the Try server",
        "try_:COMMAND"),
    "deploy-try-server": (
        "create or repair the Try server (bucket, queues, table, functions, IAM)",
        "try_server:DEPLOY"),
    "destroy-try-server": (
        "remove the Try server and every try it holds",
        "try_server:DESTROY"),
    "try-agent": (
        "run the Try server's jobs as they come (a long-running worker)",
        "try_agent:COMMAND"),
    "completion": (
        "print a bash or zsh completion script for this tool",
        "completion:COMMAND"),
}


def command(name: str):
    """The :class:`~hgautomation.declare.Command` registered as ``name`` (imports its module)."""
    import importlib

    module_name, attribute = COMMANDS[name][1].split(":")
    module = importlib.import_module(f"hgautomation.commands.{module_name}")
    declared = getattr(module, attribute)
    if declared.name != name:
        raise RuntimeError(f"{COMMANDS[name][1]} declares {declared.name!r}, not {name!r}")
    return declared


def help_of(name: str) -> str:
    """The one-line help of command ``name``."""
    return COMMANDS[name][0]
