"""The core packages stay free of textual, and the console never imports the workers app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = [
    "console.settings",
    "console.broker.urls",
    "console.broker.embedded",
    "console.broker.depth",
    "console.broker.health",
    "console.supervision",
    "console.cluster",
    "console.cron.scheduler",
    "console.handover",
    "console.runtime",
    "console.reload",
    "console.cli",
    "console.server.server",
    "console.server.lifecycle",
    "console.server.client",
    "console.server.notify",
    "console.cli_server",
    "console.metrics.exporter",
    "console.metrics.options",
]


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_textual_or_workers(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')"
        " or m == 'workers' or m.startswith('workers.')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"{module} pulled in {out.stdout.strip()}"


def test_only_ui_sources_mention_textual() -> None:
    offenders = []
    for path in (ROOT / "console").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "console").parts:
            continue
        text = path.read_text()
        if "import textual" in text or "from textual" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
