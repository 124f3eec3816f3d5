"""The PowerShell the Windows flows would run: generated for every matrix cell and checked.

No Windows (and no PowerShell) exists here, so these tests check the text:
the -EncodedCommand round trip, quoting, parameters per cell, and that every
native call is followed by the $LASTEXITCODE check.
"""

from __future__ import annotations

import base64
import fnmatch
import re

import pytest
from harness import ps_tree
from harness.powershell import params_of, parse_single_quoted
from unit.helpers import pip_builds, release_builds

from hgautomation import errors, platforms
from hgautomation.aws import deadman
from hgautomation.windows import powershell as ps
from hgautomation.windows import recipes

CIBW = release_builds()  # 7.2.4's: its CI's wheels, through cibuildwheel
PIP = pip_builds()  # an older one: one `pip wheel` per interpreter
CIBW_STEPS = recipes.plan(CIBW, recipes.KINDS, "7.2.4")
PIP_WHEEL_STEPS = [s for s in recipes.plan(PIP, ["wheel"], "7.2.4")]
ALL_STEPS = CIBW_STEPS + PIP_WHEEL_STEPS


def step_id(step) -> str:
    return f"{step.script.name.removesuffix('.ps1')}-{step.label.replace(' ', '-')}"
SCRIPT_FILES = sorted(p.name for p in ps.SCRIPTS_DIR.glob("*.ps1"))


# -- encoding and quoting --------------------------------------------------------

@pytest.mark.parametrize("step", ALL_STEPS, ids=step_id)
def test_every_matrix_cell_round_trips_through_encoded_command(step):
    line = step.script.command_line
    words = line.split(" ")
    assert words[:6] == ["powershell", "-NoProfile", "-NonInteractive", "-ExecutionPolicy",
                         "Bypass", "-EncodedCommand"]
    assert len(words) == 7
    # Decoded by hand (base64 of UTF-16LE), not with the module's own decoder.
    assert base64.b64decode(words[6]).decode("utf-16-le") == step.script.text
    assert ps.script_from_command_line(line) == step.script.text
    assert len(line) < 32767 - 100  # CreateProcess limit, with room for sshd's wrapper


def test_non_ascii_survives_the_encoding():
    script = "Write-Output 'Grüße ✓ 漢字'\n"
    encoded = ps.encode(script)
    assert base64.b64decode(encoded)[:2] == "W".encode("utf-16-le")  # UTF-16LE, no BOM
    assert ps.decode(encoded) == script


@pytest.mark.parametrize("value", [
    "plain", "", "it's", "‘smart’ ‚quotes‛", "$(Remove-Item C:\\ -Recurse)", "a\nb",
    "'; exit 1; '", "`backtick` \"double\"", "''''",
])
def test_quote_is_an_exact_single_quoted_literal(value):
    literal = ps.quote(value)
    assert parse_single_quoted(literal) == (value, "")


def test_too_long_command_is_refused():
    with pytest.raises(ps.ScriptTooLong):
        ps.command_line("#" * 20000)


# -- what each matrix cell runs ------------------------------------------------

def test_matrix_is_complete():
    labels = [s.label for s in CIBW_STEPS]
    assert len(labels) == len(set(labels))
    wheels = [s for s in CIBW_STEPS if s.artifact.kind == "wheel"]
    assert len(wheels) == 6 * 2 + 4 and len(PIP_WHEEL_STEPS) == 6 * 2  # ARM64: 3.11+
    for kind in ("inno", "wix"):
        assert sorted(s.artifact.arch for s in CIBW_STEPS if s.artifact.kind == kind) \
            == ["x64", "x86"]


# The release layout, written out by hand for a few cells.
EXPECTED_NAMES = {
    ("wheel", "3.12", "x64"): "mercurial-7.2.4-cp312-cp312-win_amd64.whl",
    ("wheel", "3.9", "x86"): "mercurial-7.2.4-cp39-cp39-win32.whl",
    ("wheel", "3.14", "x86"): "mercurial-7.2.4-cp314-cp314-win32.whl",
    ("wheel", "3.11", "arm64"): "mercurial-7.2.4-cp311-cp311-win_arm64.whl",
    ("inno", "3.12", "x86"): "Mercurial-7.2.4-x86.exe",
    ("inno", "3.12", "x64"): "Mercurial-7.2.4-x64.exe",
    ("wix", "3.12", "x86"): "mercurial-7.2.4-x86.msi",
    ("wix", "3.12", "x64"): "mercurial-7.2.4-x64.msi",
}


