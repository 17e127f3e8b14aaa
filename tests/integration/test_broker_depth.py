"""Exact queue depth on a real Redis and a real RabbitMQ, seeded through kombu with priorities."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import amqp
import pytest
import redis
from kombu import Connection, Exchange, Producer, Queue

from console.broker.depth import (
    BrokerUnavailable,
    QueueDepth,
    make_depth_probe,
    redis_queue_keys,
)
from console.broker.urls import parse_broker_url

# priority -> messages; kombu files 0-2 under step 0, 3-5 under 3, 6-8 under 6, 9 under 9
SEED = {0: 2, 2: 1, 3: 3, 5: 1, 6: 2, 9: 4}
SEED_TOTAL = sum(SEED.values())


def seed(url: str, queue_name: str, options: dict[str, object], max_priority: int | None) -> None:
    """Publish SEED through kombu to a queue declared the way a Celery app declares it."""
    exchange = Exchange(queue_name, type="direct")
    arguments = {"x-max-priority": max_priority} if max_priority else None
    queue = Queue(queue_name, exchange, routing_key=queue_name, queue_arguments=arguments)
    with Connection(url, transport_options=options) as conn:
        producer = Producer(conn.default_channel)
        for priority, count in SEED.items():
            for index in range(count):
                producer.publish(
                    {"p": priority, "i": index},
                    exchange=exchange,
                    routing_key=queue_name,
                    declare=[queue],
                    priority=priority,
                    retry=False,
                )


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"global_keyprefix": "sentry:"},
        {"global_keyprefix": "pfx/", "priority_steps": list(range(10)), "sep": ":"},
    ],
    ids=["default", "keyprefix", "ten-steps"],
)
def test_redis_depth_counts_every_priority(
    redis_url: str, unique: str, options: dict[str, object]
) -> None:
    queue, empty = f"events-{unique}", f"empty-{unique}"
    seed(redis_url, queue, options, None)
    raw = redis.Redis.from_url(redis_url)
    prefix = str(options.get("global_keyprefix", ""))
    assert raw.exists(prefix + queue)
    assert len([k for k in raw.scan_iter(match=f"{prefix}{queue}*")]) > 1  # several sub-queues
    with Connection(redis_url, transport_options=options) as conn:
        assert conn.default_channel._size(queue) == SEED_TOTAL  # kombu agrees
    probe = make_depth_probe(parse_broker_url(redis_url), options)
    try:
        depths = probe.poll([queue, empty])
        assert depths[queue] == QueueDepth(queue, SEED_TOTAL, None, None, exists=True)
        assert depths[empty] == QueueDepth(empty, 0, None, None, exists=True)
        assert probe.round_trips == 1
        top_key = redis_queue_keys(queue, **options)[-1]  # type: ignore[arg-type]
        assert raw.rpop(top_key) is not None  # what a worker takes first
        assert probe.poll([queue])[queue].ready == SEED_TOTAL - 1
        assert probe.round_trips == 2
        assert probe.poll([]) == {}
    finally:
        probe.close()
        raw.close()


@pytest.fixture(params=["redis_url", "rabbitmq_url"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The same test on Redis and on RabbitMQ."""
    return str(request.getfixturevalue(request.param))


def test_same_exact_figures_on_both_brokers(broker_url: str, unique: str) -> None:
    queue = f"both-{unique}"
    amqp_broker = broker_url.startswith("amqp")
    seed(broker_url, queue, {"confirm_publish": True} if amqp_broker else {}, 10)
    probe = make_depth_probe(parse_broker_url(broker_url), timeout=3.0)
    try:
        assert probe.poll([queue])[queue].ready == SEED_TOTAL
        declared = Queue(
            queue,
            Exchange(queue, type="direct"),
            routing_key=queue,
            queue_arguments={"x-max-priority": 10} if amqp_broker else None,
        )
        with Connection(broker_url) as conn:
            message = declared(conn.default_channel).get(no_ack=True)  # basic.get, no prefetch
            assert message is not None and message.payload["p"] in SEED
        assert probe.poll([queue])[queue].ready == SEED_TOTAL - 1
    finally:
        probe.close()
        if amqp_broker:
            with Connection(broker_url) as conn:
                conn.default_channel.queue_delete(queue)


