"""Temporary EC2 instances that never outlive the run that made them.

:func:`temporary_instances` launches N instances (in parallel), tags each with a
per-run id, waits (bounded) for them to run and have an address, yields their
records and terminates them on every exit: success, error, Ctrl-C, SIGTERM.
Launches happen in worker threads, so an interrupt (always delivered to the main
thread) can never fall between ``RunInstances`` returning and the id being
recorded; cleanup also finds instances by the run tag, and the dead-man switch
(:mod:`.deadman`, + ``InstanceInitiatedShutdownBehavior=terminate``) covers a process
that dies without cleaning up. What is launched is one :class:`LaunchSpec`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as _dt
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from hgautomation import console, errors, poll
from hgautomation.aws import deadman
from hgautomation.aws import tags as T
from hgautomation.aws.session import AWSSession, client_error_code, translate_errors

IN_FLIGHT_WAIT = 30.0
LIVE_STATES = ["pending", "running", "stopping", "stopped"]
# Spot errors after which an on-demand launch may still succeed.
SPOT_FALLBACK_CODES = {
    "InsufficientInstanceCapacity", "InsufficientCapacity", "SpotMaxPriceTooLow",
    "MaxSpotInstanceCountExceeded", "UnfulfillableCapacity", "InsufficientSpotCapacity",
}


@dataclass(frozen=True)
class Instance:
    """A running instance as the rest of the tool sees it."""

    id: str
    public_ip: str | None
    private_ip: str | None
    instance_type: str = ""
    name: str = ""
    spot: bool = False
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def address(self) -> str | None:
        """The address to connect to: public if there is one, else private."""
        return self.public_ip or self.private_ip

    @classmethod
    def from_api(cls, data: dict) -> Instance:
        tags = T.tag_dict(data.get("Tags"))
        return cls(id=data["InstanceId"], public_ip=data.get("PublicIpAddress"),
                   private_ip=data.get("PrivateIpAddress"),
                   instance_type=data.get("InstanceType", ""), name=tags.get("Name", ""),
                   spot=data.get("InstanceLifecycle") == "spot", tags=tags)


# -- signals during cleanup ---------------------------------------------------

@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while cleanup runs; re-deliver one afterwards if nothing else failed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum, frame):
        received.append(signum)
        console.get().warn("signal received during cleanup; finishing cleanup first")

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if received and sys.exc_info()[0] is None:
            signal.raise_signal(received[0])


# -- queries ------------------------------------------------------------------

def describe(session: AWSSession, filters: list[dict] | None = None,
             instance_ids: Sequence[str] | None = None) -> list[dict]:
    """DescribeInstances with server-side filters, all pages."""
    ec2 = session.client("ec2")
    kwargs: dict = {}
    if filters:
        kwargs["Filters"] = filters
    if instance_ids:
        kwargs["InstanceIds"] = list(instance_ids)
    with translate_errors("describe instances"):
        return [i for page in ec2.get_paginator("describe_instances").paginate(**kwargs)
                for r in page["Reservations"] for i in r["Instances"]]


def find_ours(session: AWSSession, owner: str | None,
              states: Sequence[str] = tuple(LIVE_STATES)) -> list[dict]:
    """Our instances (of *owner*, or every owner's when None) in *states*."""
    return describe(session, T.filters(owner, instance_state_name=list(states)))


def find_run(session: AWSSession, run_id: str) -> list[str]:
    return [i["InstanceId"] for i in describe(session, [
        T.tag_filter(T.RUN, run_id),
        {"Name": "instance-state-name", "Values": LIVE_STATES}])]


def terminate(session: AWSSession, instance_ids: Sequence[str]) -> dict[str, str]:
    """One TerminateInstances call per 1000 ids (the API's batch limit); id -> new state."""
    ec2 = session.client("ec2")
    ids = sorted(set(instance_ids))
    states: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        with translate_errors("terminate instances"):
            reply = ec2.terminate_instances(InstanceIds=ids[start:start + 1000])
        states.update({i["InstanceId"]: i.get("CurrentState", {}).get("Name", "")
                       for i in reply.get("TerminatingInstances", [])})
    return states


def wait_for_state(session: AWSSession, instance_ids: Sequence[str], states: set[str],
                   timeout: float, *, interval: float = 3.0, need_address: str | None = None,
                   what: str = "instances") -> list[dict]:
    """Poll until every instance is in one of *states* (and has an address); bounded."""
    wanted = set(instance_ids)
    pending = sorted(wanted)

    def check() -> list[dict] | None:
        nonlocal pending
        try:
            found = describe(session, instance_ids=instance_ids)
        except errors.AWSError as exc:
            # Right after launch EC2 may not know the id yet (eventual consistency).
            if exc.code != "InvalidInstanceID.NotFound":
                raise
            found = []
        by_id = {i["InstanceId"]: i for i in found}
        ready = [i for i in by_id.values() if i["State"]["Name"] in states
                 and (need_address is None or i.get(need_address))]
        if len(ready) == len(wanted):
            return ready
        dead = [i["InstanceId"] for i in by_id.values()
                if i["State"]["Name"] in ("shutting-down", "terminated")
                and "terminated" not in states]
        if dead:
            noun = "instance" if len(dead) == 1 else "instances"
            raise errors.AWSError(f"{noun} {', '.join(dead)} terminated unexpectedly "
                                  "(spot reclaim, quota or a bad image?)")
        pending = sorted(wanted - {i["InstanceId"] for i in ready})
        return None

    goal = "/".join(sorted(states))
    return poll.until(
        check, timeout=timeout, interval=interval, what=f"{what} {goal}",
        timeout_error=lambda: f"{what} {', '.join(pending)} not {goal} after {timeout:.0f}s")


# -- launching ----------------------------------------------------------------

@dataclass
class _Launches:
    """Bookkeeping shared between the launching threads and cleanup."""

    run_id: str
    ids: list[str] = field(default_factory=list)
    in_flight: int = 0  # RunInstances calls not returned yet
    unknown_outcome: bool = False  # a call failed without an answer from EC2
    cancelled: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _launch_one(session: AWSSession, launches: _Launches, index: int, params: dict,
                spot: bool) -> str | None:
    from botocore.exceptions import ClientError

    if launches.cancelled.is_set():
        return None
    ec2 = session.client("ec2")
    attempts = [True, False] if spot else [False]
    for use_spot in attempts:
        call = dict(params)
        # A ClientToken makes a retried RunInstances idempotent on EC2's side.
        call["ClientToken"] = f"{launches.run_id}-{index}{'-spot' if use_spot else ''}"
        if use_spot:
            call["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {"SpotInstanceType": "one-time",
                                "InstanceInterruptionBehavior": "terminate"}}
        with launches.lock:
            launches.in_flight += 1
        try:
            reply = ec2.run_instances(**call)
        except ClientError as exc:
            # EC2 answered: nothing was created by this call.
            if use_spot and client_error_code(exc) in SPOT_FALLBACK_CODES:
                console.get().warn(f"no spot capacity ({client_error_code(exc)}); "
                                   "launching on-demand")
                continue
            with translate_errors("run instances"):
                raise
        except BaseException:
            # No answer (connection lost, timeout): an instance may exist anyway.
            with launches.lock:
                launches.unknown_outcome = True
            raise
        finally:
            with launches.lock:
                launches.in_flight -= 1
        ids = [i["InstanceId"] for i in reply["Instances"]]
        with launches.lock:
            launches.ids.extend(ids)
        return ids[0]
    return None


