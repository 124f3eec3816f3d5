"""A Try server's storage on moto, made directly with boto3 (no deploy), and tries put
into it as the upload function would: the bundle in S3, the try and its jobs in the
table, one message per job in its queue (with a dead-letter queue after
``model.MAX_RECEIVES`` receives)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hgautomation import hgrepo, tryserver
from hgautomation.server import jobs, model, store

from . import hgsource


@dataclass
class TryStore:
    aws: Any  # the moto fixture
    bucket: str
    queues: dict[str, str]  # job -> queue URL
    dlqs: dict[str, str]

    @property
    def table(self):
        import boto3

        session = boto3.session.Session(aws_access_key_id="testing",
                                        aws_secret_access_key="testing",
                                        region_name=self.aws.region)
        return session.resource("dynamodb", endpoint_url=self.aws.endpoint_url).Table(
            model.TABLE)

    def job(self, try_id: str, name: str = "linux") -> dict:
        return jobs.get_job(self.table, try_id, name) or {}

    def wait_job(self, try_id: str, predicate, timeout: float, what: str,
                 name: str = "linux") -> dict:
        """Poll the job's item until ``predicate(item)``; AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.job(try_id, name)
            if predicate(item):
                return item
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout}s; the job is {item}")
            time.sleep(0.2)

    def submit_bundle(self, bundle: bytes, node: str, *, jobs_: tuple[str, ...] = ("linux",),
                      description: str = "a try", user: str = "Dev <dev@example.org>",
                      state: str = model.QUEUED) -> str:
        """Store a try as the upload function does; returns its id."""
        try_id = model.new_try_id()
        self.aws.client("s3").put_object(Bucket=self.bucket, Key=model.bundle_key(try_id),
                                         Body=bundle)
        table = self.table
        table.put_item(Item={**model.try_key(try_id), "kind": "try", "id": try_id,
                             "node": node, "user": user, "branch": "default",
                             "description": description,
                             "created": jobs.iso(time.time()), "jobs": list(jobs_),
                             "bundle_key": model.bundle_key(try_id),
                             "expires": int(time.time()) + 86400, "state": state})
        for name in jobs_:
            table.put_item(Item={**model.job_key(try_id, name), "try_id": try_id,
                                 "name": name, "state": state, "attempt": 0})
            if state == model.QUEUED:
                self.aws.client("sqs").send_message(QueueUrl=self.queues[name],
                                                    MessageBody=model.message(try_id, name))
        return try_id

    def submit(self, repo: Path, rev: str = "tip", **kwargs) -> tuple[str, str]:
        """Bundle ``rev``'s draft ancestry as `try` does and store it: (try id, node)."""
        local = hgrepo.LocalRepo(repo, hg=hgsource.hg_executable())
        selection = tryserver.select(local, rev)
        bundle = tryserver.bundle(local, selection)
        return self.submit_bundle(bundle.data, selection.head.node, **kwargs), \
            selection.head.node

    def visible_messages(self, name: str = "linux") -> list[dict]:
        """Receive (and at once release) what the queue holds visible now."""
        sqs = self.aws.client("sqs")
        found = sqs.receive_message(QueueUrl=self.queues[name], MaxNumberOfMessages=10,
                                    WaitTimeSeconds=1).get("Messages", [])
        for message in found:
            sqs.change_message_visibility(QueueUrl=self.queues[name],
                                          ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)
        return found

    def environment(self) -> dict[str, str]:
        """The functions' environment for this store (as deploy sets it)."""
        return store.Config(table=model.TABLE, bucket=self.bucket,
                            jobs=tuple(self.queues), queues=self.queues).environment()

    def object(self, key: str) -> bytes:
        return self.aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()


def create_store(aws: Any, job_names: tuple[str, ...] = ("linux",)) -> TryStore:
    """The table, the bucket, the queues and the topic a deployment has (in moto)."""
    aws.client("dynamodb").create_table(**store.table_definition())
    account = aws.client("sts").get_caller_identity()["Account"]
    bucket = model.bucket_name(account, aws.region)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket,
                     CreateBucketConfiguration={"LocationConstraint": aws.region})
    sqs = aws.client("sqs")
    queues, dlqs = {}, {}
    for name in job_names:
        dlq = sqs.create_queue(QueueName=model.dlq_name(name))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        queues[name] = sqs.create_queue(QueueName=model.queue_name(name), Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn,
                                         "maxReceiveCount": str(model.MAX_RECEIVES)})
        })["QueueUrl"]
        dlqs[name] = dlq
    aws.client("sns").create_topic(Name=model.TOPIC)  # the agent tells it a try ended
    return TryStore(aws=aws, bucket=bucket, queues=queues, dlqs=dlqs)
