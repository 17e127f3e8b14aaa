"""Settings precedence, SENTRY_CONF loading and redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.settings import SettingsError, WorkerGroup, resolve_settings


def write_conf(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    return write_conf(
        tmp_path / "sentry.conf.py", 'BROKER_URL = "redis://:filepw@conf-host:6379/2"\n'
    )


def test_embedded_when_nothing_is_configured(tmp_path: Path) -> None:
    s = resolve_settings(env={"SENTRY_CONSOLE_STATE_DIR": str(tmp_path)})
    assert s.broker is None
    assert s.broker_source == "embedded"
    assert s.state_dir == tmp_path
    assert s.app == "workers.app"


def test_conf_file_beats_embedded(conf: Path) -> None:
    s = resolve_settings(env={"SENTRY_CONF": str(conf)})
    assert s.broker is not None and s.broker.host == "conf-host" and s.broker.db == 2
    assert s.broker_source == "SENTRY_CONF"


def test_conf_directory_holding_sentry_conf_py(conf: Path) -> None:
    s = resolve_settings(env={"SENTRY_CONF": str(conf.parent)})
    assert s.broker is not None and s.broker.host == "conf-host"


def test_env_beats_conf_file(conf: Path) -> None:
    env = {"SENTRY_CONF": str(conf), "SENTRY_BROKER_URL": "amqp://u:envpw@env-host:5672/sentry"}
    s = resolve_settings(env=env)
    assert s.broker is not None and s.broker.host == "env-host" and s.broker.kind == "amqp"
    assert s.broker_source == "SENTRY_BROKER_URL"


def test_flag_beats_everything(conf: Path) -> None:
    env = {"SENTRY_CONF": str(conf), "SENTRY_BROKER_URL": "redis://env-host/0"}
    s = resolve_settings(cli_broker="redis://:flagpw@flag-host:6380/3", env=env)
    assert s.broker is not None and (s.broker.host, s.broker.port) == ("flag-host", 6380)
    assert s.broker_source == "--broker"


def test_redacted_form_hides_password(conf: Path) -> None:
    s = resolve_settings(env={"SENTRY_CONF": str(conf)})
    assert "filepw" not in s.redacted_broker_url
    assert "***" in s.redacted_broker_url
    assert "filepw" not in repr(s)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("BROKER_URL = 42\n", "must be a string"),
        ("BROKER_URL = 'redis://:pw@host:notaport/0'\n", "port"),
        ("BROKER_URL = 'ftp://host'\n", "scheme"),
        ("def broken(:\n", "syntax error"),
        ("raise RuntimeError('boom')\n", "RuntimeError"),
        ("CONSOLE_WORKERS = 'all'\n", "CONSOLE_WORKERS"),
        ("CONSOLE_WORKERS = [{'name': 'w', 'colour': 'red'}]\n", "unknown worker setting"),
        ("CONSOLE_WORKERS = [{'name': 'w', 'concurrency': 0}]\n", "concurrency"),
        ("CONSOLE_CRON = 'yes'\n", "CONSOLE_CRON"),
        ("CONSOLE_REFRESH_INTERVAL = -1\n", "positive"),
        ("CONSOLE_EVENTS = 'tasks'\n", "CONSOLE_EVENTS must be 'all' or 'workers'"),
        ("CONSOLE_EVENTS = None\n", "CONSOLE_EVENTS"),
        ("CONSOLE_CRON_NAME = 'two words'\n", "CONSOLE_CRON_NAME"),
        ("CONSOLE_CRON_NAME = 7\n", "CONSOLE_CRON_NAME"),
    ],
)
def test_bad_conf_files_give_one_clear_line(tmp_path: Path, body: str, fragment: str) -> None:
    path = write_conf(tmp_path / "sentry.conf.py", body)
    with pytest.raises(SettingsError) as info:
        resolve_settings(env={"SENTRY_CONF": str(path)})
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert ":pw@" not in message


def test_missing_conf_and_conf_that_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        resolve_settings(env={"SENTRY_CONF": str(tmp_path / "nope.py")})
    (tmp_path / "dir" / "sentry.conf.py").mkdir(parents=True)
    with pytest.raises(SettingsError, match="not a file"):
        resolve_settings(env={"SENTRY_CONF": str(tmp_path / "dir")})


def test_worker_groups_from_conf(tmp_path: Path) -> None:
    body = (
        "CONSOLE_WORKERS = [\n"
        "  {'name': 'ingest', 'processes': 2, 'queues': ['events.process_event'],"
        "   'concurrency': 4},\n"
        "  {'name': 'slow', 'processes': 1, 'exclude_queues': ['cleanup']},\n"
        "]\nCONSOLE_CRON = False\nCONSOLE_REFRESH_INTERVAL = 0.5\n"
    )
    s = resolve_settings(env={"SENTRY_CONF": str(write_conf(tmp_path / "c.py", body))})
    assert s.worker_groups == (
        WorkerGroup(name="ingest", processes=2, queues=("events.process_event",), concurrency=4),
        WorkerGroup(name="slow", processes=1, exclude_queues=("cleanup",)),
    )
    assert s.cron is False
    assert s.refresh_interval == 0.5
    assert s.worker_groups[0].node_name(2) == "ingest-2@%h"


def test_default_programs_are_one_worker_group_and_cron(tmp_path: Path) -> None:
    s = resolve_settings(env={})
    assert [g.processes for g in s.worker_groups] == [1]
    assert s.cron is True


def test_event_mode_from_conf(tmp_path: Path) -> None:
    assert resolve_settings(env={"SENTRY_CONSOLE_STATE_DIR": str(tmp_path)}).events == "all"
    path = write_conf(tmp_path / "sentry.conf.py", 'CONSOLE_EVENTS = "workers"\n')
    settings = resolve_settings(env={"SENTRY_CONF": str(path)})
    assert settings.events == "workers"
    assert settings.watching().events == "workers"  # watch mode keeps it


def test_cron_name_reaches_the_cron_app(tmp_path: Path) -> None:
    from celery import Celery

    from console.cron.scheduler import coordinate, lock_name

    path = write_conf(tmp_path / "sentry.conf.py", "CONSOLE_CRON_NAME = 'billing:beat'\n")
    settings = resolve_settings(env={"SENTRY_CONF": str(path)})
    assert settings.cron_name == "billing:beat"
    app = Celery(set_as_current=False)
    coordinate(app, settings)
    assert lock_name(app, "0123") == "billing:beat"
    assert lock_name(Celery(set_as_current=False), "0123") == "celery:celery:0123"
