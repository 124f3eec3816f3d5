"""hgautomation.ssh: host specs, ssh config resolution, the OpenSSH config, pinning keys."""

from __future__ import annotations

import getpass
import stat
from pathlib import Path

import pytest

from hgautomation import errors, options, ssh


def parts(spec: str) -> tuple[str | None, str, int | None]:
    """parse_host_spec's answer as (user, address, port)."""
    found = options.parse_host_spec(spec)
    return found.user, found.address, found.port


# -- parse_host_spec -------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ("box", (None, "box", None)),
    ("box.example.org:2222", (None, "box.example.org", 2222)),
    ("hg@box", ("hg", "box", None)),
    ("hg@box:22", ("hg", "box", 22)),
    ("me@corp@box:65535", ("me@corp", "box", 65535)),  # the last @ separates
    ("10.0.0.1:1", (None, "10.0.0.1", 1)),
    ("[::1]", (None, "::1", None)),
    ("[::1]:2222", (None, "::1", 2222)),
    ("root@[2001:db8::7]:22", ("root", "2001:db8::7", 22)),
    ("2001:db8::7", (None, "2001:db8::7", None)),  # bare IPv6: no port possible
])
def test_parse_host_spec(spec, expected):
    assert parts(spec) == expected


@pytest.mark.parametrize("spec,what", [
    ("@box", "empty user name"),
    ("hg@", "empty address"),
    ("", "empty address"),
    (":22", "empty address"),
    ("[]:22", "empty address"),
    ("box:", "bad port"),
    ("box:0", "bad port"),
    ("box:65536", "bad port"),
    ("box:-1", "bad port"),
    ("box:22a", "bad port"),
    ("box: 22", "bad port"),
    ("[::1]:", "bad port"),
    ("[::1]x", "bad host address"),
    ("[::1", "bad host address"),
])
def test_parse_host_spec_rejects(spec, what):
    with pytest.raises(errors.UsageError, match=what) as raised:
        options.parse_host_spec(spec)
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("spec", ["box:²", "box:١٢", "[::1]:²²"])
def test_parse_host_spec_rejects_non_ascii_digits(spec):
    # str.isdigit() accepts these; int() then raises ValueError (or reads them).
    with pytest.raises(errors.UsageError, match="bad port"):
        options.parse_host_spec(spec)


# -- Target ----------------------------------------------------------------------------------

def test_target_names():
    t = ssh.Target(name="box", hostname="10.0.0.5", port=22, user="hg")
    assert t.known_hosts_name == "10.0.0.5" and str(t) == "hg@box"
    t = ssh.Target(name="box", hostname="10.0.0.5", port=2222, user="hg")
    assert t.known_hosts_name == "[10.0.0.5]:2222" and str(t) == "hg@box:2222"
    t = ssh.Target(name="box", hostname="10.0.0.5", port=2222, user="hg",
                   host_key_alias="i-0abc")
    assert t.known_hosts_name == "i-0abc"


# -- resolve ----------------------------------------------------------------------------------

@pytest.fixture
def config(tmp_path):
    path = tmp_path / "ssh_config"
    path.write_text(f"""\
Host box
    HostName 192.0.2.10
    Port 2200
    User builder
    IdentityFile {tmp_path}/id_box
    IdentityFile {tmp_path}/id_box2
    ConnectTimeout 7
    ConnectionAttempts 3
    HostKeyAlias box-key

Host inner
    HostName 10.1.1.1
    ProxyJump hop1,admin@hop2:2022

Host piped
    ProxyCommand ssh -W %h:%p bastion

Host direct
    ProxyCommand none
    ProxyJump none
""")
    return path


def test_resolve_applies_the_config(config, tmp_path):
    t = ssh.resolve("box", ssh_config=config)
    assert (t.name, t.hostname, t.port, t.user) == ("box", "192.0.2.10", 2200, "builder")
    assert t.identity_files == (tmp_path / "id_box", tmp_path / "id_box2")
    assert t.identities_only is True
    assert t.connect_timeout == 7.0 and t.connection_attempts == 3
    assert t.host_key_alias == "box-key" and t.known_hosts_name == "box-key"
    assert t.ssh_config == config.absolute()
    assert t.proxy_command is None and t.proxy_jump is None


def test_explicit_values_win_over_the_config(config, tmp_path):
    key = tmp_path / "mine"
    t = ssh.resolve("box", user="me", port=2222, ssh_config=config, identity_files=[key],
                    host_key_alias="alias", default_user="nobody")
    assert (t.user, t.port, t.identity_files, t.host_key_alias) == \
        ("me", 2222, (key,), "alias")