@pytest.mark.parametrize("cell,name", sorted(EXPECTED_NAMES.items()))
def test_expected_names_follow_the_release_layout(cell, name):
    (step,) = [s for s in CIBW_STEPS
               if (s.artifact.kind, s.artifact.python, s.artifact.arch) == cell]
    assert step.expected == name


@pytest.mark.parametrize("step", ALL_STEPS, ids=step_id)
def test_each_step_names_its_python_arch_and_output(step):
    kind, python, arch = step.artifact.kind, step.artifact.python, step.artifact.arch
    xy = python.replace(".", "")
    params = params_of(step.script.text)
    assert params["Arch"] == arch
    assert params["Dist"] == "C:\\hgdev\\src\\dist"
    assert params["Source"] == "C:\\hgdev\\src"
    assert params["Pattern"] == step.pattern
    # The pattern finds this cell's artifact and no other cell's (of its own plan).
    plan = PIP_WHEEL_STEPS if step in PIP_WHEEL_STEPS else CIBW_STEPS
    owners = [s.label for s in plan if fnmatch.fnmatchcase(s.expected, step.pattern)]
    assert owners == [step.label]
    body = step.script.text.split("# -- ", 2)[-1]
    tag = {"x86": "win32", "x64": "win_amd64", "arm64": "win_arm64"}[arch]
    if kind == "wheel" and step in PIP_WHEEL_STEPS:
        assert step.python == f"C:\\hgdev\\python{xy}-{arch}\\python.exe"
        assert params["Python"] == step.python
        assert "build_wheel.ps1" in body
        assert re.search(r"^& \$Python -m pip wheel .*--wheel-dir \$Dist \.$", body, re.M)
        assert step.pattern == f"mercurial-*-cp{xy}-cp{xy}-{tag}.whl"
    elif kind == "wheel":
        # cibuildwheel brings its own CPython (any arch, ARM64 too): no C:\hgdev Python.
        assert step.python is None and "Python" not in params
        assert "build_wheel_cibuildwheel.ps1" in body
        assert params["Build"] == f"cp{xy}-*"
        assert params["Archs"] == {"x86": "x86", "x64": "AMD64", "arm64": "ARM64"}[arch]
        assert body.index("$Env:CIBW_BUILD = $Build") < body.index("& $cibuildwheel")
        assert body.index("$Env:CIBW_ARCHS = $Archs") < body.index("& $cibuildwheel")
        assert re.search(r"^& \$cibuildwheel --output-dir \$Dist$", body, re.M)
        assert step.pattern == f"mercurial-*-cp{xy}-cp{xy}-{tag}.whl"
    else:
        # packaging.py runs with the x64 interpreter for both PyOxidizer targets.
        assert step.python == f"C:\\hgdev\\python{xy}-x64\\python.exe"
        assert params["Python"] == step.python
        assert params["Kind"] == kind
        assert params["Version"] == "7.2.4"
        assert params["Target"] == {"x86": "i686-pc-windows-msvc",
                                    "x64": "x86_64-pc-windows-msvc"}[arch]
        assert params["PackagingArgs"] == [kind, "--pyoxidizer-target", params["Target"],
                                           "--version", "7.2.4"]
        assert re.search(r"^& \$Python contrib\\packaging\\packaging\.py @PackagingArgs$",
                         body, re.M)
    # The script itself refuses to succeed when the pattern finds nothing.
    assert "Get-ChildItem -Path $Dist -Filter $Pattern" in body


def test_installer_python_follows_the_option():
    (step,) = recipes.plan(CIBW, ["wix"], "7.2.4", ["3.13"], ["x86"])
    assert step.python == "C:\\hgdev\\python313-x64\\python.exe"
    assert step.expected == "mercurial-7.2.4-x86.msi"


@pytest.mark.parametrize("version", [None, ""])
def test_installers_need_a_version(version):
    with pytest.raises(errors.UsageError, match="needs --version"):
        recipes.plan(CIBW, ["inno"], version)
    # Wheels take their version from the source.
    assert all(s.expected is None for s in recipes.plan(CIBW, ["wheel"], version))


