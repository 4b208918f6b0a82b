"""Exceptions raised by the engine.

Every error that a user can cause (a wrong file, a wrong frame count, a stack
without a pattern) is a :class:`SimInputError` with a one-sentence message that
the CLI prints as is and the widgets show as a notification.
"""

from __future__ import annotations


class SimInputError(ValueError):
    """Input that cannot be processed; the message is meant for the user."""


class NoPatternError(SimInputError):
    """No illumination pattern could be detected for at least one angle."""

    def __init__(self, angle_index: int, quality: float, threshold: float):
        self.angle_index = angle_index
        self.quality = quality
        self.threshold = threshold
        super().__init__(
            f"no illumination pattern detected for angle {angle_index} "
            f"(pattern quality {quality:.1f}, needs at least {threshold:.1f}); "
            "check the frame order, the angle/phase counts and the optics, "
            "or use known pattern parameters"
        )
