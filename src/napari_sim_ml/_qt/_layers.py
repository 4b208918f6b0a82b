"""Placing and updating layers (main thread only).

Output layers are found by name and updated in place (``layer.data = ...``) when they
exist; they are created only the first time. Reconstructions sit on the 2× grid:
scale = raw pixel / 2 and the raw layer's own translate, so fine pixel (2i, 2j)
overlays raw pixel (i, j).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.io import METADATA_KEY
from ..engine.metadata import ImageOptics, SimMetadata
from .evidence import runner_up_points

OUTPUT_KINDS = ("reconstruction", "widefield", "spectrum", "truth", "uncertainty", "residual", "pinn-preview")


def find_layer(viewer: Any, name: str | None) -> Any:
    if not name:
        return None
    try:
        return viewer.layers[name]
    except (KeyError, ValueError, IndexError):
        return None


def plugin_meta(layer: Any) -> dict[str, Any]:
    meta = getattr(layer, "metadata", None) or {}
    ours = meta.get(METADATA_KEY)
    return ours if isinstance(ours, dict) else {}


def is_output_layer(layer: Any) -> bool:
    """Tell whether this plugin made the layer from a raw stack (or it is a simulation's truth)."""
    return plugin_meta(layer).get("kind") in OUTPUT_KINDS


def contrast_limits(data: np.ndarray) -> tuple[float, float]:
    """Robust display range (0.1 / 99.9 percentiles of a subsample's finite values).

    Always two finite numbers with low < high: a NaN, infinite or equal pair reaches vispy's
    texture scaling as a division by zero or NaN (constant data give (v, v + 1), all-NaN data (0, 1)).
    """
    sample = np.asarray(data)[..., ::4, ::4]
    sample = sample[np.isfinite(sample)] if sample.dtype.kind in "fc" else sample
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(sample, (0.1, 99.9)))
    if not hi > lo:
        hi = lo + 1.0 if lo + 1.0 > lo else float(np.nextafter(lo, np.inf))
    return lo, hi


def _on_main_thread() -> None:
    """Raise RuntimeError when called from another thread than the main (GUI) thread.

    Layers are changed on the main thread only: a texture swapped under a draw can crash the
    OpenGL driver.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("napari layers must be changed on the main thread")


def display_ready(data: Any) -> Any:
    """Make ``data`` texture-friendly: C-contiguous, float64 → float32 (vispy uploads float32 anyway).

    Lazy (dask) arrays are left as they are.
    """
    if not isinstance(data, np.ndarray):
        return data
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    return np.ascontiguousarray(data)


def fine_geometry(raw_layer: Any) -> dict[str, Any]:
    """Scale / translate / units of a 2-D layer on the raw layer's 2× grid."""
    scale = np.asarray(raw_layer.scale, dtype=float)[-2:]
    translate = np.asarray(raw_layer.translate, dtype=float)[-2:]
    units = tuple(str(u) for u in raw_layer.units)[-2:]
    return {"scale": tuple(scale / 2.0), "translate": tuple(translate), "units": units}


def raw_geometry(raw_layer: Any) -> dict[str, Any]:
    """Scale / translate / units of a 2-D layer on the raw layer's own grid."""
    return {"scale": tuple(np.asarray(raw_layer.scale, dtype=float)[-2:]),
            "translate": tuple(np.asarray(raw_layer.translate, dtype=float)[-2:]),
            "units": tuple(str(u) for u in raw_layer.units)[-2:]}


def stack_geometry(geometry: dict[str, Any], z_step_um: float | None = None) -> dict[str, Any]:
    """Give the same geometry with one leading (plane) axis.

    The axis is scaled by ``z_step_um`` (µm) when the planes are z planes with a known step.
    """
    if z_step_um:
        return {"scale": (float(z_step_um), *geometry["scale"]), "translate": (0.0, *geometry["translate"]),
                "units": ("um", *geometry["units"])}
    return {"scale": (1.0, *geometry["scale"]), "translate": (0.0, *geometry["translate"]),
            "units": ("pixel", *geometry["units"])}


def plane_axes(n_t: int, n_z: int) -> list[tuple[str, int]]:
    """Name the plane axes of an all-planes result: (label, length) for t and/or z.

    One axis when only one of them is longer than 1; "SIM plane" for a single plane.
    """
    axes = [(label, n) for label, n in (("SIM t", n_t), ("SIM z", n_z)) if n > 1]
    return axes or [("SIM plane", n_t * n_z)]


