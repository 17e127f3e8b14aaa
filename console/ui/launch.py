"""Start the console for real: lock the state dir, bring up the broker, run the app, clean up."""

from __future__ import annotations

from console.appref import load_app
from console.broker.embedded import ConsoleLock, EmbeddedBroker
from console.runtime import ConsoleRuntime
from console.settings import Settings


def run_console(settings: Settings) -> None:
    """Run the TUI until the operator quits; children and the embedded broker stop after it."""
    from console.ui.app import ConsoleApp

    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = ConsoleLock(settings.state_dir)
    lock.acquire()
    embedded: EmbeddedBroker | None = None
    runtime: ConsoleRuntime | None = None
    try:
        if settings.broker is None:
            embedded = EmbeddedBroker(settings.state_dir)
            embedded.start()
            settings = settings.with_broker(embedded.url, "embedded")
        assert settings.broker is not None
        app = load_app(settings.app, settings.broker.raw)
        runtime = ConsoleRuntime(settings, app)
        runtime.start()
        ConsoleApp(runtime).run()
    finally:
        if runtime is not None:
            runtime.shutdown()
        if embedded is not None:
            lock.release()
            embedded.stop()
        lock.release()
