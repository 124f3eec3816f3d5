"""`completion bash|zsh`: a completion script generated from the whole parser (shtab).

Installed by redirecting it where the shell looks (README: "Shell completion").
"""

from __future__ import annotations

import argparse

from hgautomation import console
from hgautomation.context import Context


def main(ctx: Context, args: argparse.Namespace) -> int:
    import shtab

    from hgautomation import arguments

    parser = arguments.build_parser(args.prog)  # every command's options
    console.get().result(shtab.complete(parser, shell=args.shell).rstrip("\n"))
    return 0
