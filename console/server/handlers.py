"""What the supervisor server does with each request from a client."""

from __future__ import annotations

import logging
import pwd
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from console.actions import ActionResult
from console.actiontable import BadAction, prepare
from console.consolelog import ACTING_USER, audit
from console.server import protocol as P
from console.server.connection import Connection
from console.server.protocol import PROTOCOL_VERSION, Request
from console.snapshot import DashboardData, process_json

if TYPE_CHECKING:
    from console.runtime import ConsoleRuntime

log = logging.getLogger("sentry_console.server")


class Served(Protocol):
    """What the handlers need of the server they answer for (the server is one; this module
    does not import it, so the server imports its handlers and nothing imports back)."""

    runtime: ConsoleRuntime
    stopping: threading.Event
    latest: DashboardData | None

    def hello(self) -> dict[str, Any]:
        """What a client learns on connecting."""
        ...

    def clients(self) -> list[Connection]:
        """The attached clients."""
        ...

    def subscribe(self, conn: Connection) -> None:
        """Start pushing snapshots to a client."""
        ...

    def watch(
        self, conn: Connection, name: str, last: int | None, stamps: bool = False
    ) -> dict[str, Any]:
        """Start pushing a program's output tail to a client; its lines now."""
        ...

    def follow(self, conn: Connection, name: str, cursor: tuple[int, int]) -> bool:
        """Push a program's new output lines to a client until it goes away."""
        ...

    def shutdown(self, wait: bool = True, reason: str = "shut down", end: bool = True) -> None:
        """Stop every program, then (with ``end``) the server's loop."""
        ...

    def end(self) -> None:
        """Let the server's loop return."""
        ...


