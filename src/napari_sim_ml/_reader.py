"""npe2 reader: raw SIM stacks as image layers with physical scale.

The formats are TIFF, OME-TIFF, MRC/DV, OME-Zarr and folders of frames.

The layer keeps the frames in file order, shape (F, Y, X) (or (Y, X) for a single
image such as an exported reconstruction), as a lazy dask array: opening reads the
metadata only, napari reads the frames it shows. A reconstruction written by this
plugin with several z planes opens as (Z, Y, X) (or (T, Z, Y, X)) with the z step as
the z scale. What the file told about the optics and the frame layout is kept in
``layer.metadata["napari_sim_ml"]``:

``{"optics": {"na", "wavelength_nm", "pixel_size_um"}, "z_step_um", "layout": {"n_angles", "n_phases",
"n_z", "order"} | None, "source": path, ...}`` plus this plugin's own metadata
(parameters, camera offset) when the file was written by it.

A folder (not a zarr store) opens as one stack of its TIFF/MRC files in natural order
(see ``engine.sequence``). When its last frame is the average of the others (some
programs save one), that frame becomes a layer of its own, ``<name> average frame``,
and the raw layer holds the other frames: nothing is dropped.
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
from .engine.metadata import MRC_SUFFIXES, RAW_SUFFIXES

SUFFIXES = RAW_SUFFIXES  # the one list (engine.metadata)
LayerData = tuple[np.ndarray, dict[str, Any], str]


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return a reader for one TIFF/MRC/DV file, OME-Zarr store or folder of frames, or None.

    None means this plugin cannot take it.

    Never raises. The decision reads the suffix and the file's header only (TIFF tags,
    MRC header, zarr metadata, a folder's file list), never pixels: complex-valued
    (OTF), RGB, empty or unreadable files give None so that napari can try another
    reader. The frames are opened (lazily) when napari calls the reader.
    """
    try:
        if isinstance(path, (list, tuple)):
            if len(path) != 1:
                return None
            path = path[0]
        if not isinstance(path, (str, os.PathLike)):
            return None
        file = Path(path)
        if file.is_dir():
            raw = open_raw(file)  # a folder or zarr store: lazy, headers only
            if np.iscomplexobj(raw.frames) or raw.frames.ndim not in (2, 3):
                return None
            opened: RawFile | None = raw
        elif file.suffix.lower() not in SUFFIXES or not file.is_file() or not _header_ok(file):
            return None
        else:
            opened = None
    except Exception:  # noqa: BLE001 - a reader must never raise
        return None

    def _reader(_path: Any = None) -> list[LayerData]:
        raw = opened if opened is not None else open_raw(file)
        average = (raw.extra.get("sequence") or {}).get("average_frame")
        if average is None:
            return [raw_to_layer_data(raw)]
        return split_average_frame(raw, int(average))

    return _reader


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, str]:
    """(shape, dtype, axes) of a TIFF's first series or an MRC's data, from the header only."""
    if path.suffix.lower() in MRC_SUFFIXES:
        from .engine.rawfile import quiet_mrc

        with quiet_mrc(path) as mrc:  # a memory map: no pixel is read
            if mrc.data is None:
                raise ValueError("no image data")
            return tuple(mrc.data.shape), np.dtype(mrc.data.dtype), "ZYX"[-mrc.data.ndim:]
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise ValueError("no image data")
        series = tif.series[0]
        return tuple(series.shape), np.dtype(series.dtype), str(series.axes)


def _header_ok(path: Path) -> bool:
    """Whether the header describes grey-level real images this plugin opens (not OTF, RGB, 1-D)."""
    shape, dtype, axes = _header(path)
    if dtype.kind == "c" or len(shape) < 2 or min(shape[-2:]) < 2:
        return False
    rgb = axes.endswith("S") or (len(shape) > 2 and shape[-1] in (3, 4) and shape[-3] > 4)
    return not rgb


def open_raw(path: Path) -> RawFile:
    """Open ``path`` as a RawFile with lazy (dask) frames where the format allows.

    Stacks (3-D and more) of TIFF, MRC, folders and OME-Zarr are opened lazily; a file
    with several channels (or whose frames a TIFF calls channels) opens lazily too, its
    channels flattened into frames in file order as :func:`engine.io.read_raw` does;
    only a single 2-D image (one frame) is read whole.
    """
    from .engine.lazy import open_lazy

    try:
        raw, source = open_lazy(path)
    except SimInputError as exc:
        if "channels; choose one" not in str(exc):
            return read_raw(path, require_frames=False)
        raw, source = _all_channels(path)
    if raw.frames.ndim == 3 and raw.frames.shape[0] == 1 and not (raw.extra.get("sequence") or {}):
        return read_raw(path, require_frames=False)  # one frame: an image, not a stack
    return raw


