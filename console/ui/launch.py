"""Start the console for real: lock the state dir, bring up the broker, run the app, clean up."""

from __future__ import annotations

import time

from console.appref import load_app
from console.broker.embedded import ConsoleLock, EmbeddedBroker, EmbeddedBrokerError
from console.runtime import ConsoleRuntime
from console.settings import Settings


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
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = ConsoleLock(settings.state_dir)
    lock.acquire()
    embedded: EmbeddedBroker | None = None
    runtime: ConsoleRuntime | None = None
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

        ConsoleApp(runtime, ansi=terminal_has_few_colours()).run()
    finally:
        if runtime is not None:
            runtime.shutdown()
        if embedded is not None:
            lock.release()
            embedded.stop()
        lock.release()
