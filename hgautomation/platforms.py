"""What we support today: distros, Pythons, architectures, filesystems.

The single source for CLI choices and for the build matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

# Distro name -> how its base image is found (owner id, AMI name pattern).
LINUX_DISTROS: dict[str, tuple[str, str]] = {
    "debian12": ("136693071363", "debian-12-amd64-*"),
    "debian13": ("136693071363", "debian-13-amd64-*"),
    "ubuntu22.04": ("099720109477", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"),
    "ubuntu24.04": ("099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"),
}
DEFAULT_LINUX_DISTRO = "debian12"


def distro_title(distro: str) -> str:
    """"debian12" -> "Debian 12", "ubuntu24.04" -> "Ubuntu 24.04"."""
    name = distro.rstrip("0123456789.")
    return f"{name.capitalize()} {distro[len(name):]}"

# Pythons Mercurial supports today; "system3" is the distro's /usr/bin/python3.
CPYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
PYPY_VERSIONS = ("pypy3.10", "pypy3.11")
LINUX_PYTHONS = ("system3",) + CPYTHON_VERSIONS + PYPY_VERSIONS
DEFAULT_LINUX_PYTHON = "system3"

WINDOWS_PYTHONS = CPYTHON_VERSIONS
DEFAULT_WINDOWS_PYTHON = "3.12"
# Interpreters on the Windows image (C:\hgdev\python<XY>-<arch>), hence test runs.
WINDOWS_ARCHES = ("x86", "x64")
# Wheels: cibuildwheel also cross-builds for ARM64 on an x64 machine.
WINDOWS_WHEEL_ARCHES = ("x86", "x64", "arm64")
# Installers: PyOxidizer's two Windows targets.
INSTALLER_ARCHES = ("x86", "x64")

FILESYSTEMS = ("default", "tmpfs", "ext3", "ext4", "xfs", "btrfs", "jfs")

DEFAULT_WINDOWS_BASE_IMAGE = "Windows_Server-2022-English-Full-Base-*"
AMAZON_OWNER_ID = "801119661308"


# -- Windows release artifacts (which ones a checkout builds: windows.declared) --

WHEEL_PLATFORM_TAGS = {"x86": "win32", "x64": "win_amd64", "arm64": "win_arm64"}
# The Python running the checkout's packaging.py (PyOxidizer embeds its own).
INSTALLER_PYTHON = DEFAULT_WINDOWS_PYTHON


@dataclass(frozen=True)
class WindowsArtifact:
    """One file of a Windows release: kind ("wheel", "inno", "wix"), python ("3.12"), arch."""

    kind: str
    python: str
    arch: str

    def filename(self, version: str) -> str:
        if self.kind == "wheel":
            tag = "cp" + self.python.replace(".", "")
            return f"mercurial-{version}-{tag}-{tag}-{WHEEL_PLATFORM_TAGS[self.arch]}.whl"
        if self.kind == "inno":
            return f"Mercurial-{version}-{self.arch}.exe"
        if self.kind == "wix":
            return f"mercurial-{version}-{self.arch}.msi"
        raise ValueError(f"unknown artifact kind {self.kind!r}")


# Approximate on-demand USD/hour (us-east-1, Linux, late 2025) for a cost estimate only.
HOURLY_USD = {
    "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416, "t3.large": 0.0832,
    "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
    "m5.large": 0.096, "m5.xlarge": 0.192, "m6i.large": 0.096, "m6i.xlarge": 0.192,
    "m6i.2xlarge": 0.384, "m7i.large": 0.1008, "m7i.xlarge": 0.2016,
    "c5.large": 0.085, "c5.xlarge": 0.17, "c5.2xlarge": 0.34, "c5.4xlarge": 0.68,
    "c5.9xlarge": 1.53, "c6i.large": 0.085, "c6i.xlarge": 0.17, "c6i.2xlarge": 0.34,
    "c6i.4xlarge": 0.68, "c6i.8xlarge": 1.36, "c7i.large": 0.08925, "c7i.xlarge": 0.1785,
}
# Windows adds a license fee per vCPU-hour (approximate).
WINDOWS_PER_VCPU_USD = 0.046
VCPUS = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32,
         "9xlarge": 36, "micro": 2, "small": 2, "medium": 2}


def hourly_estimate(instance_type: str, windows: bool = False) -> float | None:
    price = HOURLY_USD.get(instance_type)
    if price is None:
        return None
    if windows:
        price += WINDOWS_PER_VCPU_USD * VCPUS.get(instance_type.split(".")[-1], 2)
    return price


# The Linux image builder compiles CPython once per Python (six of them) and Rust's
# tools: 8 vCPUs, as Mercurial's own automation used "for compiling Python".
LINUX_BUILDER_INSTANCE_TYPE = "c5.2xlarge"

# Default EC2 instance types of the Windows flows. Windows instances are billed
# per started hour, so each is sized to use its hours, not to shave minutes:
# the image build is download/installer-bound (4 vCPUs for EBS throughput);
# builds (Rust/PyOxidizer, 12 wheels) and run-tests.py -j are CPU-bound (8 vCPUs).
WINDOWS_INSTANCE_TYPES = {
    "bootstrap": "m6i.xlarge",
    "build": "c6i.2xlarge",
    "tests": "c6i.2xlarge",
}
