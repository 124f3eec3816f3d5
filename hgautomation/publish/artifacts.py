"""The expected artifact set of a Windows release, found in ``<hg repo>/dist``.

Which files make the release is what the released revision declares (a
:class:`~hgautomation.windows_builds.WindowsBuilds`), so a branch that builds ARM64
wheels publishes them and an older one is not asked for them.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

from hgautomation import errors
from hgautomation.artifacts import Artifact
from hgautomation.platforms import WindowsArtifact
from hgautomation.windows_builds import WindowsBuilds


def expected_names(builds: WindowsBuilds, version: str) -> list[tuple[WindowsArtifact, str]]:
    """Every (spec, file name) of the release, in the matrix's order."""
    return [(spec, spec.filename(version)) for spec in builds.matrix()]


def collect(dist: Path, version: str, builds: WindowsBuilds) -> list[Artifact]:
    """The whole expected set from ``dist``, each file looked at (:func:`problem`); an
    ArtifactError lists every missing file, else every file that is not what it says."""
    expected = expected_names(builds, version)
    # What is there but is no regular file (a symlink, a directory) is looked at below.
    missing = [name for _, name in expected if not os.path.lexists(dist / name)]
    if missing:
        raise errors.ArtifactError(
            f"{len(missing)} of {len(expected)} artifacts for {version} missing in "
            f"{dist}: {', '.join(missing)}",
            hint="build them with build-all-windows-packages")
    wrong = [f"{name} {why}" for spec, name in expected
             if (why := problem(dist / name, spec, version)) is not None]
    if wrong:
        raise errors.ArtifactError(
            f"{len(wrong)} of {len(expected)} artifacts for {version} in {dist} are not "
            f"what they say: {'; '.join(wrong)}",
            hint="rebuild them with build-all-windows-packages; nothing was sent")
    return [Artifact.of(dist / name, spec) for spec, name in expected]


# The first bytes of the installers: a PE executable (Inno) and an OLE compound file (MSI).
MAGIC = {"inno": b"MZ", "wix": bytes.fromhex("d0cf11e0a1b11ae1")}


def problem(path: Path, spec: WindowsArtifact, version: str) -> str | None:
    """Why the file at ``path`` is not the release's ``spec`` of ``version``, or None.

    Only a regular file directly in the dist directory counts (a symlink could publish
    anything, ``/etc/passwd`` included); it is not empty; an installer starts as its
    kind of file does; a wheel is a zip whose ``METADATA`` names mercurial at the
    version of its file name, which is the version being released.
    """
    try:
        info = path.lstat()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link (publish only regular files built into dist/)"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_size == 0:
        return "is empty"
    if spec.kind in MAGIC:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC[spec.kind]))
        if head != MAGIC[spec.kind]:
            kind = "a Windows executable" if spec.kind == "inno" else "an MSI package"
            return f"is not {kind} (it starts with {head[:8]!r})"
        return None
    return _wheel_problem(path, version)


def _wheel_problem(path: Path, version: str) -> str | None:
    import email.parser

    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist()
                     if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                return "is a zip without one *.dist-info/METADATA (not a wheel)"
            with wheel.open(names[0]) as fh:
                raw = fh.read(1 << 20)
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
        return f"is not a wheel ({exc})"
    metadata = email.parser.BytesHeaderParser().parsebytes(raw)
    name, found = metadata.get("Name", ""), metadata.get("Version", "")
    if name.strip().lower() != "mercurial":
        return f"has METADATA Name {name!r}, not mercurial"
    if found.strip() != version:
        return f"has METADATA Version {found!r}, not {version} as its name and the release say"
    return None
