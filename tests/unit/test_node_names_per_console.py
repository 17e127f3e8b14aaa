"""Two consoles on one host never give their workers the same node name."""

from __future__ import annotations

from pathlib import Path

from console.broker.embedded import default_state_dir
from console.programs import worker_program
from console.runtime import worker_node_name
from console.settings import Settings, WorkerGroup, console_id, resolve_settings

URL = "redis://127.0.0.1:1/0"  # never contacted


def settings_for(state_dir: Path, *groups: WorkerGroup) -> Settings:
    settings = Settings(broker=None, broker_source="test", state_dir=state_dir)
    if groups:
        settings = Settings(
            broker=None, broker_source="test", state_dir=state_dir, worker_groups=groups
        )
    return settings.with_broker(URL, "test")


def test_two_state_directories_give_different_node_names(tmp_path: Path) -> None:
    one, two = settings_for(tmp_path / "one"), settings_for(tmp_path / "two")
    name_one = worker_node_name(one.worker_groups[0], 1)
    name_two = worker_node_name(two.worker_groups[0], 1)
    assert name_one != name_two
    assert name_one.startswith(f"worker-1.{console_id(tmp_path / 'one')}@")
    command = worker_program(one, one.worker_groups[0], 1).command
    assert command[command.index("-n") + 1] == f"worker-1.{console_id(tmp_path / 'one')}@%h"


def test_the_default_state_directory_keeps_the_plain_names() -> None:
    plain = settings_for(default_state_dir())
    assert worker_node_name(plain.worker_groups[0], 2).startswith("worker-2@")


def test_a_custom_template_is_used_as_given_with_the_console_id_on_offer(tmp_path: Path) -> None:
    custom = settings_for(tmp_path, WorkerGroup(name="io", hostname="{name}{n}-{console}@%h"))
    assert custom.worker_groups[0].node_name(3) == f"io3-{console_id(tmp_path)}@%h"
    given = settings_for(tmp_path, WorkerGroup(name="io", hostname="io-{n}@box"))
    assert given.worker_groups[0].node_name(1) == "io-1@box"


def test_the_id_survives_settings_from_the_environment(tmp_path: Path) -> None:
    settings = resolve_settings(env={"SENTRY_CONSOLE_STATE_DIR": str(tmp_path)})
    assert settings.worker_groups[0].console == console_id(tmp_path) != ""
