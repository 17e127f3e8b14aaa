"""The ``--metrics`` options that ``serve`` and ``watch`` share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from console.metrics.address import DEFAULT_ADDRESS, DEFAULT_PORT, HOSTNAME_MODES

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
