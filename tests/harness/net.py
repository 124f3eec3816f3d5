"""Loopback helpers: free ports, bounded waits, and the "loopback only" endpoint guard."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    """Poll `predicate` until it is true; raise TimeoutError naming `what` after `timeout` s."""
    wait_for(predicate, timeout, what, interval)


def wait_for(predicate: Callable[[], T], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something true and return that; TimeoutError after
    `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def read_banner(host: str, port: int, timeout: float = 2.0) -> bytes:
    """Connect and return the first bytes the server sends (b"" if nothing/refused)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            return s.recv(256)
    except OSError:
        return b""


def is_loopback_host(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True if `url` names a loopback host (an unparsable URL is not loopback)."""
    try:
        return is_loopback_host(urlsplit(url).hostname)
    except ValueError:
        return False


def non_loopback_endpoints(environ: Mapping[str, str]) -> dict[str, str]:
    """The AWS_ENDPOINT_URL* variables in `environ` that point anywhere but loopback."""
    return {
        name: value
        for name, value in environ.items()
        if name.startswith("AWS_ENDPOINT_URL") and value and not is_loopback_url(value)
    }


def endpoint_guard_error(environ: Mapping[str, str]) -> str | None:
    """Why tests must not run with `environ`, or None when every AWS endpoint is loopback."""
    bad = non_loopback_endpoints(environ)
    if not bad:
        return None
    listed = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
    return f"refusing to run tests: AWS endpoint outside loopback: {listed}"
