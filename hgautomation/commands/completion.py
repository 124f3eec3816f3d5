"""``completion bash|zsh``: a completion script generated from the whole parser (shtab).

Installed by redirecting it where the shell looks (docs/commands.rst, ``completion``).
"""

from __future__ import annotations

from dataclasses import dataclass

from hgautomation import console
from hgautomation.context import Context
from hgautomation.declare import Command, Option


@dataclass(frozen=True)
class CompletionOptions:
    shell: str
    prog: str  # the program name the script completes


def main(ctx: Context, opts: CompletionOptions) -> int:
    import shtab

    from hgautomation import arguments

    parser = arguments.build_parser(opts.prog)  # every command's options
    console.get().result(shtab.complete(parser, shell=opts.shell).rstrip("\n"))
    return 0


COMMAND = Command(
    "completion",
    options=(Option("shell", choices=("bash", "zsh"), help="the shell to complete for"),),
    record=CompletionOptions,
    flow=main,
    examples=(
        "{prog} completion bash > ~/.local/share/bash-completion/completions/{prog}",
        "{prog} completion zsh > ~/.zfunc/_{prog}",
    ),
)
