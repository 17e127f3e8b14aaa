"""The ``--metrics`` options that ``serve`` and ``watch`` share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import click

from console.metrics.address import (
    DEFAULT_ADDRESS,
    DEFAULT_PORT,
    HOSTNAME_MODES,
    MetricsAddress,
    checked_address,
    ensure_bindable,
)
from console.settings import Settings

F = TypeVar("F", bound=Callable[..., object])


def metrics_options(command: F) -> F:
    """Add ``--metrics [HOST:]PORT``, ``--metrics-public`` and ``--metrics-hostname``."""
    command = click.option(
        "--metrics-hostname",
        type=click.Choice(HOSTNAME_MODES),
        default=None,
        help="hostname label: the node name's host part (default), the node name, or 'generic' "
        "on task series (CONSOLE_METRICS_HOSTNAME).",
    )(command)
    command = click.option(
        "--metrics-public",
        is_flag=True,
        help="Allow --metrics to bind an address other than loopback.",
    )(command)
    command = click.option(
        "--metrics",
        metavar="[HOST:]PORT",
        is_flag=False,
        flag_value=DEFAULT_ADDRESS,
        default=None,
        help=f"Serve Prometheus /metrics and /healthz here (alone: 127.0.0.1:{DEFAULT_PORT}; "
        "CONSOLE_METRICS).",
    )(command)
    return command


def with_metrics_options(
    settings: Settings, address: str | None, public: bool, hostname: str | None
) -> Settings:
    """Settings with the command-line metrics options over the conf file's."""
    return replace(
        settings,
        metrics=address if address is not None else settings.metrics,
        metrics_public=public or settings.metrics_public,
        metrics_hostname=hostname or settings.metrics_hostname,
    )


def metrics_address(settings: Settings) -> MetricsAddress | None:
    """The checked listen address (None: metrics off); raises one line when it is refused or
    cannot be bound right now (a port in use), so a command fails before it starts anything."""
    if settings.metrics is None:
        return None
    address = checked_address(settings.metrics, public=settings.metrics_public)
    ensure_bindable(address)
    return address
