"""Every operator action as a job: queued, run one at a time, remembered with its result.

Whoever asks (a key in a TUI, ``ctl``, the code reloader), an action goes through one
:class:`JobQueue`. It gets an id at once, runs on the queue's single thread, and ends ``done``,
``refused`` or ``failed`` with one line for the operator; any client can read it back by id for
as long as it is among the last :data:`HISTORY` jobs. A request that carries an idempotency key
already seen gets the first request's job, so a retried request never acts twice. A client that
stops waiting cancels nothing: the job runs to its end whoever is still listening.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from console.actions import ActionResult, Outcome
from console.consolelog import audited, operator

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("sentry_console.jobs")

HISTORY = 200
"""Finished jobs kept for ``ctl job ID`` (the oldest go first)."""
MAX_QUEUED = 100
"""Jobs waiting to run at once; beyond that a request is refused (a stuck action, or a flood)."""
MAX_KEY = 128
"""Longest idempotency key accepted."""


class JobState(StrEnum):
    """Where a job is."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """True once the job has its result."""
        return self not in (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class JobView:
    """A job as clients see it (a copy: it never changes under the reader)."""

    id: int
    action: str
    who: str
    state: JobState
    message: str = ""
    progress: str = ""
    queued_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The job in the documented ``ctl job --json`` shape."""
        return {
            "id": self.id,
            "action": self.action,
            "who": self.who,
            "state": str(self.state),
            "message": self.message,
            "progress": self.progress,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "key": self.key,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobView:
        """A job from :meth:`to_json`'s shape."""
        return cls(
            id=int(data["id"]),
            action=str(data["action"]),
            who=str(data.get("who", "")),
            state=JobState(data["state"]),
            message=str(data.get("message") or ""),
            progress=str(data.get("progress") or ""),
            queued_at=float(data.get("queued_at") or 0.0),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            key=data.get("key"),
        )

    @property
    def result(self) -> ActionResult | None:
        """The job's outcome as an action result (None while it has none)."""
        if not self.state.finished:
            return None
        return ActionResult(Outcome(str(self.state)), self.message)


@dataclass
class _Job:
    view: JobView
    call: Callable[[], ActionResult]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    """The asker's context (who acts, for the audit trail), which the job runs in."""
    ended: threading.Event = field(default_factory=threading.Event)


class JobQueue:
    """One queue of actions and the thread that runs them, in order, one at a time."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.on_change = on_change
        self._ids = itertools.count(1)
        self._jobs: OrderedDict[int, _Job] = OrderedDict()
        self._keys: dict[str, int] = {}
        self._waiting: deque[_Job] = deque()
        self._lock = threading.Condition()
        self._closed: str | None = None
        self._running: _Job | None = None
        self._runner = threading.Thread(target=self._run, name="jobs", daemon=True)
        self._runner.start()

    # asking -------------------------------------------------------------------------------
    def submit(
        self,
        action: str,
        call: Callable[[], ActionResult],
        *,
        who: str = "",
        key: str | None = None,
        refusal: str | None = None,
    ) -> JobView:
        """Queue ``call`` as a job named ``action``; the job (new, or the one ``key`` made).

        With ``refusal`` the job is recorded as refused at once, and ``call`` never runs."""
        if key is not None and (not key or len(key) > MAX_KEY):
            raise ValueError(f"an idempotency key has 1 to {MAX_KEY} characters")
        with self._lock:
            if key is not None and key in self._keys:
                known = self._jobs.get(self._keys[key])
                if known is not None:
                    return known.view
            job_id = next(self._ids)
            view = JobView(job_id, action, who, JobState.QUEUED, queued_at=time.time(), key=key)
            job = _Job(view, call)
            refusal = (
                refusal
                or self._closed
                or (
                    f"{MAX_QUEUED} actions are already waiting: try again once they ran"
                    if len(self._waiting) >= MAX_QUEUED
                    else None
                )
            )
            self._jobs[job_id] = job
            if key is not None:
                self._keys[key] = job_id
            self._forget_old()
            if refusal is not None:
                self._finish(job, ActionResult.refused(refusal))
            else:
                self._waiting.append(job)
                self._lock.notify_all()
            view = job.view
        self._changed()
        return view

    def run(self, action: str, call: Callable[[], ActionResult], *, who: str = "") -> ActionResult:
        """Run ``call`` as a job and wait for its result; inline when already inside a job
        (an action made of other actions, like a reload's rolling restart, is one job)."""
        if threading.current_thread() is self._runner:
            return call()
        view = self.submit(action, call, who=who)
        done = self.wait(view.id, None)
        assert done is not None and done.result is not None
        return done.result

    def wait(self, job_id: int, timeout: float | None) -> JobView | None:
        """The job once it has finished, or as it is after ``timeout`` seconds; None: unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return None
        job.ended.wait(timeout)
        return job.view

    def get(self, job_id: int) -> JobView | None:
        """A job by id (None when unknown or long forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.view

    def recent(self, count: int = 20) -> list[JobView]:
        """The last ``count`` jobs, newest first."""
        with self._lock:
            return [job.view for job in reversed(self._jobs.values())][: max(count, 0)]

    def active(self) -> list[JobView]:
        """Jobs queued or running, oldest first."""
        with self._lock:
            return [j.view for j in self._jobs.values() if not j.view.state.finished]

    def progress(self, text: str) -> None:
        """Say how far the running job is (called from inside it; one line)."""
        with self._lock:
            job = self._running
            if job is None or threading.current_thread() is not self._runner:
                return
            job.view = replace(job.view, progress=text[:200])
        self._changed()

    def close(self, reason: str = "the server is stopping") -> None:
        """Refuse what is still queued and anything asked from now on (a running job ends on
        its own: stopping the programs makes a long one give up)."""
        with self._lock:
            self._closed = reason
            waiting = list(self._waiting)
            self._waiting.clear()
            for job in waiting:
                self._finish(job, ActionResult.refused(reason))
            self._lock.notify_all()
        self._changed()

    # running ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    if self._closed is not None:
                        return  # closed: nothing more will run
                    self._lock.wait()
                job = self._waiting.popleft()
                job.view = replace(job.view, state=JobState.RUNNING, started_at=time.time())
                self._running = job
            self._changed()
            try:
                result = job.context.run(job.call)
            except Exception as exc:  # one bad action must not stop every later one
                log.exception("job %d (%s) failed", job.view.id, job.view.action)
                result = ActionResult.failed(f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._running = None
                self._finish(job, result)
            self._changed()

    def _finish(self, job: _Job, result: ActionResult) -> None:
        job.view = replace(
            job.view,
            state=JobState(str(result.outcome)),
            message=result.message,
            ended_at=time.time(),
        )
        job.ended.set()

    def _forget_old(self) -> None:
        """Keep at most :data:`HISTORY` jobs, the oldest finished ones going first; a queued
        or running job is never forgotten, nor does it hold the finished ones behind it."""
        excess = len(self._jobs) - HISTORY
        if excess <= 0:
            return
        old = [job_id for job_id, job in self._jobs.items() if job.view.state.finished]
        for job_id in old[:excess]:
            job = self._jobs.pop(job_id)
            if job.view.key is not None:
                self._keys.pop(job.view.key, None)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def action(template: str) -> Callable[[F], F]:
    """Decorate an engine action: audited (``template`` names it from its arguments, as in
    :func:`console.consolelog.audited`) and run as a job of the instance's ``jobs`` queue, so a
    key in an in-process screen takes the same path as a request from a client."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        logged = audited(template)(func)

        @functools.wraps(func)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            jobs: JobQueue | None = getattr(self, "jobs", None)
            if jobs is None:
                return logged(self, *args, **kwargs)
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            label = template.format(**bound.arguments)
            return jobs.run(label, lambda: logged(self, *args, **kwargs), who=operator())

        return wrapper  # type: ignore[return-value]

    return decorate
