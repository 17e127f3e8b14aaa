"""Serialise a method on a lock the instance holds, without touching the method's body."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def holding(lock_attribute: str) -> Callable[[F], F]:
    """Run the decorated method while holding ``getattr(self, lock_attribute)``."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with getattr(self, lock_attribute):
                return method(self, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
