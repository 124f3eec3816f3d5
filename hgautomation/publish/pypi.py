"""PyPI: wheels uploaded with twine's API in-process, checked against the index by sha256.

Repository and credentials resolve as twine users expect: ``--repository``/
``--repository-url`` (else ``TWINE_REPOSITORY``/``TWINE_REPOSITORY_URL``),
``TWINE_USERNAME``/``TWINE_PASSWORD``, then ``~/.pypirc`` (``TWINE_CONFIG_FILE``
names another), then keyring. What is already on the index is read from its
simple API (PEP 503 HTML or PEP 691 JSON), since twine's ``--skip-existing``
only works with PyPI itself.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from hgautomation import console, errors
from hgautomation.artifacts import Artifact, UploadPlan

PROJECT = "mercurial"
HTTP_TIMEOUT = 60
# Upload endpoints whose simple index lives on another host.
KNOWN_INDEXES = {
    "https://upload.pypi.org/legacy/": "https://pypi.org/simple/",
    "https://test.pypi.org/legacy/": "https://test.pypi.org/simple/",
}
# Waits before reading the index again while it does not list an upload yet (a CDN in
# front of it may lag by seconds): 60 s in all, then the read-back fails.
VERIFY_RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 30.0)


@dataclass
class Repository:
    """Where wheels go: twine's settings plus the simple index that lists them."""

    settings: object  # twine.settings.Settings
    upload_url: str
    simple_url: str

    @property
    def display(self) -> str:
        parts = urlsplit(self.upload_url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "") \
            + parts.path


def simple_index_for(upload_url: str) -> str:
    """The simple index that belongs to an upload URL (``…/legacy/`` → ``…/simple/``)."""
    url = upload_url if upload_url.endswith("/") else upload_url + "/"
    if url in KNOWN_INDEXES:
        return KNOWN_INDEXES[url]
    if url.endswith("/legacy/"):
        url = url[: -len("legacy/")]
    return urljoin(url, "simple/")


def open_repository(repository: str | None, repository_url: str | None) -> Repository:
    """twine Settings for the chosen repository; bad configuration is a one-line error."""
    from twine import exceptions as texc
    from twine.settings import Settings

    env = os.environ
    interactive = sys.stdin.isatty() and not env.get("TWINE_NON_INTERACTIVE")
    try:
        settings = Settings(
            repository_name=repository or env.get("TWINE_REPOSITORY") or "pypi",
            repository_url=repository_url or env.get("TWINE_REPOSITORY_URL"),
            username=env.get("TWINE_USERNAME"),
            password=env.get("TWINE_PASSWORD"),
            config_file=env.get("TWINE_CONFIG_FILE", "~/.pypirc"),
            cacert=env.get("TWINE_CERT"),
            non_interactive=not interactive,
            disable_progress_bar=True,
        )
        settings.check_repository_url()
    except texc.TwineException as exc:
        raise errors.ConfigurationError(f"PyPI repository: {_one_line(exc)}") from exc
    upload_url = settings.repository_config["repository"]
    return Repository(settings=settings, upload_url=upload_url,
                      simple_url=simple_index_for(upload_url))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def _twine_quiet() -> Iterator[list[str]]:
    """Keep twine's own printing off the terminal; collect its log messages instead."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("twine")
    handler = Collect(level=logging.WARNING)
    old_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def check_wheels(wheels: Sequence[Artifact]) -> None:
    """``twine check`` every wheel; an ArtifactError names each one that fails."""
    import zipfile

    from twine import exceptions as texc
    from twine.commands.check import check

    failed = []
    for wheel in wheels:
        with _twine_quiet() as messages:
            try:
                bad = check([str(wheel.path)])
            except (texc.TwineException, ValueError, OSError, zipfile.BadZipFile) as exc:
                # An empty or truncated file is not a zip archive at all.
                bad, messages = True, messages + [_one_line(exc)]
        if bad:
            why = "; ".join(" ".join(m.split()) for m in messages) or "failed"
            failed.append(f"{wheel.name} ({why})")
        else:
            console.get().detail(f"    twine check {wheel.name}: passed")
    if failed:
        count = console.plural(len(failed), "wheel")
        raise errors.ArtifactError(f"twine check failed for {count}: " + ", ".join(failed))


class _Links(HTMLParser):
    """Collects ``<a href="…#sha256=HEX">name</a>`` pairs from a PEP 503 page."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, str] = {}
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            name = "".join(self._text).strip()
            _, _, fragment = self._href.partition("#")
            algo, _, digest = fragment.partition("=")
            self.files[name] = digest.lower() if algo == "sha256" else ""
            self._href = None


