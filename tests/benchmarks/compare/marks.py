"""The 16-byte file the console under test shares with the runner: event count, first frame."""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

MARKS_SIZE = 16
MARKS_FORMAT = "<qd"  # events received, first complete frame (wall time, 0 until then)


def read_marks(path: Path) -> tuple[int, float]:
    """The runner's side: (events received, wall time of the first complete frame or 0)."""
    try:
        data = path.read_bytes()[:MARKS_SIZE]
    except FileNotFoundError:
        return 0, 0.0
    if len(data) < MARKS_SIZE:
        return 0, 0.0
    events, frame = struct.unpack(MARKS_FORMAT, data)
    return int(events), float(frame)


class Marks:
    """The console's side of the shared file."""

    def __init__(self, path: Path) -> None:
        path.write_bytes(b"\0" * MARKS_SIZE)
        self._fh = open(path, "r+b")  # noqa: SIM115  (kept open for the process lifetime)
        self._map = mmap.mmap(self._fh.fileno(), MARKS_SIZE)
        self.events = 0
        self.frame = 0.0

    def write(self) -> None:
        """Publish the current values."""
        self._map[:MARKS_SIZE] = struct.pack(MARKS_FORMAT, self.events, self.frame)
