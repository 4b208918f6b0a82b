"""Running step generators (fits and training loops that yield progress) to their end."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

R = TypeVar("R")


def run_to_end(steps: Generator[Any, Any, R]) -> R:
    """Exhaust ``steps`` (its yielded progress is dropped) and return the generator's return value."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value
