#!/usr/bin/env python3
"""Benchmark: purge-ec2-resources with 10 of our instances among 0/100/1000 foreign ones.

Starts its own moto server on 127.0.0.1, and for each foreign count: resets it,
runs `setup-ec2-account` (key pair, security groups, IAM), launches 10 instances
tagged as ours plus N foreign ones, then times the real CLI
`purge-ec2-resources -v` and reads its "N AWS calls" line. Also times the purge
in-process (no interpreter start-up). Needs moto[server] and the tool's deps.

    python bench/purge_scale.py [--foreign 0,100,1000] [--ours 10]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
REGION = "us-west-2"


def start_moto():
    import logging

    from moto.server import ThreadedMotoServer

    # The request log would bury the table.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--foreign", default="0,100,1000")
    parser.add_argument("--ours", type=int, default=10)
    opts = parser.parse_args()
    server, url = start_moto()
    state = Path(tempfile.mkdtemp(prefix="purge-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HGAUTOMATION_"))}
    env.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               PYTHONPATH=str(PROJECT))
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    sys.path.insert(0, str(PROJECT))
    import boto3

    from hgautomation import console
    from hgautomation.aws import purge, tags
    from hgautomation.aws.session import AWSSession

    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def cli(*args):
        start = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "hgautomation", "--state-path", str(state),
                            *args], env=env, capture_output=True, text=True, timeout=600,
                           check=False)
        if r.returncode:
            raise SystemExit(f"{args[0]} failed: {r.stderr}")
        return r, time.monotonic() - start

    def populate(foreign: int):
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset",
                                                      method="POST"), timeout=60).read()
        cli("setup-ec2-account", "--owner", "bench", "--ingress-cidr", "192.0.2.1/32")
        ours = tags.tag_specs("instance", tags.ours("bench", Name="hg-temp-bench"))
        ec2.run_instances(ImageId=image, MinCount=opts.ours, MaxCount=opts.ours,
                          InstanceType="c5.large", TagSpecifications=ours)
        if foreign:
            ec2.run_instances(ImageId=image, MinCount=foreign, MaxCount=foreign,
                              InstanceType="t3.micro", TagSpecifications=[{
                                  "ResourceType": "instance",
                                  "Tags": [{"Key": "Name", "Value": "web"},
                                           {"Key": "team", "Value": "other"}]}])

    def one_filtered_describe() -> float:
        # What moto itself needs for one tag-filtered DescribeInstances at this scale.
        start = time.monotonic()
        ec2.describe_instances(Filters=tags.filters("bench"))
        return time.monotonic() - start

    console.configure(console.QUIET)
    populate(0)  # warm-up: moto's first calls are slower
    purge.purge(AWSSession(REGION), purge.Selection(owner="bench"))
    print(f"{'foreign':>8} {'API calls':>9} {'mutating':>8} {'CLI wall s':>10} "
          f"{'in-process s':>12} {'moto 1 describe s':>17}  calls")
    for foreign in [int(x) for x in opts.foreign.split(",")]:
        populate(foreign)
        result, wall = cli("-v", "purge-ec2-resources", "--owner", "bench")
        summary = re.search(r"(\d+) AWS calls, (\d+) mutating AWS calls \((.*)\)", result.stderr)
        left = [i for r in ec2.describe_instances(Filters=[
            {"Name": "tag:hgautomation:owner", "Values": ["bench"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])[
            "Reservations"] for i in r["Instances"]]
        assert not left, "purge left instances of ours"
        # The same purge in-process: without interpreter start-up and imports.
        populate(foreign)
        describe_cost = one_filtered_describe()
        session = AWSSession(REGION)
        start = time.monotonic()
        purge.purge(session, purge.Selection(owner="bench"))
        inproc = time.monotonic() - start
        print(f"{foreign:>8} {summary.group(1):>9} {summary.group(2):>8} {wall:>10.2f} "
              f"{inproc:>12.2f} {describe_cost:>17.3f}  {summary.group(3)}", flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
