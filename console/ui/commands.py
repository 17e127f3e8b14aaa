"""The command palette's console actions: every key's action, searchable by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    """One palette entry: what it is called, what it does, and the action it runs."""

    title: str
    help: str
    action: str


class ConsoleCommands(Provider):
    """Offers every console action (restart, scale, revoke, purge, logs ...) in the palette."""

    def _commands(self) -> Sequence[PaletteCommand]:
        app = self.app
        if not hasattr(app, "palette_commands"):
            return ()
        commands: Sequence[PaletteCommand] = app.palette_commands()
        return commands

    async def discover(self) -> Hits:
        """All commands, shown before anything is typed."""
        for command in self._commands():
            yield DiscoveryHit(
                command.title, partial(self.app.run_action, command.action), help=command.help
            )

    async def search(self, query: str) -> Hits:
        """Commands whose title matches ``query``, best first."""
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(f"{command.title} {command.help}")
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    partial(self.app.run_action, command.action),
                    help=command.help,
                )
