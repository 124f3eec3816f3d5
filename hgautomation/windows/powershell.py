"""PowerShell for Windows hosts: scripts from package files, run as ``-EncodedCommand``.

Every script is the common prelude (strict mode, ``Assert-LastExit``), then one
``$Name = '<value>'`` line per parameter, then the script file's body. Values are
single-quoted, so nothing a user types is ever parsed as PowerShell code.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SCRIPTS_DIR = Path(__file__).parent / "scripts"
PRELUDE = "prelude.ps1"

POWERSHELL = "powershell"
POWERSHELL_FLAGS = ("-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass")

# CreateProcess caps a command line at 32767 UTF-16 units; sshd hands our
# command to the default shell as `powershell.exe -c "<command>"`, so keep a
# margin for that wrapper.
MAX_COMMAND_LINE = 32000

# PowerShell treats these as single quotes too; each is escaped by doubling.
_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_PARAM_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class ScriptTooLong(ValueError):
    """A generated command line would exceed what Windows accepts."""


def quote(value: str) -> str:
    """A PowerShell single-quoted string literal holding exactly ``value``."""
    if "\0" in value:
        raise ValueError("NUL cannot be passed to PowerShell")
    return "'" + "".join(c + c if c in _SINGLE_QUOTES else c for c in value) + "'"


def read_script(name: str) -> str:
    """The text of ``hgautomation/windows/scripts/<name>``."""
    return (SCRIPTS_DIR / name).read_text(encoding="utf-8")


def literal(value: str | Sequence[str]) -> str:
    """A string as a single-quoted literal; a list of strings as ``@('a', 'b')`` (an
    array, which ``& $exe @Array`` passes as separate arguments)."""
    if isinstance(value, (list, tuple)):
        return "@(" + ", ".join(quote(str(v)) for v in value) + ")"
    return quote(str(value))


def render(name: str, params: Mapping[str, str | Sequence[str]] | None = None) -> str:
    """Prelude + parameter assignments + the script ``name``, as one PowerShell script."""
    lines = [read_script(PRELUDE).rstrip("\n"), "", "# -- parameters (generated) --"]
    for key, value in (params or {}).items():
        if not _PARAM_NAME.match(key):
            raise ValueError(f"bad PowerShell parameter name {key!r}")
        lines.append(f"${key} = {literal(value)}")
    lines += ["", f"# -- {name} --", read_script(name).rstrip("\n"), ""]
    return "\n".join(lines)


def encode(script: str) -> str:
    """Base64 of the UTF-16LE script: the form ``-EncodedCommand`` expects."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def decode(encoded: str) -> str:
    """Inverse of :func:`encode`."""
    return base64.b64decode(encoded.encode("ascii"), validate=True).decode("utf-16-le")


def argv(script: str) -> list[str]:
    """The words that run ``script`` on a Windows host; none of them needs quoting."""
    words = [POWERSHELL, *POWERSHELL_FLAGS, "-EncodedCommand", encode(script)]
    length = len(" ".join(words))
    if length > MAX_COMMAND_LINE:
        raise ScriptTooLong(
            f"encoded PowerShell command is {length} characters "
            f"(limit {MAX_COMMAND_LINE}); ship the script as a file instead")
    return words


def command_line(script: str) -> str:
    """The command line that runs ``script`` on a Windows host (:func:`argv`, joined)."""
    return " ".join(argv(script))


def script_from_command_line(line: str) -> str:
    """The script a :func:`command_line` runs (for tests and ``--debug`` output)."""
    words = line.split(" ")
    if words[: len(POWERSHELL_FLAGS) + 2] != [POWERSHELL, *POWERSHELL_FLAGS, "-EncodedCommand"]:
        raise ValueError("not a command line made by powershell.command_line")
    if len(words) != len(POWERSHELL_FLAGS) + 3:
        raise ValueError("trailing words after the encoded command")
    return decode(words[-1])


@dataclass(frozen=True)
class Script:
    """A rendered script with a name for messages."""

    name: str
    text: str

    @classmethod
    def load(cls, name: str,
             params: Mapping[str, str | Sequence[str]] | None = None) -> Script:
        return cls(name, render(name, params))

    @property
    def argv(self) -> list[str]:
        return argv(self.text)

    @property
    def command_line(self) -> str:
        return command_line(self.text)