# Launches of this process still in progress: lets a main thread that runs several
# temporary_instances() in worker threads terminate them all when interrupted.
_ACTIVE: dict[str, _Launches] = {}
_ACTIVE_LOCK = threading.Lock()


def terminate_active(session: AWSSession) -> list[str]:
    """Terminate the instances of every temporary_instances() still open in this process."""
    with _ACTIVE_LOCK:
        active = list(_ACTIVE.values())
    if not active:
        return []
    with signals_deferred():
        for launches in active:
            launches.cancelled.set()
        # A RunInstances in flight may still create an instance: give it a bounded
        # moment to answer so its id (or its run tag) is seen below.
        deadline = time.monotonic() + IN_FLIGHT_WAIT
        while time.monotonic() < deadline and any(a.in_flight for a in active):
            time.sleep(0.2)
        ids: set[str] = set()
        for launches in active:
            with launches.lock:
                ids.update(launches.ids)
        ids.update(i["InstanceId"] for i in describe(session, [
            T.tag_filter(T.RUN, *(launches.run_id for launches in active)),
            {"Name": "instance-state-name", "Values": LIVE_STATES}]))
        if ids:
            with console.get().step(f"terminate {console.plural(len(ids), 'temporary instance')}"):
                terminate(session, sorted(ids))
    return sorted(ids)


def _cleanup(session: AWSSession, launches: _Launches, failing: bool) -> None:
    con = console.get()
    with signals_deferred():
        ids: set[str] = set()
        try:
            with launches.lock:
                ids.update(launches.ids)
                unsure = launches.unknown_outcome or launches.in_flight > 0
            ids.update(find_run(session, launches.run_id))
            if unsure and not ids - set(launches.ids):
                # A launch whose reply we never saw may not be listed yet.
                time.sleep(1.0)
                ids.update(find_run(session, launches.run_id))
            if ids:
                with con.step(f"terminate {console.plural(len(ids), 'temporary instance')}"):
                    terminate(session, sorted(ids))
        except errors.HgAutomationError as exc:
            con.warn(f"could not terminate the instances of run {launches.run_id} "
                     f"{' '.join(sorted(ids))}: {exc.one_line()}; their dead-man switch "
                     "stops them, or run terminate-ec2-instances")
            if not failing:
                raise


