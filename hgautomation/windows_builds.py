"""Which Windows artifacts a checkout builds: the record builds and publishing share.

:mod:`hgautomation.windows.declared` reads it from a checkout; ``publish/`` checks a
release against it. It sits below both so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from hgautomation import platforms
from hgautomation.platforms import WindowsArtifact


@dataclass(frozen=True)
class WindowsBuilds:
    """A checkout's Windows builds. Pairs are (python "3.12", arch "x64")."""

    interpreters: tuple[tuple[str, str], ...]  # what its installer puts in C:\hgdev
    wheels: tuple[tuple[str, str], ...]
    wheel_builder: str  # "cibuildwheel" or "pip"
    cibuildwheel: str | None = None  # the installer's pin, "cibuildwheel==3.3.0"
    # The file naming the wheels: contrib/heptapod-ci.yml, pyproject.toml or the
    # install script (windows/declared.py's CI_FILE, PYPROJECT, INSTALL_SCRIPT).
    declared_by: str = "contrib/install-windows-dependencies.ps1"

    @property
    def installer_python(self) -> str:
        """The interpreter running packaging.py: the release default if the checkout
        installs it for x64, else its newest x64 one."""
        x64 = [py for py, arch in self.interpreters if arch == "x64"]
        if platforms.INSTALLER_PYTHON in x64:
            return platforms.INSTALLER_PYTHON
        return max(x64, key=_version_key)

    def matrix(self) -> list[WindowsArtifact]:
        """Every artifact of a release of this checkout: wheels, then Inno and WiX per arch."""
        wheels = [WindowsArtifact("wheel", py, arch) for py, arch in self.wheels]
        installers = [WindowsArtifact(kind, self.installer_python, arch)
                      for kind in ("inno", "wix") for arch in platforms.INSTALLER_ARCHES]
        return wheels + installers

    def describe(self) -> str:
        """One line for the console: how many wheels, built how, for which arches."""
        arches = sorted({arch for _, arch in self.wheels},
                        key=platforms.WINDOWS_WHEEL_ARCHES.index)
        how = "cibuildwheel" if self.wheel_builder == "cibuildwheel" else "pip wheel"
        return (f"{len(self.wheels)} wheels ({how}; {', '.join(arches)}) in "
                f"{self.declared_by}, installers with Python {self.installer_python} x64")


def _version_key(python: str) -> tuple[int, ...]:
    return tuple(int(part) for part in python.split("."))
