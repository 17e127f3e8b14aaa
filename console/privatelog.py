"""Log files only their owner may read: the standard library's rotating handler, with every
file (the first, and each one after a rotation) created 0600.

The console's own log uses the handler as it is (records); a program's output log uses it for
raw bytes (:class:`console.supervision.output.RotatingLogFile`): the same rotation, the same
file modes, one implementation of both.
"""

from __future__ import annotations

import contextlib
import os
from logging.handlers import RotatingFileHandler
from typing import Any


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating log whose every file, the first and each one after a rotation, is 0600."""

    def _open(self) -> Any:
        stream = open(  # noqa: SIM115 - the handler owns the stream
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=lambda path, flags: os.open(path, flags, 0o600),
        )
        with contextlib.suppress(OSError):
            os.chmod(self.baseFilename, 0o600)  # made before, with the umask
        return stream
