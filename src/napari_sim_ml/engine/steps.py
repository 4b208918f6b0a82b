"""Running step generators (fits and training loops that yield progress) to their end."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

R = TypeVar("R")
P = TypeVar("P")


def run_to_end(steps: Generator[P, Any, R], on_step: Callable[[P], object] | None = None) -> R:
    """Exhaust ``steps`` and return the generator's return value.

    Parameters
    ----------
    steps : generator
        Yields progress reports, returns the result.
    on_step : callable, optional
        Called with every yielded report (printing, timing); without it they are dropped.

    The generator is closed on every exit, so an exception in ``on_step`` or a
    KeyboardInterrupt still runs its cleanup (freeing a network, writing a checkpoint).
    """
    try:
        while True:
            try:
                item = next(steps)
            except StopIteration as stop:
                return stop.value
            if on_step is not None:
                on_step(item)
    finally:
        steps.close()