def test_without_config_defaults_apply(tmp_path):
    t = ssh.resolve("10.0.0.9", default_user="hg")
    assert (t.hostname, t.port, t.user, t.identity_files) == ("10.0.0.9", 22, "hg", ())
    assert t.identities_only is False  # agent and default keys may be tried
    assert t.connect_timeout == 15.0 and t.connection_attempts == 1
    assert t.ssh_config is None
    assert ssh.resolve("10.0.0.9").user == getpass.getuser()


def test_fallback_identity_only_when_it_exists_and_nothing_else_is_named(config, tmp_path):
    fallback = tmp_path / "tool_key"
    assert ssh.resolve("other", fallback_identity=fallback).identity_files == ()
    fallback.write_text("key")
    t = ssh.resolve("other", fallback_identity=fallback)
    assert t.identity_files == (fallback,) and t.identities_only is False
    assert ssh.resolve("box", ssh_config=config, fallback_identity=fallback).identity_files \
        == (tmp_path / "id_box", tmp_path / "id_box2")


def test_identity_files_expand_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    t = ssh.resolve("x", identity_files=[Path("~/.ssh/id_ed25519")])
    assert t.identity_files == (tmp_path / ".ssh" / "id_ed25519",)


def test_proxies(config):
    assert ssh.resolve("inner", ssh_config=config).proxy_jump == "hop1,admin@hop2:2022"
    piped = ssh.resolve("piped", ssh_config=config)
    assert piped.proxy_command == "ssh -W piped:22 bastion"  # tokens expanded
    direct = ssh.resolve("direct", ssh_config=config)
    assert direct.proxy_command is None and direct.proxy_jump is None


@pytest.mark.parametrize("line,message", [
    ("Port twenty-two", "Bad port 'twenty-two'"),
    ("ConnectTimeout soon", "invalid time value"),
    ("NoSuchOption yes", "Bad configuration option: nosuchoption"),
])
def test_a_bad_config_is_refused_as_ssh_refuses_it(tmp_path, line, message):
    """ssh reads the whole file: one bad line anywhere and no host resolves."""
    path = tmp_path / "bad_config"
    path.write_text(f"Host other\n    {line}\n")
    with pytest.raises(errors.ConfigurationError, match=f"ssh config {path}: .*{message}") \
            as raised:
        ssh.resolve("box", ssh_config=path)
    assert raised.value.exit_code == 3


def test_missing_config_file(tmp_path):
    with pytest.raises(errors.ConfigurationError, match="does not exist"):
        ssh.resolve("box", ssh_config=tmp_path / "nope")


def test_config_that_is_a_directory(tmp_path):
    with pytest.raises(errors.ConfigurationError, match="does not exist"):
        ssh.resolve("box", ssh_config=tmp_path)


def test_the_users_config_applies_when_none_is_given(tmp_path, monkeypatch):
    """$HOME/.ssh/config, with an Include'd file and an alias, as ssh reads them."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    included = tmp_path / "conf.d" / "work.conf"
    included.parent.mkdir()
    included.write_text("Host buildbox\n    HostName 192.0.2.44\n    Port 2022\n"
                        "    User builder\n    UserKnownHostsFile /etc/work_known_hosts\n")
    (home / ".ssh" / "config").write_text(f"Include {included}\n"
                                          "Match host 192.0.2.44\n    ConnectTimeout 9\n")
    monkeypatch.setenv("HOME", str(home))
    t = ssh.resolve("buildbox", default_user="hg")
    assert (t.hostname, t.port, t.user) == ("192.0.2.44", 2022, "builder")
    assert t.connect_timeout == 9.0  # Match on the canonical name, as ssh evaluates it
    assert t.ssh_config == home / ".ssh" / "config"
    assert t.user_known_hosts == (Path("/etc/work_known_hosts"),)
    # A host the config does not mention: defaults, and the user's known_hosts.
    other = ssh.resolve("10.0.0.9", default_user="hg")
    assert (other.hostname, other.user) == ("10.0.0.9", "hg")
    assert other.user_known_hosts == (home / ".ssh" / "known_hosts",)


def test_a_user_set_to_the_local_name_counts_as_set(tmp_path):
    """ssh -G prints the local user when none is set; the config's own value still wins
    over the command's default, even when it is that same name."""
    path = tmp_path / "dir with space" / "config"
    path.parent.mkdir()
    path.write_text(f"Host mine\n    User {getpass.getuser()}\n"
                    "    IdentityFile ~/.ssh/id_rsa\n")
    mine = ssh.resolve("mine", ssh_config=path, default_user="hg")
    assert mine.user == getpass.getuser()
    assert mine.identity_files == (Path("~/.ssh/id_rsa").expanduser(),)  # ssh's own default
    other = ssh.resolve("other", ssh_config=path, default_user="hg")
    assert other.user == "hg" and other.identity_files == ()


