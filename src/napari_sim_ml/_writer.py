"""npe2 writer: an image layer to an ImageJ TIFF or an OME-Zarr image.

The TIFF gets the pixel size (µm) and this plugin's metadata (reconstruction parameters,
optics) as JSON in its 'Info' tag; a path ending in ``.zarr`` becomes an OME-Zarr image (see
``engine.omezarr``). A z step (the layer's z scale in a length unit, else
``metadata["z_step_um"]``) is written too. What is written is the layer's record in the
schema of ``engine.metadata`` (old keys read, unknown keys kept).

Read back by ``_reader`` (or ``engine.io.read_raw``): pixel size and parameters survive
the round trip.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .engine.errors import SimInputError
from .engine.io import tiff_ready, write_tiff
from .engine.metadata import METADATA_KEY, TIFF_SUFFIXES, ImageOptics, SimMetadata
from .engine.metadata import unit_to_um as _unit_factor


def pixel_size_from_meta(meta: dict[str, Any]) -> float:
    """Return the pixel size in µm of a layer's state: scale × unit, else the stored optics, else 1."""
    scale = meta.get("scale")
    units = meta.get("units")
    if scale is not None and units is not None:
        factor = _unit_factor(list(units)[-1])
        if factor is not None:
            return float(scale[-1]) * factor
    stored = (meta.get("metadata") or {}).get(METADATA_KEY, {}).get("optics", {}) or {}
    if stored.get("pixel_size_um"):
        return float(stored["pixel_size_um"])
    return float(scale[-1]) if scale is not None else 1.0


def write_layer(path: str | Path, data: Any, meta: dict[str, Any], overwrite: bool = True) -> list[str]:
    """Write one image layer's data; ``meta`` is the layer state (scale, units, metadata, name).

    The JSON stored in the file is ``layer.metadata["napari_sim_ml"]`` with the optics'
    pixel size set to the written pixel size. Raises SimInputError on failure.
    """
    given = Path(path)
    path = given
    zarr_out = path.suffix.lower() == ".zarr"
    if path.suffix.lower() not in TIFF_SUFFIXES and not zarr_out:  # data.v2 → data.v2.tif (never data.tif)
        path = path.with_name(path.name + ".tif")
        overwrite = False  # the user agreed to replace `given` (if anything), not this other file
    if meta.get("rgb"):
        raise SimInputError("an RGB layer is not a grey-level image; this writer (and the SIM reader) handle "
                            "grey-level layers only")
    pixel = pixel_size_from_meta(meta)
    if not (np.isfinite(pixel) and pixel > 0):
        raise SimInputError(f"the layer's pixel size (scale) is {pixel}; it must be a positive number")
    ours = dict((meta.get("metadata") or {}).get(METADATA_KEY, {}))
    if ours.pop("display_axes", None) is not None:  # the dock's all-planes layout (_layers.plane_stack)
        data = np.asarray(data).reshape(-1, *np.shape(data)[-2:])  # back to (N, Y, X)
    record = SimMetadata.from_dict(ours)
    record.optics = replace(record.optics or ImageOptics(), pixel_size_um=pixel)
    if meta.get("name") and record.layer_name is None:
        record.layer_name = str(meta["name"])
    z_step = _z_step_from_meta(meta, np.ndim(data))
    if z_step:
        record.z_step_um = z_step
    ours = record.to_dict()
    array = tiff_ready(data)
    if zarr_out:
        _write_zarr(path, array, pixel, ours, overwrite)
    else:
        write_tiff(path, array, pixel, ours, overwrite=overwrite)
    return [str(path)]


def _z_step_from_meta(meta: dict[str, Any], ndim: int) -> float | None:
    """Return the µm between planes: the layer's z scale when its unit is a length, else the stored z step."""
    scale, units = meta.get("scale"), meta.get("units")
    if ndim >= 3 and scale is not None and units is not None and len(list(units)) >= 3:
        factor = _unit_factor(list(units)[-3])
        if factor is not None:
            return float(scale[-3]) * factor
    stored = (meta.get("metadata") or {}).get(METADATA_KEY, {}).get("z_step_um")
    return float(stored) if stored and ndim >= 3 else None


def _write_zarr(path: Path, array: np.ndarray, pixel: float, ours: dict[str, Any], overwrite: bool) -> None:
    """Write an OME-Zarr image under a temporary name and rename it (replaces only with ``overwrite``)."""
    import os
    import shutil

    from .engine.errors import SimInputError
    from .engine.omezarr import write_omezarr_array

    if path.exists() and not overwrite:
        raise SimInputError(f"{path} exists; use --overwrite to replace it")
    if not path.parent.is_dir():
        raise SimInputError(f"output folder does not exist: {path.parent}")
    tmp = path.with_name(f".{path.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_omezarr_array(tmp, array, pixel, ours)
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_image(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer (napari's save dialog has already asked about overwriting)."""
    return write_layer(path, data, meta, overwrite=True)
