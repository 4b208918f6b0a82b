"""Which plane the dock's layers show, in the words of napari's sliders (main thread, no state)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _layers as L


def plane_words(n_z: int, n_planes: int, plane: int) -> str:
    """Name a plane as napari's sliders number it: 'z 4 of 0–8', 't 1, z 0 (t 0–2, z 0–8)'."""
    n_z = n_z if n_z > 0 and n_planes % n_z == 0 else 1
    n_t, t, z = n_planes // n_z, plane // n_z, plane % n_z
    if n_t > 1 and n_z > 1:
        return f"t {t}, z {z} (t 0–{n_t - 1}, z 0–{n_z - 1})"
    if n_z > 1:
        return f"z {z} of 0–{n_z - 1}"
    return f"t {t} of 0–{n_t - 1}" if n_t > 1 else "plane 0"


def shown_all_plane(viewer: Any, base: str) -> tuple[int, int, int] | None:
    """Find the plane the all-planes layer of ``base`` shows at the viewer's current point.

    Returns (flat plane index t·Z + z, Z, number of planes), or None without that layer.
    """
    stack = L.find_layer(viewer, f"{base} SIM all planes")
    meta = L.plugin_meta(stack)
    planes_shape = (meta.get("display_axes") or {}).get("planes_shape")
    if stack is None or not planes_shape:
        return None
    coords = stack.world_to_data(viewer.dims.point)[:len(planes_shape)]
    index = [int(np.clip(round(v), 0, n - 1)) for v, n in zip(coords, planes_shape, strict=False)]
    n_z = int((meta.get("layout") or {}).get("n_z", 1))
    return int(np.ravel_multi_index(index, planes_shape)), n_z, int(np.prod(planes_shape))


def all_planes_status(base: str, shown: tuple[int, int, int]) -> str:
    """Word the status line naming the plane the all-planes layer shows, numbered as its slider(s)."""
    plane, n_z, n = shown
    n_z = n_z if n % max(n_z, 1) == 0 else 1
    axes = " and ".join(f"'{label}'" for label, _ in L.plane_axes(n // n_z, n_z))
    return (f"reconstructed all {n} planes into '{base} SIM all planes' (browse them with its "
            f"{axes} slider); shown: {plane_words(n_z, n, plane)}")


class AllPlanesView:
    """The all-planes result's layer (with its own plane sliders) and the status line naming its shown plane."""

    def __init__(self, viewer: Any, status: Any) -> None:
        self.viewer, self.status = viewer, status
        self._said: Any = None  # what the status last said the all-planes layer shows

    def place(self, base: str, out: Any, raw_layer: Any, n_z: int, meta: dict[str, Any],
              z_step_um: float | None) -> None:
        """Add (or update in place) '<base> SIM all planes' from an AllOutput; the status names its plane."""
        data, geometry = L.plane_stack(out.images, raw_layer, L.fine_geometry(raw_layer), n_z, z_step_um)
        L.upsert_image(self.viewer, f"{base} SIM all planes", data, geometry,
                       {**meta, "plane": "all", "display_axes": L.display_axes_meta(data, raw_layer)},
                       colormap="gray")
        self._said = None
        self.say(base, force=True)

    def say(self, base: str, force: bool = False) -> None:
        """Name in the status the plane the all-planes layer shows (when it changed, or ``force``)."""
        shown = shown_all_plane(self.viewer, base)
        if shown is None or (shown == self._said and not force):
            return
        self._said = shown
        self.status.setText(all_planes_status(base, shown))