def user_name(uid: int) -> str:
    """The login name of a uid, or the number when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class RequestHandlers:
    """Dispatch of typed client requests to the server's runtime."""

    def __init__(self, server: Served) -> None:
        self.server = server
        self.runtime = server.runtime
        self._ops: dict[type[Request], Callable[[Connection, Any], dict[str, Any]]] = {
            P.Subscribe: self.op_subscribe,
            P.Output: self.op_output,
            P.Watch: self.op_watch,
            P.Task: self.op_task,
            P.Status: self.op_status,
            P.Tail: self.op_tail,
            P.Action: self.op_action,
            P.Job: self.op_job,
            P.Jobs: self.op_jobs,
            P.Shutdown: self.op_shutdown,
        }

    def handle(self, conn: Connection, request: Request) -> bool:
        """Answer one request; False ends the connection (the connection counted it in)."""
        if isinstance(request, P.Hello):
            return self._hello(conn, request)
        handler = self._ops[type(request)]
        if isinstance(request, P.Action | P.Job | P.Shutdown | P.Tail):  # may wait: own thread
            threading.Thread(target=self._reply, args=(conn, handler, request), daemon=True).start()
        else:
            self._reply(conn, handler, request)
        return True

    def _reply(self, conn: Connection, handler: Callable[..., Any], request: Request) -> None:
        try:
            body = handler(conn, request)
        except Exception as exc:
            log.exception("request %s failed", type(request).__name__)
            body = {"type": "error", "message": f"{type(exc).__name__}: {exc}"}
        conn.send({"id": request.id, **body})
        conn.end()  # after the reply is queued: a half-closed client is closed after it
        if isinstance(request, P.Shutdown) and self.server.stopping.is_set():
            self.server.end()  # only now: the reply is queued ahead of the goodbye

    def _hello(self, conn: Connection, request: P.Hello) -> bool:
        if request.version != PROTOCOL_VERSION:
            text = (
                f"this server speaks protocol {PROTOCOL_VERSION}, the client {request.version}: "
                "use the same sentry-console version for both"
            )
            conn.send({"id": request.id, "type": "error", "message": text})
            log.warning("refused a client speaking protocol %r", request.version)
            return False
        conn.read_only = request.read_only
        conn.send({"id": request.id, **self.server.hello()})
        return True

    # reads --------------------------------------------------------------------------------
    def op_subscribe(self, conn: Connection, request: P.Subscribe) -> dict[str, Any]:
        """Push snapshots to this client from now on."""
        self.server.subscribe(conn)
        return {"type": "ok"}

    def op_output(self, conn: Connection, request: P.Output) -> dict[str, Any]:
        """The tail of a program's output, once (``watch`` keeps a screen's copy current)."""
        try:
            lines = self.runtime.output(request.name, request.last or None, request.stamps)
        except KeyError:
            return {"type": "error", "message": f"no program named {request.name!r}"}
        return {"type": "output", "lines": lines}

    def op_watch(self, conn: Connection, request: P.Watch) -> dict[str, Any]:
        """A program's output tail now, then pushed to this client whenever it grows."""
        try:
            return self.server.watch(conn, request.name, request.last or None, request.stamps)
        except KeyError:
            return {"type": "error", "message": f"no program named {request.name!r}"}

    def op_task(self, conn: Connection, request: P.Task) -> dict[str, Any]:
        """One task's detail as the cluster monitor last saw it."""
        return {"type": "task", "task": self.runtime.task(request.uuid)}

    def op_status(self, conn: Connection, request: P.Status) -> dict[str, Any]:
        """The server, its programs and its last jobs, in ``status --json``'s process shape."""
        data = self.server.latest
        processes = self.runtime.supervisor.snapshot()
        return {
            "type": "status",
            "server": self.server.hello(),
            "clients": len(self.server.clients()),
            "processes": [process_json(p) for p in processes],
            "jobs": [j.to_json() for j in self.runtime.jobs.recent(request.jobs)],
            "data": data,
        }

    def op_tail(self, conn: Connection, request: P.Tail) -> dict[str, Any]:
        """The last lines of a program's output, then (with ``follow``) every new one."""
        try:
            cursor, lines = self.runtime.supervisor.output_since(request.name)
        except KeyError:
            return {"type": "error", "message": f"no program named {request.name!r}"}
        if request.follow and not self.server.follow(conn, request.name, cursor):
            return {"type": "error", "message": "this client follows as many outputs as it may"}
        return {"type": "output", "lines": lines[-request.lines :] if request.lines else []}

    def op_job(self, conn: Connection, request: P.Job) -> dict[str, Any]:
        """One job by id, once it finished or after ``wait`` seconds, whichever comes first."""
        view = self.runtime.jobs.wait(request.job, request.wait)
        if view is None:
            return {"type": "error", "message": f"no job {request.job} (or long forgotten)"}
        return {"type": "job", "job": view.to_json()}

    def op_jobs(self, conn: Connection, request: P.Jobs) -> dict[str, Any]:
        """The last jobs, newest first."""
        return {
            "type": "jobs",
            "jobs": [j.to_json() for j in self.runtime.jobs.recent(request.count)],
        }

    # writes -------------------------------------------------------------------------------
    def op_action(self, conn: Connection, request: P.Action) -> dict[str, Any]:
        """Queue one operator action as a job (refused for read-only clients); reply once it
        finished or ``wait`` ran out, with the job as it is then."""
        who = user_name(conn.uid)
        label, call, refusal = request.action, None, None
        if conn.read_only:
            refusal = "read-only: actions are disabled for this client"
        else:
            try:
                prepared = prepare(self.runtime, request.action, request.args)
                label, call = prepared.label, prepared.call
            except BadAction as exc:
                refusal = str(exc)
        token = ACTING_USER.set(who)  # the job's audit trail names the client's user
        try:
            view = self.runtime.jobs.submit(
                label, call or _nothing, who=who, key=request.key, refusal=refusal
            )
        finally:
            ACTING_USER.reset(token)
        if refusal is not None:
            audit(label, f"refused: {refusal}")
        if request.wait and not view.state.finished:
            view = self.runtime.jobs.wait(view.id, request.wait) or view
        return {"type": "job", "job": view.to_json()}

    def op_shutdown(self, conn: Connection, request: P.Shutdown) -> dict[str, Any]:
        """Stop every program (warm unless ``now``), then the server; replies when done. A
        ``now`` during a warm stop escalates it."""
        if conn.read_only:
            result = ActionResult.refused("read-only: actions are disabled for this client")
            return {"type": "result", "result": result.to_json()}
        who = user_name(conn.uid)
        token = ACTING_USER.set(who)
        try:
            self.server.shutdown(wait=not request.now, reason=f"shutdown by {who}", end=False)
        finally:
            ACTING_USER.reset(token)
        return {"type": "result", "result": ActionResult.done("every program stopped").to_json()}


def _nothing() -> ActionResult:  # pragma: no cover - a refused job never runs
    return ActionResult.refused("nothing to do")