@pytest.mark.parametrize("version", ["7.2'; rm", "7.2 x", "../7"])
def test_odd_versions_are_refused(version):
    # Refused where the command line is parsed, before any plan is made.
    from hgautomation import arguments

    with pytest.raises(errors.UsageError, match="invalid version"):
        arguments.parse_args(["build-wix", "--version", version])


# -- parsed with a real PowerShell grammar; $LASTEXITCODE after every native call ----

def rendered_scripts() -> dict[str, str]:
    """Every script the tool generates: each matrix cell and each parameter set."""
    scripts = {step_id(s): s.script.text for s in ALL_STEPS}
    for version in ("7.2.4", "7.3rc0"):
        for step in recipes.plan(CIBW, recipes.NEEDS_VERSION, version, ["3.13"], ["x86"]):
            scripts[f"{step.label} {version}"] = step.script.text
    scripts["update_source"] = recipes.update_source_script("0" * 40).text
    scripts["run_tests"] = recipes.run_tests_script("3.12", "x64", "-j4 test-foo.t").text
    scripts["run_tests-no-flags"] = recipes.run_tests_script("3.9", "x86", "").text
    scripts["run_tests-quoted"] = recipes.run_tests_script(
        "3.14", "x86", "-k 'it''s' --retest").text
    scripts["provision"] = recipes.provision_script("C:\\hgdev\\provision\\x.ps1").text
    scripts["prepare_image"] = recipes.prepare_image_script().text
    heartbeat = deadman.heartbeat("windows").argv
    scripts["heartbeat"] = ps.script_from_command_line(" ".join(heartbeat))
    scripts["user_data"] = recipes.user_data("ssh-ed25519 AAAA me", "KEY", "ssh-ed25519 BBBB")
    scripts["deadman"] = deadman.deadman_user_data(scripts["user_data"], 60, "windows")
    return scripts


@pytest.mark.parametrize("name", sorted(rendered_scripts()))
def test_every_generated_script_parses(name):
    text = rendered_scripts()[name]
    if name in ("user_data", "deadman"):  # the <powershell> wrapper is EC2's
        text = text.removeprefix("<powershell>\n").removesuffix("</powershell>\n")
    assert ps_tree.syntax_errors(text) == []


@pytest.mark.parametrize("name", SCRIPT_FILES)
def test_every_shipped_script_parses(name):
    assert ps_tree.syntax_errors(ps.read_script(name)) == []


def test_the_grammar_finds_real_errors():
    """The parse check can fail: broken scripts give ERROR or MISSING nodes."""
    for broken in ("if ($x) {\n  Write-Output 'a'\n", "$x = @(1, 2\n", "}\n",
                   "Write-Output \"abc\n", "function f( { }\n"):
        assert ps_tree.syntax_errors(broken), broken


@pytest.mark.parametrize("name", sorted(rendered_scripts()))
def test_every_native_call_is_checked(name):
    text = rendered_scripts()[name]
    if name in ("user_data", "deadman"):
        text = text.removeprefix("<powershell>\n").removesuffix("</powershell>\n")
    assert ps_tree.unchecked_native_calls(text) == []
    tree = ps_tree.parse(text)
    natives = [n for n in ps_tree._walk(tree.root_node)
               if n.type == "command" and ps_tree.is_native(n)]
    if name not in ("prepare_image", "heartbeat"):
        assert natives, "expected at least one native call"


def test_each_script_file_is_used_and_checked():
    assert set(SCRIPT_FILES) == {
        "prelude.ps1", "userdata.ps1", "provision.ps1", "prepare_image.ps1",
        "update_source.ps1", "build_wheel.ps1", "build_wheel_cibuildwheel.ps1",
        "build_installer.ps1", "run_tests.ps1"}
    for name in SCRIPT_FILES:
        assert ps_tree.unchecked_native_calls(ps.read_script(name)) == [], name


def test_prelude_check_stops_with_the_programs_status():
    prelude = ps.read_script("prelude.ps1")
    assert "$ErrorActionPreference = 'Stop'" in prelude
    function = prelude.split("function Assert-LastExit", 1)[1].split("\n}\n", 1)[0]
    assert "$LASTEXITCODE" in function and "exit $code" in function
    assert "failed (exit code $code)" in function


