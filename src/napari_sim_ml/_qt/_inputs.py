"""From the dock's fields and the selected layer to the session's inputs and a Job (main thread).

Nothing here reads pixels: a lazy layer stays lazy, and the workers read the plane they need.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image

from ..engine.errors import SimInputError
from ..engine.io import FrameLayout, guess_layout
from ..engine.metadata import ImageOptics, read_metadata
from ..engine.parameters import Optics
from ..session.model import SimSession
from ..session.tasks import Job, plane_of_frame
from ._layers import find_layer, plugin_meta


def prefill(c: Any, layer: Any) -> None:
    """Optics, camera offset and frame layout from what the layer's metadata (or scale) says.

    A value the file does not state is reset to its default (never kept from the previous
    layer) and its field is marked as not from the file.
    """
    from ._controls import DATASET_DEFAULTS

    meta = read_metadata(plugin_meta(layer))  # the schema: ``background``, or ``camera_offset`` of old raw files
    optics = meta.optics or ImageOptics()
    stated = {k: float(v) for k in ("na", "wavelength_nm", "pixel_size_um") if (v := getattr(optics, k))}
    if "pixel_size_um" not in stated and str(layer.units[-1]) == "micrometer" and layer.scale[-1] != 1:
        stated["pixel_size_um"] = float(layer.scale[-1])
    if meta.background is not None:
        stated["background"] = float(meta.background)
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
    stored = meta.layout
    try:
        fitted = FrameLayout(**stored) if stored else guess_layout(int(np.prod(layer.data.shape[:-2])))
    except (SimInputError, TypeError):
        return  # no usual layout fits: keep the current values, the user decides
    c.angles.value, c.phases.value = fitted.n_angles, fitted.n_phases
    c.n_z.value, c.order.value = fitted.n_z, fitted.order


def push_inputs(c: Any, session: SimSession) -> None:
    """Copy the fields' layout, optics, camera offset and OTF choice into the session.

    Raises SimInputError when a field holds a value the engine refuses.
    """
    session.layout = FrameLayout(c.angles.value, c.phases.value, c.n_z.value, c.order.value)
    session.optics = Optics(c.na.value, c.wavelength_nm.value, c.pixel_size_um.value)
    session.background = float(c.background.value)
    session.otf = (str(c.otf.value), float(c.otf_attenuation.value), str(c.otf_file.value))
    session.time_mean, session.keep_k = bool(c.time_mean.value), bool(c.keep_k.value)


def gather(viewer: Any, c: Any, session: SimSession) -> Job:
    """Bring the session up to date with the fields, the layer and the shown plane; its Job.

    Raises SimInputError with a sentence for the user. The layer's data are referenced,
    never read (``np.asarray`` of a lazy layer would read the whole file).
    """
    layer = find_layer(viewer, c.layer.value)
    if layer is None:
        raise SimInputError("select a raw SIM layer first (open a raw stack or File > Open Sample)")
    if not isinstance(layer, Image) or getattr(layer, "rgb", False):
        raise SimInputError(f"layer '{layer.name}' is not a grey-level image layer")
    session.source = layer.name
    session.data = layer.data
    push_inputs(c, session)
    job = session.make_job(0)  # raises on a 2-D layer or a wrong frame count
    session.plane = current_plane(viewer, layer, job)
    return session.make_job()


def current_plane(viewer: Any, layer: Any, job: Job) -> int:
    """Flat plane index (t·Z + z) holding the frame the viewer shows."""
    if layer.ndim < 3 or job.n_planes == 1:
        return 0
    lead_shape = layer.data.shape[:-2]
    coords = layer.world_to_data(viewer.dims.point)
    lead = [int(np.clip(round(v), 0, n - 1)) for v, n in zip(coords[:-2], lead_shape, strict=False)]
    frame = int(np.ravel_multi_index(lead, lead_shape))
    return plane_of_frame(frame, job.frames.shape[0], job.layout)