def index_files(repo: Repository, project: str = PROJECT) -> dict[str, str]:
    """File name → sha256 ("" if the index gives none) of what the index lists for ``project``."""
    import requests

    url = urljoin(repo.simple_url, f"{project}/")
    headers = {"Accept": "application/vnd.pypi.simple.v1+json, "
                         "application/vnd.pypi.simple.v1+html;q=0.5, text/html;q=0.1"}
    try:
        resp = requests.get(url, headers=headers, timeout=HTTP_TIMEOUT,
                            verify=repo.settings.cacert or True)
    except requests.RequestException as exc:
        # Not chained: requests' text carries the URL, credentials and all if it has any.
        raise errors.PublishError(f"cannot read the package index {url}: "
                                  f"{type(exc).__name__}") from None
    if resp.status_code == 404:
        return {}
    if resp.status_code != 200:
        raise errors.PublishError(f"package index {url} answered HTTP {resp.status_code}")
    if "json" in resp.headers.get("Content-Type", ""):
        return {f["filename"]: f.get("hashes", {}).get("sha256", "").lower()
                for f in resp.json().get("files", [])}
    parser = _Links()
    parser.feed(resp.text)
    return parser.files


def plan(repo: Repository, wheels: Sequence[Artifact]) -> UploadPlan:
    """Split wheels into new and identical-on-the-index; a same-named different file is an error."""
    listed = index_files(repo)
    conflicts = [w.name for w in wheels if w.name in listed and listed[w.name]
                 and listed[w.name] != w.sha256]
    if conflicts:
        raise errors.PublishError(
            f"{repo.display} already has different file(s) with the same name: "
            + ", ".join(conflicts), hint="a published file is never replaced")
    unverifiable = [w.name for w in wheels if w.name in listed and not listed[w.name]]
    if unverifiable:
        raise errors.PublishError(f"{repo.display} lists {', '.join(unverifiable)} "
                                  "without a sha256: cannot tell whether it is identical")
    return UploadPlan(to_upload=[w for w in wheels if w.name not in listed],
                    already_there=[w for w in wheels if w.name in listed])


def upload(repo: Repository, wheels: Sequence[Artifact]) -> None:
    """Upload each wheel with ``twine.commands.upload.upload``; HTTP errors become one line."""
    import requests
    from twine import exceptions as texc
    from twine.commands.upload import upload as twine_upload

    out = console.get()
    if not wheels:
        return
    # Resolve credentials now, outside the quiet zone, so a prompt (on a terminal)
    # is visible; twine caches them for the uploads.
    try:
        _ = repo.settings.username  # properties: reading them resolves the credentials
        _ = repo.settings.password
    except texc.NonInteractive as exc:
        raise errors.ConfigurationError(
            f"no PyPI credentials for {repo.display}: {_one_line(exc)}",
            hint="set TWINE_USERNAME/TWINE_PASSWORD, .pypirc or keyring") from exc
    for wheel in wheels:
        with out.step(f"PyPI: uploading {wheel.name} ({wheel.size:,} bytes)"), _twine_quiet():
            try:
                twine_upload(repo.settings, [str(wheel.path)])
            # requests' errors are not chained: their text carries the upload URL,
            # credentials and all if it has any (repo.display has them cut).
            except requests.HTTPError as exc:
                raise _http_error(repo, wheel, exc) from None
            except requests.RequestException as exc:
                raise errors.PublishError(
                    f"upload of {wheel.name} to {repo.display} failed: "
                    f"{type(exc).__name__}") from None
            except texc.NonInteractive as exc:
                raise errors.ConfigurationError(
                    f"no PyPI credentials for {repo.display}: {_one_line(exc)}",
                    hint="set TWINE_USERNAME/TWINE_PASSWORD, .pypirc or keyring") from exc
            except texc.TwineException as exc:
                raise errors.PublishError(
                    f"upload of {wheel.name} to {repo.display} failed: "
                    f"{_one_line(exc)}") from exc


def _http_error(repo: Repository, wheel: Artifact, exc) -> errors.PublishError:
    status = exc.response.status_code if exc.response is not None else "?"
    reason = exc.response.reason if exc.response is not None else ""
    if status in (401, 403):
        return errors.PublishError(
            f"{repo.display} refused the credentials (HTTP {status} {reason}) while "
            f"uploading {wheel.name}",
            hint="check TWINE_USERNAME/TWINE_PASSWORD, .pypirc or keyring")
    return errors.PublishError(
        f"{repo.display} refused {wheel.name}: HTTP {status} {reason}")


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more wheels"


def verify(repo: Repository, wheels: Sequence[Artifact], *,
           delays: Sequence[float] = VERIFY_RETRY_DELAYS,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """Every wheel is listed by the index with the expected sha256.

    A wheel not listed yet is read again after each of ``delays`` (the index's CDN can
    lag an upload by seconds); a wheel listed with another sha256 fails at once.
    """
    for delay in (*delays, None):
        listed = index_files(repo)
        missing = [w.name for w in wheels if w.name not in listed]
        different = [w.name for w in wheels if w.name in listed and listed[w.name] != w.sha256]
        if not missing and not different:
            return
        if different or delay is None:
            break
        # Not a poll.until wait: the delays grow, and running out is this PublishError.
        console.get().info(f"PyPI does not list {_names(missing)} yet; "
                           f"checking again in {delay:g} s")
        sleep(delay)
    wrong = [w.name for w in wheels if listed.get(w.name) != w.sha256]
    raise errors.PublishError(
        f"after upload, {repo.display} does not list with the expected sha256: "
        + ", ".join(wrong))