@pytest.mark.parametrize("statement", [
    "& $Python -m pip wheel .", "icacls.exe C:\\x /grant x", "C:\\hgdev\\x\\hg.exe log",
    "python -c 1", "$out = & hg.exe id", "msiexec /i x.msi",
])
def test_checker_catches_a_missing_check(statement):
    text = f"Write-Step 'x'\n{statement}\nWrite-Step 'y'\n"
    assert [line for line, _ in ps_tree.unchecked_native_calls(text)] == [2]
    checked = f"Write-Step 'x'\n{statement}\nAssert-LastExit 'x'\n"
    assert ps_tree.unchecked_native_calls(checked) == []
    nested = f"try {{\n    {statement}\n}}\nfinally {{ Write-Step 'y' }}\n"
    assert [line for line, _ in ps_tree.unchecked_native_calls(nested)] == [2]


@pytest.mark.parametrize("statement", [
    "Set-Location $Source", "$x = 'C:\\hgdev\\src'", "if ($x) { Write-Step 'a' }",
    "exit $code", "Write-Step \"a\\b\"", "[IO.File]::WriteAllText($p, $v)", "# & comment.exe",
    "$found = Get-ChildItem -Path $Dist | Select-Object -First 1",
])
def test_checker_ignores_cmdlets_and_expressions(statement):
    assert ps_tree.unchecked_native_calls(statement + "\n") == []


def test_checker_joins_backtick_continuations():
    text = "& python.exe -m pip `\n    install x\nAssert-LastExit 'pip'\n"
    assert ps_tree.unchecked_native_calls(text) == []
    assert ps_tree.unchecked_native_calls("& python.exe `\n  -V\nWrite-Step 'x'\n") \
        == [(1, "& python.exe ` -V")]


def test_update_source_purges_at_the_node():
    node = "a" * 40
    text = recipes.update_source_script(node).text
    params = params_of(text)
    assert params == {"Hg": "C:\\hgdev\\venv-bootstrap\\Scripts\\hg.exe",
                      "Source": "C:\\hgdev\\src", "Node": node}
    assert re.search(r"^& \$Hg -R \$Source update --clean \$Node$", text, re.M)
    assert re.search(r"^& \$Hg -R \$Source .*purge --all$", text, re.M)
    with pytest.raises(ValueError):
        recipes.update_source_script("tip")


def test_run_tests_uses_msys_and_propagates_status():
    text = recipes.run_tests_script("3.11", "x86", "-j8 --retest").text
    params = params_of(text)
    assert params["MsysShell"] == "C:\\hgdev\\MinGW\\msys\\1.0\\bin\\sh.exe"
    assert params["TestsDir"] == "/c/hgdev/src/tests"
    assert params["Python"] == "/c/hgdev/python311-x86/python.exe"
    assert params["TestFlags"] == "-j8 --retest"
    assert params["Temp"] == "C:\\Temp"
    body = text.split("# -- run_tests.ps1 --", 1)[1]
    assert "$Env:TMP = $Temp" in body and "$Env:TEMP = $Temp" in body
    # Antivirus off only inside try/finally, restored and verified; the status kept.
    off = body.index("Set-MpPreference -DisableRealtimeMonitoring $true")
    run = body.index("& $MsysShell --login -c $command")
    restore = body.index("Set-MpPreference -DisableRealtimeMonitoring $false")
    assert off < body.index("try {") < run < body.index("finally {") < restore
    assert body.index("(Get-MpComputerStatus).RealTimeProtectionEnabled") > restore
    assert re.search(r"^    Assert-LastExit 'run-tests\.py'", body, re.M)
    with pytest.raises(errors.UsageError, match="double quotes"):
        recipes.run_tests_script("3.11", "x86", '-k "x y"')


def test_provision_runs_the_checkouts_installer_with_av_restored():
    text = recipes.provision_script("C:\\hgdev\\provision\\install-windows-dependencies.ps1").text
    params = params_of(text)
    assert params["DepsScript"] == "C:\\hgdev\\provision\\install-windows-dependencies.ps1"
    assert params["BootstrapPython"] == "C:\\hgdev\\venv-bootstrap\\Scripts\\python.exe"
    body = text.split("# -- provision.ps1 --", 1)[1]
    off = body.index("Set-MpPreference -DisableRealtimeMonitoring $true")
    run = body.index("-File $DepsScript")
    restore = body.index("Set-MpPreference -DisableRealtimeMonitoring $false")
    assert off < body.index("try {") < run < body.index("finally {") < restore
    prepare = recipes.prepare_image_script().text
    assert "RealTimeProtectionEnabled" in prepare and "refusing to image" in prepare
    assert "administrators_authorized_keys" in prepare and "ssh_host_*" in prepare


