"""Restart the supervised programs when the app's source changes (``--reload``); UI-free.

:class:`CodeReloader` watches the package that ``--app`` names plus ``CONSOLE_RELOAD_PATHS``
through watchfiles (inotify on Linux), lets a burst of writes settle, and hands the changed
files to a callback on a thread of its own; the runtime restarts its programs from there.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from console.settings import Settings, SettingsError
from console.supervision import ProcessState, RollingRestartError, Supervisor

log = logging.getLogger("sentry_console.reload")

#: A burst of writes (an editor's save, a ``git checkout``) ends after this much quiet ...
QUIET_MS = 200
#: ... or after this long, whichever comes first.
MAX_BURST_MS = 2000
#: The watcher yields at least this often, so ``watching`` is set soon after it has started.
WATCH_TICK_MS = 1000
#: Directory names never watched for source: caches, version control, virtualenvs, packaging.
IGNORED_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "site-packages",
        "dist-packages",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
    }
)


class ReloadError(SettingsError):
    """The sources to watch cannot be found (one clear line)."""


def app_source_roots(app_path: str) -> list[Path]:
    """The directories (or the single file) of the top-level package that ``app_path`` names.

    Found with ``importlib.util.find_spec`` on the top-level name, which imports nothing.
    """
    top = app_path.partition(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top) if top else None
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ReloadError(f"--reload: cannot find the source of the app {app_path!r}")
    if spec.submodule_search_locations:
        return [Path(p).resolve() for p in spec.submodule_search_locations]
    if spec.origin and Path(spec.origin).is_file():
        return [Path(spec.origin).resolve()]
    raise ReloadError(f"--reload: the app {app_path!r} has no source files to watch")


@lru_cache(maxsize=1024)
def _is_virtualenv(directory: Path) -> bool:
    return (directory / "pyvenv.cfg").exists()


class SourceFilter:
    """Which changed paths count: inside a watched root, not in an ignored directory, and
    matching one of the patterns."""

    def __init__(self, roots: Iterable[Path], patterns: Sequence[str]) -> None:
        roots = list(roots)
        self.files = frozenset(r for r in roots if not r.is_dir())
        self.dirs = tuple(r for r in roots if r.is_dir())
        self.patterns = tuple(patterns)

    def __call__(self, change: Any, path: str) -> bool:
        """True when a change of ``path`` should restart the programs (watchfiles' signature)."""
        return self.matches(Path(path))

    def matches(self, path: Path) -> bool:
        """True when ``path`` is a watched source file."""
        if path in self.files:
            return True
        root = next((d for d in self.dirs if path.is_relative_to(d)), None)
        if root is None:
            return False
        inner = path.relative_to(root).parts
        if any(part in IGNORED_DIRS or part.endswith(".egg-info") for part in inner[:-1]):
            return False
        name = path.name
        if name.startswith(".#"):  # an editor's lock file, not source
            return False
        if not any(fnmatch.fnmatchcase(name, p) for p in self.patterns):
            return False
        # A virtualenv under any other name (``env/``, ``.py311/``) is known by its pyvenv.cfg.
        dirs = (root.joinpath(*inner[:i]) for i in range(1, len(inner)))
        return not any(_is_virtualenv(d) for d in dirs)


def watch_roots(settings: Settings) -> list[Path]:
    """The app's package and every extra path, resolved, without duplicates."""
    roots = app_source_roots(settings.app)
    for extra in settings.reload_paths:
        if not extra.exists():
            raise ReloadError(f"--reload: {extra} does not exist")
        roots.append(extra.resolve())
    return list(dict.fromkeys(roots))


def watched_dirs(roots: Iterable[Path]) -> list[Path]:
    """Directories to hand the watcher: a file's parent, and no directory inside another."""
    dirs = sorted({r if r.is_dir() else r.parent for r in roots}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for d in dirs:
        if not any(d.is_relative_to(k) for k in kept):
            kept.append(d)
    return kept


def describe_change(changed: Sequence[Path]) -> str:
    """``tasks.py changed`` or ``tasks.py and 2 more changed``."""
    if not changed:
        return "sources changed"
    first = changed[0].name
    if len(changed) == 1:
        return f"{first} changed"
    return f"{first} and {len(changed) - 1} more changed"


class CodeReloader:
    """Watches the app's sources and calls ``on_change(paths)`` once per settled burst.

    Changes that arrive while ``on_change`` runs are gathered into one more call after it.
    """

    def __init__(self, settings: Settings, on_change: Callable[[list[Path]], object]) -> None:
        self.roots = watch_roots(settings)
        self.dirs = watched_dirs(self.roots)
        self.filter = SourceFilter(self.roots, settings.reload_patterns)
        self._on_change = on_change
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pending: set[Path] = set()
        self._threads: list[threading.Thread] = []
        self.watching = threading.Event()
        """Set once the watcher has registered its directories (changes from then on count)."""

    def start(self) -> None:
        """Start the watcher and the thread that calls ``on_change``."""
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._watch, name="reload-watch", daemon=True),
            threading.Thread(target=self._deliver, name="reload", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("reload: watching %s", ", ".join(str(d) for d in self.dirs))

    def stop(self, timeout: float = 2.0) -> None:
        """Stop watching. A reload in progress is not waited for: it ends by itself once the
        supervisor shuts down, which is what normally follows."""
        self._stop.set()
        self._wake.set()
        if self._threads and self._threads[0] is not threading.current_thread():
            self._threads[0].join(timeout)

    def _watch(self) -> None:
        from watchfiles import watch

        try:
            for changes in watch(
                *self.dirs,
                watch_filter=self.filter,
                debounce=MAX_BURST_MS,
                step=QUIET_MS,
                stop_event=self._stop,
                raise_interrupt=False,
                ignore_permission_denied=True,
                rust_timeout=WATCH_TICK_MS,
                yield_on_timeout=True,
            ):
                self.watching.set()
                if changes:
                    with self._lock:
                        self._pending.update(Path(p) for _, p in changes)
                    self._wake.set()
        except Exception as exc:  # the console goes on without reloads
            log.warning("reload: the file watcher stopped: %s: %s", type(exc).__name__, exc)

    def _deliver(self) -> None:
        while True:
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()
            with self._lock:
                changed, self._pending = sorted(self._pending), set()
            if not changed:
                continue
            try:
                self._on_change(changed)
            except Exception:
                log.exception("reload: restarting the programs failed")


def restart_programs(supervisor: Supervisor, roll: Callable[[str], object]) -> list[str]:
    """Restart every program the operator has not stopped, FATAL and BACKOFF ones included.

    A group with more than one such program restarts rolling through ``roll(group)``, after
    the single programs. Returns one line per group whose rolling restart stopped early.
    """
    groups: dict[str, list[str]] = {}
    for snap in supervisor.snapshot():
        if snap.state is not ProcessState.STOPPED:
            groups.setdefault(snap.group or snap.name, []).append(snap.name)
    problems = []
    for members in groups.values():
        if len(members) == 1:
            supervisor.restart(members[0])
    for group, members in groups.items():
        if len(members) > 1:
            try:
                result = roll(group)
            except (RollingRestartError, KeyError) as exc:
                problems.append(f"{group}: {exc}")
                continue
            if getattr(result, "ok", True) is False:  # an ActionResult that failed
                problems.append(str(getattr(result, "message", result)))
    return problems
