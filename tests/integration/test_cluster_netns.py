"""A cluster built from Linux network namespaces: partitions, a crashed host, the cron sender.

One rig for the module (see ``tests/netns_support``): a broker host with its own Redis, three
hosts each running ``sentry-console serve`` with two workers and a coordinated cron, and an
operator host running ``sentry-console watch --json``. Each scenario starts from every program
running and every worker online, and leaves the cluster that way.

Hosts are cut off by taking the root namespace's end of their veth pair down: their packets
are dropped both ways, silently, as when a switch port dies.
"""

from __future__ import annotations

import atexit
import json
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from tests.chaos_support.helpers import gone, store_count
from tests.conftest import _in_ci
from tests.cron_support.cluster import Sent, check_sends
from tests.netns_support.cluster import (
    APP,
    CONSOLE_HOSTS,
    OPERATOR,
    WORKERS_PER_HOST,
    Cluster,
)
from tests.netns_support.net import NetnsUnavailable, Network, check_support
from tests.netns_support.views import (
    Snapshot,
    WatchView,
    broker_state,
    cron_role,
    host_workers,
    online_by_host,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: Celery's worker heartbeat interval; the rig's workers keep the default.
HEARTBEAT = 2.0
#: How long scenario b keeps host B cut off.
CUT = 20.0
EVENTS = 2000
#: CONSOLE_OFFLINE_DROP_AFTER of the operator's second watch in scenario c.
DROP_AFTER = 5.0
#: The watch refreshes once a second: a state shows up to one refresh after it began.
WATCH_REFRESH = 1.0
#: After a takeover, how long a catch-up send may still arrive (as in test_cron_coordination).
SETTLE = 3.0


def unavailable(reason: str) -> None:
    """Skip with the reason, or fail under CI, where the rig must run."""
    if _in_ci():
        pytest.fail(f"the namespace cluster cannot run under CI: {reason}")
    pytest.skip(reason)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The whole cluster, started once for the module; everything it made is gone afterwards."""
    made = Cluster()
    try:
        check_support(made.net.suffix)
    except NetnsUnavailable as exc:
        unavailable(str(exc))
    if shutil.which("redis-server") is None:
        unavailable("`redis-server` is not on PATH (the broker host runs its own)")
    # SIGTERM (a CI runner giving up) unwinds like ctrl+c, so the finalizer still runs.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    atexit.register(made.teardown)
    try:
        made.start()
        yield made
    finally:
        made.teardown()
        atexit.unregister(made.teardown)
        signal.signal(signal.SIGTERM, previous)
    assert not made.leftovers(), made.leftovers()


def all_online(snap: Snapshot) -> bool:
    """Every worker of every console host listed online by the operator's watch."""
    return online_by_host(snap) == {h: WORKERS_PER_HOST for h in CONSOLE_HOSTS}


@pytest.fixture(scope="module")
def watch(cluster: Cluster) -> WatchView:
    """The operator's ``watch --json`` (offline workers kept listed for the default 300 s)."""
    return started_watch(cluster)


def started_watch(cluster: Cluster, drop_after: float = 300.0) -> WatchView:
    """A new ``watch --json`` on the operator host, once it has heard every worker's timer."""
    view = cluster.watch(drop_after)
    first = view.wait_for(all_online, 60, "all 6 workers online on the operator host")
    view.wait_for(heard_since(first["taken_at"] + HEARTBEAT), 30, "a heartbeat from every worker")
    return view


def heard_since(when: float) -> Callable[[Snapshot], bool]:
    """Every worker online and heard from at or after ``when``.

    A watch learns a worker's heartbeat interval from its timer's heartbeats, not from the one
    it asks for on connecting: wait for those before timing how soon a silence is noticed.
    """

    def heard(snap: Snapshot) -> bool:
        return all_online(snap) and all((w["last_heartbeat"] or 0) >= when for w in snap["workers"])

    return heard


@pytest.fixture
def healthy(cluster: Cluster, watch: WatchView) -> Cluster:
    """The cluster with every console up on a connected broker and every worker online."""
    for name in CONSOLE_HOSTS:
        cluster.view(name).wait_for(
            lambda s: broker_state(s) == "connected", 30, "a connected broker", since=time.time()
        )
    watch.wait_for(all_online, 30, "all 6 workers online", since=time.time())
    return cluster


def report(label: str, figures: dict[str, Any]) -> None:
    """Print the scenario's measurements (shown with -s, kept in the captured output)."""
    print(f"{label}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# the rig itself ------------------------------------------------------------------------------
def test_rig_teardown_leaves_no_namespace_link_or_process() -> None:
    net = Network()
    try:
        check_support(net.suffix)
    except NetnsUnavailable as exc:
        unavailable(str(exc))
    import subprocess

    procs = []
    try:
        net.start()
        for name in ("one", "two"):
            net.add_host(name)
            argv = net.command(name, ["sleep", "300"])
            procs.append(subprocess.Popen(argv, start_new_session=True))
        hostname = subprocess.run(
            net.command("two", ["hostname"]), capture_output=True, text=True, check=True
        )
        assert hostname.stdout.strip() == "two"
        assert len(net.pids()) == 2 and net.leftovers()
    finally:
        net.teardown()
    for proc in procs:
        proc.wait(10)
    assert all(gone(p.pid) for p in procs)
    assert net.leftovers() == []


def test_rig_reaches_rabbitmq_from_the_namespaces(cluster: Cluster, rabbitmq_vhost: str) -> None:
    if not cluster.amqp_reach:
        unavailable("`socat` is not installed (the rig's RabbitMQ forwarder)")
    state = cluster.root / OPERATOR / "status-state"
    out = cluster.run_on(
        OPERATOR,
        ["-m", "console", "status", "--json"],
        SENTRY_BROKER_URL=cluster.amqp_url(rabbitmq_vhost),
        SENTRY_CONSOLE_STATE_DIR=str(state),
    )
    import json

    assert json.loads(out.stdout)["broker"]["state"] == "connected", out.stdout


# scenario a ----------------------------------------------------------------------------------
def control_on_operator(cluster: Cluster, *args: str) -> str:
    """``sentry-console control ARGS`` run on the operator host; the worker's reply it printed."""
    argv = ["-m", "console", "--app", APP, "control", *args]
    return cluster.run_on(OPERATOR, argv, timeout=60).stdout.strip()


def pool_on_operator(cluster: Cluster, node: str) -> int | None:
    """``node``'s pool size from its ``inspect stats`` reply, asked from the operator host."""
    out = cluster.run_on(OPERATOR, ["-m", "tests.netns_support.probe", "pool", node])
    return json.loads(out.stdout)


def test_a_operator_lists_every_worker_and_controls_remote_ones(healthy: Cluster) -> None:
    """From the operator host: all 6 workers with their hosts within 10 s of starting watch;
    a pool grown on another host's worker, as its ``inspect stats`` confirms; a task running on
    another host revoked and terminated."""
    cluster = healthy
    started = time.time()
    fresh = cluster.watch()
    try:

        def every_worker_with_its_host(snap: Snapshot) -> bool:
            hosts = [w["host"] for w in snap["workers"] if w["online"]]
            return sorted(hosts) == sorted(h for h in CONSOLE_HOSTS for _ in range(2))

        listed = fresh.wait_for(every_worker_with_its_host, 30, "all 6 workers with their hosts")
        listed_after = listed["taken_at"] - started

        node = host_workers(listed, "hostA")[0]["hostname"]
        size = pool_on_operator(cluster, node)
        assert size == 2, size
        assert control_on_operator(cluster, "pool", node, "1") == f"{node}: pool will grow"
        wait_until(f"{node}'s pool of 3", lambda: pool_on_operator(cluster, node) == 3, 30)
        assert control_on_operator(cluster, "pool", node, "-1") == f"{node}: pool will shrink"
        wait_until(f"{node}'s pool of 2 again", lambda: pool_on_operator(cluster, node) == 2, 30)

        sent_at = time.time()
        out = cluster.run_on(OPERATOR, ["-m", "tests.netns_support.probe", "sleep", "120"])
        task = out.stdout.strip()

        def running(snap: Snapshot) -> bool:
            return any(t["uuid"] == task for t in snap["active_tasks"])

        seen = fresh.wait_for(running, 30, f"task {task} running", since=sent_at)
        where = next(t["hostname"] for t in seen["active_tasks"] if t["uuid"] == task)
        assert where.partition("@")[2] in CONSOLE_HOSTS, where
        revoked_at = time.time()
        reply = control_on_operator(cluster, "revoke", task, "--terminate")
        assert reply.startswith(f"terminated {task[:8]}: confirmed by "), reply
        gone_snap = fresh.wait_for(
            lambda s: not running(s), 30, f"task {task} no longer running", since=revoked_at
        )
        figures = {
            "listed_after": round(listed_after, 2),
            "revoked_task_ran_on": where,
            "gone_after_revoke": round(gone_snap["taken_at"] - revoked_at, 2),
            "reply": reply,
        }
        report("scenario a", figures)
        assert listed_after <= 10.0, figures
    finally:
        fresh.stop()


# scenario b ----------------------------------------------------------------------------------
def b_offline(snap: Snapshot) -> bool:
    """hostB's two workers listed offline, hostA's and hostC's online."""
    listed = host_workers(snap, "hostB")
    counts = online_by_host(snap)
    return (
        len(listed) == WORKERS_PER_HOST
        and not any(w["online"] for w in listed)
        and counts.get("hostA") == counts.get("hostC") == WORKERS_PER_HOST
    )


def test_b_host_cut_off_from_the_broker(healthy: Cluster, watch: WatchView) -> None:
    """Cut hostB off for 20 s: offline on the operator host within 3 heartbeats, online within
    10 s of healing; hostB's console sees the broker down within 2 s and back; 2,000 events
    sent meanwhile are stored exactly once."""
    cluster = healthy
    b = cluster.view("hostB")
    before = store_count(cluster.event_store)
    cut_at = time.time()
    cluster.net.cut("hostB")
    try:
        down = b.wait_for(
            lambda s: broker_state(s) == "down", 10, "the broker down on hostB", since=cut_at
        )
        offline = watch.wait_for(b_offline, 30, "hostB's workers offline", since=cut_at)
        sent = cluster.send_events(EVENTS)  # from the operator host, hostB still cut off
        sent_by = time.time() - cut_at
        assert sent_by < CUT, f"sending took until {sent_by:.1f}s, past the cut"
        time.sleep(max(0.0, cut_at + CUT - time.time()))  # the cut lasts CUT seconds
    finally:
        heal_at = time.time()
        cluster.net.heal("hostB")
    back = b.wait_for(
        lambda s: broker_state(s) == "connected", 15, "the broker back on hostB", since=heal_at
    )
    online = watch.wait_for(all_online, 20, "hostB's workers online again", since=heal_at)
    rejoined = b.wait_for(
        lambda s: sum(w["online"] for w in s["workers"]) == len(CONSOLE_HOSTS) * WORKERS_PER_HOST,
        20,
        "every worker online on hostB's console (its event stream back)",
        since=heal_at,
    )
    drained = watch.wait_for(
        lambda s: all(q["depth"] == 0 for q in s["queues"]) and not s["active_tasks"],
        120,
        "every queue empty and no task running",
        since=heal_at,
    )
    stored = store_count(cluster.event_store) - before
    figures = {
        "broker_down_on_B": round(down["taken_at"] - cut_at, 2),
        "offline_on_op": round(offline["taken_at"] - cut_at, 2),
        "events_sent_by": round(sent_by, 2),
        "broker_back_on_B": round(back["taken_at"] - heal_at, 2),
        "online_on_op": round(online["taken_at"] - heal_at, 2),
        "cluster_back_on_B": round(rejoined["taken_at"] - heal_at, 2),
        "drained_after_heal": round(drained["taken_at"] - heal_at, 2),
        "stored": stored,
    }
    report(f"scenario b ({sent})", figures)
    assert figures["broker_down_on_B"] <= 2.0, figures
    assert figures["offline_on_op"] <= 3 * HEARTBEAT, figures
    assert figures["online_on_op"] <= 10.0, figures
    assert stored == EVENTS, figures


# scenario c ----------------------------------------------------------------------------------
def test_c_host_killed_shown_offline_then_dropped(healthy: Cluster, watch: WatchView) -> None:
    """SIGKILL everything on hostC: its workers offline on the operator host within 3
    heartbeats, then dropped after CONSOLE_OFFLINE_DROP_AFTER; a watch with the default keeps
    them listed offline."""
    cluster = healthy
    fast = started_watch(cluster, drop_after=DROP_AFTER)
    try:
        kill_at = time.time()
        victims = cluster.kill_host("hostC")
        assert len(victims) >= 1 + 2 * (1 + 2) + 1, victims  # serve, 2 workers + pools, cron
        assert all(gone(pid) for pid in victims)

        def c_offline(snap: Snapshot) -> bool:
            listed = host_workers(snap, "hostC")
            return len(listed) == WORKERS_PER_HOST and not any(w["online"] for w in listed)

        offline = fast.wait_for(c_offline, 30, "hostC's workers offline", since=kill_at)
        dropped = fast.wait_for(
            lambda s: not host_workers(s, "hostC") and len(s["workers"]) == 4,
            DROP_AFTER + 30,
            "hostC's workers dropped",
            since=offline["taken_at"],
        )
        watch.wait_for(
            c_offline,
            5,
            "hostC's workers still listed offline by a watch with the default drop",
            since=dropped["taken_at"],
        )
        assert fast.stop() == 0, "watch --json did not end with 0 on SIGTERM"
    finally:
        fast.stop()
        restarted_at = time.time()
        cluster.start_console("hostC")
        cluster.wait_console("hostC")
    online = watch.wait_for(all_online, 30, "hostC's workers back online", since=restarted_at)
    figures = {
        "offline_on_op": round(offline["taken_at"] - kill_at, 2),
        "dropped_after_offline": round(dropped["taken_at"] - offline["taken_at"], 2),
        "back_after_restart": round(online["taken_at"] - restarted_at, 2),
        "killed": len(victims),
    }
    report("scenario c", figures)
    assert figures["offline_on_op"] <= 3 * HEARTBEAT, figures
    low, high = DROP_AFTER - WATCH_REFRESH - 0.5, DROP_AFTER + WATCH_REFRESH + 0.5
    assert low <= figures["dropped_after_offline"] <= high, figures


# scenario d ----------------------------------------------------------------------------------
def roles(cluster: Cluster) -> dict[str, str | None]:
    """Each console host's cron role, as its console shows it now."""
    found = {}
    for name in CONSOLE_HOSTS:
        latest = cluster.view(name).latest()
        found[name] = cron_role(latest) if latest else None
    return found


def one_leader(cluster: Cluster) -> str | None:
    """The one host whose cron leads while the two others stand by, else None."""
    now = roles(cluster)
    leaders = [h for h, role in now.items() if role == "leader"]
    standby = [h for h, role in now.items() if role == "standby"]
    return leaders[0] if len(leaders) == 1 and len(standby) == 2 else None


def test_d_cron_sender_cut_off_hands_over_without_a_duplicate(healthy: Cluster) -> None:
    """One cron sender among the three hosts; cut its host off for 10 s: another host takes the
    role, the old one stands by after healing, and no one-second slot is sent twice."""
    cluster = healthy
    deadline = time.monotonic() + 30
    while (leader := one_leader(cluster)) is None:
        assert time.monotonic() < deadline, f"no single cron leader: {roles(cluster)}"
        time.sleep(0.1)
    cluster.ticks()  # what was sent before this scenario
    time.sleep(3)  # a few ticks from the first sender
    cut_at = time.time()
    cluster.net.cut(leader)
    try:
        others = [h for h in CONSOLE_HOSTS if h != leader]
        taken: dict[str, Snapshot] = {}

        def took_over() -> bool:
            for name in others:
                snap = cluster.view(name).latest()
                if snap and cron_role(snap) == "leader" and snap["taken_at"] >= cut_at:
                    taken[name] = snap
            return bool(taken)

        deadline = time.monotonic() + 30
        while not took_over():
            assert time.monotonic() < deadline, f"no takeover: {roles(cluster)}"
            time.sleep(0.05)
        new = next(iter(taken))
        stepped = cluster.view(leader).wait_for(
            lambda s: cron_role(s) != "leader", 20, "the cut-off cron to stop leading", since=cut_at
        )
        time.sleep(max(0.0, cut_at + 10 - time.time()))  # the cut lasts 10 s
    finally:
        heal_at = time.time()
        cluster.net.heal(leader)
    cluster.view(leader).wait_for(
        lambda s: cron_role(s) == "standby", 30, "the old sender standing by", since=heal_at
    )
    time.sleep(3)  # a few ticks from the new sender, with the old one back
    assert one_leader(cluster) == new, roles(cluster)
    ticks = cluster.ticks()
    sent = [Sent(t["slot"], t["after"], t["sender"]) for t in ticks]
    takeover_at = taken[new]["taken_at"]
    figures = check_sends(sent, [(cut_at, takeover_at + SETTLE)])
    senders = [s.sender.partition(":")[0] for s in sent]
    figures.update(
        takeover=round(takeover_at - cut_at, 2),
        old_stepped_down=round(stepped["taken_at"] - cut_at, 2),
        senders=sorted(set(senders)),
    )
    report("scenario d", figures)
    assert senders[0] == leader and senders[-1] == new, senders
    assert set(senders) == {leader, new}, senders
