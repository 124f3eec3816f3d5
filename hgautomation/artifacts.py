"""Build artifacts on local disk: one record for what builds copy back and what publishing sends."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hgautomation.platforms import WindowsArtifact

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A file on local disk with its size and sha256; *spec* is its cell of the release matrix."""

    path: Path
    size: int
    sha256: str
    spec: WindowsArtifact | None = None

    @classmethod
    def of(cls, path: Path, spec: WindowsArtifact | None = None) -> Artifact:
        """Measure *path* (size and sha256) now."""
        return cls(path=path, size=path.stat().st_size, sha256=sha256_file(path), spec=spec)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_wheel(self) -> bool:
        return self.name.endswith(".whl")


@dataclass(frozen=True)
class UploadPlan:
    """What a destination lacks, and what it already has byte for byte."""

    to_upload: Sequence[Artifact]
    already_there: Sequence[Artifact]
