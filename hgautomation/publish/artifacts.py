"""The expected artifact set of a Windows release, found in ``<hg repo>/dist``."""

from __future__ import annotations

from pathlib import Path

from hgautomation import errors, platforms
from hgautomation.artifacts import Artifact


def expected_names(version: str) -> list[tuple[platforms.WindowsArtifact, str]]:
    """Every (spec, file name) of the release, in the matrix's order."""
    return [(spec, spec.filename(version)) for spec in platforms.windows_release_matrix()]


def collect(dist: Path, version: str) -> list[Artifact]:
    """The whole expected set from ``dist``; an ArtifactError lists every missing file."""
    expected = expected_names(version)
    missing = [name for _, name in expected if not (dist / name).is_file()]
    if missing:
        raise errors.ArtifactError(
            f"{len(missing)} of {len(expected)} artifacts for {version} missing in "
            f"{dist}: {', '.join(missing)}",
            hint="build them with build-all-windows-packages")
    return [Artifact.of(dist / name, spec) for spec, name in expected]
