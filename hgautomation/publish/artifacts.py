"""The expected artifact set of a Windows release, found in ``<hg repo>/dist``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hgautomation import errors, platforms
from hgautomation.files import sha256_file

# Mercurial's release versions: 7.2, 7.2.1, 7.2rc0, 7.2.1rc1.
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?(rc[0-9]+)?$")


@dataclass(frozen=True)
class Artifact:
    """One file of the release, present on disk, with its size and sha256."""

    spec: platforms.WindowsArtifact
    path: Path
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_wheel(self) -> bool:
        return self.spec.kind == "wheel"


def validate_version(version: str) -> str:
    """VERSION as given, or a UsageError for anything that is not a release version."""
    if not VERSION_RE.match(version):
        raise errors.UsageError(
            f"malformed version {version!r}",
            hint="expected MAJOR.MINOR[.PATCH][rcN], e.g. 7.2.1")
    return version


def expected_names(version: str) -> list[tuple[platforms.WindowsArtifact, str]]:
    """Every (spec, file name) of the release, in the matrix's order."""
    return [(spec, spec.filename(version)) for spec in platforms.windows_release_matrix()]


def collect(dist: Path, version: str) -> list[Artifact]:
    """The whole expected set from ``dist``; an ArtifactError lists every missing file."""
    expected = expected_names(validate_version(version))
    missing = [name for _, name in expected if not (dist / name).is_file()]
    if missing:
        raise errors.ArtifactError(
            f"{len(missing)} of {len(expected)} artifacts for {version} missing in "
            f"{dist}: {', '.join(missing)}",
            hint="build them with build-all-windows-packages")
    found = []
    for spec, name in expected:
        path = dist / name
        found.append(Artifact(spec=spec, path=path, size=path.stat().st_size,
                              sha256=sha256_file(path)))
    return found
