"""Global options, resolved once into a typed object handed to every command."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hgautomation.errors import AWSCredentialsError, ConfigurationError, LocalRepoError
from hgautomation.state import StateDir, local_path

FALLBACK_REGION = "us-west-2"


@dataclass
class Context:
    state: StateDir
    verbosity: int = 0
    debug: bool = False
    explicit_region: str | None = None
    explicit_hg_repo: Path | None = None
    ssh_config: Path | None = None  # --ssh-config: OpenSSH client config for every connection
    identity: Path | None = None  # -i/--identity: the key for hosts the user names
    aws_profile: str | None = None  # --profile: as the AWS CLI's (None: AWS_PROFILE)
    cwd: Path = field(default_factory=Path.cwd)

    @property
    def aws_region(self) -> str:
        """--aws-region, else the AWS config/env region, else us-west-2."""
        if self.explicit_region:
            return self.explicit_region
        for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(var):
                return os.environ[var]
        import botocore.session  # only commands that talk to AWS get here
        from botocore.exceptions import ProfileNotFound

        try:
            region = botocore.session.Session(profile=self.aws_profile).get_config_variable(
                "region")
        except ProfileNotFound as exc:
            raise AWSCredentialsError(f"AWS profile {self.aws_profile!r} not found",
                                      hint="see ~/.aws/config, or --profile") from exc
        return region or FALLBACK_REGION

    @property
    def hg_repo(self) -> Path:
        """--hg-repo, else the Mercurial repository containing the current directory."""
        if self.explicit_hg_repo is not None:
            root = local_path(self.explicit_hg_repo, "--hg-repo")
            if not _has_store(root):
                raise LocalRepoError(f"{_short(root)} is not a Mercurial repository (no .hg)")
            return root
        for candidate in (self.cwd, *self.cwd.parents):
            if _has_store(candidate):
                return candidate
        raise LocalRepoError(
            f"no Mercurial repository at or above {self.cwd}",
            hint="run inside a Mercurial checkout or pass --hg-repo",
        )


    def check_state_outside_checkout(self) -> None:
        """Refuse a state directory inside the Mercurial checkout this run works on
        (--hg-repo, else the one containing the working directory): its private keys
        would be one ``hg addremove`` away from being committed (exit 3)."""
        try:
            root = (local_path(self.explicit_hg_repo, "--hg-repo")
                    if self.explicit_hg_repo is not None
                    else next((c for c in (self.cwd, *self.cwd.parents) if _has_store(c)),
                              None))
            if root is None or not _has_store(root):
                return
            state, checkout = self.state.root.resolve(), root.resolve()
        except (OSError, RuntimeError, LocalRepoError, ConfigurationError):
            return  # no usable checkout: the command says so if it needs one
        if state == checkout or checkout in state.parents:
            raise ConfigurationError(
                f"the state directory {state} is inside the Mercurial checkout "
                f"{checkout}, where its private keys could be committed",
                hint="give --state-path a directory outside the checkout (default "
                     "~/.hgautomation)")


def _has_store(root: Path) -> bool:
    try:
        return (root / ".hg").is_dir()
    except OSError as exc:  # e.g. a name too long for the filesystem
        raise LocalRepoError(f"cannot use {_short(root)} as a repository: {exc.strerror}") \
            from exc


def _short(path: Path, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else text[:limit - 3] + "..."
