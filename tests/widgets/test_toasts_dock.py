"""Issue 11 item 21: error toasts are not cut off — the collapsed toast shows a whole headline,
the expanded toast and the dock's status line the whole sentence."""

from __future__ import annotations

import pytest

from napari_sim_ml._qt._notify import HEADLINE_CHARS, toast_text

LONG = ("no illumination pattern detected for angle 0 (pattern quality 4.1, needs at least 6.5); check the frame "
        "order, the numbers of angles and phases, the optics and the camera offset")


def test_toast_text():
    assert toast_text("exported a.tif to /tmp") == "exported a.tif to /tmp"
    head, full = toast_text(LONG).split("\n")
    assert full == LONG and head == "no illumination pattern detected for…"
    assert len(head) <= HEADLINE_CHARS + 1 and LONG.startswith(head[:-1])
    head, _ = toast_text("parameters not loaded: calib.json: angle 0: modulation 50.0 is outside 0-1.2").split("\n")
    assert head == "parameters not loaded…"
    head, _ = toast_text("x" * 100).split("\n")  # no space: cut hard
    assert head == "x" * HEADLINE_CHARS + "…"


@pytest.mark.gui
def test_dock_error_toast_fits(make_napari_viewer, qtbot, tmp_path):
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtGui import QFontMetrics
    from qtpy.QtWidgets import QLabel

    from napari_sim_ml._qt import SimWidget

    viewer = make_napari_viewer(show=True)  # toasts only appear on a visible window
    viewer.open_sample("napari-sim-ml", "sim-2beam")
    w = SimWidget(viewer)
    viewer.window.add_dock_widget(w)
    bad = tmp_path / "calib.json"
    bad.write_text('{"angles": [{"k_cycles_per_um": [3.0, 1.0], "phases_rad": [0, 2, 4], "modulation": [50]}]}')
    assert not w.load_parameters(bad)
    message = "parameters not loaded: calib.json: angle 0: modulation 50 is outside 0-1.2"
    assert w.status.text() == message  # the whole sentence in the dock
    window = viewer.window._qt_window

    def toasts():
        return [t for t in window.findChildren(NapariQtNotification) if t.message.text().endswith(message)]

    qtbot.waitUntil(lambda: bool(toasts()), timeout=5000)
    toast = toasts()[-1]
    head = toast.message.text().split("\n")[0]
    assert head == "parameters not loaded…"
    shown = QLabel.text(toast.message).split("\n")[0]  # what the collapsed toast draws on its line
    assert shown == head, shown  # not elided by napari
    assert QFontMetrics(toast.message.font()).horizontalAdvance(head) <= toast.message.width()
