"""The layers of the console: the core packages stay free of textual, the console never imports
the workers app, a client of the server never imports the engine, and no module imports
another that imports it back (lazily or not)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
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


ENGINE = ("celery", "kombu", "billiard", "redis", "amqp")
#: What ``ctl`` and an attached TUI import, and the plain data the server sends them.
ENGINE_FREE = [
    "console.snapshot",
    "console.statusfile",
    "console.statedir",
    "console.settings",
    "console.actions",
    "console.jobs",
    "console.consolelog",
    "console.queuestats",
    "console.broker.models",
    "console.broker.errors",
    "console.broker.urls",
    "console.broker.capacity",
    "console.broker.embedded",
    "console.cluster",
    "console.cluster.models",
    "console.supervision",
    "console.supervision.model",
    "console.server.protocol",
    "console.server.client",
    "console.server.lifecycle",
    "console.cli",
    "console.cli_server",
    "console.ui.launch",
    "console.ui.app",
    "console.ui.demo",
    "console.privatelog",
]


@pytest.mark.parametrize("module", ENGINE_FREE)
def test_clients_and_plain_data_do_not_import_the_engine(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {ENGINE!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"{module} pulled in {out.stdout.strip()[:300]}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every name an import statement anywhere in the module may load: at the top, inside a
    function (lazy) and under ``if TYPE_CHECKING`` alike."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                keep = len(package) - node.level + (1 if is_package else 0)
                base = ".".join([*package[:keep], *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def console_import_graph() -> dict[str, set[str]]:
    """Which console modules each console module imports (any import statement at all)."""
    paths = {_module_name(p): p for p in (ROOT / "console").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        names = _imported_names(tree, name, path.name == "__init__.py")
        graph[name] = {n for n in names if n in paths and n != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles_in_the_console_lazy_or_not() -> None:
    assert import_cycles(console_import_graph()) == []


def test_the_cycle_check_sees_lazy_and_type_only_imports() -> None:
    lazy = "def f():\n    from console.b import x\n"
    typing_only = "if TYPE_CHECKING:\n    from console.a import y\n"
    graph = {
        "console.a": set(_imported_names(ast.parse(lazy), "console.a", False)) & {"console.b"},
        "console.b": set(_imported_names(ast.parse(typing_only), "console.b", False))
        & {"console.a"},
    }
    assert import_cycles(graph) == [["console.a", "console.b"]]


@pytest.mark.parametrize(
    "pair",
    [
        ("console.server.server", "console.server.handlers"),
        ("console.server.server", "console.server.connection"),
        ("console.cron.redis_lease", "console.cron.lease"),
        ("console.cron.amqp_lease", "console.cron.lease"),
    ],
)
def test_pairs_once_in_a_cycle_import_one_way_only(pair: tuple[str, str]) -> None:
    """The first imports the second; the second never imports the first, not even lazily or
    for type checking."""
    importer, imported = pair
    graph = console_import_graph()
    assert importer not in graph[imported], f"{imported} imports {importer}"
