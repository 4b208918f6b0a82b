"""npe2 reader: raw SIM stacks (TIFF, OME-TIFF, MRC/DV) as image layers with physical scale.

The layer keeps the frames in file order, shape (F, Y, X) (or (Y, X) for a single
image such as an exported reconstruction). What the file told about the optics and
the frame layout is kept in ``layer.metadata["napari_sim_ml"]``:

``{"optics": {"na", "wavelength_nm", "pixel_size_um"}, "layout": {"n_angles", "n_phases",
"n_z", "order"} | None, "source": path, ...}`` plus this plugin's own metadata
(parameters, camera offset) when the file was written by it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .engine.errors import SimInputError
from .engine.io import METADATA_KEY, FrameLayout, RawFile, guess_layout, read_raw

SUFFIXES = (".tif", ".tiff", ".mrc", ".dv")
LayerData = tuple[np.ndarray, dict[str, Any], str]


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return a reader for one TIFF/MRC/DV file, or None when this plugin cannot take it.

    Never raises: unreadable, complex-valued (OTF) or RGB files give None so that
    napari can try another reader.
    """
    try:
        if isinstance(path, (list, tuple)):
            if len(path) != 1:
                return None
            path = path[0]
        if not isinstance(path, (str, os.PathLike)):
            return None
        file = Path(path)
        if file.suffix.lower() not in SUFFIXES or not file.is_file():
            return None
        raw = read_raw(file, require_frames=False)
        if np.iscomplexobj(raw.frames) or raw.frames.ndim not in (2, 3):
            return None
    except Exception:  # noqa: BLE001 - a reader must never raise
        return None

    def _reader(_path: Any = None) -> list[LayerData]:
        return [raw_to_layer_data(raw)]

    return _reader


def _layout_for(raw: RawFile) -> dict[str, Any] | None:
    """The stored layout when it fits the frame count, else a guess, else None."""
    if raw.frames.ndim != 3:
        return None
    n = raw.frames.shape[0]
    stored = raw.extra.get("layout")
    if isinstance(stored, dict):
        try:
            layout = FrameLayout(**{k: stored[k] for k in ("n_angles", "n_phases", "n_z", "order") if k in stored})
            if n % layout.frames_per_set == 0:
                return asdict(layout)
        except (SimInputError, TypeError):
            pass
    try:
        return asdict(guess_layout(n))
    except SimInputError:
        return None


def raw_to_layer_data(raw: RawFile) -> LayerData:
    """(data, add_image kwargs, "image") for a RawFile."""
    data = raw.frames
    meta = {k: v for k, v in raw.extra.items() if k not in ("optics", "layout")}
    meta["optics"] = {"na": raw.na, "wavelength_nm": raw.wavelength_nm, "pixel_size_um": raw.pixel_size_um}
    meta["layout"] = _layout_for(raw)
    meta["source"] = str(raw.path)
    kwargs: dict[str, Any] = {"name": raw.path.stem, "metadata": {METADATA_KEY: meta}}
    if raw.pixel_size_um:
        px = float(raw.pixel_size_um)
        kwargs["scale"] = (1.0,) * (data.ndim - 2) + (px, px)
        kwargs["units"] = ("pixel",) * (data.ndim - 2) + ("um", "um")
    return data, kwargs, "image"
