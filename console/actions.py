"""The outcome of an operator action, shared by the engine, the server, its clients and the UI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """How an action ended."""

    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True)
class ActionResult:
    """What an action did: its outcome and one line for the operator."""

    outcome: Outcome
    message: str

    @classmethod
    def done(cls, message: str) -> ActionResult:
        """The action was carried out (or started, for long ones)."""
        return cls(Outcome.DONE, message)

    @classmethod
    def refused(cls, message: str) -> ActionResult:
        """The action was not attempted: it does not apply, or a limit forbids it."""
        return cls(Outcome.REFUSED, message)

    @classmethod
    def failed(cls, message: str) -> ActionResult:
        """The action was attempted and did not succeed."""
        return cls(Outcome.FAILED, message)

    @property
    def ok(self) -> bool:
        """True when the action was carried out."""
        return self.outcome is Outcome.DONE

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object."""
        return {"outcome": str(self.outcome), "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActionResult:
        """The result from :meth:`to_json`'s shape."""
        return cls(Outcome(data["outcome"]), str(data["message"]))
