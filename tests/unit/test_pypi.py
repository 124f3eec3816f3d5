"""hgautomation.publish.pypi: index URLs, the PEP 503/691 listing, the upload plan."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

from hgautomation import errors
from hgautomation.publish import pypi

SHA_A, SHA_B = "a" * 64, "b" * 64


@pytest.mark.parametrize("upload,simple", [
    ("https://upload.pypi.org/legacy/", "https://pypi.org/simple/"),
    ("https://upload.pypi.org/legacy", "https://pypi.org/simple/"),
    ("https://test.pypi.org/legacy/", "https://test.pypi.org/simple/"),
    ("https://pkgs.example.org/legacy/", "https://pkgs.example.org/simple/"),
    ("https://pkgs.example.org/repo/legacy", "https://pkgs.example.org/repo/simple/"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/simple/"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/simple/"),
    ("https://example.org/root", "https://example.org/root/simple/"),
])
def test_simple_index_for(upload, simple):
    assert pypi.simple_index_for(upload) == simple


def links(html: str) -> dict[str, str]:
    parser = pypi._Links()
    parser.feed(html)
    parser.close()
    return parser.files


def test_links_from_a_pep_503_page():
    page = f"""<!DOCTYPE html><html><body><h1>Links for mercurial</h1>
    <a href="../../packages/mercurial-7.2.4-cp312-cp312-win_amd64.whl#sha256={SHA_A.upper()}"
       data-requires-python="&gt;=3.9">mercurial-7.2.4-cp312-cp312-win_amd64.whl</a><br/>
    <a href="/p/mercurial-7.2.4.tar.gz#md5=0123">mercurial-7.2.4.tar.gz</a>
    <a href="/p/mercurial-7.2.3.tar.gz">  mercurial-7.2.3.tar.gz </a>
    <a href="/p/x.whl#sha256={SHA_B}"><span>x</span>.whl</a>
    </body></html>"""
    assert links(page) == {
        "mercurial-7.2.4-cp312-cp312-win_amd64.whl": SHA_A,  # lower-cased
        "mercurial-7.2.4.tar.gz": "",  # no sha256: unknown, not a match
        "mercurial-7.2.3.tar.gz": "",
        "x.whl": SHA_B,
    }


def test_links_decode_entities_and_ignore_text_outside_anchors():
    assert links('Links: <a href="#sha256=ab">a&amp;b.whl</a> trailing text') == \
        {"a&b.whl": "ab"}
    assert links("<html><p>no links</p></html>") == {}


# -- index_files (requests.get replaced) ------------------------------------------------------

def _repo(upload="https://pkgs.example.org/legacy/"):
    return pypi.Repository(settings=SimpleNamespace(cacert=None), upload_url=upload,
                           simple_url=pypi.simple_index_for(upload))


class _Response:
    def __init__(self, status=200, text="", content_type="text/html", data=None):
        self.status_code = status
        self.text = text
        self.headers = {"Content-Type": content_type}
        self._data = data

    def json(self):
        return self._data


@pytest.fixture
def index(monkeypatch):
    calls = []

    def serve(response):
        def get(url, **kwargs):
            calls.append((url, kwargs))
            if isinstance(response, Exception):
                raise response
            return response
        monkeypatch.setattr(requests, "get", get)
        return calls
    return serve


def test_index_files_reads_pep_691_json(index):
    calls = index(_Response(content_type="application/vnd.pypi.simple.v1+json", data={
        "files": [{"filename": "a.whl", "hashes": {"sha256": SHA_A.upper()}},
                  {"filename": "b.tar.gz", "hashes": {}}]}))
    assert pypi.index_files(_repo()) == {"a.whl": SHA_A, "b.tar.gz": ""}
    ((url, kwargs),) = calls
    assert url == "https://pkgs.example.org/simple/mercurial/"
    assert "application/vnd.pypi.simple.v1+json" in kwargs["headers"]["Accept"]
    assert kwargs["timeout"] == pypi.HTTP_TIMEOUT and kwargs["verify"] is True


def test_index_files_reads_html(index):
    index(_Response(text=f'<a href="x.whl#sha256={SHA_B}">x.whl</a>'))
    assert pypi.index_files(_repo()) == {"x.whl": SHA_B}


def test_unknown_project_lists_nothing(index):
    index(_Response(status=404))
    assert pypi.index_files(_repo()) == {}


def test_index_errors_are_publish_errors(index):
    index(_Response(status=503))
    with pytest.raises(errors.PublishError, match="answered HTTP 503") as raised:
        pypi.index_files(_repo())
    assert raised.value.exit_code == 11
    index(requests.ConnectionError("refused"))
    with pytest.raises(errors.PublishError, match=r"cannot read the package index .*"
                                                  r"ConnectionError"):
        pypi.index_files(_repo())


# -- plan / verify (index listing replaced) -------------------------------------------------------

def _wheel(name, sha):
    return SimpleNamespace(name=name, sha256=sha, size=1)


@pytest.fixture
def listed(monkeypatch):
    def serve(files):
        monkeypatch.setattr(pypi, "index_files", lambda repo, project=pypi.PROJECT: files)
    return serve


def test_plan_splits_new_and_identical(listed):
    listed({"a.whl": SHA_A, "other.whl": SHA_B})
    a, b = _wheel("a.whl", SHA_A), _wheel("b.whl", SHA_B)
    plan = pypi.plan(_repo(), [a, b])
    assert list(plan.to_upload) == [b] and list(plan.already_there) == [a]


def test_plan_refuses_a_different_file_of_the_same_name(listed):
    listed({"a.whl": SHA_B})
    with pytest.raises(errors.PublishError, match="already has different file") as raised:
        pypi.plan(_repo(), [_wheel("a.whl", SHA_A)])
    assert raised.value.message.startswith("https://pkgs.example.org/legacy/ ")


def test_plan_refuses_a_listing_without_hash(listed):
    listed({"a.whl": ""})
    with pytest.raises(errors.PublishError, match="without a sha256"):
        pypi.plan(_repo(), [_wheel("a.whl", SHA_A)])


def test_verify(listed):
    listed({"a.whl": SHA_A, "b.whl": SHA_A})
    pypi.verify(_repo(), [_wheel("a.whl", SHA_A)])
    with pytest.raises(errors.PublishError, match=r"expected sha256: b\.whl, c\.whl"):
        pypi.verify(_repo(), [_wheel("a.whl", SHA_A), _wheel("b.whl", SHA_B),
                              _wheel("c.whl", SHA_A)], delays=(), sleep=_no_sleep)


def _no_sleep(seconds):
    raise AssertionError(f"slept {seconds} s")


class _LaggingIndex:
    """An index that lists the uploads only from its ``lag``-th read on (never if None)."""

    def __init__(self, lag, files):
        self.lag, self.files, self.reads, self.slept = lag, files, 0, []

    def index_files(self, repo, project=pypi.PROJECT):
        self.reads += 1
        if self.lag is not None and self.reads > self.lag:
            return self.files
        return {"old.whl": SHA_B}

    def sleep(self, seconds):
        self.slept.append(seconds)


def test_verify_reads_again_while_the_index_lags(monkeypatch, captured):
    """Without the retry a CDN a few seconds behind failed a good release."""
    index = _LaggingIndex(2, {"a.whl": SHA_A, "b.whl": SHA_A})
    monkeypatch.setattr(pypi, "index_files", index.index_files)
    pypi.verify(_repo(), [_wheel("a.whl", SHA_A), _wheel("b.whl", SHA_A)], sleep=index.sleep)
    assert index.reads == 3 and index.slept == [2.0, 4.0]
    assert captured.err_text.splitlines() == [
        "PyPI does not list a.whl, b.whl yet; checking again in 2 s",
        "PyPI does not list a.whl, b.whl yet; checking again in 4 s"]


def test_verify_gives_up_after_its_bound(monkeypatch, captured):
    index = _LaggingIndex(None, {})
    monkeypatch.setattr(pypi, "index_files", index.index_files)
    wheels = [_wheel(f"w{i}.whl", SHA_A) for i in range(5)]
    with pytest.raises(errors.PublishError, match=r"expected sha256: w0\.whl, w1\.whl, "
                                                  r"w2\.whl, w3\.whl, w4\.whl$"):
        pypi.verify(_repo(), wheels, delays=(0.5, 1.0), sleep=index.sleep)
    assert index.reads == 3 and index.slept == [0.5, 1.0]
    assert captured.err_text.splitlines() == [
        "PyPI does not list w0.whl and 4 more wheels yet; checking again in 0.5 s",
        "PyPI does not list w0.whl and 4 more wheels yet; checking again in 1 s"]


def test_verify_bound_is_about_a_minute():
    assert 45 <= sum(pypi.VERIFY_RETRY_DELAYS) <= 75
    assert list(pypi.VERIFY_RETRY_DELAYS) == sorted(pypi.VERIFY_RETRY_DELAYS)  # a backoff


def test_verify_does_not_wait_for_a_different_file(monkeypatch, captured):
    # A file listed with another sha256 will not change by waiting.
    monkeypatch.setattr(pypi, "index_files", lambda repo, project=pypi.PROJECT: {"b.whl": SHA_B})
    with pytest.raises(errors.PublishError, match=r"expected sha256: a\.whl, b\.whl$"):
        pypi.verify(_repo(), [_wheel("a.whl", SHA_A), _wheel("b.whl", SHA_A)],
                    sleep=_no_sleep)
    assert captured.err_text == ""


def test_repository_display_hides_credentials():
    repo = _repo("https://user:s3cret@pkgs.example.org:8443/legacy/")
    assert repo.display == "https://pkgs.example.org:8443/legacy/"
    assert _repo("https://upload.pypi.org/legacy/").display == \
        "https://upload.pypi.org/legacy/"
