"""Validators of typed options and the parser that applies them, in process."""

from __future__ import annotations

import pytest

from hgautomation import arguments, catalog, errors, options


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.7", "192.0.2.7/32"),
    (" 192.0.2.7/32 ", "192.0.2.7/32"),
    ("10.1.2.3/8", "10.0.0.0/8"),
    ("2001:db8::1", "2001:db8::1/128"),
])
def test_cidr_normalizes(text, expected):
    assert options.cidr(text) == expected


@pytest.mark.parametrize("text", ["abc", "", "192.0.2.300", "192.0.2.7/33", "1.2.3.4\n5"])
def test_cidr_refuses(text):
    with pytest.raises(errors.UsageError, match="invalid address range"):
        options.cidr(text)


@pytest.mark.parametrize("text, expected", [("1", 1), ("22", 22), ("65535", 65535)])
def test_port(text, expected):
    assert options.port(text) == expected


@pytest.mark.parametrize("text", ["0", "65536", "70000", "-1", "²", "22 ", "", "0x16"])
def test_port_refuses(text):
    with pytest.raises(errors.UsageError, match="invalid port"):
        options.port(text)


@pytest.mark.parametrize("text", ["7.2", "7.2.1", "7.2rc0", "7.2.1rc1", "7.2.1+local",
                                  "7.2.1b1"])
def test_version_accepts_normal_forms(text):
    assert options.version(text) == text


@pytest.mark.parametrize("text", ["7.2.1\n", " 7.2.1", "v7.2", "7.2-rc0", "7.2.RC1", "",
                                  "latest", "7.2.1/../x"])
def test_version_refuses_anything_else(text):
    with pytest.raises(errors.UsageError, match="invalid version"):
        options.version(text)


@pytest.mark.parametrize("text, expected", [("alice", "alice"), ("Alice", "alice"),
                                            ("alice-smith", "alice-smith"),
                                            ("x" * 32, "x" * 32), ("r2d2", "r2d2")])
def test_owner_is_kept_as_typed_but_for_case(text, expected):
    assert options.owner(text) == expected


# Normalization once made these alice-smith, bob-example-org and 32 x's: each could
# collide with another owner, so they are refused, with the normal form as a hint.
@pytest.mark.parametrize("text, hint", [("Alice Smith", "alice-smith"),
                                        ("bob@example.org", "bob-example-org"),
                                        ("x" * 40, "x" * 32), ("a.b", "a-b"), ("a_b", "a-b"),
                                        ("-a", "a"), ("bob\n", "bob")])
def test_owner_that_normalization_would_change_is_refused(text, hint):
    with pytest.raises(errors.UsageError, match="invalid owner") as raised:
        options.owner(text)
    assert raised.value.hint == f"e.g. {hint!r}"


@pytest.mark.parametrize("text", ["élève", "日本", "\u212a", "İ"])
def test_non_ascii_owner_is_refused_without_a_guess(text):
    # élève would be l-ve: a guess that only confuses.
    with pytest.raises(errors.UsageError, match="ASCII letters") as raised:
        options.owner(text)
    assert raised.value.hint is None


@pytest.mark.parametrize("text", ["", "   ", "!!!", "---"])
def test_owner_refuses_empty(text):
    with pytest.raises(errors.UsageError, match="invalid owner"):
        options.owner(text)


@pytest.mark.parametrize("spec, expected", [
    ("box", (None, "box", None)),
    ("hg@box:2222", ("hg", "box", 2222)),
    ("root@[2001:db8::1]:22", ("root", "2001:db8::1", 22)),
    ("[::1]", (None, "::1", None)),
    ("a@b@box", ("a@b", "box", None)),
])
def test_host_spec(spec, expected):
    parsed = options.parse_host_spec(spec)
    assert (parsed.user, parsed.address, parsed.port) == expected


@pytest.mark.parametrize("spec, message", [
    ("@box", "empty user"), ("box:", "bad port"), ("box:99999", "bad port"),
    ("box:²", "bad port"), ("[::1", "bad host address"), ("hg@", "empty address"),
])
def test_host_spec_refuses(spec, message):
    with pytest.raises(errors.UsageError, match=message):
        options.parse_host_spec(spec)


