"""Start the console for real: lock the state dir, bring up the broker, run the app, clean up."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from threading import Event
from typing import Any

from console.appref import load_app
from console.broker.embedded import ConsoleLock, EmbeddedBroker, EmbeddedBrokerError
from console.runtime import ConsoleRuntime
from console.settings import Settings

UI_EXIT_GRACE = 5.0
"""Seconds the UI gets to exit after a termination signal before the process ends anyway."""


def start_own_broker(settings: Settings, wait: float = 15.0) -> EmbeddedBroker:
    """Start the embedded broker for this console.

    A short-lived command (``send-events``, ``queues list``) may have one running for its own
    use; it goes away when that command ends, so wait for it rather than borrow it.
    """
    embedded = EmbeddedBroker(settings.state_dir)
    deadline = time.monotonic() + wait
    while True:
        embedded.start()
        if embedded.owned:
            return embedded
        if time.monotonic() > deadline:
            raise EmbeddedBrokerError("the embedded broker is held by another command; try again")
        time.sleep(0.2)


def run_console(settings: Settings) -> None:
    """Run the TUI until the operator quits; children and the embedded broker stop after it."""
    if settings.keymap:  # a bad keymap fails here, before any child or broker starts
        from console.ui.keymap import check_keymap

        check_keymap(dict(settings.keymap))
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = ConsoleLock(settings.state_dir)
    lock.acquire()
    embedded: EmbeddedBroker | None = None
    runtime: ConsoleRuntime | None = None
    main_done = Event()
    try:
        if settings.broker is None:
            embedded = start_own_broker(settings)
            settings = settings.with_broker(embedded.url, "embedded")
        assert settings.broker is not None
        app = load_app(settings.app, settings.broker.raw)
        runtime = ConsoleRuntime(settings, app)
        runtime.start()
        # Textual is imported only now: its import time overlaps the children's start-up and
        # the cluster monitor's first ping round instead of coming before them.
        from console.ui.app import ConsoleApp, terminal_has_few_colours

        console = ConsoleApp(runtime, ansi=terminal_has_few_colours())

        def last_resort() -> None:
            lock.release()
            if embedded is not None:
                embedded.stop()

        install_termination(console, runtime.shutdown, last_resort, main_done)
        console.run()
    finally:
        main_done.set()
        if runtime is not None:
            runtime.shutdown()
        if embedded is not None:
            lock.release()
            embedded.stop()
        lock.release()


def install_termination(
    console: Any,
    stop_children: Callable[[], None],
    last_resort: Callable[[], None],
    main_done: Event,
) -> None:
    """SIGTERM and SIGHUP (a dropped SSH session) stop every child warm, then end the console.

    The UI is asked to exit and the children are stopped on a thread of their own: with the
    terminal gone the UI can be stuck writing to it, and the children must not wait for it.
    If the UI has not ended a few seconds after the children, the process ends anyway.
    """
    fired = threading.Event()

    def finish(signum: int) -> None:
        loop = console.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(console.leave)
        stop_children()
        if not main_done.wait(UI_EXIT_GRACE):
            last_resort()
            os._exit(128 + signum)

    def on_signal(signum: int, _frame: object) -> None:
        if not fired.is_set():
            fired.set()
            threading.Thread(target=finish, args=(signum,), name="termination").start()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