def test_redis_prefix_matters(redis_url: str, unique: str) -> None:
    queue = f"events-{unique}"
    seed(redis_url, queue, {"global_keyprefix": "sentry:"}, None)
    probe = make_depth_probe(parse_broker_url(redis_url))
    try:
        assert probe.poll([queue])[queue].ready == 0
    finally:
        probe.close()


def test_redis_unavailable_is_one_clean_line() -> None:
    url = parse_broker_url(f"redis://:Hunter2Secret@127.0.0.1:{closed_port()}/0")
    probe = make_depth_probe(url, timeout=1.0)
    try:
        with pytest.raises(BrokerUnavailable) as info:
            probe.poll(["celery"])
        assert str(info.value) == "Redis is unavailable: connection refused"
        assert info.value.__cause__ is None
    finally:
        probe.close()


@pytest.fixture
def amqp_admin(rabbitmq_url: str) -> Iterator[amqp.Channel]:
    """A raw AMQP channel on the test vhost for setup and consumers."""
    url = parse_broker_url(rabbitmq_url)
    conn = amqp.Connection(
        host=f"{url.host}:{url.port}",
        userid=url.username,
        password=url.password,
        virtual_host=url.vhost,
        connect_timeout=5,
    )
    conn.connect()
    try:
        yield conn.channel()
    finally:
        conn.close()


@pytest.mark.rabbitmq
def test_amqp_depth_with_priorities_and_missing_queues(
    rabbitmq_url: str, unique: str, amqp_admin: amqp.Channel
) -> None:
    queue, busy, empty = f"events-{unique}", f"busy-{unique}", f"empty-{unique}"
    missing, missing2 = f"missing-{unique}", f"gone-{unique}"
    seed(rabbitmq_url, queue, {"confirm_publish": True}, 10)
    amqp_admin.queue_declare(empty, durable=True, auto_delete=False)
    amqp_admin.queue_declare(busy, durable=False, auto_delete=True)
    amqp_admin.basic_consume(busy, callback=lambda message: None)
    probe = make_depth_probe(parse_broker_url(rabbitmq_url), timeout=3.0)
    try:
        names = [queue, missing, busy, missing2, empty]
        depths = probe.poll(names)
        assert list(depths) == names
        assert depths[queue] == QueueDepth(queue, SEED_TOTAL, 0, None, exists=True)
        assert depths[busy] == QueueDepth(busy, 0, 1, None, exists=True)
        assert depths[empty] == QueueDepth(empty, 0, 0, None, exists=True)
        for name in (missing, missing2):
            assert depths[name] == QueueDepth(name, None, None, None, exists=False)
        before = probe.round_trips
        assert probe.poll([queue, empty]) == {queue: depths[queue], empty: depths[empty]}
        assert probe.round_trips - before == 1  # one pipelined batch, no reconnect
        before = probe.round_trips
        probe.poll(names)
        assert probe.round_trips - before == 5  # batch + (reopen + batch) per missing queue
    finally:
        probe.close()
        amqp_admin.queue_delete(queue)
        amqp_admin.queue_delete(empty)


@pytest.mark.rabbitmq
def test_amqp_unavailable_and_bad_password(rabbitmq_url: str) -> None:
    url = parse_broker_url(f"amqp://guest:Hunter2Secret@127.0.0.1:{closed_port()}/x")
    probe = make_depth_probe(url, timeout=1.0)
    with pytest.raises(BrokerUnavailable) as info:
        probe.poll(["celery"])
    assert str(info.value) == "RabbitMQ is unavailable: connection refused"
    probe.close()
    vhost = parse_broker_url(rabbitmq_url).vhost
    probe = make_depth_probe(parse_broker_url(f"amqp://guest:Hunter2Secret@127.0.0.1/{vhost}"))
    with pytest.raises(BrokerUnavailable) as info:
        probe.poll(["celery"])
    assert str(info.value) == "RabbitMQ is unavailable: authentication failed"
    assert "Hunter2Secret" not in repr(info.value)
    probe.close()
