"""The command declarations: one per command, the parser and the reference made from them,
no argparse private API, flows that never see argparse."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from hgautomation import arguments, catalog, errors, reference
from hgautomation.declare import Option

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hgautomation"
NAMES = list(catalog.COMMANDS)


def test_the_committed_reference_is_the_rendering():
    committed = (ROOT / "docs" / "reference.rst").read_text()
    assert committed == reference.render(), (
        f"docs/reference.rst differs from the declarations: run `{reference.REGENERATE}`")


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_command_is_declared_under_its_name(name):
    command = catalog.command(name)
    assert command.name == name and command.examples and callable(command.flow)
    assert all(line.startswith(f"{{prog}} {name}") for line in command.examples)


@pytest.mark.parametrize("name", NAMES)
def test_the_record_holds_exactly_the_options(name):
    """Every option reaches the flow through the record (a field of its name, or of its
    Part), and every field the flow reads without a default comes from an option: a
    misspelt field or a forgotten one fails here, not on a user's machine."""
    command = catalog.command(name)
    fields = {f.name: f for f in dataclasses.fields(command.record)}
    parts = command.parts
    filled = {o.dest for o in command.options if o.part is None} | set(parts) | {"prog"}
    assert {o.dest for o in command.options if o.part is None} <= set(fields)
    assert set(parts) <= set(fields)
    unfilled = [f for f in fields.values() if f.name not in filled
                and f.default is dataclasses.MISSING]
    assert not unfilled, [f.name for f in unfilled]
    assert command.record.__dataclass_params__.frozen


@pytest.mark.parametrize("name", NAMES)
def test_the_parser_has_every_declared_option(name, capsys):
    parser = arguments.build_parser("hgautomation", only=[name])
    with pytest.raises(SystemExit):
        parser.parse_args([name, "--help"])
    shown = capsys.readouterr().out
    for option in (*catalog.command(name).options, *catalog.GLOBAL_OPTIONS):
        for flag in option.flags if not option.positional else (option.metavar or option.dest,):
            assert flag in shown, (name, flag)