def test_user_data_sets_up_openssh_with_our_keys():
    public = "ssh-ed25519 AAAAC3Nza me@example"
    host_private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"
    host_public = "ssh-ed25519 AAAAhost"
    data = recipes.user_data(public, host_private, host_public)
    assert data.startswith("<powershell>\n") and data.endswith("</powershell>\n")
    params = params_of(data[len("<powershell>\n"):])
    assert params == {"AuthorizedKey": public, "HostKey": host_private,
                      "HostKeyPub": host_public}
    assert "OpenSSH.Server~~~~0.0.1.0" in data
    assert "administrators_authorized_keys" in data
    # ACLs by SID (locale independent): SYSTEM and Administrators only, no inheritance.
    assert data.count('/inheritance:r /grant "${system}:F" "${admins}:F"') == 2
    assert "$system = '*S-1-5-18'" in data and "$admins = '*S-1-5-32-544'" in data
    assert "-Name DefaultShell" in data and "WindowsPowerShell\\v1.0\\powershell.exe" in data
    assert "-Protocol TCP -LocalPort 22 -Action Allow" in data
    assert "HostKey __PROGRAMDATA__/ssh/ssh_host_ed25519_key" in data
    assert "PasswordAuthentication no" in data
    assert len(data.encode()) < 16 * 1024  # EC2's user data limit, before base64


def test_sftp_paths():
    from hgautomation.windows.artifacts import sftp_path

    assert sftp_path("C:\\hgdev\\src\\dist") == "/C:/hgdev/src/dist"
    assert sftp_path("c:\\hgdev") == "/C:/hgdev"
    assert sftp_path("/srv/dist") == "/srv/dist"
    assert recipes.msys_path("C:\\hgdev\\src\\tests") == "/c/hgdev/src/tests"


# -- through the CLI: bad input fails before any machine or AWS call -----------------

NO_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens: must not be reached


@pytest.mark.parametrize("command", ["build-inno", "build-wix", "build-all-windows-packages"])
def test_cli_installers_without_version(cli, command, tmp_path):
    result = cli.run(command, "--ingress-cidr", "127.0.0.1/32", cwd=tmp_path, env=NO_AWS,
                     timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"usage error: {command} needs --version (the version in the package names)"]


def test_cli_run_tests_windows_rejects_double_quotes(cli, tmp_path):
    result = cli.run("run-tests-windows", "--test-flags", '-k "a b"', cwd=tmp_path, env=NO_AWS,
                     timeout=60)
    assert result.returncode == 2
    assert "cannot contain double quotes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_installers_of_one_arch_share_a_purge_and_a_build():
    steps = recipes.plan(CIBW, recipes.KINDS, "7.2.4")
    labels = [s.label for s in steps]
    purged = [s.label for s, p in zip(steps, recipes.purges(steps)) if p]
    wheels = [s.label for s in steps if s.artifact.kind == "wheel"]
    installers = labels[len(wheels):]
    py = platforms.INSTALLER_PYTHON
    assert installers == [f"inno {py} x86", f"wix {py} x86", f"inno {py} x64", f"wix {py} x64"]
    assert purged == wheels + [f"inno {py} x86", f"inno {py} x64"]
    for step in steps[len(wheels):]:
        params = params_of(step.script.text)
        assert params["RustupHome"] == "C:\\hgdev\\rustup"
        assert params["CargoHome"] == "C:\\hgdev\\cargo"
        body = step.script.text.split("# -- build_installer.ps1 --", 1)[1]
        assert body.index("$Env:RUSTUP_HOME = $RustupHome") < body.index("& $Python contrib")


def test_the_windows_dead_man_watcher_parses_and_shuts_down_when_late():
    script = deadman.deadman_script("windows", 3600)
    watcher = script.split("$watch = @'\n", 1)[1].split("\n'@\n", 1)[0]
    assert ps_tree.syntax_errors(watcher) == []
    assert "-ge $d" in watcher and "shutdown.exe /s /f /t 0" in watcher
    assert "Set-Content -Path 'C:\\hgautomation\\deadline'" in script