def test_bounded_int():
    parse = options.bounded_int(1, 64)
    assert parse("64") == 64
    for bad in ("0", "65", "-1", "1.5", "³"):
        with pytest.raises(errors.UsageError):
            parse(bad)


# -- the parser applies them: one behaviour for every command --------------------

INGRESS_COMMANDS = sorted(
    name for name in catalog.COMMANDS
    if any("--ingress-cidr" in o.flags for o in catalog.command(name).options))


def test_ingress_commands_include_windows_and_linux():
    assert {"bootstrap-windows-dev", "build-all-windows-packages", "run-tests-windows",
            "run-tests-linux", "bootstrap-linux-dev", "setup-ec2-account"} <= set(
        INGRESS_COMMANDS)


def _required(name: str) -> list[str]:
    return ["1.0"] if name == "publish-windows-artifacts" else []


@pytest.mark.parametrize("name", INGRESS_COMMANDS)
def test_a_bare_address_means_32_on_every_command(name):
    parsed = arguments.parse_args([name, "--ingress-cidr", "192.0.2.7", *_required(name)])
    assert parsed.options.aws.ingress_cidr == "192.0.2.7/32"


@pytest.mark.parametrize("name", INGRESS_COMMANDS)
def test_a_malformed_cidr_is_a_usage_error_on_every_command(name):
    with pytest.raises(errors.UsageError, match="--ingress-cidr: invalid address range 'abc'"):
        arguments.parse_args([name, "--ingress-cidr", "abc", *_required(name)])


def test_abbreviations_are_refused():
    # --hg must never silently mean --hg-repo.
    with pytest.raises(errors.UsageError, match="unrecognized arguments: --hg"):
        arguments.parse_args(["try", "--hg", "/x"])
    with pytest.raises(errors.UsageError, match="unrecognized arguments: --repo x"):
        arguments.parse_args(["publish-windows-artifacts", "1.0", "--repo", "x"])


def test_typed_values_reach_the_record():
    opts = arguments.parse_args(["run-tests-linux", "--host", "hg@box:2222", "--host", "b",
                                 "--instances", "2", "--owner", "Alice", "--", "-j8"]).options
    assert [(h.user, h.address, h.port) for h in opts.hosts.specs] == [("hg", "box", 2222),
                                                                       (None, "b", None)]
    assert opts.instances == 2 and opts.aws.owner == "alice"
    assert opts.test_flags == ("-j8",)


@pytest.mark.parametrize("argv, message", [
    (["run-tests-linux", "--instances", "0"], "--instances"),
    (["run-tests-linux", "--instances", "65"], "--instances"),
    (["publish-windows-artifacts", "1.0", "--ssh-port", "70000"], "--ssh-port"),
    (["try", "--function", ""], "--function"),
    (["build-inno", "--version", "7.2.1\n"], "--version"),
])
def test_bad_values_are_usage_errors(argv, message):
    with pytest.raises(errors.UsageError, match=message):
        arguments.parse_args(argv)


# -- what run-tests-linux hands to run-tests.py ------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["test-a.t", "--with-hg=/x", "test-b.t"], ["test-a.t", "--with-hg=/x", "test-b.t"]),
    (["--host", "b", "test-a.t", "--", "-j", "8", "test-b.t"], ["test-a.t", "-j", "8",
                                                                "test-b.t"]),
    (["test-a.t", "-l", "--", "test-c.t"], ["test-a.t", "-l", "test-c.t"]),
    (["-j8", "test-a.t"], ["-j8", "test-a.t"]),
    (["--", "--with-hg=x", "t.t", "--"], ["--with-hg=x", "t.t", "--"]),
    ([], []),
])
def test_run_tests_flags_keep_the_order_typed(argv, expected):
    assert arguments.parse_args(["run-tests-linux", *argv]).options.test_flags == tuple(expected)


