"""What the supervisor server does with each request from a client."""

from __future__ import annotations

import logging
import pwd
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from console.actions import ActionResult
from console.consolelog import ACTING_USER, audit
from console.runtime import process_json
from console.server.protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from console.server.server import Connection, SupervisorServer

log = logging.getLogger("sentry_console.server")


def user_name(uid: int) -> str:
    """The login name of a uid, or the number when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class RequestHandlers:
    """Dispatch of client requests to the server's runtime."""

    def __init__(self, server: SupervisorServer) -> None:
        self.server = server
        self.runtime = server.runtime

    def handle(self, conn: Connection, message: dict[str, Any]) -> bool:
        """Answer one request; False ends the connection."""
        op = message.get("op")
        rid = message.get("id")
        if op == "hello":
            return self._hello(conn, message, rid)
        handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if handler is None:
            conn.send({"id": rid, "type": "error", "message": f"unknown request {op!r}"})
            return True
        if op in ("action", "shutdown", "tail"):  # long or streaming: off the reader thread
            threading.Thread(
                target=self._reply, args=(conn, handler, message, rid), daemon=True
            ).start()
        else:
            self._reply(conn, handler, message, rid)
        return True

    def _reply(self, conn: Connection, handler: Callable[..., Any], message: Any, rid: Any) -> None:
        try:
            body = handler(conn, message)
        except (KeyError, TypeError, ValueError) as exc:
            body = {"type": "error", "message": f"bad request: {exc}"}
        except Exception as exc:
            log.exception("request %s failed", message.get("op"))
            body = {"type": "error", "message": f"{type(exc).__name__}: {exc}"}
        conn.send({"id": rid, **body})
        if message.get("op") == "shutdown" and self.server.stopping.is_set():
            self.server.end()  # only now: the reply is queued ahead of the goodbye

    def _hello(self, conn: Connection, message: dict[str, Any], rid: Any) -> bool:
        version = message.get("version")
        if version != PROTOCOL_VERSION:
            text = (
                f"this server speaks protocol {PROTOCOL_VERSION}, the client {version}: "
                "use the same sentry-console version for both"
            )
            conn.send({"id": rid, "type": "error", "message": text})
            log.warning("refused a client speaking protocol %r", version)
            return False
        conn.read_only = bool(message.get("read_only"))
        conn.send({"id": rid, **self.server.hello()})
        return True

    # reads --------------------------------------------------------------------------------
    def op_subscribe(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """Push snapshots to this client from now on."""
        self.server.subscribe(conn)
        return {"type": "ok"}

    def op_output(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """The tail of a program's output, once (``watch`` keeps a screen's copy current)."""
        name = str(message["name"])
        last, stamps = message.get("last"), message.get("stamps")
        try:
            lines = self.runtime.output(name, int(last) if last else None, bool(stamps))
        except KeyError:
            return {"type": "error", "message": f"no program named {name!r}"}
        return {"type": "output", "lines": lines}

    def op_watch(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """A program's output tail now, then pushed to this client whenever it grows."""
        name = str(message["name"])
        last = message.get("last")
        try:
            return self.server.watch(
                conn, name, int(last) if last else None, bool(message.get("stamps"))
            )
        except KeyError:
            return {"type": "error", "message": f"no program named {name!r}"}

    def op_task(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """One task's detail as the cluster monitor last saw it."""
        return {"type": "task", "task": self.runtime.task(str(message["uuid"]))}

    def op_status(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """The server and its programs, in ``status --json``'s process shape."""
        data = self.server.latest
        processes = self.runtime.supervisor.snapshot()
        return {
            "type": "status",
            "server": self.server.hello(),
            "clients": len(self.server.clients()),
            "processes": [process_json(p) for p in processes],
            "data": data,
        }

    def op_tail(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """The last lines of a program's output, then (with ``follow``) every new one."""
        name = str(message["name"])
        count = int(message.get("lines") or 10)
        try:
            cursor, lines = self.runtime.supervisor.output_since(name)
        except KeyError:
            return {"type": "error", "message": f"no program named {name!r}"}
        if message.get("follow"):
            self.server.follow(conn, name, cursor)
        return {"type": "output", "lines": lines[-count:] if count else []}

    # writes -------------------------------------------------------------------------------
    def op_action(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """Run one operator action (refused for read-only clients)."""
        name = str(message.get("action"))
        args = dict(message.get("args") or {})
        who = user_name(conn.uid)
        call = self._action(name, args)
        if conn.read_only:
            result = ActionResult.refused("read-only: actions are disabled for this client")
        elif call is None:
            result = ActionResult.refused(f"unknown action {name!r}")
        else:
            token = ACTING_USER.set(who)  # the runtime's audit trail names the client's user
            try:
                result = self.server.run_action(call)
            finally:
                ACTING_USER.reset(token)
            return {"type": "result", "result": result.to_json()}
        detail = " ".join(f"{v}" for v in args.values() if v is not None)
        audit(f"{name} {detail}".strip(), f"{result.outcome}: {result.message}")
        return {"type": "result", "result": result.to_json()}

    def op_shutdown(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
        """Stop every program (warm unless ``now``), then the server; replies when done."""
        if conn.read_only:
            result = ActionResult.refused("read-only: actions are disabled for this client")
            return {"type": "result", "result": result.to_json()}
        wait = not message.get("now")
        who = user_name(conn.uid)
        token = ACTING_USER.set(who)
        try:
            self.server.shutdown(wait=wait, reason=f"shutdown by {who}", end=False)
        finally:
            ACTING_USER.reset(token)
        return {"type": "result", "result": ActionResult.done("every program stopped").to_json()}

    def _action(self, name: str, args: dict[str, Any]) -> Callable[[], ActionResult] | None:
        rt = self.runtime
        table: dict[str, Callable[[], ActionResult]] = {
            "restart": lambda: self._each(args["target"], rt.restart),
            "start": lambda: self._each(args["target"], rt.start_program),
            "stop": lambda: self._each(args["target"], rt.stop),
            "toggle": lambda: rt.toggle(str(args["name"])),
            "toggle_cron": rt.toggle_cron,
            "scale": lambda: self._scale(args.get("group"), delta=args.get("delta")),
            "scale_to": lambda: self._scale(args.get("group"), count=args.get("count")),
            "rolling_restart": lambda: self._group_call(args.get("group"), rt.rolling_restart),
            "revoke": lambda: rt.revoke(str(args["uuid"]), bool(args.get("terminate"))),
            "purge": lambda: rt.purge(str(args["queue"])),
            "pool": lambda: rt.pool(str(args["hostname"]), int(args["delta"])),
            "pool_restart": lambda: rt.pool_restart(str(args["hostname"])),
            "consume": lambda: rt.consume(
                str(args["hostname"]), str(args["queue"]), bool(args.get("on", True))
            ),
            "shutdown_worker": lambda: rt.shutdown_worker(str(args["hostname"])),
        }
        return table.get(name)

    def _targets(self, target: str) -> list[str]:
        names = [p.name for p in self.runtime.supervisor.snapshot()]
        if target in names:
            return [target]
        return self.runtime.supervisor.group_members(target)

    def _each(self, target: Any, call: Callable[[str], ActionResult]) -> ActionResult:
        names = self._targets(str(target))
        if not names:
            return ActionResult.refused(f"no program or group named {target!r}")
        results = [call(name) for name in names]
        failed = [r for r in results if not r.ok]
        if failed:
            return failed[0]
        return ActionResult.done("; ".join(r.message for r in results))

    def _group_call(self, group: Any, call: Callable[[str | None], ActionResult]) -> ActionResult:
        known = [g.name for g in self.runtime.settings.worker_groups]
        if group is not None and str(group) not in known:
            return ActionResult.refused(f"no worker group named {group!r} (known: {known})")
        return call(None if group is None else str(group))

    def _scale(self, group: Any, delta: Any = None, count: Any = None) -> ActionResult:
        def scale(name: str | None) -> ActionResult:
            if count is None:
                return self.runtime.scale(int(delta), name)
            size = self.runtime.group_size(self.runtime.group(name).name)
            if int(count) == size:
                return ActionResult.done(f"{name}: already at {size} processes")
            return self.runtime.scale(int(count) - size, name)

        return self._group_call(group, scale)
