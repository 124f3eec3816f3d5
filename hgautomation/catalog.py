"""The command-line surface as data: every subcommand with its help and flow, the global options.

Read by :mod:`hgautomation.cli` (the top-level help, dispatch) and by
:mod:`hgautomation.arguments` (the parser), so both always agree.
"""

from __future__ import annotations

DESCRIPTION = "Build, test and release Mercurial on ephemeral EC2 instances or any SSH host."

# flags -> add_argument keywords; also rendered by the top-level help.
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict], ...] = (
    (("--state-path",), {"metavar": "DIR", "help": "where keys, pinned host keys and "
                                                    "results live (default: ~/.hgautomation)"}),
    (("--aws-region", "--region"), {"metavar": "REGION",
                                    "help": "AWS region (default: AWS config/env, else "
                                            "us-west-2)"}),
    (("--aws-profile", "--profile"), {"metavar": "NAME",
                                      "help": "AWS profile, as the AWS CLI's --profile "
                                              "(default: AWS_PROFILE)"}),
    (("-R", "--hg-repo"), {"metavar": "DIR", "help": "Mercurial checkout to work on (default: "
                                                     "the repository containing the current "
                                                     "directory)"}),
    (("--ssh-config",), {"metavar": "FILE",
                         "help": "OpenSSH client config for every SSH connection, read as "
                                 "ssh reads it (default: ~/.ssh/config)"}),
    (("-i", "--identity"), {"metavar": "FILE",
                            "help": "private key for SSH hosts you name (--host, the release "
                                    "host), as ssh -i; the ssh config's IdentityFile "
                                    "otherwise"}),
    (("--config",), {"metavar": "SECTION.KEY=VALUE", "action": "append",
                     "help": "set a configuration value for this run (repeatable; see "
                             "<state>/config in README)"}),
    (("-v", "--verbose"), {"action": "count", "default": 0, "help": "more output"}),
    (("-q", "--quiet"), {"action": "store_true", "default": False,
                         "help": "only results and errors"}),
    (("--debug",), {"action": "store_true", "default": False,
                    "help": "show tracebacks for errors"}),
)


# name -> (help, "module:function" under hgautomation.commands); the options of
# each are added by hgautomation.arguments.ADDERS[name].
COMMANDS: dict[str, tuple[str, str]] = {
    "bootstrap-linux-dev": (
        "build (or reuse) the Linux development images",
        "bootstrap_linux:main"),
    "bootstrap-windows-dev": (
        "build (or reuse) the Windows development image",
        "bootstrap_windows:main"),
    "build-all-windows-packages": (
        "build every Windows wheel and installer of a revision",
        "build_windows:build_all"),
    "build-inno": (
        "build Inno Setup installers",
        "build_windows:build_inno"),
    "build-wix": (
        "build WiX (MSI) installers",
        "build_windows:build_wix"),
    "build-windows-wheel": (
        "build Windows wheels",
        "build_windows:build_wheel"),
    "terminate-ec2-instances": (
        "terminate our EC2 instances",
        "ec2:terminate"),
    "purge-ec2-resources": (
        "remove our EC2 instances, images, security groups, keys and IAM entries",
        "ec2:purge"),
    "list-ec2-resources": (
        "list our EC2 resources with their age and estimated cost",
        "ec2:list_resources"),
    "setup-ec2-account": (
        "create or repair your key pair, security groups and the IAM instance profile",
        "ec2:setup_account"),
    "run-tests-linux": (
        "run Mercurial's tests on a Linux machine",
        "run_tests_linux:main"),
    "run-tests-windows": (
        "run Mercurial's tests on a Windows machine",
        "run_tests_windows:main"),
    "publish-windows-artifacts": (
        "publish Windows wheels and installers to PyPI and mercurial-scm.org",
        "publish:main"),
    "check-host": (
        "report which parts of the remote-machine contract a Linux host meets",
        "check_host:main"),
    "try": (
        "send draft changesets to the Try server",
        "try_:main"),
    "completion": (
        "print a bash or zsh completion script for this tool",
        "completion:main"),
}


# name -> command lines shown under "examples:" in its help ({prog} is the program).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "bootstrap-linux-dev": (
        "{prog} bootstrap-linux-dev --distros debian12,ubuntu24.04",
        "{prog} bootstrap-linux-dev --host hg@buildbox --pythons 3.12,3.13",
    ),
    "bootstrap-windows-dev": (
        "{prog} bootstrap-windows-dev -r stable",
    ),
    "build-all-windows-packages": (
        "{prog} build-all-windows-packages -r 7.2.4 --version 7.2.4",
    ),
    "build-inno": (
        "{prog} build-inno -r 7.2.4 --version 7.2.4 --arch x64",
    ),
    "build-wix": (
        "{prog} build-wix -r 7.2.4 --version 7.2.4",
    ),
    "build-windows-wheel": (
        "{prog} build-windows-wheel --python-version 3.12 3.13 --arch x64 arm64",
    ),
    "terminate-ec2-instances": (
        "{prog} terminate-ec2-instances",
        "{prog} terminate-ec2-instances --all-owners",
    ),
    "purge-ec2-resources": (
        "{prog} purge-ec2-resources --dry-run",
        "{prog} purge-ec2-resources --images",
    ),
    "list-ec2-resources": (
        "{prog} list-ec2-resources",
        "{prog} list-ec2-resources --all-owners",
    ),
    "setup-ec2-account": (
        "{prog} setup-ec2-account --ingress-cidr 203.0.113.7/32",
    ),
    "run-tests-linux": (
        "{prog} run-tests-linux --host hg@buildbox test-commit.t",
        "{prog} run-tests-linux --python-version 3.13 -- -j8 --retest",
        "{prog} run-tests-linux -r . --distro ubuntu24.04 --filesystem tmpfs",
    ),
    "run-tests-windows": (
        "{prog} run-tests-windows --python-version 3.12 --arch x64 "
        "--test-flags '-j8 test-commit.t'",
    ),
    "publish-windows-artifacts": (
        "{prog} publish-windows-artifacts 7.2.4 --dry-run",
        "{prog} publish-windows-artifacts 7.2.4 --ssh-username alice",
    ),
    "check-host": (
        "{prog} check-host --host hg@buildbox",
    ),
    "try": (
        "{prog} try -r .",
        "{prog} try -r 'draft() and ::.'",
    ),
    "completion": (
        "{prog} completion bash > ~/.local/share/bash-completion/completions/{prog}",
        "{prog} completion zsh > ~/.zfunc/_{prog}",
    ),
}
