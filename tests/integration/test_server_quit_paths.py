"""Palette Quit and ctrl+c on a TUI attached to a real server: quit stops it, ctrl+c detaches."""

from __future__ import annotations

from pathlib import Path

from console.server.client import RemoteSource
from console.ui.app import ConsoleApp
from console.ui.tables import ProcessTable
from tests.server_support import client_of, inprocess_server
from tests.ui.test_keys import palette_offers
from tests.waiting import until


async def test_ctrl_c_detaches_and_palette_quit_stops_the_server(
    redis_url: str, state_dir: Path
) -> None:
    with inprocess_server(redis_url, state_dir, processes=1) as server:
        first = ConsoleApp(RemoteSource(client_of(server), server.settings, read_only=False))
        second = ConsoleApp(RemoteSource(client_of(server), server.settings, read_only=False))
        async with first.run_test(size=(150, 30)) as one, second.run_test(size=(150, 30)) as two:
            for app, pilot in ((first, one), (second, two)):
                table = app.query_one(ProcessTable)

                def listed(t: ProcessTable = table) -> bool:
                    return t.row_keys() == ["worker-1"]

                await until(pilot, listed, "worker-1", 30)
            await one.press("ctrl+c")
            await until(one, lambda: first.detached and not first.is_running, "detached")
            assert not server.stopping.is_set(), "ctrl+c must leave the programs running"
            await two.press("ctrl+p")
            await two.pause()
            await two.press(*"Quit")
            await until(two, palette_offers(second, "quit"), "the palette offering Quit")
            await two.press("enter")
            await until(two, lambda: server.stopped.is_set(), "palette Quit stops it", 30)
            await until(two, lambda: not second.is_running, "the app ends")
        assert not second.detached


def test_output_with_stamps_through_the_server(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir, processes=1) as server:
        server.runtime.supervisor._buffers["worker-1"].feed_lines(["hello"])
        source = RemoteSource(client_of(server), server.settings, read_only=False)
        try:
            assert source.output("worker-1", 5) == ["hello"]
            (stamped,) = source.output("worker-1", 5, stamps=True)
            clock, _, text = stamped.partition(" ")
            assert text == "hello" and len(clock) == 8 and clock.count(":") == 2
        finally:
            source.client.close()
