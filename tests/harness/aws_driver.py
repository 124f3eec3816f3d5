"""Test driver: one temporary_instances() context in its own process, for signal tests.

Usage: python tests/harness/aws_driver.py STATE_DIR COUNT. Prints "READY <ids>" once the
instances run, then waits; SIGTERM is handled exactly as the CLI does.
"""

from __future__ import annotations

import signal
import sys
import time

from hgautomation import cli
from hgautomation.aws.instances import LaunchSpec, temporary_instances
from hgautomation.aws.session import open_session
from hgautomation.context import Context
from hgautomation.state import StateDir

DEBIAN = "ami-0f3271e513def6192"


def main() -> int:
    signal.signal(signal.SIGTERM, cli._on_sigterm)
    ctx = Context(state=StateDir.at(sys.argv[1]))
    session = open_session(ctx.aws_region)
    try:
        spec = LaunchSpec(owner="driver", image_id=DEBIAN, instance_type="c5.large",
                          purpose="driver", poll_interval=0.2)
        with temporary_instances(session, spec, count=int(sys.argv[2])) as found:
            print("READY", " ".join(i.id for i in found), flush=True)
            time.sleep(120)
    except cli.SignalInterrupt as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
