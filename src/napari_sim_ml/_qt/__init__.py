"""Dock widgets (Qt/magicgui only; the engine knows nothing of them)."""

from .sim_widget import SimWidget

__all__ = ["SimWidget"]
