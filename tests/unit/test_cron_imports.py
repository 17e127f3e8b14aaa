"""No import cycle, lazy or not, among the cron modules (the lease interface, its two
implementations, the scheduler)."""

from __future__ import annotations

import ast
from pathlib import Path

CRON = Path(__file__).resolve().parents[2] / "console" / "cron"


def imports(path: Path) -> set[str]:
    """The ``console.cron`` modules ``path`` imports anywhere (function bodies included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if (CRON / f"{n.rsplit('.', 1)[-1]}.py").exists()
                     and n.startswith("console.cron."))  # fmt: skip
    return {n.rsplit(".", 1)[-1] for n in found}


def test_no_import_cycle_among_the_cron_modules() -> None:
    graph = {p.stem: imports(p) - {p.stem} for p in CRON.glob("*.py")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, set()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(m for m in graph if reaches(m, m, {m}))
    assert cycles == [], f"modules on an import cycle: {cycles}; graph {graph}"
