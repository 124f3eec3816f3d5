"""The Try server's HTML pages: the list of recent tries, one try, a test's history, and
the error pages.

Every value from a try (commit message, user, branch, test names and outputs) is hostile
input: it goes through ``text()`` (html.escape, quotes too) and nowhere else. No script
at all; links are relative to the site root; a small inline style sheet that the pages
do not need to be read.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable

from hgautomation.server import model, store

# What every response carries (web.py adds it): nothing but inline style may load.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
REFRESH_SECONDS = 10
NODE_CHARS = 12

STYLE = """
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --head: #f6f8fa; --link: #0550ae; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
header.top { background: #24292f; color: #fff; padding: 8px 20px; display: flex;
  gap: 16px; align-items: baseline; }
header.top a { color: #fff; text-decoration: none; font-weight: 600; }
header.top span { color: #c9d1d9; font-size: 13px; }
main { padding: 12px 20px 32px; max-width: 1400px; }
h1 { font-size: 20px; margin: 8px 0 12px; font-weight: 600; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 24px 0 8px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 0; display: inline; }
a { color: var(--link); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo,
  Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 12.5px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--head); font-weight: 600; font-size: 12px; color: var(--muted);
  white-space: nowrap; }
th.num { text-align: right; }
table.jobs { width: auto; min-width: 50%; }
td.summary a { text-decoration: none; }
td.summary a:hover { text-decoration: underline; }
tr:hover td { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
td.summary { overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.state { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px;
  font-weight: 600; line-height: 18px; border: 1px solid; white-space: nowrap; }
.state b { font-weight: 400; margin-right: 4px; }
.state + .state { margin-left: 4px; }
.s-passed { color: #116329; background: #dafbe1; border-color: #4ac26b; }
.s-failed { color: #a40e26; background: #ffebe9; border-color: #ff8182; }
.s-error { color: #fff; background: #a40e26; border-color: #82071e; }
.s-timed-out { color: #7d4e00; background: #fff8c5; border-color: #d4a72c; }
.s-cancelled { color: #59636e; background: #eff2f5; border-color: #afb8c1; }
.s-running { color: #0550ae; background: #ddf4ff; border-color: #54aeff; }
.s-queued { color: #59636e; background: #fff; border-color: #afb8c1;
  border-style: dashed; }
.s-flaky { color: #7d4e00; background: #fff8c5; border-color: #d4a72c; }
.s-preexisting { color: #59636e; background: #eff2f5; border-color: #afb8c1; }
h1.mono { font-size: 18px; }
p.group { margin: 14px 0 4px; font-weight: 600; }
p.group .muted { font-weight: 400; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px;
  margin: 0 0 8px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
pre { margin: 0; padding: 8px 10px; background: var(--head); border: 1px solid var(--line);
  border-radius: 6px; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
pre.diff { background: #fff; white-space: pre; }
pre.diff .add { background: #dafbe1; display: inline-block; min-width: 100%; }
pre.diff .del { background: #ffebe9; display: inline-block; min-width: 100%; }
pre.diff .hunk { color: #8250df; }
pre.diff .file { color: var(--muted); font-weight: 600; }
details { margin: 8px 0; }
summary { cursor: pointer; padding: 4px 0; }
p.error { border-left: 4px solid #a40e26; padding: 4px 10px; background: #ffebe9;
  margin: 8px 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; }
"""

_CLEAN_STATES = set(model.STATES) | set(model.HISTORY_RESULTS)
# How the test history names each result.
RESULT_WORDS = {"passed": "passed", "failed": "failed", "flaky": "flaky",
                "preexisting": "pre-existing"}


def text(value: object) -> str:
    """*value* as HTML text or attribute value: the one escape every page uses."""
    return html.escape(str(value), quote=True)


def state_label(state: str, prefix: str = "", words: str = "") -> str:
    """A coloured label that says its state in words (colour is not the only cue)."""
    css = state if state in _CLEAN_STATES else "error"
    lead = f"<b>{text(prefix)}</b>" if prefix else ""
    return f'<span class="state s-{css}">{lead}{text(words or state)}</span>'


def layout(title: str, body: str, refresh: bool = False, crumb: str = "") -> str:
    """A whole page: *body* is already HTML; *title* and *crumb* are text."""
    meta_refresh = (f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">\n'
                    if refresh else "")
    crumb_html = f"<span>{text(crumb)}</span>" if crumb else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"{meta_refresh}<title>{text(title)}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<header class="top"><a href="/">Mercurial Try server</a>{crumb_html}</header>\n'
        f"<main>\n{body}\n<footer>"
        + ("This page refreshes itself every "
           f"{REFRESH_SECONDS} seconds while jobs run. " if refresh else "")
        + 'JSON: <a href="/api/tries">/api/tries</a></footer>\n</main>\n</body>\n</html>\n')


def ago(created: str, now: float) -> str:
    """``5 min ago`` for an ISO 8601 UTC time (the time itself if it is not one)."""
    then = store.parse_iso_time(created)
    if then is None:
        return created
    seconds = max(0, int(now - then))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} d ago"


def duration(seconds: float | None) -> str:
    """``4 min 12 s``; an em dash when there is none."""
    if seconds is None:
        return "\u2014"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _when(created: str, now: float) -> str:
    return f'<span title="{text(created)}">{text(ago(created, now))}</span>'


def _is_running(state: str) -> bool:
    return state in (model.QUEUED, model.RUNNING)


def index_page(tries: Iterable[store.Try], now: float | None = None) -> str:
    """``/``: the recent tries, newest first."""
    now = time.time() if now is None else now
    tries = list(tries)
    rows = []
    for t in tries:
        href = text(model.page_path(t.id))
        jobs = "".join(state_label(j.state, j.name) for j in t.jobs) or \
            '<span class="muted">no jobs</span>'
        rows.append(
            "<tr>"
            f'<td class="nowrap mono"><a href="{href}">{text(t.id)}</a></td>'
            f"<td>{state_label(t.state)}</td>"
            f'<td class="nowrap">{jobs}</td>'
            f'<td class="mono" title="{text(t.node)}">{text(t.node[:NODE_CHARS])}</td>'
            f"<td>{text(t.user)}</td>"
            f'<td class="summary"><a href="{href}">{text(t.summary) or "(no message)"}'
            "</a></td>"
            f'<td class="nowrap">{_when(t.created, now)}</td>'
            "</tr>")
    if rows:
        table = ("<table>\n<thead><tr><th>Try</th><th>State</th><th>Jobs</th><th>Node</th>"
                 "<th>User</th><th>Summary</th><th>Submitted</th></tr></thead>\n<tbody>\n"
                 + "\n".join(rows) + "\n</tbody>\n</table>")
    else:
        table = '<p class="muted">No try yet. Send one with <code>automation.py try</code>.</p>'
    body = (f"<h1>Recent tries</h1>\n"
            f'<p class="muted">The {store.RECENT_LIMIT} most recent, newest first.</p>\n'
            + table)
    return layout("Mercurial Try server", body,
                  refresh=any(_is_running(t.state) for t in tries))


def _diff(output: str) -> str:
    """A test's .err diff, its lines marked by kind (each line escaped)."""
    lines = []
    for line in output.splitlines():
        css = ("file" if line.startswith(("+++ ", "--- ")) else
               "hunk" if line.startswith("@@") else
               "add" if line.startswith("+") else
               "del" if line.startswith("-") else "")
        lines.append(f'<span class="{css}">{text(line)}</span>' if css else text(line))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


DASH = '<span class="muted">\u2014</span>'


def _anchor(job: str, test: str = "") -> str:
    """The id of a job's section (or of one failed test in it): text, escaped by callers."""
    return f"job-{job}" + (f"-{test}" if test else "")


def _has_results(j: store.Job) -> bool:
    """Whether the job has counts to show (else zeros would read as "ran nothing")."""
    return j.state in (model.PASSED, model.FAILED) or bool(j.passed or j.failed or j.skipped)


def _job_rows(t: store.Try, now: float) -> str:
    rows = []
    for j in t.jobs:
        log = (f'<a href="{text(store.log_path(t.id, j.name))}">log</a>' if j.log_key
               else DASH)
        if j.state == model.RUNNING and j.duration is None:
            then = store.parse_iso_time(j.started)
            took = (f'<span class="muted">{text(duration(now - then))} so far</span>'
                    if then is not None else DASH)
        else:
            took = text(duration(j.duration)) if j.duration is not None else DASH
        if _has_results(j):
            failed = len(j.failed)
            counts = (f'<td class="num">{j.passed}</td>'
                      f'<td class="num">{f"<strong>{failed}</strong>" if failed else 0}</td>'
                      f'<td class="num">{len(j.flaky)}</td>'
                      f'<td class="num">{len(j.preexisting)}</td>'
                      f'<td class="num">{j.skipped}</td>')
        else:
            counts = f'<td class="num">{DASH}</td>' * 5
        attempt = f"{j.attempt} of {model.MAX_ATTEMPTS}" if j.attempt else DASH
        rows.append(
            "<tr>"
            f'<td class="mono"><a href="#{text(_anchor(j.name))}">{text(j.name)}</a></td>'
            f"<td>{state_label(j.state)}</td>"
            f'<td class="num">{attempt}</td>{counts}'
            f'<td class="num">{took}</td>'
            f"<td>{log}</td>"
            "</tr>")
    return ('<table class="jobs">\n<thead><tr><th>Job</th><th>State</th>'
            '<th class="num">Attempt</th><th class="num">Passed</th>'
            '<th class="num">Failed</th><th class="num">Flaky</th>'
            '<th class="num">Pre-existing</th><th class="num">Skipped</th>'
            '<th class="num">Duration</th><th>Log</th></tr></thead>\n'
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


def _job_section(t: store.Try, j: store.Job) -> str:
    parts = [f'<h2 id="{text(_anchor(j.name))}">Job <span class="mono">{text(j.name)}</span> '
             f"{state_label(j.state)}</h2>"]
    facts = []
    if j.attempt:
        facts.append(f"attempt {j.attempt} of {model.MAX_ATTEMPTS}")
    if _has_results(j):
        facts.append(f"{j.passed} passed, {len(j.failed)} failed, {j.skipped} skipped"
                     + (f", {len(j.flaky)} flaky" if j.flaky else "")
                     + (f", {len(j.preexisting)} pre-existing" if j.preexisting else ""))
    if j.started:
        facts.append(f"started {j.started}")
    if j.ended:
        facts.append(f"ended {j.ended}")
    if facts or j.log_key:
        parts.append(f'<p class="muted">{text(" · ".join(facts))}'
                     + (f' · <a href="{text(store.log_path(t.id, j.name))}">full log</a>'
                        if j.log_key else "") + "</p>")
    if j.error:
        parts.append(f'<p class="error"><strong>Error:</strong> {text(j.error)}</p>')
    outputs = {f.name: f.output for f in j.failures}
    told = set(j.flaky) | set(j.preexisting)
    names = list(j.failed) + [n for n in outputs if n not in j.failed and n not in told]
    groups = (("New failures", "new failure", "they fail this job", names, True),
              ("Pre-existing failures", "pre-existing", "they fail on the try's base too",
               j.preexisting, False),
              ("Flaky", "flaky", "they failed, then passed when run again", j.flaky,
               False))
    for title, label, why, group, open_ in groups:
        if group:
            parts.append(_failure_group(j, (title, label, why), group, outputs, open_))
    if not names and j.state == model.PASSED:
        parts.append('<p class="muted">Every test passed.</p>')
    elif j.state == model.QUEUED:
        parts.append('<p class="muted">Waiting for an agent.</p>')
    elif j.state == model.RUNNING:
        parts.append('<p class="muted">Running: results appear here when the job ends.</p>')
    return "\n".join(parts)


def _test_link(name: str) -> str:
    return f'<a class="mono" href="{text(model.test_path(name))}">{text(name)}</a>'


def _failure_group(j: store.Job, words: tuple[str, str, str], names: Iterable[str],
                   outputs: dict[str, str], open_: bool) -> str:
    """One group of a job's failed tests: each name (linking to its history) and output;
    ``words``: the group's title, what each of its tests is, why it is in the group."""
    title, label, why = words
    names = list(names)
    parts = [f'<p class="group">{text(title)} ({len(names)}) <span class="muted">'
             f"{text(why)}</span></p>"]
    for name in names:
        output = outputs.get(name)
        shown = _diff(output) if output else '<p class="muted">No output recorded.</p>'
        parts.append(f'<details{" open" if open_ else ""} id="{text(_anchor(j.name, name))}">'
                     f"<summary><h3>{_test_link(name)}</h3> "
                     f'<span class="muted">{text(label)}</span> · '
                     f'<a href="{text(model.test_path(name))}">history</a></summary>\n'
                     f"{shown}\n</details>")
    return "\n".join(parts)


def history_page(name: str, results: Iterable[store.TestResult], now: float | None = None
              ) -> str:
    """``/test/<name>``: the test's newest results across tries, newest first."""
    now = time.time() if now is None else now
    results = list(results)
    counts = {r: sum(1 for x in results if x.result == r) for r in model.HISTORY_RESULTS}
    rows = [
        "<tr>"
        f'<td class="nowrap mono"><a href="{text(model.page_path(r.try_id))}">'
        f"{text(r.try_id)}</a></td>"
        f'<td class="mono">{text(r.job)}</td>'
        f"<td>{state_label(r.result, words=RESULT_WORDS.get(r.result, r.result))}</td>"
        f'<td class="nowrap">{_when(r.created, now)}</td>'
        "</tr>" for r in results]
    if rows:
        summary = ", ".join(f"{counts[r]} {RESULT_WORDS[r]}" for r in model.HISTORY_RESULTS)
        body = (f'<p class="muted">The {len(results)} most recent results (at most '
                f"{model.HISTORY_LIMIT}), newest first: {text(summary)}.</p>\n"
                "<table>\n<thead><tr><th>Try</th><th>Job</th><th>Result</th>"
                "<th>When</th></tr></thead>\n<tbody>\n" + "\n".join(rows)
                + "\n</tbody>\n</table>")
    else:
        body = '<p class="muted">No result of this test is kept.</p>'
    api = "/api" + model.test_path(name)
    return layout(f"test {name}", f'<h1 class="mono">{text(name)}</h1>\n{body}\n'
                  f'<p class="muted">JSON: <a href="{text(api)}">{text(api)}</a></p>',
                  crumb=f"test {name}")


def try_page(t: store.Try, now: float | None = None) -> str:
    """``/try/<id>``: the try, its jobs, every failed test with its diff."""
    now = time.time() if now is None else now
    running = _is_running(t.state)
    facts = [("Try", f'<span class="mono">{text(t.id)}</span>'),
             ("State", state_label(t.state)),
             ("Node", f'<span class="mono">{text(t.node)}</span>'),
             ("Branch", text(t.branch)),
             ("User", text(t.user)),
             ("Submitted", f"{text(t.created)} ({text(ago(t.created, now))})"),
             *([("Rerun of", f'<a class="mono" href="{text(model.page_path(t.rerun_of))}">'
                             f"{text(t.rerun_of)}</a>")] if t.rerun_of else []),
             ("JSON", f'<a href="{text("/api" + model.page_path(t.id))}">'
                      f'{text("/api" + model.page_path(t.id))}</a>')]
    body = [f"<h1>{text(t.summary) or '(no message)'}</h1>",
            '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
            + "</dl>",
            "<h2>Description</h2>",
            f"<pre>{text(t.description)}</pre>",
            "<h2>Jobs</h2>",
            _job_rows(t, now)]
    body += [_job_section(t, j) for j in t.jobs]
    return layout(f"try {t.id}: {t.summary}", "\n".join(body), refresh=running,
                  crumb=f"try {t.id}")


def not_found_page(what: str = "No such page.") -> str:
    """The 404 page."""
    return layout("Not found", f"<h1>Not found</h1>\n<p>{text(what)}</p>\n"
                               '<p><a href="/">Recent tries</a></p>')


def error_page(title: str, message: str) -> str:
    """Any other error (405, 500)."""
    return layout(title, f"<h1>{text(title)}</h1>\n<p>{text(message)}</p>\n"
                         '<p><a href="/">Recent tries</a></p>')
