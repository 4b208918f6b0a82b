"""Reading one raw TIFF/OME-TIFF/MRC/DV file: its frames and what its headers say.

Below :mod:`.io` (which dispatches folders and glob patterns to :mod:`.sequence` and OME-Zarr
stores to :mod:`.omezarr`, both of which read their files here): :class:`RawFile`,
:func:`read_file` (one image file), the TIFF/MRC header readers and the lazy frame indexing
they share. Import these from :mod:`.io` (their public home); this module imports no reader.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SimInputError
from .metadata import METADATA_KEY, MRC_SUFFIXES, SimMetadata, length_to_um, read_metadata
from .metadata import positive_or_none as _float_or_none

# refractive index of the OME immersion media (Objective/@Immersion) at ~550 nm
IMMERSION_INDEX = {"oil": 1.518, "water": 1.333, "waterdipping": 1.333, "glycerol": 1.474, "air": 1.0}



@dataclass
class RawFile:
    """Frames of a raw file in file order, with what its metadata told.

    frames: (F, Y, X) array in file order (dtype as stored).
    pixel_size_um, wavelength_nm, na: None when the file does not say.
    extra: this plugin's own metadata (parameters, layout) when present.
    z_step_um: the distance between z planes, µm (ImageJ ``spacing``, OME
    ``PhysicalSizeZ``, MRC/DV dz); None when the file does not say.
    """

    path: Path
    frames: np.ndarray
    pixel_size_um: float | None = None
    wavelength_nm: float | None = None
    na: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    immersion_index: float | None = None
    z_step_um: float | None = None

    @property
    def metadata(self) -> SimMetadata:
        """Return this plugin's metadata of the file, typed (:mod:`.metadata`; old keys read too)."""
        return read_metadata(self.extra)



@contextmanager
def quiet_mrc(path: Path, mmap: bool = True) -> Iterator[Any]:
    """Open an MRC/DV file read-only and permissive, mrcfile's header warnings silenced; yields it.

    ``mmap``: a memory map (no pixel is read until used), else the data read whole.
    """
    import mrcfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (mrcfile.mmap(path, mode="r", permissive=True) if mmap else mrcfile.open(path, permissive=True)) as mrc:
            yield mrc


@contextmanager
def broken_file_errors(path: Path) -> Iterator[None]:
    """Turn what a reader raises on a broken file into one SimInputError naming it (ours pass as they are)."""
    try:
        yield
    except SimInputError:
        raise
    except Exception as exc:  # tifffile, mrcfile and ngff-zarr raise many types for broken files
        raise SimInputError(f"cannot read {path.name}: {type(exc).__name__}: {exc}") from None


def index_frames(read: Callable[[int, int], np.ndarray], n_frames: int, key: Any) -> np.ndarray:
    """Index a lazy frame source: ``frames[key]``.

    ``read(start, stop)`` returns (n, Y, X); ``key``: an integer or a slice on the frame axis
    (further keys index each frame); only the frames asked for are read, except for a
    stepped slice.
    """
    key = key if isinstance(key, tuple) else (key,)
    first = key[0] if key else slice(None)
    if isinstance(first, (int, np.integer)):
        f = int(first) % n_frames
        return read(f, f + 1)[0][key[1:]]
    if not isinstance(first, slice):
        raise TypeError(f"unsupported index {first!r}")
    start, stop, step = first.indices(n_frames)
    rest = (slice(None), *key[1:])
    if step != 1:
        return read(0, n_frames)[first][rest]
    return read(start, max(start, stop))[rest]


