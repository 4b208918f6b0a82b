"""From the dock's inputs and the selected layer to a worker Job (main thread)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from napari.layers import Image

from ..engine.errors import SimInputError
from ..engine.io import FrameLayout, arrange_frames, guess_layout
from ..engine.parameters import Optics
from ._layers import find_layer, plugin_meta
from ._workers import Job


def prefill(c: Any, layer: Any) -> None:
    """Optics, camera offset and frame layout from what the layer's metadata (or scale) says."""
    meta = plugin_meta(layer)
    optics = meta.get("optics") or {}
    for key in ("na", "wavelength_nm", "pixel_size_um"):
        if optics.get(key):
            getattr(c, key).value = float(optics[key])
    if not optics.get("pixel_size_um") and str(layer.units[-1]) == "micrometer" and layer.scale[-1] != 1:
        c.pixel_size_um.value = float(layer.scale[-1])
    if meta.get("camera_offset") is not None:
        c.background.value = float(meta["camera_offset"])
    if layer.ndim < 3:
        return
    stored = meta.get("layout")
    try:
        fitted = FrameLayout(**stored) if stored else guess_layout(int(np.prod(layer.data.shape[:-2])))
    except (SimInputError, TypeError):
        return  # no usual layout fits: keep the current values, the user decides
    c.angles.value, c.phases.value = fitted.n_angles, fitted.n_phases
    c.n_z.value, c.order.value = fitted.n_z, fitted.order


def gather(viewer: Any, c: Any) -> Job:
    """The current inputs as a Job; raises SimInputError with a sentence for the user."""
    layer = find_layer(viewer, c.layer.value)
    if layer is None:
        raise SimInputError("select a raw SIM layer first (open a raw stack or File > Open Sample)")
    if not isinstance(layer, Image) or getattr(layer, "rgb", False):
        raise SimInputError(f"layer '{layer.name}' is not a grey-level image layer")
    data = layer.data if hasattr(layer.data, "dask") else np.asarray(layer.data)  # dask: read planes on demand
    if data.ndim < 3:
        raise SimInputError(
            f"layer '{layer.name}' is a single 2-D image; a raw SIM stack needs "
            f"angles × phases frames (e.g. 9 frames for 3 angles × 3 phases)")
    frames = data.reshape(-1, *data.shape[-2:])
    layout = FrameLayout(c.angles.value, c.phases.value, c.n_z.value, c.order.value)
    arrange_frames(frames, layout)  # raises on a wrong frame count
    optics = Optics(c.na.value, c.wavelength_nm.value, c.pixel_size_um.value)
    job = Job(frames, layout, optics, float(c.background.value), 0, c.otf.value,
              float(c.otf_attenuation.value), str(c.otf_file.value), layer.name)
    return replace(job, plane=current_plane(viewer, layer, job))


def current_plane(viewer: Any, layer: Any, job: Job) -> int:
    """Flat plane index (t·Z + z) holding the frame the viewer shows."""
    if layer.ndim < 3 or job.n_planes == 1:
        return 0
    lead_shape = layer.data.shape[:-2]
    coords = layer.world_to_data(viewer.dims.point)
    lead = [int(np.clip(round(v), 0, n - 1)) for v, n in zip(coords[:-2], lead_shape)]
    frame = int(np.ravel_multi_index(lead, lead_shape))
    index = arrange_frames(np.arange(job.frames.shape[0]).reshape(-1, 1, 1), job.layout)
    return int(np.nonzero(index.reshape(job.n_planes, -1) == frame)[0][0])
