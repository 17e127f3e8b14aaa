"""console.broker stays free of textual and of the workers package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_broker_imports_no_ui_and_no_workers() -> None:
    code = (
        "import sys\n"
        "import console.broker.urls, console.broker.embedded, console.broker.depth\n"
        "import console.broker.health, console.broker.errors\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'workers'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