@pytest.mark.parametrize("argv", [["-j", "8", "test-a.t"], ["test-a.t", "--shard", "2"]])
def test_an_option_with_a_separate_value_must_follow_the_double_dash(argv):
    with pytest.raises(errors.UsageError, match=r"options of run-tests\.py go after --"):
        arguments.parse_args(["run-tests-linux", *argv])


def test_our_verbose_among_test_flags_is_pointed_out(captured):
    parsed = arguments.parse_args(["run-tests-linux", "test-a.t", "-v"])
    assert parsed.globals.verbose == 1 and parsed.options.test_flags == ("test-a.t",)
    assert "-v is hgautomation's own option" in captured.err_text


@pytest.mark.parametrize("value", ["0.0.0.0/0", "::/0", "0.0.0.0"])
def test_an_ingress_open_to_everyone_needs_its_own_flag(value):
    if value == "0.0.0.0":
        assert options.cidr(value) == "0.0.0.0/32"  # one (odd) address, not everyone
        return
    with pytest.raises(errors.UsageError, match="every address") as refused:
        arguments.parse_args(["setup-ec2-account", "--ingress-cidr", value])
    assert "--allow-any-address" in refused.value.hint
    parsed = arguments.parse_args(["setup-ec2-account", "--ingress-cidr", value,
                                   "--allow-any-address"])
    assert parsed.options.aws.ingress_cidr == value


def test_a_widened_cidr_is_warned_about(captured):
    assert options.cidr("10.1.2.3/8") == "10.0.0.0/8"
    assert "admits all of 10.0.0.0/8" in captured.err_text
    assert options.cidr("10.0.0.0/8") == "10.0.0.0/8"
    assert captured.err_text.count("admits") == 1


@pytest.mark.parametrize("spec, problem", [
    ("box..example.org", "empty label"),
    ("a" * 64 + ".example.org", "label longer than 63"),
    ("x" * 300, "longer than 253"),
    ("bad host", "spaces or control"),
    ("box\n", "spaces or control"),
])
def test_host_names_that_cannot_resolve_are_usage_errors(spec, problem):
    with pytest.raises(errors.UsageError, match=problem):
        options.parse_host_spec(spec)


@pytest.mark.parametrize("option", ["--repository-url", "--repository"])
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_package_index_is_refused_not_taken_for_pypi(option, value):
    """``--repository-url "$UNSET"``: empty, the option would silently mean the default,
    PyPI itself (twine's fallback), where a test index was meant. Breaking it looks like
    removing the option's ``validator=options.non_empty``."""
    argv = ["publish-windows-artifacts", "7.2.4", option]
    with pytest.raises(errors.UsageError, match=f"^argument {option}: must not be empty$") \
            as refused:
        arguments.parse_args([*argv, value], environ={})
    assert refused.value.exit_code == 2
    opts = arguments.parse_args([*argv, "x"], environ={}).options  # one character will do
    assert (opts.repository_url if option == "--repository-url" else opts.repository) == "x"


LABEL_63 = "a" * 63
NAME_253 = ".".join([LABEL_63] * 3 + ["b" * 61])  # 3 * 64 + 61 characters


@pytest.mark.parametrize("spec,problem", [
    (LABEL_63, None),
    (LABEL_63 + ".example.org", None),
    ("box." + LABEL_63, None),
    ("a" * 64, "a label longer than 63 characters"),
    ("box." + "a" * 64 + ".org", "a label longer than 63 characters"),
    (NAME_253, None),
    (NAME_253 + ".", None),  # the root's dot is not counted
    (NAME_253 + "c", "longer than 253 characters"),
])
def test_host_name_lengths_at_the_limit_and_one_past_it(spec, problem):
    """DNS's limits, exactly: a 63-character label and a 253-character name pass, one
    more character is refused with the rule's own words (breaking it: ``> 62`` or
    ``>= 63`` for ``> 63`` refuses a valid name; ``> 64`` lets the IDNA codec refuse a
    64-character label as "not a valid international domain name")."""
    assert len(NAME_253) == 253
    if problem is None:
        assert options.parse_host_spec(spec).address == spec
        assert options.parse_host_spec(f"hg@{spec}:2222").address == spec
    else:
        with pytest.raises(errors.UsageError) as raised:
            options.parse_host_spec(spec)
        assert raised.value.message.endswith(f": {problem}")


