"""Writing images and JSON: ImageJ TIFF, OME-TIFF plane by plane, JSON; atomic variants.

The low-level writers (:func:`save_tiff`, :func:`save_ome_tiff`, :func:`save_json`) write at
a given path as is; :func:`write_tiff` and :func:`write_json` write atomically (temporary
name, fsync, rename; see :mod:`.outputs`). The plugin's metadata
(:class:`~napari_sim_ml.engine.metadata.SimMetadata` as a dict) goes into the ImageJ
``Info`` or the OME ``Description`` as JSON under ``napari_sim_ml``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SimInputError
from .metadata import METADATA_KEY
from .metadata import positive_or_none as _float_or_none


def save_tiff(target: str | Path, data: np.ndarray, pixel_size_um: float,
              metadata: dict[str, Any] | None = None, z_step_um: float | None = None) -> None:
    """Write ``data`` as an ImageJ TIFF at ``target`` as is (no checks, no renaming).

    The low-level writer behind :func:`write_tiff` and :class:`outputs.OutputSet` users.
    """
    import tifffile

    if not (isinstance(pixel_size_um, (int, float, np.floating)) and math.isfinite(pixel_size_um)
            and pixel_size_um > 0):
        raise SimInputError(f"the pixel size must be a positive number of µm, not {pixel_size_um!r}")
    data = tiff_ready(data)
    axes = {2: "YX", 3: "ZYX", 4: "TZYX"}.get(data.ndim)
    if axes is None:
        raise SimInputError(f"cannot write an array of {data.ndim} dimensions as ImageJ TIFF")
    info = json.dumps({METADATA_KEY: metadata or {}}, default=_json_default)
    z_step_um = _float_or_none(z_step_um if z_step_um is not None else (metadata or {}).get("z_step_um"))
    ij_meta: dict[str, Any] = {"unit": "um", "axes": axes, "Info": info}
    if z_step_um and "Z" in axes:
        ij_meta["spacing"] = z_step_um
    tifffile.imwrite(
        target, data, imagej=True, resolution=(1.0 / pixel_size_um, 1.0 / pixel_size_um),
        metadata=ij_meta,
    )


FLOAT32_EXACT = 2**24  # integers up to this are exact in float32


def tiff_ready(data: Any) -> np.ndarray:
    """Return ``data`` in a type an ImageJ TIFF stores (uint8, uint16, float32), without a silent loss.

    Complex data are refused; integers are kept exact (uint16 when they fit, float32 up to
    2²⁴) and refused beyond that; bool becomes uint8; other floats become float32.
    """
    data = np.asarray(data)
    if np.iscomplexobj(data):
        raise SimInputError("the data are complex; write their magnitude or real part explicitly, "
                            "a TIFF of intensities cannot hold both")
    if data.dtype in (np.uint8, np.uint16, np.float32):
        return data
    if data.dtype == np.bool_:
        return data.astype(np.uint8)
    if data.dtype.kind in "iu":
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
        if 0 <= lo and hi <= 65535:
            return data.astype(np.uint16)
        if max(abs(lo), abs(hi)) <= FLOAT32_EXACT:
            return data.astype(np.float32)
        raise SimInputError(f"the data hold integers up to {max(abs(lo), abs(hi))}, beyond what float32 stores "
                            f"exactly (2^24 = {FLOAT32_EXACT}); convert them to float or rescale them first")
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    raise SimInputError(f"data of type {data.dtype} cannot be written as an image")


def save_json(target: str | Path, data: dict[str, Any]) -> None:
    """Write JSON at ``target`` as is (the low-level writer behind :func:`write_json`)."""
    with open(target, "w") as fh:
        json.dump(data, fh, indent=2, default=_json_default)


def write_tiff(
    path: str | Path,
    data: np.ndarray,
    pixel_size_um: float,
    metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
    z_step_um: float | None = None,
) -> Path:
    """Write an ImageJ TIFF with pixel size (µm) and our metadata as JSON in 'Info'.

    ``z_step_um`` (µm between planes; default: ``metadata["z_step_um"]``) is written as
    ImageJ ``spacing`` for stacks with a z axis.

    The file is written to a temporary name unique to this process in the same folder,
    flushed to disk and renamed (:mod:`outputs`), so a failed write never leaves a
    half-written file; an existing file is only replaced when ``overwrite`` is true.
    """
    from .outputs import OutputSet, check_outputs

    path = Path(path)
    check_outputs([(path, "tiff")], overwrite=overwrite)
    with OutputSet(overwrite) as outs:
        save_tiff(outs.stage(path), data, pixel_size_um, metadata, z_step_um)
        outs.commit()
    return path


def write_json(path: str | Path, data: dict[str, Any], overwrite: bool = False) -> Path:
    """Write JSON atomically (temporary name, fsync, rename); never over a file without ``overwrite``."""
    from .outputs import OutputSet, check_outputs

    path = Path(path)
    check_outputs([(path, "json")], overwrite=overwrite)
    with OutputSet(overwrite) as outs:
        save_json(outs.stage(path), data)
        outs.commit()
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def save_ome_tiff(path: str | Path, planes: Iterable[np.ndarray], shape: tuple[int, ...], pixel_size_um: float,
                  metadata: dict[str, Any], on_plane: Any = None) -> None:
    """Write (T, Z, Y, X) float32 ``planes`` one by one as an OME-TIFF at ``path`` (as is).

    ``metadata``: the plugin's record (its ``z_step_um`` and optics' ``wavelength_nm`` also
    go into the OME pixel and channel fields); ``on_plane()`` is called after each plane.
    """
    import tifffile

    def counted() -> Iterator[np.ndarray]:
        for plane in planes:
            yield plane
            if on_plane is not None:
                on_plane()

    optics = metadata.get("optics") or {}
    ome: dict[str, Any] = {
        "axes": "TZYX", "Name": metadata.get("name", Path(path).name),
        "PhysicalSizeX": pixel_size_um, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": pixel_size_um, "PhysicalSizeYUnit": "µm",
        "Description": json.dumps({METADATA_KEY: metadata}, default=_json_default),
    }
    if metadata.get("z_step_um"):
        ome.update(PhysicalSizeZ=float(metadata["z_step_um"]), PhysicalSizeZUnit="µm")
    if optics.get("wavelength_nm"):
        ome["Channel"] = {"Name": "SIM", "EmissionWavelength": optics["wavelength_nm"],
                          "EmissionWavelengthUnit": "nm"}
    big = math.prod(shape) * 4 > 2**31
    with tifffile.TiffWriter(path, bigtiff=big, ome=True) as tw:
        tw.write(counted(), shape=shape, dtype=np.float32, photometric="minisblack", metadata=ome,
                 resolution=(1e4 / pixel_size_um, 1e4 / pixel_size_um), resolutionunit="CENTIMETER")
