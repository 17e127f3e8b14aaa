"""The actions a client may ask of the server, by name: checked arguments -> one engine call.

A request's arguments are checked here, before anything is queued: a bad one is refused at once
with one line, and never becomes a job that fails later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.actions import ActionResult

if TYPE_CHECKING:
    from console.runtime import ConsoleRuntime

Call = Callable[[], ActionResult]


class BadAction(ValueError):
    """An unknown action, or arguments it cannot take (one line for the operator)."""


@dataclass(frozen=True)
class Prepared:
    """A checked request: the job's name and what it runs."""

    label: str
    call: Call


def _text(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise BadAction(f"{key!r} must be a non-empty string")
    return value


def _optional_text(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    return _text(args, key)


def _int(args: Mapping[str, Any], key: str) -> int:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadAction(f"{key!r} must be a whole number")
    return value


def _flag(args: Mapping[str, Any], key: str, default: bool) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise BadAction(f"{key!r} must be true or false")
    return value


def prepare(rt: ConsoleRuntime, name: str, args: Mapping[str, Any]) -> Prepared:
    """The job for action ``name`` with ``args``; BadAction when it cannot be one."""
    if name in ("restart", "start", "stop"):
        target = _text(args, "target")
        method = {"restart": rt.restart, "start": rt.start_program, "stop": rt.stop}[name]
        return Prepared(f"{name} {target}", lambda: _each(rt, target, method))
    if name == "toggle":
        program = _text(args, "name")
        return Prepared(f"toggle {program}", lambda: rt.toggle(program))
    if name == "toggle_cron":
        return Prepared("toggle cron", rt.toggle_cron)
    if name in ("scale", "scale_to", "rolling_restart"):
        group = _optional_text(args, "group")
        known = [g.name for g in rt.settings.worker_groups]
        if group is not None and group not in known:
            raise BadAction(f"no worker group named {group!r} (known: {', '.join(known)})")
        shown = group or known[0]
        if name == "rolling_restart":
            return Prepared(f"rolling restart {shown}", lambda: rt.rolling_restart(group))
        if name == "scale":
            delta = _int(args, "delta")
            return Prepared(f"scale {shown} {delta:+d}", lambda: rt.scale(delta, group))
        count = _int(args, "count")
        if count < 0:
            raise BadAction("'count' must be 0 or more")
        return Prepared(f"scale {shown} to {count}", lambda: _scale_to(rt, group, count))
    if name == "revoke":
        uuid, terminate = _text(args, "uuid"), _flag(args, "terminate", False)
        return Prepared(f"revoke {uuid}", lambda: rt.revoke(uuid, terminate))
    if name == "purge":
        queue = _text(args, "queue")
        return Prepared(f"purge {queue}", lambda: rt.purge(queue))
    if name in ("pool", "pool_restart", "consume", "shutdown_worker"):
        host = _text(args, "hostname")
        if name == "pool":
            delta = _int(args, "delta")
            return Prepared(f"pool {host} {delta:+d}", lambda: rt.pool(host, delta))
        if name == "pool_restart":
            return Prepared(f"pool restart {host}", lambda: rt.pool_restart(host))
        if name == "shutdown_worker":
            return Prepared(f"warm shutdown {host}", lambda: rt.shutdown_worker(host))
        queue, on = _text(args, "queue"), _flag(args, "on", True)
        return Prepared(f"consume {host} {queue} {on}", lambda: rt.consume(host, queue, on))
    raise BadAction(f"unknown action {name!r}")


def _each(rt: ConsoleRuntime, target: str, call: Callable[[str], ActionResult]) -> ActionResult:
    names = [p.name for p in rt.supervisor.snapshot()]
    members = [target] if target in names else rt.supervisor.group_members(target)
    if not members:
        return ActionResult.refused(f"no program or group named {target!r}")
    results = [call(name) for name in members]
    failed = [r for r in results if not r.ok]
    if failed:
        return failed[0]
    return ActionResult.done("; ".join(r.message for r in results))


def _scale_to(rt: ConsoleRuntime, group: str | None, count: int) -> ActionResult:
    name = rt.group(group).name
    size = rt.group_size(name)
    if count == size:
        return ActionResult.done(f"{name}: already at {size} processes")
    return rt.scale(count - size, name)
