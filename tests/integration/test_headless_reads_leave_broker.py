"""Headless reads (`status`, `queues list`) leave a Redis broker exactly as they found it."""

from __future__ import annotations

import redis

from tests.integration.test_cli_headless import cli_env, run  # noqa: F401 (fixture)


def keys(url: str) -> set[bytes | str]:
    client = redis.Redis.from_url(url)
    try:
        return set(client.keys("*"))
    finally:
        client.close()


def test_status_and_queues_list_write_nothing_to_an_empty_db(
    cli_env: dict[str, str | None],  # noqa: F811
    redis_url: str,
) -> None:
    found = keys(redis_url)  # the claim only
    for args in (
        ("status",),
        ("status", "--json"),
        ("queues", "list"),
        ("queues", "list", "--json"),
    ):
        result = run(cli_env, redis_url, *args)
        assert result.exit_code == 0, result.output
        assert keys(redis_url) == found, f"{' '.join(args)} left {keys(redis_url) - found}"
