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
    """Optics, camera offset and frame layout from what the layer's metadata (or scale) says.

    A value the file does not state is reset to its default (never kept from the previous
    layer) and its field is marked as not from the file.
    """
    from ._controls import DATASET_DEFAULTS

    meta = plugin_meta(layer)
    optics = meta.get("optics") or {}
    stated = {k: float(optics[k]) for k in ("na", "wavelength_nm", "pixel_size_um") if optics.get(k)}
    if "pixel_size_um" not in stated and str(layer.units[-1]) == "micrometer" and layer.scale[-1] != 1:
        stated["pixel_size_um"] = float(layer.scale[-1])
    if meta.get("camera_offset") is not None:
        stated["background"] = float(meta["camera_offset"])
    for key, default in DATASET_DEFAULTS.items():
        widget = getattr(c, key)
        try:
            widget.value = stated.get(key, default)
        except ValueError:  # outside the field's range: the default, marked
            widget.value = default
            stated.pop(key, None)
        c.mark_source(key, key in stated)
    if layer.ndim < 3:
        return
    stored = meta.get("layout")
    try:
        fitted = FrameLayout(**stored) if stored else guess_layout(int(np.prod(layer.data.shape[:-2])))
    except (SimInputError, TypeError):
        return  # no usual layout fits: keep the current values, the user decides
    c.angles.value, c.phases.value = fitted.n_angles, fitted.n_phases
    c.n_z.value, c.order.value = fitted.n_z, fitted.order


def offset_warning(frames: np.ndarray, background: float) -> str | None:
    """A sentence when the camera offset is above most pixels (a value kept from another
    camera, or data already offset-corrected), else None.
    """
    if background <= 0:
        return None
    step = max(1, frames.shape[0] // 9)
    sample = np.asarray(frames[::step, ::4, ::4], dtype=np.float64)
    median = float(np.median(sample))
    if background < median:
        return None
    return (f"the camera offset {background:g} is above most pixels (median {median:.3g}); subtracting it leaves "
            "little or no signal: check the offset")


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
    lead = [int(np.clip(round(v), 0, n - 1)) for v, n in zip(coords[:-2], lead_shape, strict=False)]
    frame = int(np.ravel_multi_index(lead, lead_shape))
    index = arrange_frames(np.arange(job.frames.shape[0]).reshape(-1, 1, 1), job.layout)
    return int(np.nonzero(index.reshape(job.n_planes, -1) == frame)[0][0])
