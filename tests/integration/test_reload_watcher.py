"""The code reloader's watcher on real files: what counts as a change, and bursts settling."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.reload import (
    QUIET_MS,
    CodeReloader,
    ReloadError,
    SourceFilter,
    app_source_roots,
    describe_change,
)
from console.settings import Settings
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class Calls:
    """Records every ``on_change`` call, thread-safely."""

    def __init__(self) -> None:
        self.calls: list[list[Path]] = []
        self._lock = threading.Lock()

    def __call__(self, changed: list[Path]) -> None:
        with self._lock:
            self.calls.append(list(changed))

    def snapshot(self) -> list[list[Path]]:
        """The calls so far."""
        with self._lock:
            return list(self.calls)


@pytest.fixture
def tree(tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package ``watchpkg_<unique>`` with a module, on ``sys.path``."""
    package = tmp_path / "src" / f"watchpkg_{unique}"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("X = 1\n")
    (package / "sub" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(package.parent))
    return package


def start_reloader(
    package: Path,
    calls: Calls,
    *,
    reload_paths: tuple[Path, ...] = (),
    reload_patterns: tuple[str, ...] = ("*.py",),
) -> CodeReloader:
    """A started reloader on ``package`` that has registered its watches."""
    config = Settings(
        broker=None,
        broker_source="test",
        app=f"{package.name}.app",
        reload_paths=reload_paths,
        reload_patterns=reload_patterns,
    )
    reloader = CodeReloader(config, calls)
    reloader.start()
    assert reloader.watching.wait(30), "the watcher did not start"
    return reloader


@pytest.fixture
def calls() -> Calls:
    """A fresh recorder."""
    return Calls()


@pytest.fixture
def reloader(tree: Path, calls: Calls) -> Iterator[CodeReloader]:
    """A reloader on ``tree`` with the default patterns, stopped at the end."""
    r = start_reloader(tree, calls)
    yield r
    r.stop()


def test_ignored_files_do_not_reload_and_a_source_file_does(
    tree: Path, reloader: CodeReloader, calls: Calls
) -> None:
    outside = tree.parent.parent / "outside.py"
    for path in (
        tree / "__pycache__" / "tasks.cpython-311.pyc",
        tree / "__pycache__" / "x.py",
        tree / ".git" / "HEAD",
        tree / ".git" / "hooks.py",
        tree / ".venv" / "lib" / "mod.py",
        tree / "venv" / "mod.py",
        tree / "env-like" / "pyvenv.cfg",
        tree / "env-like" / "lib" / "mod.py",
        tree / "notes.txt",
        tree / "tasks.py.swp",
        tree / ".#tasks.py",
        outside,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    # The watcher reports in order: had an ignored write counted, it would be in this call or
    # in one before it.
    (tree / "sub" / "models.py").write_text("Y = 2\n")
    wait_until("a reload", lambda: bool(calls.snapshot()), 10)
    assert calls.snapshot() == [[tree / "sub" / "models.py"]]


def test_a_burst_of_writes_is_one_reload(tree: Path, reloader: CodeReloader, calls: Calls) -> None:
    for n in range(6):
        (tree / "tasks.py").write_text(f"X = {n}\n")
        (tree / "sub" / "extra.py").write_text(f"Z = {n}\n")
        time.sleep(0.03)
    wait_until("a reload", lambda: bool(calls.snapshot()), 10)
    # One later write: the watcher reports in order, so a second reload of the burst would
    # come before the one of this write.
    (tree / "marker.py").write_text("M = 1\n")
    wait_until("the later write's reload", lambda: [tree / "marker.py"] in calls.snapshot(), 10)
    assert calls.snapshot() == [
        [tree / "sub" / "extra.py", tree / "tasks.py"],
        [tree / "marker.py"],
    ]
    assert describe_change(calls.snapshot()[0]) == "extra.py and 1 more changed"


def test_changes_during_a_reload_make_one_more_reload(tree: Path) -> None:
    entered, release = threading.Event(), threading.Event()
    calls = Calls()

    def slow(changed: list[Path]) -> None:
        calls(changed)
        entered.set()
        release.wait(30)

    r = start_reloader(tree, Calls())
    r._on_change = slow
    try:
        (tree / "tasks.py").write_text("X = 2\n")
        assert entered.wait(10)
        written = {tree / "sub" / f"m{n}.py" for n in range(3)}
        for path in sorted(written):
            path.write_text("")
            time.sleep(QUIET_MS * 2 / 1000)  # separate bursts, all while the first reload runs
        wait_until("the watcher to see every burst", lambda: written <= r._pending, 10)
        release.set()
        wait_until("the second reload", lambda: len(calls.snapshot()) >= 2, 10)
        # A later write, reported after anything still due from the bursts: one reload of it.
        (tree / "marker.py").write_text("M = 1\n")
        wait_until("the later write's reload", lambda: [tree / "marker.py"] in calls.snapshot(), 10)
        assert calls.snapshot()[1:] == [
            [tree / "sub" / f"m{n}.py" for n in range(3)],
            [tree / "marker.py"],
        ]
    finally:
        release.set()
        r.stop()


def test_patterns_and_extra_paths(tree: Path, tmp_path: Path, calls: Calls) -> None:
    extra = tmp_path / "templates"
    extra.mkdir()
    r = start_reloader(tree, calls, reload_paths=(extra,), reload_patterns=("*.py", "*.html"))
    try:
        (extra / "page.html").write_text("<p>")
        wait_until("a reload for the extra path", lambda: bool(calls.snapshot()), 10)
        assert calls.snapshot() == [[(extra / "page.html").resolve()]]
    finally:
        r.stop()


def test_source_filter_decisions(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    single = tmp_path / "solo.py"
    single.write_text("")
    f = SourceFilter([package, single], ("*.py",))
    assert f.matches(package / "a.py")
    assert f.matches(package / "deep" / "b.py")
    assert f.matches(single)
    assert not f.matches(tmp_path / "other.py")
    assert not f.matches(package / "a.txt")
    assert not f.matches(package / "__pycache__" / "a.py")
    assert not f.matches(package / "x.egg-info" / "a.py")


def test_the_app_package_is_found_without_importing_it() -> None:
    code = (
        "import sys\n"
        "from console.reload import app_source_roots\n"
        "print(app_source_roots('workers.app'))\n"
        "print('workers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [f"[PosixPath('{ROOT / 'workers'}')]", "False"]


def test_an_unknown_app_is_one_clear_error() -> None:
    with pytest.raises(ReloadError, match=r"cannot find the source of the app 'nope_nothing\.app'"):
        app_source_roots("nope_nothing.app")
