"""Start the TUI for real: attach to this configuration's server (starting it first if need be)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from threading import Event
from typing import Any

import click

from console.server.client import RemoteSource, ServerRefused
from console.server.lifecycle import connect_or_start
from console.settings import Settings

UI_EXIT_GRACE = 5.0
"""Seconds the UI gets to exit after a termination signal before the process ends anyway."""


def run_console(
    settings: Settings,
    *,
    app_path: str | None = None,
    broker_flag: str | None = None,
    read_only: bool = False,
) -> None:
    """Attach a TUI to the server; ``q`` stops everything, ``d`` or a lost terminal detaches."""
    if settings.keymap:  # a bad keymap fails here, before any server, child or broker starts
        from console.ui.keymap import check_keymap

        check_keymap(dict(settings.keymap))
    client, _started = connect_or_start(settings, app_path, broker_flag)
    try:
        client.hello(read_only=read_only, client="tui")
        source = RemoteSource(client, settings, read_only=read_only)
    except (ServerRefused, TimeoutError) as exc:
        client.close()
        raise click.ClickException(str(exc)) from None
    # Textual is imported only now: its import time overlaps the server's start-up.
    from console.ui.app import ConsoleApp, terminal_has_few_colours

    console = ConsoleApp(source, ansi=terminal_has_few_colours())
    done = Event()
    install_detach_on_signals(console, done)
    try:
        console.run()
    finally:
        done.set()
        client.close()
    if console.detached:
        click.echo(detach_message(source.server_pid))
    if console.return_code:
        sys.exit(console.return_code)


def detach_message(server_pid: int) -> str:
    """What the terminal says after ``d``: who keeps the programs, and how to come back."""
    return (
        f"detached: server pid {server_pid} keeps every program running.\n"
        "  re-attach:  sentry-console    (same configuration)\n"
        "  script it:  sentry-console ctl status | tail -f NAME | shutdown"
    )


def install_detach_on_signals(console: Any, main_done: Event) -> None:
    """SIGTERM, SIGHUP (a dropped SSH session, a killed tmux) and SIGINT only detach this screen.

    The programs belong to the server; this process just leaves. With the terminal gone the UI
    can be stuck writing to it, so if it has not ended a few seconds later the process ends anyway.
    """
    fired = threading.Event()

    def finish(signum: int) -> None:
        loop = console.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(console.leave)
        if not main_done.wait(UI_EXIT_GRACE):
            os._exit(128 + signum)

    def on_signal(signum: int, _frame: object) -> None:
        if not fired.is_set():
            fired.set()
            threading.Thread(target=finish, args=(signum,), name="detach", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
