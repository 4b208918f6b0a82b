"""OME-Zarr (OME-NGFF 0.5, or 0.4) in and out, through ngff-zarr.

Why ngff-zarr: it supports the installed zarr 3 (NGFF 0.5 is zarr v3, 0.4 zarr v2),
writes the multiscales metadata from its own data model (axes with types and units,
``coordinateTransformations``), can create the arrays without computing anything
(``metadata_only=True``) so that our batch fills them plane by plane in its own
scheduler, and bundles the NGFF JSON schemas for offline validation. ome-zarr-py
would have downgraded pydantic below what napari here runs with, and pulled s3fs.

Output layout: one multiscales image (a single full-resolution level) whose axes
are ``t``, ``z`` (only when present: more than one time point / plane), ``y``,
``x``; space axes in micrometer; scale = (1 per time point, z step, output pixel,
output pixel), translation 0, so output pixel (2i, 2j) sits on raw pixel (i, j) as
in every other output; one chunk per plane. This plugin's metadata (parameters,
optics, layout, z step) is stored beside the OME keys, in the root attribute
``napari_sim_ml``.

Input: any OME-Zarr image (0.4 or 0.5, a bioformats2raw layout opens its first
image) is opened lazily as frames (F, Y, X) in file order, all axes before y, x
flattened (a channel axis of more than one channel is chosen with ``channel``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SimInputError
from .metadata import METADATA_KEY
from .metadata import length_to_um as _length_to_um
from .rawfile import RawFile, broken_file_errors
from .writers import _json_default

NGFF_VERSION = "0.5"
NGFF_VERSIONS = ("0.4", "0.5")
SPACE_UNIT = "micrometer"


def _ngff() -> Any:
    try:
        import ngff_zarr
    except ImportError:
        raise SimInputError("OME-Zarr needs the 'ngff-zarr' package (pip install ngff-zarr)") from None
    return ngff_zarr


def output_axes(shape: tuple[int, int, int, int], pixel_size_um: float,
                z_step_um: float | None) -> tuple[list[str], dict[str, float], dict[str, str]]:
    """Dims, scale and units of a (T, Z, Y, X) output: t and z only when longer than 1."""
    n_t, n_z = shape[:2]
    dims, scale, units = [], {}, {}
    if n_t > 1:
        dims.append("t")
        scale["t"] = 1.0
    if n_z > 1:
        dims.append("z")
        scale["z"] = float(z_step_um) if z_step_um else 1.0
        if z_step_um:
            units["z"] = SPACE_UNIT
    for d in ("y", "x"):
        dims.append(d)
        scale[d] = float(pixel_size_um)
        units[d] = SPACE_UNIT
    return dims, scale, units


def create_omezarr(path: str | Path, shape: tuple[int, int, int, int], pixel_size_um: float,
                   z_step_um: float | None, metadata: dict[str, Any], dtype: Any = np.float32,
                   version: str = NGFF_VERSION) -> Any:
    """Create an OME-Zarr image for a (T, Z, Y, X) stack without writing pixels; its zarr array.

    The array has the dims of :func:`output_axes` (length-1 t/z dropped), one chunk per plane.
    """
    import dask.array as da
    import zarr

    nz = _ngff()
    if version not in NGFF_VERSIONS:
        raise SimInputError(f"OME-Zarr version {version}: choose one of {', '.join(NGFF_VERSIONS)}")
    dims, scale, units = output_axes(shape, pixel_size_um, z_step_um)
    kept = tuple(s for s, keep in zip(shape, (shape[0] > 1, shape[1] > 1, True, True), strict=False) if keep)
    chunks = (1,) * (len(kept) - 2) + kept[-2:]
    placeholder = da.empty(kept, dtype=dtype, chunks=chunks)  # never computed (metadata_only)
    image = nz.to_ngff_image(placeholder, dims=dims, scale=scale, translation={d: 0.0 for d in dims},
                             name=str(metadata.get("name", "sim")), axes_units=units)
    multiscales = nz.to_multiscales(image, scale_factors=[], chunks=chunks)
    nz.to_ngff_zarr(str(path), multiscales, version=version, metadata_only=True)
    attrs = json.loads(json.dumps({METADATA_KEY: metadata}, default=_json_default))
    nz.update_root_attributes(str(path), attrs)
    return zarr.open_array(str(Path(path) / multiscales.metadata.datasets[0].path), mode="r+")


def write_omezarr(path: str | Path, planes: Iterator[np.ndarray], shape: tuple[int, int, int, int],
                  pixel_size_um: float, metadata: dict[str, Any], progress: Any = None,
                  version: str = NGFF_VERSION) -> None:
    """Write (T, Z, Y, X) float32 planes, given one by one in (t, z) order, as an OME-Zarr image.

    ``metadata["z_step_um"]`` (µm) is the z scale; ``progress.update()`` is called per plane.
    """
    array = create_omezarr(path, shape, pixel_size_um, metadata.get("z_step_um"), metadata, version=version)
    n_t, n_z = shape[:2]
    for i, plane in enumerate(planes):
        t, z = divmod(i, n_z)
        index = tuple(v for v, keep in ((t, n_t > 1), (z, n_z > 1)) if keep)
        array[index] = plane
        if progress is not None:
            progress.update()


def write_omezarr_array(path: str | Path, data: np.ndarray, pixel_size_um: float,
                        metadata: dict[str, Any], version: str = NGFF_VERSION) -> None:
    """Write an in-memory image (Y, X), (Z, Y, X) or (T, Z, Y, X) as an OME-Zarr image."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim not in (2, 3, 4):
        raise SimInputError(f"cannot write an array of {data.ndim} dimensions as OME-Zarr")
    full = (1,) * (4 - data.ndim) + data.shape
    shape4 = (full[0], full[1], full[2], full[3])
    write_omezarr(path, iter(data.reshape(-1, *data.shape[-2:])), shape4, pixel_size_um, metadata,
                  version=version)