@dataclass(frozen=True)
class LaunchSpec:
    """What temporary instances are launched with, and how long to wait for them.

    Built once per launch (``account.AWS.launch_spec`` fills in the owner's account
    state); :func:`temporary_instances` and ``images.build_image`` take it whole.
    """

    owner: str
    image_id: str
    instance_type: str
    platform: str = "linux"  # "linux" or "windows": the dead-man switch's flavour
    purpose: str = "temp"  # in the instances' names and purpose tag
    user_data: str = ""  # the dead-man switch is added to it
    key_name: str | None = None
    security_group_ids: tuple[str, ...] = ()
    instance_profile_arn: str | None = None
    subnet_id: str | None = None
    block_device_mappings: tuple[Mapping, ...] = ()
    spot: bool = False  # falls back to on-demand when EC2 has no spot capacity
    tags: Mapping[str, str] = field(default_factory=dict)
    max_lifetime_minutes: int = deadman.DEFAULT_MAX_LIFETIME_MINUTES
    require_public_ip: bool = True
    wait_timeout: float = 900.0
    poll_interval: float = 3.0

    def run_params(self) -> dict:
        """The RunInstances parameters common to every instance of the launch."""
        params: dict = {
            "ImageId": self.image_id,
            "InstanceType": self.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "UserData": deadman.deadman_user_data(self.user_data, self.max_lifetime_minutes,
                                                  self.platform),
        }
        if self.security_group_ids:
            params["SecurityGroupIds"] = list(self.security_group_ids)
        if self.key_name:
            params["KeyName"] = self.key_name
        if self.instance_profile_arn:
            params["IamInstanceProfile"] = {"Arn": self.instance_profile_arn}
        if self.block_device_mappings:
            params["BlockDeviceMappings"] = [dict(m) for m in self.block_device_mappings]
        if self.subnet_id:
            params["SubnetId"] = self.subnet_id
        return params


@contextlib.contextmanager
def temporary_instances(session: AWSSession, spec: LaunchSpec, *,
                        count: int = 1) -> Iterator[list[Instance]]:
    """Launch *count* instances of *spec*, yield them running (with an address), always
    terminate them."""
    con = console.get()
    if count < 1:
        raise errors.UsageError("need at least one instance")
    run_id = f"hg{uuid.uuid4().hex[:16]}"
    now = T.now()
    expires = now + _dt.timedelta(minutes=spec.max_lifetime_minutes)
    base_tags = T.ours(spec.owner, **{T.RUN: run_id, T.PURPOSE: spec.purpose,
                                      T.EXPIRES_AT: T.iso(expires)})
    base_tags.update(spec.tags)
    params = spec.run_params()

    launches = _Launches(run_id)
    failing = True
    with _ACTIVE_LOCK:
        _ACTIVE[run_id] = launches
    try:
        with con.step(f"launch {console.plural(count, spec.instance_type + ' instance')} of "
                      f"{spec.image_id} (run {run_id})"):
            with concurrent.futures.ThreadPoolExecutor(
                    max_workers=min(count, 8), thread_name_prefix="hg-launch") as pool:
                futures = []
                for index in range(count):
                    call = dict(params)
                    name = f"hg-{spec.purpose}-{spec.owner}-{index + 1}"
                    call["TagSpecifications"] = T.tag_specs(
                        ["instance", "volume"], dict(base_tags, Name=name))
                    futures.append(pool.submit(_launch_one, session, launches, index,
                                               call, spec.spot))
                try:
                    for fut in concurrent.futures.as_completed(futures):
                        fut.result()
                except BaseException:
                    # Let in-flight launches finish (bounded by botocore's timeouts)
                    # so cleanup sees every instance; start no new ones.
                    launches.cancelled.set()
                    with signals_deferred():
                        pool.shutdown(wait=True, cancel_futures=True)
                    raise
            ids = list(launches.ids)
            con.detail(f"launched {' '.join(ids)}")
            ready = wait_for_state(
                session, ids, {"running"}, spec.wait_timeout, interval=spec.poll_interval,
                need_address="PublicIpAddress" if spec.require_public_ip else "PrivateIpAddress")
        order = {i: n for n, i in enumerate(ids)}
        records = sorted((Instance.from_api(i) for i in ready), key=lambda r: order[r.id])
        for r in records:
            con.info(f"    {r.id} {r.name} {r.address}{' (spot)' if r.spot else ''}")
        yield records
        failing = False
    finally:
        # failing stays True for exceptions and interrupts: then a cleanup error
        # is only a warning and the original exception is what the user sees.
        try:
            _cleanup(session, launches, failing)
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.pop(run_id, None)
