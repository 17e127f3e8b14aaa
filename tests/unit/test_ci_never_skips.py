"""Under CI=true a test that cannot run fails; only a bare machine skips (with the reason)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import unavailable

TESTS = Path(__file__).resolve().parents[1]


def test_unavailable_skips_on_a_bare_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no RabbitMQ management API"):
        unavailable("no RabbitMQ management API")


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_unavailable_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="required under CI"):
        unavailable("no redis-server on this machine to put on PATH")


def _skips_without_asking_ci(path: Path) -> list[str]:
    """Functions of ``path`` that call ``pytest.skip`` and never look at CI."""
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        calls = [
            c
            for c in ast.walk(node)
            if isinstance(c, ast.Call)
            and isinstance(c.func, ast.Attribute)
            and c.func.attr in ("skip", "importorskip")
            and isinstance(c.func.value, ast.Name)
            and c.func.value.id == "pytest"
        ]
        text = ast.get_source_segment(source, node) or ""
        if calls and "_in_ci()" not in text and '"CI"' not in text:
            found.append(f"{path.relative_to(TESTS.parent)}:{node.lineno} {node.name}")
    return found


def test_every_skip_fails_under_ci_instead() -> None:
    offenders = [f for path in TESTS.rglob("*.py") for f in _skips_without_asking_ci(path)]
    assert offenders == [], "use tests.conftest.unavailable (fails under CI=true)"
    marks = [
        str(p.relative_to(TESTS.parent))
        for p in TESTS.rglob("*.py")
        if p.name != Path(__file__).name and "mark.skipif" in p.read_text()
    ]
    assert marks == [], "a skipif mark skips under CI too: call unavailable() in the test"
