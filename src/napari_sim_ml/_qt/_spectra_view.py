"""Spectra in a canvas of their own, with axes in cycles/µm (main thread).

napari 0.9 has one set of world units per canvas: a spectrum layer with units 1/µm next to
images in µm makes napari drop units for every layer ("Inconsistent units across layers"),
and a spectrum given the images' µm scale reads as µm. So the spectra (raw, widefield, SIM),
the found and runner-up peaks and the OTF supports live in a second viewer model, shown by an
embedded ``napari.qt.QtViewer`` docked as "SIM spectra" next to the dock: zero frequency at
the origin, one Fourier pixel = 1 / (N · dx) cycles/µm.
"""

from __future__ import annotations

import math
from typing import Any

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QLabel

TITLE = "SIM spectra"
UNITS = ("1/micrometer", "1/micrometer")


def spectrum_geometry(shape: tuple[int, ...], pixel_size_um: float) -> dict[str, Any]:
    """Return scale / translate / units of a centred spectrum, in cycles/µm.

    For an image of ``shape`` (Y, X) sampled at ``pixel_size_um`` (µm): one Fourier pixel =
    1 / (N · dx) cycles/µm, zero frequency (pixel N // 2) at 0.
    """
    ny, nx = int(shape[-2]), int(shape[-1])
    step = (1.0 / (ny * pixel_size_um), 1.0 / (nx * pixel_size_um))
    return {"scale": step, "translate": (-(ny // 2) * step[0], -(nx // 2) * step[1]), "units": UNITS}


def cursor_text(fy: float, fx: float) -> str:
    """Say where the cursor is on a spectrum: (fy, fx), |f| in cycles/µm and the period."""
    f = math.hypot(fy, fx)
    period = f"period {1e3 / f:.1f} nm" if f > 0 else "zero frequency"
    return f"fy {fy:.3f}, fx {fx:.3f} cycles/µm; |f| {f:.3f} cycles/µm, {period}"


class SpectraView:
    """The spectra's own viewer model, and its canvas docked into the main window on first use.

    The canvas is closed (and undocked) when the main window closes, so that no second
    QtViewer outlives it; the model keeps its layers and a later use docks a new canvas.
    """

    def __init__(self, viewer: Any) -> None:
        from napari.components import ViewerModel

        self.main = viewer
        self.model = ViewerModel(title=TITLE)
        self.qt_viewer: Any = None
        self.dock: Any = None
        self.readout: Any = None
        self._watch: Any = None

    def ensure(self, home: Any = None) -> Any:
        """Return the spectra's viewer model, its canvas docked (once) into the main window.

        The canvas is a tab beside ``home``'s dock (the SIM dock), which stays in front.
        """
        if self.qt_viewer is None:
            from napari.qt import QtViewer
            from qtpy.QtWidgets import QDockWidget, QVBoxLayout, QWidget

            self.qt_viewer = QtViewer(self.model)
            self.model.scale_bar.visible = True  # its unit is 1/µm
            panel = QWidget()
            layout = QVBoxLayout(panel)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(self.qt_viewer, 1)
            self.readout = QLabel("")
            self.readout.setWordWrap(True)
            layout.addWidget(self.readout)
            self.model.cursor.events.position.connect(self._show_cursor)
            window = getattr(self.main, "window", None)
            if window is not None and hasattr(window, "add_dock_widget"):
                self.dock = window.add_dock_widget(panel, name=TITLE, area="right", tabify=True)
                self._watch = _CloseWatch(self.close)
                self.qt_viewer.window().installEventFilter(self._watch)
                parent = home.parentWidget() if home is not None else None
                while parent is not None and not isinstance(parent, QDockWidget):
                    parent = parent.parentWidget()
                if parent is not None:
                    parent.raise_()  # the SIM dock stays in front; "SIM spectra" is the tab beside it
        elif self.dock is not None and self.dock.isHidden():  # closed by its own button: back on new spectra
            self.dock.show()
        return self.model

    def _show_cursor(self, _event: Any = None) -> None:
        try:
            fy, fx = (float(v) for v in self.model.cursor.position[-2:])
            self.readout.setText(cursor_text(fy, fx))
        except (RuntimeError, ValueError):  # closed, or no 2-D position yet
            pass

    def close(self) -> None:
        """Close and undock the canvas (its GL resources); the model keeps its layers. Safe twice."""
        qt_viewer, dock, watch = self.qt_viewer, self.dock, self._watch
        self.qt_viewer = self.dock = self._watch = None
        try:
            self.model.cursor.events.position.disconnect(self._show_cursor)
        except (TypeError, ValueError, RuntimeError):
            pass
        if qt_viewer is None:
            return
        try:
            if watch is not None:
                qt_viewer.window().removeEventFilter(watch)
            if dock is not None:
                self.main.window.remove_dock_widget(dock)
            qt_viewer.close()
            qt_viewer.deleteLater()
        except (RuntimeError, AttributeError, KeyError, LookupError):  # already gone with the main window
            pass


class _CloseWatch(QObject):
    """Calls ``on_close`` when the watched window gets a close event."""

    def __init__(self, on_close: Any) -> None:
        super().__init__()
        self._on_close = on_close

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt override
        """Pass every event on; a close event first closes the spectra's canvas."""
        if event is not None and event.type() == QEvent.Type.Close:
            self._on_close()
        return False