@pytest.mark.parametrize("spec", ["münchen.example", "my_alias", "box.", "10.0.0.1",
                                  "[2001:db8::1]:22"])
def test_unusual_but_valid_host_names_pass(spec):
    assert options.parse_host_spec(spec).address


@pytest.mark.parametrize("argv,expected", [
    (["build-windows-wheel", "--arch", "x86,x64", "--python-version", "3.12"],
     (("x86", "x64"), ("3.12",))),
    (["build-windows-wheel", "--arch", "x86", "arm64,x64", "--python-version=3.12,3.13"],
     (("x86", "arm64", "x64"), ("3.12", "3.13"))),
    (["build-windows-wheel", "--arch=x86", "--python-version", "3.9", "3.10"],
     (("x86",), ("3.9", "3.10"))),
])
def test_list_options_take_words_and_commas(argv, expected):
    opts = arguments.parse_args(argv, environ={}).options
    assert (opts.arch, opts.python_version) == expected


def test_both_list_spellings_for_the_linux_lists():
    a = arguments.parse_args(["bootstrap-linux-dev", "--distros", "debian12,debian13",
                              "--pythons", "3.12", "3.13"], environ={}).options
    b = arguments.parse_args(["bootstrap-linux-dev", "--distros", "debian12", "debian13",
                              "--pythons=3.12,3.13"], environ={}).options
    assert a.distros == b.distros == ("debian12", "debian13")
    assert a.pythons == b.pythons == ("3.12", "3.13")


def test_commas_elsewhere_are_left_alone():
    # run-tests-linux takes one Python; a comma in what goes to run-tests.py stays.
    opts = arguments.parse_args(["run-tests-linux", "--python-version", "3.12", "--",
                                 "-k", "a,b"], environ={}).options
    assert opts.python_version == "3.12" and opts.test_flags == ("-k", "a,b")


def test_what_the_command_line_gives_beats_the_environment():
    env = {"HGAUTOMATION_VERBOSE": "0", "HGAUTOMATION_AWS_REGION": "eu-west-3"}
    parsed = arguments.parse_args(["-vv", "list-ec2-resources", "--region=us-east-2"],
                                  environ=env)
    assert parsed.globals.verbose == 2 and parsed.globals.aws_region == "us-east-2"
    assert parsed.sources == {}
    parsed = arguments.parse_args(["list-ec2-resources"], environ=env)
    assert (parsed.globals.verbose, parsed.globals.aws_region) == (0, "eu-west-3")
    assert parsed.sources == {"verbose": "HGAUTOMATION_VERBOSE",
                              "aws_region": "HGAUTOMATION_AWS_REGION"}


def test_the_image_builder_is_sized_for_compiling_and_can_be_chosen(tmp_path):
    """bootstrap-linux-dev --builder-instance-type (default: 8 vCPUs), also from
    <state>/config's linux.builder-instance-type; the help names the default's price."""
    from hgautomation import catalog, platforms

    default = arguments.parse_args(["bootstrap-linux-dev", "--state-path", str(tmp_path)],
                                   environ={}).options
    assert default.builder_instance_type == "c5.2xlarge"
    assert platforms.hourly_estimate("c5.2xlarge") == pytest.approx(0.34)
    chosen = arguments.parse_args(["bootstrap-linux-dev", "--builder-instance-type",
                                   "c6i.4xlarge"], environ={}).options
    assert chosen.builder_instance_type == "c6i.4xlarge"
    (tmp_path / "config").write_text("[linux]\nbuilder-instance-type = c6i.8xlarge\n")
    configured = arguments.parse_args(["--state-path", str(tmp_path), "bootstrap-linux-dev"],
                                      environ={})
    assert configured.options.builder_instance_type == "c6i.8xlarge"
    option = catalog.command("bootstrap-linux-dev").option("builder_instance_type")
    assert "c5.2xlarge, 8 vCPUs, about $0.34/hour" in option.help_text
