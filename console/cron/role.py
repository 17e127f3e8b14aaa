"""The role file a cron process keeps in its state directory, read by the console's supervisor.

Kept free of Celery so the runtime can read it cheaply on every refresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from console.supervision import ProcessSnapshot

ROLE_DIR = "cron-roles"
LEADER = "leader"
STANDBY = "standby"
NO_BROKER = "no broker"


def role_path(state_dir: Path, pid: int) -> Path:
    """Where the cron process ``pid`` writes its role."""
    return state_dir / ROLE_DIR / f"{pid}.json"


def write_role(state_dir: Path, pid: int, role: str, detail: str = "") -> None:
    """Record ``role`` for ``pid`` atomically (write, then rename)."""
    path = role_path(state_dir, pid)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    data: dict[str, Any] = {"pid": pid, "role": role, "detail": detail, "since": time.time()}
    known = read_role(state_dir, pid)  # a role change keeps the last slot sent
    if known is not None and known.get("last_slot") is not None:
        data["last_slot"] = known["last_slot"]
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def note_sent(state_dir: Path, pid: int, slot: float) -> None:
    """Record in ``pid``'s role file that it sent the slot ``slot`` (a schedule's due time)."""
    record = read_role(state_dir, pid)
    if record is None:
        return  # no role yet: nothing was sent as leader
    record["last_slot"] = max(float(slot), float(record.get("last_slot") or 0.0))
    record["last_sent_at"] = time.time()
    path = role_path(state_dir, pid)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def read_role(state_dir: Path, pid: int) -> dict[str, Any] | None:
    """The role record of ``pid``, or None when it wrote none."""
    try:
        return dict(json.loads(role_path(state_dir, pid).read_text()))
    except (OSError, ValueError):
        return None


def remove_role(state_dir: Path, pid: int) -> None:
    """Forget the role of ``pid`` (at a clean exit)."""
    with contextlib.suppress(OSError):
        role_path(state_dir, pid).unlink()


def prune_roles(state_dir: Path) -> None:
    """Remove the role files of processes that no longer exist (left by SIGKILL)."""
    folder = state_dir / ROLE_DIR
    if not folder.is_dir():
        return
    for path in folder.glob("*.json"):
        try:
            os.kill(int(path.stem), 0)
        except ValueError:
            continue
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                path.unlink()
        except PermissionError:
            continue


def with_cron_role(snapshot: ProcessSnapshot, state_dir: Path, group: str) -> ProcessSnapshot:
    """The snapshot with the role its cron process reported, for programs of ``group``."""
    if snapshot.group != group or snapshot.pid is None:
        return snapshot
    record = read_role(state_dir, snapshot.pid)
    if record is None:
        return snapshot
    slot = record.get("last_slot")
    last_slot = float(slot) if isinstance(slot, int | float) else None
    return replace(snapshot, role=str(record.get("role")), last_slot=last_slot)
