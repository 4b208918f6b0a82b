"""Menu command: open the SIM dock with the selected layer chosen."""

from __future__ import annotations

from napari.viewer import Viewer


def open_for_selected_layer(viewer: Viewer) -> None:
    """Layers > Filter: dock the SIM reconstruction widget with the active layer selected."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-sim-ml", "SIM reconstruction")
    active = viewer.layers.selection.active
    if active is not None and hasattr(widget, "select_layer"):
        try:
            widget.select_layer(active.name)
        except ValueError:  # not an image layer: keep the widget's own choice
            pass
