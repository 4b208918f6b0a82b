"""Notifications that are never cut off (main thread).

napari 0.9's toast shows one elided line of about 300 px (≈ 44 characters) for 4 s; the rest
of a message is hidden until its chevron is clicked. So a long message goes out as a headline
that fits that line, a newline, and the full sentence (what the expanded toast shows), and the
full sentence is also put into the dock's status line, which wraps and keeps it.
"""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_error, show_info, show_warning

HEADLINE_CHARS = 38  # fits the collapsed toast's line (300 px of napari's default font) with the ellipsis


def toast_text(message: str, limit: int = HEADLINE_CHARS) -> str:
    """Return ``message`` when it fits the collapsed toast, else 'headline…' + newline + ``message``.

    The headline is the message's first clause (up to ':', ';', ' (' or ','), cut at a word
    boundary within ``limit`` characters.
    """
    message = " ".join(message.split())
    if len(message) <= limit:
        return message
    head = message
    for mark in (":", ";", " (", ","):
        cut = head.find(mark)
        if 0 < cut:
            head = head[:cut]
    if len(head) > limit:
        head = head[:limit].rsplit(" ", 1)[0] if " " in head[:limit] else head[:limit]
    return f"{head}…\n{message}"


def notify(level: str, message: str, status: Any = None) -> None:
    """Show ``message`` as a napari notification of ``level`` ('error', 'warning', 'info').

    The full sentence also goes into ``status`` (a QLabel, e.g. the dock's status line) when given.
    """
    if status is not None:
        try:
            status.setText(message)
        except RuntimeError:  # the dock was closed
            pass
    show = {"error": show_error, "warning": show_warning}.get(level, show_info)
    show(toast_text(message))