def test_relative_includes_are_read_from_the_ssh_directory(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh" / "conf.d").mkdir(parents=True)
    (home / ".ssh" / "conf.d" / "a.conf").write_text("Host relbox\n    HostName 192.0.2.5\n")
    (home / ".ssh" / "config").write_text("Include conf.d/*.conf\n")
    monkeypatch.setenv("HOME", str(home))
    assert ssh.resolve("relbox").hostname == "192.0.2.5"


# -- openssh_config -----------------------------------------------------------------------------

def test_openssh_config_pins_keys_and_disables_prompts(config, tmp_path):
    t = ssh.resolve("box", ssh_config=config)
    text = ssh.openssh_config(t, tmp_path / "known hosts", [Path("/etc/extra_hosts")])
    lines = text.splitlines()
    assert lines[:6] == ["Host hgautomation-target", "  HostName 192.0.2.10", "  Port 2200",
                         "  User builder", "  HostKeyAlias box-key", "  ConnectTimeout 7"]
    assert f"  IdentityFile {tmp_path}/id_box" in lines
    assert "  IdentitiesOnly yes" in lines
    match_all = lines.index("Match all")
    assert lines[match_all + 1:] == [
        "  BatchMode yes", "  StrictHostKeyChecking yes", "  UpdateHostKeys no",
        f'  UserKnownHostsFile "{tmp_path}/known hosts" /etc/extra_hosts',
        "  GlobalKnownHostsFile /dev/null",
        f"  Include {config}",
    ]
    assert text.endswith("\n")


def test_openssh_config_port_alias_and_proxies(tmp_path):
    t = ssh.Target(name="h", hostname="10.0.0.1", port=2222, user="u",
                   proxy_command="nc %h %p", proxy_jump="j", identities_only=False)
    text = ssh.openssh_config(t, tmp_path / "kh", alias="custom")
    assert text.startswith("Host custom\n")
    assert "  HostKeyAlias [10.0.0.1]:2222\n" in text
    assert "  ProxyCommand nc %h %p\n" in text
    assert "ProxyJump" not in text  # ProxyCommand wins, as in OpenSSH
    assert "IdentitiesOnly" not in text and "Include" not in text
    jumped = ssh.openssh_config(ssh.Target("h", "h", 22, "u", proxy_jump="a,b"), tmp_path / "k")
    assert "  ProxyJump a,b\n" in jumped


# -- pin_host_key ---------------------------------------------------------------------------------

def test_pin_host_key_creates_the_file_and_directory(tmp_path):
    known = tmp_path / "state" / "known_hosts"
    ssh.pin_host_key(known, "[10.0.0.1]:2222", "ssh-ed25519 AAAAkey comment words")
    assert known.read_text() == "[10.0.0.1]:2222 ssh-ed25519 AAAAkey\n"
    assert stat.S_IMODE(known.parent.stat().st_mode) == 0o700
    assert [p.name for p in known.parent.iterdir()] == ["known_hosts"]  # no temp file left


def test_pin_host_key_replaces_only_that_hosts_pins(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("other ssh-ed25519 AAAAother\n"
                     "i-1 ssh-rsa AAAAold\n"
                     "# a comment\n"
                     "i-1 ssh-ed25519 AAAAold2\n"
                     "i-10 ssh-ed25519 AAAAten\n")
    ssh.pin_host_key(known, "i-1", "ssh-ed25519 AAAAnew")
    assert known.read_text() == ("other ssh-ed25519 AAAAother\n"
                                 "# a comment\n"
                                 "i-10 ssh-ed25519 AAAAten\n"
                                 "i-1 ssh-ed25519 AAAAnew\n")


def test_pin_host_key_matches_names_in_comma_lists(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("box,192.0.2.1 ssh-ed25519 AAAAold\n")
    ssh.pin_host_key(known, "192.0.2.1", "ssh-ed25519 AAAAnew")
    lines = known.read_text().splitlines()
    assert lines[-1] == "192.0.2.1 ssh-ed25519 AAAAnew"
    assert not any("192.0.2.1" in line.split()[0].split(",") for line in lines[:-1])
