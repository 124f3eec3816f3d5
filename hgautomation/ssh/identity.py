"""Identity files read before connecting: a key that cannot be used is a local fault.

:func:`load` reads one private key and says, naming the file, what is wrong with it
(not a regular file, empty, a public key, truncated, encrypted, a format or type
paramiko cannot use); :func:`usable` applies that to a target's identity files.
Nothing here touches the network, so a bad key is exit 3 at once, never a
connection retried until it gives up.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from hgautomation import errors

# A private key file is a few kB; a larger "key" is something else (and is not read whole).
MAX_KEY_BYTES = 1 << 20
_PUBLIC_PREFIXES = (b"ssh-", b"ecdsa-sha2-", b"sk-ssh-", b"sk-ecdsa-",
                    b"---- BEGIN SSH2 PUBLIC KEY", b"-----BEGIN PUBLIC KEY-----",
                    b"-----BEGIN RSA PUBLIC KEY-----")
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----")
# PEM labels paramiko reads ("OPENSSH ", "RSA ", "EC "), and what to say about others.
_UNSUPPORTED = {
    b"": "PKCS#8 format",
    b"ENCRYPTED ": "encrypted PKCS#8 format",
    b"DSA ": "a DSA key (no longer supported by OpenSSH or paramiko)",
    b"SSH2 ENCRYPTED ": "SSH.com format",
}
_REWRITE = "convert it to OpenSSH's own format, \"BEGIN OPENSSH PRIVATE KEY\""


def load(path: Path):
    """The paramiko key in ``path``; ConfigurationError naming the file and the fault."""
    import paramiko

    def fault(what: str, hint: str | None = None) -> errors.ConfigurationError:
        return errors.ConfigurationError(f"identity file {path}: {what}",
                                         hint=hint.replace("FILE", str(path)) if hint else None)

    try:
        info = os.stat(path)
    except OSError as exc:
        raise fault(f"cannot read it ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise fault("not a regular file")  # a FIFO would block the read for ever
    if info.st_size > MAX_KEY_BYTES:
        raise fault(f"{info.st_size} bytes: too large to be a private key")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise fault(f"cannot read it ({exc.strerror})") from exc
    text = data.strip()
    if not text:
        raise fault("empty")
    if text.startswith(_PUBLIC_PREFIXES):
        raise fault("a public key, not a private key",
                    hint="name the private key: the file without .pub")
    begin = _BEGIN.search(text)
    if begin is None:
        raise fault("not a private key (no '-----BEGIN ... PRIVATE KEY-----' line)")
    label = begin.group(1)
    if b"-----END " + label + b"PRIVATE KEY-----" not in text[begin.end():]:
        raise fault("truncated (no '-----END " + label.decode() + "PRIVATE KEY-----' line)")
    if label in _UNSUPPORTED:
        raise fault(f"{_UNSUPPORTED[label]} is not supported", hint=_REWRITE)
    if b"Proc-Type: 4,ENCRYPTED" in text:  # PEM; OpenSSH's own format says so when read
        raise _encrypted(fault)
    try:
        return paramiko.PKey.from_path(str(path))
    except paramiko.PasswordRequiredException:
        raise _encrypted(fault) from None
    except TypeError as exc:
        if "password" in str(exc).lower():
            raise _encrypted(fault) from None
        raise fault(f"not a usable private key ({exc})") from exc
    except paramiko.UnknownKeyType as exc:
        kind = getattr(exc.key_type, "__name__", str(exc.key_type)).replace("PrivateKey", "")
        raise fault(f"a {kind} key, a type paramiko cannot use") from exc
    except Exception as exc:  # hostile bytes raise anything while parsed
        raise fault(f"cannot be parsed: damaged or truncated? ({_reason(exc)})") from exc


def _encrypted(fault) -> errors.ConfigurationError:
    return fault("protected by a passphrase, which hgautomation cannot ask for",
                 hint="use a key without a passphrase for the hosts hgautomation drives")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    # cryptography's PEM errors end in a URL and an error name: the first sentence will do.
    return text.split(". See ")[0][:200]


def usable(paths: Sequence[Path]) -> list[Path]:
    """The files of ``paths`` that hold a usable key (missing ones are skipped, as ssh
    does). A named file that exists but cannot be used is an error when no other
    named file can be used: the first fault is raised; otherwise it is left out
    with a warning."""
    from hgautomation import console

    good: list[Path] = []
    faults: list[errors.ConfigurationError] = []
    for path in paths:
        if not os.path.exists(path):
            continue
        try:
            load(Path(path))
        except errors.ConfigurationError as exc:
            faults.append(exc)
        else:
            good.append(Path(path))
    if faults and not good:
        raise faults[0]
    for exc in faults:
        console.get().warn(f"{exc.message}; not offered")
    return good
