"""Spectra in a canvas of their own, with axes in cycles/µm (main thread).

napari 0.9 has one set of world units per canvas: a spectrum layer with units 1/µm next to
images in µm makes napari drop units for every layer ("Inconsistent units across layers"),
and a spectrum given the images' µm scale reads as µm. So the spectra (raw, widefield, SIM),
the found and runner-up peaks and the OTF supports live in a second viewer model, shown by an
embedded ``napari.qt.QtViewer`` docked as "SIM spectra" next to the dock: zero frequency at
the origin, one Fourier pixel = 1 / (N · dx) cycles/µm.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent, QObject

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
        self._watch: Any = None

    def ensure(self) -> Any:
        """Return the spectra's viewer model, its canvas docked (once) into the main window."""
        if self.qt_viewer is None:
            from napari.qt import QtViewer

            self.qt_viewer = QtViewer(self.model)
            window = getattr(self.main, "window", None)
            if window is not None and hasattr(window, "add_dock_widget"):
                self.dock = window.add_dock_widget(self.qt_viewer, name=TITLE, area="right", tabify=True)
                self._watch = _CloseWatch(self.close)
                self.qt_viewer.window().installEventFilter(self._watch)
        elif self.dock is not None and self.dock.isHidden():  # closed by its own button: back on new spectra
            self.dock.show()
        return self.model

    def close(self) -> None:
        """Close and undock the canvas (its GL resources); the model keeps its layers. Safe twice."""
        qt_viewer, dock, watch = self.qt_viewer, self.dock, self._watch
        self.qt_viewer = self.dock = self._watch = None
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