# ---------------------------------------------------------------- reading
def _image_root(path: Path) -> Path:
    """Open the group holding the multiscales (a bioformats2raw layout keeps its images in 0/, 1/ …)."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises many types for foreign folders
        raise SimInputError(f"cannot read {path.name}: not a zarr group ({type(exc).__name__})") from None
    attrs: dict[str, Any] = dict(group.attrs)
    ome = attrs.get("ome", attrs)
    if "multiscales" in ome:
        return path
    if "bioformats2raw.layout" in ome and (path / "0").is_dir():
        return path / "0"
    raise SimInputError(f"{path.name} is a zarr store without OME-NGFF multiscales (not an OME-Zarr image)")


def open_omezarr_lazy(path: str | Path, channel: int | None = None) -> RawFile:
    """Open an OME-Zarr image lazily: RawFile with dask frames (F, Y, X) in file order.

    Pixel size and z step come from the scale of the x and z axes (with their units),
    our own metadata from the root attribute ``napari_sim_ml``.
    """
    path = Path(path)
    root = _image_root(path)
    with broken_file_errors(path):
        multiscales = _ngff().from_ngff_zarr(str(root))
    image = multiscales.images[0]
    data, dims = image.data, list(image.dims)
    if dims[-2:] != ["y", "x"]:
        raise SimInputError(f"{path.name}: the last two axes are {dims[-2:]}, not y and x")
    if "c" in dims:
        axis = dims.index("c")
        n_c = data.shape[axis]
        if n_c > 1 and channel is None:
            raise SimInputError(f"{path.name} has {n_c} channels; choose one with --channel")
        c = 0 if channel is None else channel
        if not 0 <= c < n_c:
            raise SimInputError(f"{path.name} has channels 0-{n_c - 1}; --channel {c} is not one")
        data = data[(slice(None),) * axis + (c,)]
        dims.pop(axis)
    lead = math.prod(data.shape[:-2])
    frames = data.reshape(lead, *data.shape[-2:]) if data.ndim != 3 else data
    units = image.axes_units or {}
    pixel = _length_to_um(float(image.scale["x"]), units.get("x")) if units.get("x") else None
    z_step = (_length_to_um(float(image.scale["z"]), units.get("z"))
              if "z" in image.scale and units.get("z") else None)
    import zarr

    attrs: dict[str, Any] = dict(zarr.open_group(str(path), mode="r").attrs)
    extra = attrs.get(METADATA_KEY) or {}
    optics = extra.get("optics", {})
    return RawFile(path, frames, optics.get("pixel_size_um") or pixel, optics.get("wavelength_nm"),
                   optics.get("na"), extra, z_step_um=extra.get("z_step_um") or z_step)


def read_omezarr(path: str | Path, channel: int | None = None) -> RawFile:
    """Read an OME-Zarr image whole (see :func:`open_omezarr_lazy`)."""
    raw = open_omezarr_lazy(path, channel)
    return RawFile(raw.path, np.asarray(raw.frames), raw.pixel_size_um, raw.wavelength_nm, raw.na, raw.extra,
                   z_step_um=raw.z_step_um)


def validate_omezarr(path: str | Path) -> str:
    """Validate the root attributes against the NGFF JSON schema of their version; the version.

    Raises SimInputError naming the first violation; the schemas are the ones ngff-zarr bundles
    (no network needed).
    """
    import zarr

    attrs: dict[str, Any] = dict(zarr.open_group(str(path), mode="r").attrs)
    version = str((attrs.get("ome") or {}).get("version") or attrs.get("multiscales", [{}])[0].get("version"))
    try:
        _ngff().validate(attrs, version=version, model="image", strict=False)
    except Exception as exc:  # jsonschema.ValidationError and friends
        raise SimInputError(f"{Path(path).name} is not valid OME-NGFF {version}: "
                            f"{getattr(exc, 'message', exc)}") from None
    return version


__all__ = ["NGFF_VERSION", "create_omezarr", "open_omezarr_lazy", "output_axes", "read_omezarr",
           "validate_omezarr", "write_omezarr", "write_omezarr_array"]
