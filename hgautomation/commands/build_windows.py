"""Windows builds: wheels, Inno Setup and WiX installers."""

from __future__ import annotations

from hgautomation.commands import not_available


def build_all(ctx, args) -> int:
    raise not_available("build-all-windows-packages", "building Windows packages")


def build_inno(ctx, args) -> int:
    raise not_available("build-inno", "building Inno Setup installers")


def build_wix(ctx, args) -> int:
    raise not_available("build-wix", "building WiX installers")


def build_wheel(ctx, args) -> int:
    raise not_available("build-windows-wheel", "building Windows wheels")
