"""The expected artifact set of a Windows release, found in ``<hg repo>/dist``.

Which files make the release is what the released revision declares (a
:class:`~hgautomation.windows_builds.WindowsBuilds`), so a branch that builds ARM64
wheels publishes them and an older one is not asked for them.
"""

from __future__ import annotations

from pathlib import Path

from hgautomation import errors
from hgautomation.artifacts import Artifact
from hgautomation.platforms import WindowsArtifact
from hgautomation.windows_builds import WindowsBuilds


def expected_names(builds: WindowsBuilds, version: str) -> list[tuple[WindowsArtifact, str]]:
    """Every (spec, file name) of the release, in the matrix's order."""
    return [(spec, spec.filename(version)) for spec in builds.matrix()]


def collect(dist: Path, version: str, builds: WindowsBuilds) -> list[Artifact]:
    """The whole expected set from ``dist``; an ArtifactError lists every missing file."""
    expected = expected_names(builds, version)
    missing = [name for _, name in expected if not (dist / name).is_file()]
    if missing:
        raise errors.ArtifactError(
            f"{len(missing)} of {len(expected)} artifacts for {version} missing in "
            f"{dist}: {', '.join(missing)}",
            hint="build them with build-all-windows-packages")
    return [Artifact.of(dist / name, spec) for spec, name in expected]