def plane_stack(images: np.ndarray, raw_layer: Any, geometry: dict[str, Any], n_z: int,
                z_step_um: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Shape an all-planes result (N, Y, X), N = T·Z, as a layer with its own plane slider(s).

    napari aligns the axes of all layers from the right, so a (Z, Y, X) result would share the
    raw layer's frame slider (its z axis on the raw's frame axis: it would vanish beyond frame
    Z − 1 and number its planes by raw frame). Here the result gets its plane axes *before* the
    raw layer's leading axes, (T, Z, 1, …, Y, X) or (N, 1, …, Y, X), and a size-1 axis for each
    raw leading axis whose one pixel spans the raw's whole range along it, so it is shown at
    every raw frame. Returns (data view, geometry with ``axis_labels``); metadata key
    ``"display_axes"`` (from :func:`display_axes_meta`) lets writers drop the spanning axes.
    """
    n = images.shape[0]
    n_z = n_z if n_z > 0 and n % n_z == 0 else 1
    planes = plane_axes(n // n_z, n_z)
    lead = raw_layer.ndim - 2
    shape = raw_layer.data.shape[:lead]
    r_scale = np.asarray(raw_layer.scale, dtype=float)[:lead]
    r_translate = np.asarray(raw_layer.translate, dtype=float)[:lead]
    r_units = tuple(str(u) for u in raw_layer.units)[:lead]
    r_labels = tuple(str(v) for v in raw_layer.axis_labels)[:lead]
    if r_labels == tuple(str(i) for i in range(-raw_layer.ndim, -2)):  # napari's defaults: name them
        r_labels = tuple("raw frame" if i == lead - 1 else f"raw axis {i}" for i in range(lead))
    data = images.reshape(*[m for _, m in planes], *(1,) * lead, *images.shape[-2:])
    labels = [label for label, _ in planes]
    z_axis = labels.index("SIM z") if "SIM z" in labels else None
    p_scale = [float(z_step_um) if (z_step_um and i == z_axis) else 1.0 for i in range(len(planes))]
    p_units = ["um" if (z_step_um and i == z_axis) else "pixel" for i in range(len(planes))]
    span_scale = [float(s * m) for s, m in zip(r_scale, shape, strict=False)]
    span_translate = [float(t + (m - 1) * s / 2.0) for t, s, m in zip(r_translate, r_scale, shape, strict=False)]
    out = {"scale": (*p_scale, *span_scale, *geometry["scale"]),
           "translate": (*(0.0,) * len(planes), *span_translate, *geometry["translate"]),
           "units": (*p_units, *r_units, *geometry["units"]),
           "axis_labels": (*labels, *r_labels, "y", "x")}
    return np.ascontiguousarray(data), out


def display_axes_meta(data: np.ndarray, raw_layer: Any) -> dict[str, Any]:
    """Describe what a writer needs to turn :func:`plane_stack`'s layer back into (N, Y, X)."""
    return {"planes_shape": [int(v) for v in data.shape[:data.ndim - raw_layer.ndim]],
            "spanning_axes": raw_layer.ndim - 2}


def upsert_image(viewer: Any, name: str, data: np.ndarray, geometry: dict[str, Any],
                 metadata: dict[str, Any] | None = None, **add_kwargs: Any) -> Any:
    """Update the image layer ``name`` in place, or add it the first time.

    In place: new data of another shape or dtype (another dataset, a different number of
    planes) also gets contrast limits of its own, never the previous data's range.
    """
    _on_main_thread()
    data = display_ready(data)
    layer = find_layer(viewer, name)
    if layer is not None and getattr(layer, "ndim", None) == data.ndim and hasattr(layer, "contrast_limits"):
        current = layer.data
        changed = getattr(current, "shape", None) != data.shape or getattr(current, "dtype", None) != data.dtype
        layer.data = data
        if changed:
            layer.contrast_limits = contrast_limits(data)
        if tuple(layer.scale) != tuple(geometry["scale"]):
            layer.scale = geometry["scale"]
        if tuple(layer.translate) != tuple(geometry["translate"]):
            layer.translate = geometry["translate"]
        if "axis_labels" in geometry and tuple(layer.axis_labels) != tuple(geometry["axis_labels"]):
            layer.axis_labels = geometry["axis_labels"]
        if metadata is not None:
            layer.metadata = {**layer.metadata, METADATA_KEY: metadata}
        return layer
    if layer is not None:
        viewer.layers.remove(layer)
    kwargs = {"contrast_limits": contrast_limits(data), **add_kwargs}
    return viewer.add_image(data, name=name, metadata={METADATA_KEY: metadata or {}}, **geometry, **kwargs)


def update_data(layer: Any, data: np.ndarray) -> None:
    """Put new pixel values into an existing layer, in place.

    Same shape and dtype (every slider move): copy into the layer's array and refresh the
    view without recomputing extents, which skips the viewer-wide dims update that
    ``layer.data = ...`` triggers (about half of the main-thread cost of a move).
    Otherwise ``layer.data = data``.
    """
    _on_main_thread()
    current = layer.data
    if isinstance(current, np.ndarray) and current.shape == data.shape and current.dtype == data.dtype \
            and current.flags.writeable:
        np.copyto(current, data)
        layer.refresh(extent=False, highlight=False)
    else:
        layer.data = display_ready(data)


