"""The ways out of the console: detach, quit (stopping every program, warm or now), leave.

``q`` stops every program and then exits, asking first when tasks are running; during a warm
stop, ``q`` again offers the hard stop. ``d`` (and a lost terminal) only detaches.
"""

from __future__ import annotations

import threading

from rich.text import Text
from textual import work

from console.ui.modals import QuitScreen, running_tasks
from console.ui.polling import DashboardPollingApp
from console.ui.statusbar import StatusBar


class QuitFlowApp(DashboardPollingApp):
    """The console app's ways out: detach, quit now or after a warm stop, leave."""

    detached: bool
    _warm_stop: bool

    def action_detach(self) -> None:
        """Leave every program running under the server and close this screen."""
        if self.attachment is None or self._stop.is_set():
            return
        self._stop.set()
        self.detached = True
        self.exit()

    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit: the same graceful way out as ``q``."""
        self.action_quit_console()

    def action_help_quit(self) -> None:
        """ctrl+c detaches (the programs go on, as after SIGINT); with no server it quits."""
        if self.attachment is not None:
            self.action_detach()
        else:
            self.action_quit_console()

    def action_quit_console(self) -> None:
        """Stop every child gracefully, then leave (asking first when tasks are running).

        During a warm stop, ``q`` asks again: "now" gives the programs their hard stop."""
        if isinstance(self.screen, QuitScreen):
            return
        if self._stop.is_set():
            if self._warm_stop:
                self.push_screen(QuitScreen(running_tasks(self.last_data)), self._escalate)
            return
        if self.watch_mode:  # nothing supervised: nothing to stop, nothing to ask
            self.stop_everything()
            return
        running = running_tasks(self.last_data)
        if running == 0:
            self.stop_everything()
            return

        def answered(choice: str | None) -> None:
            if choice is not None:
                self.stop_everything(wait=choice == "wait")

        self.push_screen(QuitScreen(running), answered)

    def leave(self) -> None:
        """Stop polling and exit at once (the terminal is gone: detach, the programs go on)."""
        self._stop_polling()
        self.detached = self.attachment is not None
        self.exit()

    def stop_everything(self, wait: bool = True) -> None:
        """Stop polling, stop every child (warm when ``wait``), then exit."""
        if self._stop.is_set():
            return
        self._stop_polling()
        self._warm_stop = wait and not self.watch_mode
        message = "stopping every process, tasks finishing…" if wait else "stopping now…"
        if self._warm_stop:
            message += " (q: stop now)"
        if self.watch_mode:
            message = "leaving (the workers are not touched)…"
        self.dashboard.query_one(StatusBar).say(Text(message, "bold yellow"))
        self._shutdown_then_exit(wait)

    def _escalate(self, choice: str | None) -> None:
        """Turn the warm stop under way into a hard one ("now" asked during it)."""
        if choice != "now" or not self._warm_stop:
            return
        self._warm_stop = False
        self.dashboard.query_one(StatusBar).say(Text("stopping now…", "bold red"))
        threading.Thread(target=self.source.shutdown_now, name="stop-now", daemon=True).start()

    @work(thread=True, group="shutdown", exit_on_error=False)
    def _shutdown_then_exit(self, wait: bool) -> None:
        try:
            if wait:
                self.source.shutdown()
            else:
                self.source.shutdown_now()
        finally:
            self.call_from_thread(self.exit)