def _all_channels(path: Path) -> tuple[RawFile, Any]:
    """Open a multi-channel file lazily with every channel's frames, in file order."""
    from dataclasses import replace

    import dask.array as da

    from .engine.lazy import FrameSource, open_lazy

    raw, source = open_lazy(path, channel=0)
    assert isinstance(source, FrameSource)
    every = replace(source, channel_axis=None, channel=0)
    frames = da.from_array(every, chunks=(1, *every.frame_shape), asarray=False,
                           name=f"frames-all-channels-{_token(path)}")
    return replace(raw, frames=frames), every


def _token(path: Path) -> str:
    from dask.base import tokenize

    st = path.stat()
    return tokenize(str(path.resolve()), st.st_mtime_ns, st.st_size)


def split_average_frame(raw: RawFile, index: int) -> list[LayerData]:
    """Split the raw frames before ``index`` (the raw layer) from frame ``index`` (its own layer)."""
    seq = raw.extra.get("sequence") or {}
    frames_raw = RawFile(raw.path, raw.frames[:index], raw.pixel_size_um, raw.wavelength_nm, raw.na,
                         {**raw.extra, "frames_selected": f"0-{index - 1}"}, z_step_um=raw.z_step_um)
    data, kwargs, kind = raw_to_layer_data(frames_raw)
    name = (seq.get("files") or [f"frame {index}"])[index] if len(seq.get("files") or []) > index else f"frame {index}"
    avg_meta = {"kind": "widefield", "source": str(raw.path),
                "note": f"{name} is the average of the raw frames 0-{index - 1}; kept as its own layer"}
    avg_kwargs = {"name": f"{kwargs['name']} average frame", "metadata": {METADATA_KEY: avg_meta}}
    if "scale" in kwargs:
        avg_kwargs.update(scale=kwargs["scale"][-2:], units=kwargs["units"][-2:])
    return [(data, kwargs, kind), (np.asarray(raw.frames[index]), avg_kwargs, "image")]


def _layout_for(raw: RawFile) -> dict[str, Any] | None:
    """Give the stored layout when it fits the frame count, else a guess, else None."""
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
    """Turn a RawFile into (data, add_image kwargs, "image")."""
    data = raw.frames
    meta = {k: v for k, v in raw.extra.items() if k not in ("optics", "layout")}
    meta["optics"] = {"na": raw.na, "wavelength_nm": raw.wavelength_nm, "pixel_size_um": raw.pixel_size_um}
    meta["layout"] = _layout_for(raw)
    meta["source"] = str(raw.path)
    if raw.z_step_um:
        meta["z_step_um"] = float(raw.z_step_um)
    name = raw.path.name.split("*")[0].rstrip("_-. ") if "*" in raw.path.name else raw.path.stem
    kwargs: dict[str, Any] = {"name": name.removesuffix(".ome") or raw.path.parent.name,
                              "metadata": {METADATA_KEY: meta}}
    data, z_axis = _planes_view(data, raw)
    lead = [1.0] * (data.ndim - 2)
    lead_units = ["pixel"] * (data.ndim - 2)
    if z_axis is not None and raw.z_step_um:
        lead[z_axis], lead_units[z_axis] = float(raw.z_step_um), "um"
    if raw.pixel_size_um:
        px = float(raw.pixel_size_um)
        kwargs["scale"] = (*lead, px, px)
        kwargs["units"] = (*lead_units, "um", "um")
    elif z_axis is not None and raw.z_step_um:
        kwargs["scale"] = (*lead, 1.0, 1.0)
        kwargs["units"] = (*lead_units, "pixel", "pixel")
    if not isinstance(data, np.ndarray) and data.ndim > 2:  # lazy: napari must not scan the whole stack
        kwargs["contrast_limits"] = _first_frame_limits(data)
        kwargs["multiscale"] = False
    return data, kwargs, "image"


OUTPUT_KINDS = ("reconstruction", "widefield", "uncertainty", "residual")


def _planes_view(data: Any, raw: RawFile) -> tuple[Any, int | None]:
    """Frames of a multi-plane output of this plugin as (Z, Y, X) / (T, Z, Y, X), and the z axis."""
    layout = raw.extra.get("layout") or {}
    n_z = int(layout.get("n_z", 1) or 1)
    if raw.extra.get("kind") not in OUTPUT_KINDS or data.ndim != 3 or n_z < 2 or data.shape[0] % n_z:
        return data, None
    n_t = data.shape[0] // n_z
    if n_t == 1:
        return data, 0
    return data.reshape(n_t, n_z, *data.shape[-2:]), 1


def _first_frame_limits(data: Any) -> tuple[float, float]:
    """Display range from the first frame only (0.1 / 99.9 percentiles)."""
    first = np.asarray(data[(0,) * (data.ndim - 2)], dtype=np.float64)
    lo, hi = np.percentile(first[::2, ::2], (0.1, 99.9))
    return (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