class LazyFrames:
    """The array face of an on-demand frame source: ``shape`` (F, Y, X), ``ndim`` and indexing.

    A subclass (a frozen, picklable dataclass with ``frame_shape`` and ``dtype``) gives
    ``n_frames`` and ``read(start, stop)`` → (n, Y, X); that is all ``dask.array.from_array``
    and :func:`index_frames` need.
    """

    frame_shape: tuple[int, int]

    @property
    def n_frames(self) -> int:
        """Number of frames (F)."""
        raise NotImplementedError

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames start..stop-1 as a (n, Y, X) array."""
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int, int]:
        """(frames, Y, X), as dask.array.from_array needs."""
        return (self.n_frames, *self.frame_shape)

    @property
    def ndim(self) -> int:
        """Always 3: (frames, Y, X)."""
        return 3

    def __getitem__(self, key: Any) -> np.ndarray:
        return index_frames(self.read, self.n_frames, key)



def _tiff_metadata(tif: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if tif.is_ome and tif.ome_metadata:
        xml = tif.ome_metadata
        size = re.search(r'PhysicalSizeX="([^"]+)"', xml)
        unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', xml)
        if size:
            meta["pixel_size_um"] = length_to_um(_float_or_none(size.group(1)),
                                                  unit.group(1) if unit else "um")
        em = re.search(r'EmissionWavelength="([^"]+)"', xml)
        if em:
            em_unit = re.search(r'EmissionWavelengthUnit="([^"]+)"', xml)
            um = length_to_um(_float_or_none(em.group(1)), em_unit.group(1) if em_unit else "nm")
            meta["wavelength_nm"] = um * 1e3 if um else None
        na = re.search(r'LensNA="([^"]+)"', xml)
        if na:
            meta["na"] = _float_or_none(na.group(1))
        index = re.search(r'<(?:\w+:)?ObjectiveSettings[^>]*RefractiveIndex="([^"]+)"', xml)
        medium = re.search(r'<(?:\w+:)?Objective\b[^>]*Immersion="([^"]+)"', xml)
        if index and _float_or_none(index.group(1)):
            meta["immersion_index"] = _float_or_none(index.group(1))
        elif medium and medium.group(1).lower() in IMMERSION_INDEX:
            meta["immersion_index"] = IMMERSION_INDEX[medium.group(1).lower()]
        size_z = re.search(r'PhysicalSizeZ="([^"]+)"', xml)
        if size_z:
            unit_z = re.search(r'PhysicalSizeZUnit="([^"]+)"', xml)
            meta["z_step_um"] = length_to_um(_float_or_none(size_z.group(1)), unit_z.group(1) if unit_z else "um")
        desc = re.search(r"<Description>(.*?)</Description>", xml, re.S)
        if desc and METADATA_KEY in desc.group(1):  # our metadata in a batch OME-TIFF
            import html

            try:
                meta["extra"] = json.loads(html.unescape(desc.group(1)))[METADATA_KEY]
            except (ValueError, KeyError, TypeError):
                pass
    ij = tif.imagej_metadata or {}
    info = ij.get("Info")
    if isinstance(info, str) and METADATA_KEY in info:
        try:
            meta["extra"] = json.loads(info)[METADATA_KEY]
        except (ValueError, KeyError, TypeError):
            pass
    if not meta.get("pixel_size_um"):
        page = tif.pages[0]
        res = page.tags.get("XResolution")
        if res is not None:
            num, den = res.value
            ppu = num / den if den else 0.0
            unit = ij.get("unit", "um" if ij else None)
            if ppu > 0 and unit and unit not in ("pixel", "inch", "cm"):
                meta["pixel_size_um"] = length_to_um(1.0 / ppu, unit)
    if not meta.get("z_step_um") and ij.get("spacing") is not None and ij.get("unit", "pixel") != "pixel":
        meta["z_step_um"] = length_to_um(_float_or_none(ij.get("spacing")), ij.get("unit"))
    return meta


def _mrc_metadata(path: Path, voxel_x: float, voxel_z: float | None = None) -> dict[str, Any]:
    with open(path, "rb") as fh:
        header = fh.read(224)
    is_dv = header[96:98] in (b"\xa0\xc0", b"\xc0\xa0")
    pixel = _float_or_none(voxel_x)
    dz = _float_or_none(voxel_z)
    if pixel is not None and not is_dv and pixel > 5.0:  # MRC2014 stores Å
        pixel *= 1e-4
        dz = dz * 1e-4 if dz is not None else None
    meta: dict[str, Any] = {"pixel_size_um": pixel, "z_step_um": dz}
    for endian in ("<", ">"):
        wave = int(np.frombuffer(header[198:200], dtype=f"{endian}i2")[0])
        if 200 <= wave <= 1500:
            meta["wavelength_nm"] = float(wave)
            break
    return meta


class TiffLog:
    """Collects tifffile's log messages while a file is read, instead of printing them.

    ``with TiffLog(path) as log: ...`` then ``log.check()`` raises one SimInputError when
    tifffile reported the file as damaged (truncated, invalid page offsets, corrupted).
    """

    DAMAGED = ("invalid", "corrupt", "truncat", "damag", "unexpected end", "missing")

    def __init__(self, path: Path):
        import logging

        self.path = Path(path)
        self.messages: list[str] = []
        self._logger = logging.getLogger("tifffile")
        self._handler = _ListHandler(self.messages)

    def __enter__(self) -> TiffLog:
        self._saved = (self._logger.propagate, self._logger.handlers[:])
        self._logger.handlers = [self._handler]  # type: ignore[list-item]  # duck-typed: only handle() is called
        self._logger.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.propagate, self._logger.handlers = self._saved

    def check(self) -> None:
        """Raise one SimInputError when tifffile reported the file as damaged."""
        bad = [m for m in self.messages if any(w in m.lower() for w in self.DAMAGED)]
        if bad:
            text = re.sub(r"^<[^>]*>\s*", "", bad[0])
            raise SimInputError(f"{self.path.name} is truncated or damaged (the TIFF reader says: {text})")


class _ListHandler:  # a minimal logging handler (logging.Handler needs no subclassing here)
    def __init__(self, sink: list[str]):
        import logging

        self.sink = sink
        self.level = logging.WARNING

    def handle(self, record: Any) -> None:
        if record.levelno >= self.level:
            self.sink.append(record.getMessage())



def read_file(path: str | Path, require_frames: bool = True, allow_complex: bool = False) -> RawFile:
    """Read one TIFF/MRC image file; all leading axes are flattened into frames in file order.

    Complex data are refused unless ``allow_complex`` (OTF files). ``io.read_raw`` also takes
    folders, glob patterns and OME-Zarr stores.
    """
    path = Path(path)
    if not path.exists():
        raise SimInputError(f"file not found: {path}")
    if path.is_dir():
        raise SimInputError(f"{path} is a folder, not an image file")
    suffix = path.suffix.lower()
    meta: dict[str, Any] = {}
    with broken_file_errors(path):
        if suffix in MRC_SUFFIXES:
            with quiet_mrc(path, mmap=False) as mrc:
                if mrc.data is None:
                    raise ValueError("no image data")
                data = np.asarray(mrc.data).copy()
                voxel_x, voxel_z = float(mrc.voxel_size.x), float(mrc.voxel_size.z)
            meta = _mrc_metadata(path, voxel_x, voxel_z)
        else:
            import tifffile

            with TiffLog(path) as log, tifffile.TiffFile(path) as tif:
                data = tif.asarray()
                meta = _tiff_metadata(tif)
            log.check()
    data = np.asarray(data)
    if np.iscomplexobj(data) and not allow_complex:
        raise SimInputError(f"{path.name} holds complex values; SIM needs real intensities (write the "
                            "magnitude or the real part explicitly)")
    if data.ndim < 2 or (require_frames and min(data.shape[-2:]) < 2):
        raise SimInputError(f"{path.name} does not hold an image (shape {data.shape})")
    if data.ndim > 2 and data.shape[-1] in (3, 4) and data.shape[-3] > 4:
        raise SimInputError(f"{path.name} looks like an RGB image; SIM needs grey-level frames")
    if data.ndim == 2:
        if require_frames:
            raise SimInputError(
                f"{path.name} holds a single 2-D image; a raw SIM stack needs "
                "angles × phases frames"
            )
        frames = data
    else:
        frames = data.reshape(-1, *data.shape[-2:])
    extra = meta.get("extra") or {}
    optics = extra.get("optics", {})
    return RawFile(
        path=path,
        frames=frames,
        pixel_size_um=optics.get("pixel_size_um") or meta.get("pixel_size_um"),
        wavelength_nm=optics.get("wavelength_nm") or meta.get("wavelength_nm"),
        na=optics.get("na") or meta.get("na"),
        extra=extra,
        immersion_index=optics.get("immersion_index") or meta.get("immersion_index"),
        z_step_um=extra.get("z_step_um") or meta.get("z_step_um"),
    )

__all__ = ["IMMERSION_INDEX", "RawFile", "index_frames", "read_file", "TiffLog"]
