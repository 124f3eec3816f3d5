"""One SNS message when a try ends: its id, state and new failures, and its page.

The try item's ``notified`` is set by a conditional write before the message is sent,
so of all the callers that see the try's last job end (agents, a cancel) exactly one
publishes. Standard library and boto3 only: this module is shipped to Lambda too.
"""

from __future__ import annotations

from typing import Any

from hgautomation.server import jobs, model

MAX_SUBJECT = 100  # SNS: ASCII, no line break, at most 100 characters
MAX_NAMES = 50  # failed tests named per job in the message; the page has them all


def subject(try_id: str, state: str, new_failures: int) -> str:
    """``try <id>: <state>, <n> new failure(s)``, as SNS takes a subject."""
    text = (f"try {try_id}: {state}, {new_failures} new "
            f"failure{'' if new_failures == 1 else 's'}")
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text[:MAX_SUBJECT]


def body(meta: dict, job_items: list[dict]) -> str:
    """The message: the page's address, the try, then each job and its new failures."""
    try_id = str(meta.get("id", ""))
    summary = (str(meta.get("description") or "").strip().splitlines() or [""])[0][:200]
    lines = [str(meta.get("page_url") or model.page_path(try_id)), "",
             f"try {try_id}: {summary}",
             f"{meta.get('user', '')}, branch {meta.get('branch', '')}, "
             f"node {str(meta.get('node', ''))[:12]}", ""]
    for item in job_items:
        failed = [str(n) for n in item.get("failed") or ()]
        line = f"{item.get('name', '')}: {item.get('state', '')}"
        if failed:
            line += f", {len(failed)} new failure{'' if len(failed) == 1 else 's'}"
        elif item.get("error"):
            line += f" ({str(item['error']).splitlines()[0][:500]})"
        lines.append(line)
        lines += [f"  {name}" for name in failed[:MAX_NAMES]]
        if len(failed) > MAX_NAMES:
            lines.append(f"  ... and {len(failed) - MAX_NAMES} more (see the page)")
    return "\n".join(lines) + "\n"


def try_ended(table: Any, sns: Any, topic_arn: str, try_id: str) -> bool:
    """If every job of the try has ended and nobody has yet, publish the try's message
    to *topic_arn*; returns whether this call published. A failed publish raises (the
    try stays ``notified``: a message is sent at most once)."""
    meta = jobs.get_try(table, try_id)
    if meta is None or meta.get("notified"):
        return False
    items = jobs.job_items(table, try_id)
    by_name = {str(i.get("name")): i for i in items}
    names = [str(n) for n in meta.get("jobs") or ()] or sorted(by_name)
    if not names or any(by_name.get(n, {}).get("state") not in model.FINAL for n in names):
        return False
    ended = [by_name[n] for n in names]
    try:
        table.update_item(Key=model.try_key(try_id), UpdateExpression="SET notified = :yes",
                          ConditionExpression="attribute_exists(pk) AND "
                                              "attribute_not_exists(notified)",
                          ExpressionAttributeValues={":yes": True})
    except Exception as exc:  # botocore's ClientError, without importing botocore
        if (getattr(exc, "response", None) or {}).get("Error", {}).get(
                "Code") == "ConditionalCheckFailedException":
            return False  # another caller publishes (or has)
        raise
    state = model.try_state([str(i.get("state")) for i in ended])
    new = sum(len(i.get("failed") or ()) for i in ended)
    sns.publish(TopicArn=topic_arn, Subject=subject(try_id, state, new),
                Message=body({**meta, "id": try_id}, ended))
    return True
