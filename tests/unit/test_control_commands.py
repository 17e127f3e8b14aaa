"""``control``'s six subcommands, built from one table: each parses its arguments and makes its
one remote-control call, and reports the worker's answer (exit 0 confirmed, 1 otherwise)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from click.testing import CliRunner

from console import cli_watch
from console.actions import ActionResult
from console.cli import main


class FakeRuntime:
    """Records the remote-control calls; answers each with a fixed result."""

    def __init__(self, result: ActionResult) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.result = result

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> ActionResult:
            self.calls.append((name, args, kwargs))
            return self.result

        return call


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    fake = FakeRuntime(ActionResult.done("worker-1@a: ok"))

    @contextmanager
    def fake_runtime(obj: Any) -> Iterator[FakeRuntime]:
        yield fake

    monkeypatch.setattr(cli_watch, "_runtime", fake_runtime)
    return fake


def control(*args: str) -> Any:
    env = {"SENTRY_BROKER_URL": "redis://127.0.0.1:6379/0"}
    return CliRunner().invoke(main, ["control", *args], env=env)


@pytest.mark.parametrize(
    ("args", "call"),
    [
        (("pool", "w@a", "2"), ("pool", ("w@a", 2), {})),
        (("pool", "w@a", "-1"), ("pool", ("w@a", -1), {})),  # a negative DELTA is no option
        (("pool-restart", "w@a"), ("pool_restart", ("w@a",), {})),
        (("consume", "w@a", "q"), ("consume", ("w@a", "q"), {"on": True})),
        (("cancel", "w@a", "q"), ("consume", ("w@a", "q"), {"on": False})),
        (("shutdown", "w@a"), ("shutdown_worker", ("w@a",), {})),
        (("revoke", "t1"), ("revoke", ("t1",), {"terminate": False})),
        (("revoke", "t1", "--terminate"), ("revoke", ("t1",), {"terminate": True})),
    ],
)
def test_each_command_makes_its_one_call(
    runtime: FakeRuntime, args: tuple[str, ...], call: tuple[Any, ...]
) -> None:
    result = control(*args)
    assert result.exit_code == 0, result.output
    assert runtime.calls == [call]
    assert result.stdout.strip() == "worker-1@a: ok"


def test_a_refusal_exits_1_with_the_answer_on_stderr(runtime: FakeRuntime) -> None:
    runtime.result = ActionResult.refused("w@a: Pool restarts not enabled")
    result = control("pool-restart", "w@a")
    assert result.exit_code == 1
    assert result.stderr.strip() == "w@a: Pool restarts not enabled"


def test_bad_arguments_never_reach_a_worker(runtime: FakeRuntime) -> None:
    for args in (("pool", "w@a", "0"), ("pool", "w@a", "x"), ("revoke", "t1", "--kill")):
        result = control(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ")
    assert runtime.calls == []


def test_the_table_is_the_whole_group() -> None:
    assert set(cli_watch.control.commands) == set(cli_watch._CONTROL)
    assert len(cli_watch._CONTROL) == 6