def replace_layer(viewer: Any, name: str) -> None:
    layer = find_layer(viewer, name)
    if layer is not None:
        viewer.layers.remove(layer)


def peak_points(diagnostics: Any, shape: tuple[int, int], n_orders: int) -> np.ndarray:
    """(row, col) of ±every order's peak on a centred spectrum of ``shape``."""
    cy, cx = shape[0] // 2, shape[1] // 2
    points = []
    for diag in diagnostics:
        top = np.asarray(diag.peak_px, dtype=float)
        for b in range(1, n_orders + 1):
            for sign in (1, -1):
                points.append((cy + sign * top[0] * b / n_orders, cx + sign * top[1] * b / n_orders))
    return np.array(points, dtype=float)


def circle(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """Bounding-box corners of an ellipse, as napari's Shapes expect."""
    return np.array([[cy - ry, cx - rx], [cy - ry, cx + rx], [cy + ry, cx + rx], [cy + ry, cx - rx]])


def show_estimate(viewer: Any, base: str, out: Any, optics: Any, geometry: dict[str, Any],
                  n_orders: int) -> None:
    """Spectrum layers (widefield and raw), the found peaks and the OTF supports."""
    shape = out.raw_spectrum.shape
    meta = {"kind": "spectrum", "source_layer": base}
    for label, data in (("widefield", out.widefield_spectrum), ("raw", out.raw_spectrum)):
        upsert_image(viewer, f"{base} spectrum {label}", data, geometry, meta,
                     colormap="inferno", visible=(label == "raw"))
    peaks = peak_points(out.result.diagnostics, shape, n_orders)
    kc = optics.cutoff_cycles_per_um
    ry = kc * shape[0] * optics.pixel_size_um  # cutoff in Fourier pixels
    rx = kc * shape[1] * optics.pixel_size_um
    cy, cx = shape[0] // 2, shape[1] // 2
    top = [p for i, p in enumerate(peaks) if (i // 2) % n_orders == n_orders - 1]
    circles = [circle(cy, cx, ry, rx)] + [circle(py, px_, ry, rx) for py, px_ in top]
    common = {"scale": geometry["scale"], "translate": geometry["translate"], "units": geometry["units"],
              "metadata": {METADATA_KEY: meta}}
    replace_layer(viewer, f"{base} peaks")
    replace_layer(viewer, f"{base} runner-up peaks")
    replace_layer(viewer, f"{base} OTF support")
    viewer.add_shapes(circles, shape_type="ellipse", name=f"{base} OTF support", edge_color="cyan",
                      face_color="transparent", edge_width=1.5, **common)
    viewer.add_points(peaks, name=f"{base} peaks", size=8, face_color="transparent",
                      border_color="lime", border_width=0.15, **common)
    runners = runner_up_points(out.result, shape)
    if len(runners):  # the best peak not chosen: a different marker and colour than the chosen one
        viewer.add_points(runners, name=f"{base} runner-up peaks", size=8, symbol="x", face_color="magenta",
                          border_color="magenta", border_width=0.1, **common)


def hide_estimate_layers(viewer: Any, base: str) -> None:
    for suffix in ("spectrum widefield", "spectrum raw", "peaks", "runner-up peaks", "OTF support"):
        layer = find_layer(viewer, f"{base} {suffix}")
        if layer is not None:
            layer.visible = False


def z_step_of(raw_layer: Any, job: Any) -> float | None:
    """Return the raw layer's z step (µm) when the job's planes are z planes of one time point, else None."""
    step = plugin_meta(raw_layer).get("z_step_um") if raw_layer is not None else None
    return float(step) if step and job.layout.n_z > 1 and job.n_planes == job.layout.n_z else None


def recon_meta(job: Any, kind: str, params: Any, base: str, settings: Any, z_step_um: float | None) -> dict[str, Any]:
    """Build the metadata of a Wiener output layer of ``job`` (the schema of engine.metadata).

    Optics on the 2× grid, parameters, filter settings, layout, camera offset and plane.
    """
    from dataclasses import asdict

    optics = job.optics
    return SimMetadata(kind=kind, method="wiener", source_layer=base,
                       optics=ImageOptics.from_optics(optics, optics.pixel_size_um / 2),
                       raw_pixel_size_um=optics.pixel_size_um, params=params.to_dict(optics),
                       filter=asdict(settings), layout=asdict(job.layout), background=job.background,
                       plane=job.plane, z_step_um=z_step_um or None).to_dict()