def test_a_command_line_makes_the_typed_record():
    parsed = arguments.parse_args(["--region", "eu-west-1", "check-host", "--host", "a@b:2",
                                   "--accept-new-host-key", "--no-features"], environ={})
    assert parsed.command.name == "check-host"
    assert parsed.globals.aws_region == "eu-west-1"
    opts = parsed.options
    assert (opts.hosts.specs[0].user, opts.hosts.accept_new_host_key, opts.no_features) == \
        ("a", True, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.no_features = False


# -- settings from declarations --------------------------------------------------------

def test_a_setting_of_another_command_is_accepted_and_a_typo_is_not(tmp_path):
    (tmp_path / "config").write_text("[linux]\ndistro = ubuntu24.04\n")
    argv = ["--state-path", str(tmp_path), "list-ec2-resources"]
    assert arguments.parse_args(argv, environ={}).sources == {}
    parsed = arguments.parse_args(["--state-path", str(tmp_path), "run-tests-linux"],
                                  environ={})
    assert parsed.options.distro == "ubuntu24.04"
    assert parsed.sources == {"distro": f"{tmp_path / 'config'} (linux.distro)"}
    (tmp_path / "config").write_text("[linux]\ndistor = ubuntu24.04\n")
    with pytest.raises(errors.ConfigurationError, match=r"unknown setting 'linux\.distor'") as e:
        arguments.parse_args(argv, environ={})
    assert e.value.hint == "did you mean 'linux.distro'?"


def test_each_windows_flow_has_its_own_instance_type_setting():
    keys = {name: catalog.command(name).option("instance_type").setting
            for name in ("bootstrap-windows-dev", "build-wix", "run-tests-windows",
                         "run-tests-linux")}
    assert keys == {"bootstrap-windows-dev": "windows.bootstrap-instance-type",
                    "build-wix": "windows.build-instance-type",
                    "run-tests-windows": "windows.tests-instance-type",
                    "run-tests-linux": "linux.instance-type"}


def test_option_declarations():
    assert Option("--no-pypi", kind="off", help="x").dest == "pypi"
    assert Option("-R", "--hg-repo", help="x").dest == "hg_repo"
    assert Option("shell", help="x").positional
    assert Option("--x", kind="flag", help="x").default is False
    option = Option("--a", settings=("s.k", "HGAUTOMATION_A"), default=3, help="d %(default)s")
    assert (option.setting, option.env, option.help_text) == ("s.k", "HGAUTOMATION_A", "d 3")
    with pytest.raises(ValueError):
        Option("--pypi", kind="off", help="x")
    with pytest.raises(AttributeError):
        option.help = "changed"


# -- the top-level help stays light ------------------------------------------------------

def test_the_top_level_help_imports_no_argparse_and_no_command():
    """The overview is what a bare `automation.py` prints (bench/startup.py's budget):
    it must not pay for argparse, dataclasses or any command's declaration."""
    program = ("import sys; from hgautomation import cli; cli.overview('x'); "
               "print(' '.join(sorted(m for m in sys.modules if m in ('argparse', "
               "'dataclasses') or m.startswith('hgautomation.commands'))))")
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == []


# -- no argparse private API; commands never see argparse ---------------------------------

# Names of argparse internals (module-level classes and parser/action attributes).
PRIVATE = {"_actions", "_option_string_actions", "_group_actions", "_subparsers",
           "_action_groups", "_optionals", "_positionals", "_mutually_exclusive_groups",
           "_defaults", "_registries", "_name_parser_map", "_choices_actions",
           "_get_optional_kwargs", "_get_positional_kwargs", "_SubParsersAction",
           "_CountAction", "_StoreAction", "_StoreTrueAction", "_StoreFalseAction",
           "_AppendAction", "_ExtendAction", "_HelpAction", "_ArgumentGroup",
           "_ActionsContainer", "_get_values", "_check_value"}


def private_argparse_uses(source: str) -> list[str]:
    """``x._actions``, ``argparse._CountAction`` ... in `source` (attributes and names)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (
                node.attr in PRIVATE or (isinstance(node.value, ast.Name)
                                         and node.value.id == "argparse"
                                         and node.attr.startswith("_"))):
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in PRIVATE:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.ImportFrom) and node.module == "argparse":
            found += [f"line {node.lineno}: {a.name}" for a in node.names
                      if a.name.startswith("_")]
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(
    p.relative_to(PACKAGE)))
def test_no_argparse_private_api(path):
    assert private_argparse_uses(path.read_text()) == []


def test_the_private_api_detector_detects():
    source = ("import argparse\nfrom argparse import _SubParsersAction\n"
              "sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))\n"
              "known = sub.choices['x']._option_string_actions\n")
    assert len(private_argparse_uses(source)) == 4


def argparse_in_commands(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
            found.append(f"line {node.lineno}: import argparse")
        elif isinstance(node, ast.ImportFrom) and node.module == "argparse":
            found.append(f"line {node.lineno}: from argparse")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [f"{node.name}: parameter 'args'" for a in node.args.args
                      + node.args.kwonlyargs if a.arg == "args"]
        elif isinstance(node, ast.Attribute) and node.attr == "Namespace":
            found.append(f"line {node.lineno}: Namespace")
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "commands").glob("*.py")),
                         ids=lambda p: p.name)
def test_flows_never_see_argparse(path):
    assert argparse_in_commands(path.read_text()) == []


def test_the_argparse_detector_detects():
    source = "import argparse\ndef main(ctx, args: argparse.Namespace):\n    pass\n"
    assert len(argparse_in_commands(source)) == 3


def test_the_global_record_holds_exactly_the_global_options():
    fields = [f.name for f in dataclasses.fields(arguments.GlobalOptions)]
    assert fields == [o.dest for o in catalog.GLOBAL_OPTIONS]
