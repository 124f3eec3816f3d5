"""options: the repository URL check, a host spec written back, and each limit exactly
at it and one past it (a limit moved by one, or a message lost, fails here)."""

from __future__ import annotations

import pytest

from hgautomation import errors, options


@pytest.mark.parametrize("text", ["https://repo.example/hg", "http://repo.example/hg",
                                  "ssh://hg@repo.example//srv/hg", "/srv/hg/repo", "/"])
def test_repository_url_accepts(text):
    assert options.repository_url(text) == text


@pytest.mark.parametrize("text, message", [
    ("", "'' is not a repository URL (no spaces or control characters)"),
    ("https://a b", "'https://a b' is not a repository URL (no spaces or control characters)"),
    ("https://a\x1fb", "is not a repository URL (no spaces or control characters)"),
    ("https://a\tb", "is not a repository URL (no spaces or control characters)"),
    ("ftp://repo", "'ftp://repo' is not a repository URL: use https://, http://, ssh:// or an "
                   "absolute path on the host"),
    ("repo/hg", "is not a repository URL: use https://"),
    ("HTTPS://repo", "is not a repository URL: use https://"),
])
def test_repository_url_refuses(text, message):
    with pytest.raises(errors.UsageError) as raised:
        options.repository_url(text)
    assert message in str(raised.value)


@pytest.mark.parametrize("spec, text", [
    (options.HostSpec(None, "box", None), "box"),
    (options.HostSpec("hg", "box", None), "hg@box"),
    (options.HostSpec(None, "box", 2222), "box:2222"),
    (options.HostSpec("hg", "2001:db8::1", 22), "hg@[2001:db8::1]:22"),
    (options.HostSpec(None, "::1", None), "[::1]"),
])
def test_host_spec_written_back(spec, text):
    assert str(spec) == text
    assert options.parse_host_spec(text) == spec


def test_host_label_of_63_characters_passes_and_64_does_not():
    assert options.parse_host_spec("a" * 63 + ".example").address == "a" * 63 + ".example"
    with pytest.raises(errors.UsageError,
                       match=r"bad host name .*: a label longer than 63 characters"):
        options.parse_host_spec("a" * 64 + ".example")


def test_host_name_of_253_characters_passes_and_254_does_not():
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name) == 253
    assert options.parse_host_spec(name).address == name
    with pytest.raises(errors.UsageError, match="longer than 253 characters"):
        options.parse_host_spec(name + "b")


def test_long_host_name_is_shown_cut():
    with pytest.raises(errors.UsageError) as raised:
        options.parse_host_spec("x" * 300)
    assert f"bad host name {'x' * 57 + '...'!r}: longer than 253 characters" in str(raised.value)
    with pytest.raises(errors.UsageError) as raised:
        options.parse_host_spec("a b" + "x" * 57)
    assert f"{'a b' + 'x' * 57!r}" in str(raised.value)


@pytest.mark.parametrize("spec, message", [
    ("@box", "empty user name in host '@box'"),
    ("box:0", "bad port in host 'box:0'"),
    ("box:65536", "bad port in host 'box:65536'"),
    ("[::1]x", "bad host address '[::1]x'"),
    ("[::1]:0", "bad port in host '[::1]:0'"),
    ("hg@", "empty address in host 'hg@'"),
    ("[]:22", "empty address in host '[]:22'"),
    ("bad host", "bad host name 'bad host': contains spaces or control characters"),
    ("a..b", "bad host name 'a..b': empty label"),
    ("\ufffd.example", "bad host name '\ufffd.example': not a valid international domain name"),
    ("[::1]]:22", "bad host address '[::1]]:22'"),
])
def test_host_spec_messages(spec, message):
    with pytest.raises(errors.UsageError) as raised:
        options.parse_host_spec(spec)
    assert message in str(raised.value)


def test_host_spec_port_limits():
    assert options.parse_host_spec("box:1").port == 1
    assert options.parse_host_spec("box:65535").port == 65535
    assert options.parse_host_spec("[::1]:65535").port == 65535


def test_port_and_bounded_int_limits():
    assert options.port("1") == 1 and options.port("65535") == 65535
    for bad in ("0", "65536"):
        with pytest.raises(errors.UsageError, match=f"invalid port '{bad}' \\(expected 1-65535\\)"):
            options.port(bad)
    parse = options.bounded_int(2, 5)
    assert parse("2") == 2 and parse("5") == 5
    for bad in ("1", "6"):
        with pytest.raises(errors.UsageError,
                           match=f"expected a whole number from 2 to 5, got '{bad}'"):
            parse(bad)


def test_owner_limits_and_message():
    assert options.owner("a" * 32) == "a" * 32
    assert options.owner("a") == "a"
    with pytest.raises(errors.UsageError) as raised:
        options.owner("a" * 33)
    assert raised.value.hint == f"e.g. {'a' * 32!r}"
    assert f"invalid owner {'a' * 33!r}: owners are {options.OWNER_RULE}" in str(raised.value)
    with pytest.raises(errors.UsageError) as raised:
        options.owner("b" * 61)
    assert f"invalid owner {'b' * 57 + '...'!r}" in str(raised.value)
    with pytest.raises(errors.UsageError) as raised:
        options.owner("b" * 59 + "-")
    assert f"invalid owner {'b' * 59 + '-'!r}" in str(raised.value)
    with pytest.raises(errors.UsageError) as raised:
        options.owner("élève")
    assert raised.value.hint is None
    with pytest.raises(errors.UsageError) as raised:
        options.owner("---")
    assert raised.value.hint is None


@pytest.mark.parametrize("raw, normal", [
    ("  Alice  ", "alice"), ("-a-", "a"), ("a.b_c", "a-b-c"), ("x" * 40, "x" * 32),
    ("a" * 31 + "-b", "a" * 31), ("a@@b", "a-b"),
])
def test_normalize_owner(raw, normal):
    assert options.normalize_owner(raw) == normal


def test_check_ingress():
    for network in ("0.0.0.0/0", "::/0"):
        with pytest.raises(errors.UsageError) as raised:
            options.check_ingress(network, False)
        assert raised.value.message == (f"--ingress-cidr {network} lets every address on the "
                                        "internet reach the instances")
        assert raised.value.hint == "add --allow-any-address if that is really what you want"
        options.check_ingress(network, True)
    options.check_ingress("192.0.2.0/24", False)
    options.check_ingress(None, False)


def test_non_empty():
    assert options.non_empty(" x ") == " x "
    for bad in ("", "  "):
        with pytest.raises(errors.UsageError) as raised:
            options.non_empty(bad)
        assert raised.value.message == "must not be empty"


def test_a_host_name_of_61_characters_is_shown_cut():
    with pytest.raises(errors.UsageError) as raised:
        options.parse_host_spec("a b" + "x" * 58)
    assert f"bad host name {'a b' + 'x' * 54 + '...'!r}" in str(raised.value)


def test_a_final_x_is_part_of_the_label():
    with pytest.raises(errors.UsageError, match="a label longer than 63 characters"):
        options.parse_host_spec("a" * 63 + "X.")


def test_an_address_is_not_checked_as_a_name():
    """A scoped IPv6 address is an address: its zone is not held to the DNS label rules
    (a check that skipped the address test would call ``a..b`` an empty label)."""
    assert options.parse_host_spec("[fe80::1%a..b]:22").address == "fe80::1%a..b"
