"""The Windows wheels a revision's ``contrib/heptapod-ci.yml`` (Mercurial's GitLab CI)
builds: the cibuildwheel environment of every run of its Windows wheel jobs.

PyYAML is not among our dependencies, so the file is read by a small reader of the
YAML it is written in (block mappings and sequences, plain and quoted scalars,
comments), one top-level entry at a time. An entry it cannot read, or a wheel job it
does not understand, is an error when it may concern Windows wheels, never a guess.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

CI_FILE = "contrib/heptapod-ci.yml"

# GitLab's top-level keywords: everything else at the top level is a job, or a template
# when its name starts with a dot.
GLOBAL_KEYWORDS = {"default", "include", "stages", "variables", "workflow", "image",
                   "services", "cache", "before_script", "after_script"}
# cibuildwheel's variables that choose which wheels are built, as we model them:
# CIBW_BUILD and CIBW_SKIP replace pyproject's build/skip, CIBW_ARCHS_WINDOWS (else
# CIBW_ARCHS) its archs (cibuildwheel 3.3, options.py).
SELECTORS = ("CIBW_BUILD", "CIBW_SKIP", "CIBW_ARCHS", "CIBW_ARCHS_WINDOWS")
# cibuildwheel's variables that do not change which wheels are built (any other CIBW_*
# may, and is refused). A platform suffix (_WINDOWS …) is allowed on each.
IRRELEVANT = {"ENVIRONMENT", "ENVIRONMENT_PASS", "BEFORE_ALL", "BEFORE_BUILD", "BEFORE_TEST",
              "REPAIR_WHEEL_COMMAND", "TEST_COMMAND", "TEST_REQUIRES", "TEST_EXTRAS",
              "TEST_GROUPS", "TEST_SKIP", "TEST_SOURCES", "TEST_ENVIRONMENT",
              "BUILD_FRONTEND", "BUILD_VERBOSITY", "CONFIG_SETTINGS", "DEPENDENCY_VERSIONS",
              "CONTAINER_ENGINE", "CACHE_PATH", "DEBUG_TRACEBACK", "DEBUG_KEEP_CONTAINER",
              "ALLOW_EMPTY", "XBUILD_TOOLS", "OUTPUT_DIR"}
_PLATFORM_SUFFIX = re.compile(r"_(WINDOWS|LINUX|MACOS|IOS|PYODIDE|ANDROID)$")
# A cibuildwheel run in a job's script: the program, then only options we understand.
_INVOCATION = re.compile(
    r"""^["']?(?:[\w.:-]*[\\/])*cibuildwheel(?:\.exe)?
        (?P<args>(?:\s+--output-dir\s+\S+|\s+--platform\s+windows)*)\s*["']?$""", re.X)


class CIError(ValueError):
    """What is not understood in the file, with its line."""

    def __init__(self, line: int, message: str):
        super().__init__(f"{CI_FILE} line {line}: {message}")
        self.line = line
        self.message = message


# -- a reader for the YAML the file is written in ----------------------------------------------

@dataclass
class _Line:
    number: int  # in the file, from 1
    indent: int
    text: str  # without the indentation and trailing whitespace; "" when blank

    @property
    def skipped(self) -> bool:
        return not self.text or self.text.startswith("#")


_UNSUPPORTED = {"&": "an anchor", "*": "an alias", "!": "a tag", "|": "a block scalar",
                ">": "a block scalar", "%": "a directive", "@": "a reserved indicator",
                "`": "a reserved indicator", "?": "a complex key"}


def _key(text: str) -> tuple[str, str] | None:
    """("key", "rest") when the line is ``key: rest`` (rest may be empty), else None."""
    if text[:1] in ("'", '"'):
        end = _quoted_end(text)
        if end is not None and text[end:end + 1] == ":" and text[end + 1:end + 2] in ("", " "):
            return _unquote(text[:end], 0), text[end + 1:].strip()
        return None
    if not text or (text[0] in "-[]{},#" and not (text[0] == "-" and text[1:2] not in " ")):
        return None
    for match in re.finditer(r":(?= |$)| #", text):
        if match.group() == " #":
            return None
        return text[:match.start()].rstrip(), text[match.end():].strip()
    return None


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


def _quoted_end(text: str) -> int | None:
    """The index just past the quoted scalar starting ``text``, None if it does not close."""
    quote = text[0]
    i = 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1:i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return None


_ESCAPES = {"\\": "\\", '"': '"', "/": "/", "n": "\n", "t": "\t", "r": "\r", "0": "\0",
            " ": " ", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "v": "\v"}


def _unquote(token: str, line: int) -> str:
    body = token[1:-1]
    if token[0] == "'":
        return body.replace("''", "'")
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        code = body[i + 1:i + 2]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        elif code in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[code]
            digits = body[i + 2:i + 2 + width]
            if not re.fullmatch(f"[0-9a-fA-F]{{{width}}}", digits):
                raise CIError(line, f"bad escape in {token}")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        else:
            raise CIError(line, f"unknown escape \\{code} in {token}")
    return "".join(out)


class _Reader:
    """Block YAML over a list of lines; every scalar is a string (PyYAML's BaseLoader)."""

    def __init__(self, lines: list[_Line]):
        self.lines = lines
        self.i = 0

    def peek(self) -> _Line | None:
        while self.i < len(self.lines) and self.lines[self.i].skipped:
            self.i += 1
        return self.lines[self.i] if self.i < len(self.lines) else None

    def node(self, parent: int) -> object:
        """The node on the next line, if indented deeper than ``parent``; else ""."""
        line = self.peek()
        if line is None or line.indent <= parent:
            return ""
        if _is_item(line.text):
            return self.sequence(line.indent)
        if _key(line.text) is not None:
            return self.mapping(line.indent)
        self.i += 1
        return self.inline(line.text, line, parent)

    def mapping(self, indent: int) -> dict:
        result: dict = {}
        while (line := self.peek()) is not None and line.indent >= indent:
            if line.indent > indent:
                raise CIError(line.number, "unexpected indentation")
            found = _key(line.text)
            if found is None:
                raise CIError(line.number, f"expected 'key: value', found {line.text!r}")
            key, rest = found
            self.i += 1  # a key given twice: the last one counts, for GitLab as for PyYAML
            if rest and not rest.startswith("#"):
                result[key] = self.inline(rest, line, indent)
                continue
            after = self.peek()
            if after is not None and after.indent == indent and _is_item(after.text):
                result[key] = self.sequence(indent)  # a sequence may sit at its key's indent
            else:
                result[key] = self.node(indent)
        return result

    def sequence(self, indent: int) -> list:
        items: list = []
        while (line := self.peek()) is not None and line.indent == indent \
                and _is_item(line.text):
            content = line.text[1:]
            stripped = content.lstrip(" ")
            if not stripped or stripped.startswith("#"):
                self.i += 1
                items.append(self.node(indent))
                continue
            # The item's content is a node starting at its own column on this line.
            column = indent + 1 + len(content) - len(stripped)
            self.lines[self.i] = _Line(line.number, column, stripped)
            if _is_item(stripped):
                items.append(self.sequence(column))
            elif _key(stripped) is not None:
                items.append(self.mapping(column))
            else:
                self.i += 1
                items.append(self.inline(stripped, line, indent))
        return items

    def inline(self, text: str, line: _Line, parent: int) -> object:
        """A value written after its key or dash: a scalar (plain ones may continue on
        lines indented deeper than ``parent``), or an empty flow collection."""
        first = text[0]
        if first in _UNSUPPORTED:
            raise CIError(line.number, f"{_UNSUPPORTED[first]} ({text!r}) is not supported")
        if first in ("'", '"'):
            end = _quoted_end(text)
            if end is None:
                raise CIError(line.number, "a quoted scalar over several lines is not "
                                           "supported")
            rest = text[end:].strip()
            if rest and not rest.startswith("#"):
                raise CIError(line.number, f"unexpected {rest!r} after {text[:end]}")
            return _unquote(text[:end], line.number)
        if first in "[{":
            return _flow(text, line.number)
        if first == "-" and _is_item(text):
            raise CIError(line.number, f"unexpected sequence item {text!r}")
        parts = [_plain(text, line.number)]
        blank = 0
        while self.i < len(self.lines):
            nxt = self.lines[self.i]
            if not nxt.text:
                blank += 1
                self.i += 1
                continue
            if nxt.indent <= parent or nxt.text.startswith("#"):
                break
            parts.append("\n" * blank if blank else " ")
            parts.append(_plain(nxt.text, nxt.number))
            blank = 0
            self.i += 1
        if blank:  # blank lines after the scalar are not its own
            self.i -= blank
        return "".join(p for p in parts if p)


_FLOW_SCALAR = re.compile(
    r"""\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s,\[\]{}#'"&*!|>%@`][^,\[\]{}]*?)"""
    r"""(?=\s*[,\]])""")
_FLOW_NEXT = re.compile(r"\s*([,\]])")


def _flow(text: str, line: int) -> list | dict:
    """``[]``, ``{}``, or a one-line ``[a, "b"]`` of scalars (``tags: [windows]``)."""
    def refuse() -> CIError:
        return CIError(line, f"a flow collection ({text!r}) is not supported")

    if text[0] == "{":
        if re.fullmatch(r"\{\s*\}(\s+#.*)?", text):
            return {}
        raise refuse()
    items: list = []
    pos = 1
    while True:
        closing = _FLOW_NEXT.match(text, pos)
        if closing and closing.group(1) == "]" and (not items or text[pos - 1] == ","):
            pos = closing.end()
            break
        item = _FLOW_SCALAR.match(text, pos)
        if item is None:
            raise refuse()
        token = item.group().strip()
        items.append(_unquote(token, line) if token[0] in "'\"" else _plain(token, line))
        after = _FLOW_NEXT.match(text, item.end())
        if after is None:
            raise refuse()
        pos = after.end()
        if after.group(1) == "]":
            break
    rest = text[pos:]
    if rest.strip() and not re.match(r"\s+#", rest):
        raise refuse()
    return items


def _plain(text: str, line: int) -> str:
    """One line of a plain scalar, its comment removed."""
    body = text.split(" #", 1)[0].rstrip()
    if re.search(r":( |$)", body):
        raise CIError(line, f"':' followed by a space in a plain scalar: {text!r}")
    return body


@dataclass(frozen=True)
class Entry:
    """One top-level entry of the file: its value, or why it could not be read."""

    name: str
    line: int
    raw: str
    value: object = None
    error: CIError | None = None


def entries(text: str) -> dict[str, Entry]:
    """Every top-level entry, read one by one (an unreadable one carries its error)."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.rstrip()
        body = stripped.lstrip(" ")
        if body.startswith("\t"):
            raise CIError(number, "a tab in the indentation")
        lines.append(_Line(number, len(stripped) - len(body), body))
    # Entries start at column 0; a sequence there belongs to the key above it.
    starts = [n for n, line in enumerate(lines)
              if line.indent == 0 and not line.skipped and not _is_item(line.text)]
    if starts and lines[starts[0]].text == "---":
        starts = starts[1:]
    found: dict[str, Entry] = {}
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        head = lines[start]
        key = _key(head.text)
        if key is None:
            raise CIError(head.number, f"expected a top-level 'key:', found {head.text!r}")
        name = key[0]
        if name in found:
            raise CIError(head.number, f"duplicate top-level key {name!r}")
        block = lines[start:end]
        raw = "\n".join(line.text for line in block)
        try:
            value = _Reader(list(block)).mapping(0)[name]
        except CIError as exc:
            found[name] = Entry(name, head.number, raw, error=exc)
        else:
            found[name] = Entry(name, head.number, raw, value)
    return found


def load(text: str) -> dict:
    """The whole file as PyYAML's BaseLoader reads it (every scalar a string); the first
    unreadable entry is an error."""
    result = {}
    for entry in entries(text).values():
        if entry.error is not None:
            raise entry.error
        result[entry.name] = entry.value
    return result


# -- the Windows wheel jobs --------------------------------------------------------------------

@dataclass(frozen=True)
class WheelJob:
    """A Windows job running cibuildwheel: the CIBW_* selectors of each of its runs
    (one per cell of its ``parallel: matrix``)."""

    name: str
    line: int
    runs: tuple[tuple[tuple[str, str], ...], ...]


def _merge(base: dict, over: dict) -> dict:
    """GitLab's ``extends``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) \
            and isinstance(out.get(key), dict) else value
    return out


def _resolve(found: dict[str, Entry], name: str, seen: tuple[str, ...] = ()) -> dict:
    entry = found[name]
    if name in seen or len(seen) > 10:  # GitLab allows 11 levels
        raise CIError(entry.line, f"extends of {name!r} loops or is too deep")
    if not isinstance(entry.value, dict):
        raise CIError(entry.line, f"{name!r} is not a mapping")
    parents = entry.value.get("extends", [])
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise CIError(entry.line, f"extends of {name!r} is not a name or a list of names")
    merged: dict = {}
    for parent in parents:
        if parent not in found:
            raise CIError(entry.line, f"{name!r} extends {parent!r}, which is not defined")
        error = found[parent].error
        if error is not None:
            raise CIError(error.line, f"{error.message} (in {parent!r}, which {name!r} "
                                      "extends)")
        merged = _merge(merged, _resolve(found, parent, seen + (name,)))
    own = {k: v for k, v in entry.value.items() if k != "extends"}
    merged = _merge(merged, own)
    merged["extends"] = [a for p in parents for a in [p] + _ancestors(found, p)]
    return merged


def _ancestors(found: dict[str, Entry], name: str, seen: frozenset = frozenset()) -> list[str]:
    """Every entry ``name`` extends, however deep (a loop is _resolve's to report)."""
    value = found[name].value
    parents = value.get("extends", []) if isinstance(value, dict) else []
    parents = [parents] if isinstance(parents, str) else parents
    return [a for p in parents if isinstance(p, str) and p in found and p not in seen
            for a in [p] + _ancestors(found, p, seen | {name})]


def _script_lines(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [line for item in value for line in _script_lines(item)]
    return []


def _is_windows(name: str, job: dict, commands: list[str], line: int) -> bool:
    """Whether a job running cibuildwheel builds Windows wheels, told by its name, what
    it extends, its runner tags or its command; a job that says no platform is an error."""
    tags = job.get("tags", [])
    words = " ".join(str(w) for w in [name, *job["extends"], *commands,
                                      *(tags if isinstance(tags, list) else [tags])]).lower()
    if "windows" in words or "cibuildwheel.exe" in words:
        return True
    if re.search(r"mac|darwin|osx|linux|ios|android|pyodide", words):
        return False
    raise CIError(line, f"job {name!r} runs cibuildwheel for a platform its name, "
                        "extends, tags and command do not tell")


def _cibw_variables(value: object, line: int, where: str) -> dict[str, str]:
    """The CIBW_* of a ``variables:`` mapping; a value we cannot know is an error."""
    if value in ("", None):
        return {}
    if not isinstance(value, dict):
        raise CIError(line, f"{where}: variables is not a mapping")
    out = {}
    for key, val in value.items():
        if not key.startswith("CIBW_"):
            continue
        if isinstance(val, dict):  # the {value:, description:} form
            val = val.get("value")
        out[key] = _check_variable(key, val, line, where)
    return out


def _check_variable(key: str, value: object, line: int, where: str) -> str:
    bare = _PLATFORM_SUFFIX.sub("", key[len("CIBW_"):])
    if key not in SELECTORS and bare not in IRRELEVANT:
        raise CIError(line, f"{where} sets {key}, which may change the wheels cibuildwheel "
                            "builds and is not understood here")
    if not isinstance(value, str) or "$" in value:
        raise CIError(line, f"{where}: {key} is not a plain string ({value!r})")
    return value


def _runs(job: dict, line: int, where: str) -> list[dict[str, str]]:
    """One variable set per run of the job: its ``parallel: matrix`` cells, else one."""
    parallel = job.get("parallel")
    if parallel is None or (isinstance(parallel, str) and parallel.isdigit()):
        return [{}]
    if not isinstance(parallel, dict) or set(parallel) != {"matrix"} \
            or not isinstance(parallel["matrix"], list):
        raise CIError(line, f"{where}: parallel is neither a number nor a matrix")
    runs = []
    for cell in parallel["matrix"]:
        if not isinstance(cell, dict):
            raise CIError(line, f"{where}: a parallel matrix entry is not a mapping")
        names = list(cell)
        choices = []
        for name in names:
            values = cell[name] if isinstance(cell[name], list) else [cell[name]]
            if not all(isinstance(v, str) for v in values):
                raise CIError(line, f"{where}: matrix variable {name} is not a list of "
                                    "strings")
            choices.append(values)
        runs.extend(dict(zip(names, combo)) for combo in itertools.product(*choices))
    return runs


def windows_wheel_jobs(text: str) -> list[WheelJob]:
    """The Windows wheel jobs of the file's ``text``, in file order ([] when it has none:
    the revision predates Windows wheels in its CI). CIError for what is not understood."""
    found = entries(text)
    mentions = [e.name for e in found.values() if "cibuildwheel" in e.raw]
    for entry in found.values():
        if entry.error is None:
            continue
        # An entry we cannot read matters if it runs cibuildwheel or builds on one that does.
        if entry.name in mentions or any(
                re.search(rf"(?<![\w.-]){re.escape(m)}(?![\w.-])", entry.raw)
                for m in mentions if m != entry.name):
            raise CIError(entry.error.line, f"{entry.error.message} (in {entry.name!r}, "
                                            "which may build Windows wheels)")
    if "include" in found:
        raise CIError(found["include"].line, "the CI configuration includes other files, "
                                             "which are not read here")
    globals_ = {}
    if "variables" in found and found["variables"].error is None:
        globals_ = _cibw_variables(found["variables"].value, found["variables"].line,
                                   "the global variables")
    workflow = found.get("workflow")
    if workflow is not None and "CIBW_" in workflow.raw:
        raise CIError(workflow.line, "workflow rules set CIBW_ variables, which is not "
                                     "understood here")
    jobs = []
    for entry in found.values():
        if entry.name.startswith(".") or entry.name in GLOBAL_KEYWORDS \
                or entry.error is not None \
                or not {entry.name, *_ancestors(found, entry.name)} & set(mentions):
            continue
        job = _resolve(found, entry.name)
        script = _script_lines(job.get("script"))
        commands = [s for s in script if "cibuildwheel" in s]
        if not commands or not _is_windows(entry.name, job, commands, entry.line):
            continue
        where = f"job {entry.name!r}"
        for command in script:
            if "cibuildwheel" in command and not re.search(r"\binstall\b", command) \
                    and not _INVOCATION.match(command.strip()):
                raise CIError(entry.line, f"{where} runs {command!r}, which is not "
                                          "understood here (only 'cibuildwheel "
                                          "[--output-dir DIR] [--platform windows]')")
        rules = job.get("rules", [])
        if any(isinstance(r, dict) and "CIBW_" in str(r.get("variables", ""))
               for r in (rules if isinstance(rules, list) else [])):
            raise CIError(entry.line, f"{where} sets CIBW_ variables in its rules, which "
                                      "is not understood here")
        variables = dict(globals_)
        variables.update(_cibw_variables(job.get("variables"), entry.line, where))
        runs = []
        for cell in _runs(job, entry.line, where):
            env = dict(variables)
            env.update({k: _check_variable(k, v, entry.line, where)
                        for k, v in cell.items() if k.startswith("CIBW_")})
            runs.append(tuple(sorted((k, v) for k, v in env.items() if k in SELECTORS)))
        jobs.append(WheelJob(entry.name, entry.line, tuple(runs)))
    return jobs
