"""Lazy raw stacks and lazy reconstruction with dask.

A raw file (TIFF, OME-TIFF, ImageJ hyperstack, MRC/DV) is opened as a dask array of
frames (F, Y, X) in file order without reading its pixels: TIFF pages are read on
demand (tifffile reads only the pages asked for; this measured ~10× faster per
frame than going through its zarr store), MRC frames from a memory map. The frame
order is applied lazily (:func:`arrange_lazy` gives (T, Z, A, P, Y, X) with one
plane per chunk) and every plane is reconstructed by the engine's own functions
in a dask task (:func:`reconstruct_lazy` gives (T, Z, 2Y, 2X) float32), so a
lazy result equals the plane-by-plane result exactly.

The reading objects pickle as a path and a few numbers: they work with the
threaded, the multiprocessing and the dask.distributed schedulers (each process
opens the file once and keeps it open).
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SimInputError
from .io import FrameLayout, RawFile, TiffLog, _mrc_metadata, _tiff_metadata, arrange_frames
from .metadata import MRC_SUFFIXES
from .planejob import PlaneJob, make_job, reconstruct_lazy  # noqa: F401  (importable from here, as before)
from .rawfile import LazyFrames, broken_file_errors, quiet_mrc

# Open files per process: key -> (lock, TiffFile or MRC data, closer)
_HANDLES: dict[tuple, tuple[threading.Lock, Any, Any]] = {}
_HANDLES_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_mtime_ns, st.st_size)


def _open_handle(path: Path, kind: str) -> tuple[threading.Lock, Any]:
    """Return the open file (a TiffFile, or an MRC memory map's data), opened once per process."""
    key = _file_key(path) + (kind,)
    with _HANDLES_LOCK:
        if key not in _HANDLES:
            if kind == "mrc":
                import mrcfile

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mrc = mrcfile.mmap(path, mode="r", permissive=True)
                if mrc.data is None:
                    mrc.close()
                    raise SimInputError(f"cannot read {path.name}: no image data")
                _HANDLES[key] = (threading.Lock(), mrc.data, mrc.close)
            else:
                import tifffile

                with TiffLog(path):
                    tif = tifffile.TiffFile(path)
                tif.pages.useframes = True  # light page objects, parsed once and kept
                tif.pages.cache = True
                _HANDLES[key] = (threading.Lock(), tif, tif.close)
        lock, array, _ = _HANDLES[key]
    return lock, array


def close_files(path: str | Path | None = None) -> None:
    """Close the files this process keeps open (all, or those of ``path``)."""
    with _HANDLES_LOCK:
        for key in list(_HANDLES):
            if path is None or key[0] == str(Path(path)):
                _, _, closer = _HANDLES.pop(key)
                try:
                    closer()
                except Exception:  # closing is best effort
                    pass


@dataclass(frozen=True)
class FrameSource(LazyFrames):
    """A file's frames (F, Y, X) in file order, read on demand; picklable.

    lead_shape: the file's axes before Y, X; channel_axis/channel: an axis of
    lead_shape fixed to one index (a channel) and left out of the frames.
    """

    path: Path
    kind: str
    lead_shape: tuple[int, ...]
    frame_shape: tuple[int, int]
    dtype: np.dtype
    channel_axis: int | None = None
    channel: int = 0

    @property
    def n_frames(self) -> int:
        """Frames in the selected channel (all leading axes but the channel axis)."""
        return math.prod(s for i, s in enumerate(self.lead_shape) if i != self.channel_axis)

    def _index(self, frame: int) -> tuple[int, ...]:
        free = [s for i, s in enumerate(self.lead_shape) if i != self.channel_axis]
        idx = list(np.unravel_index(frame, free)) if free else []
        if self.channel_axis is not None:
            idx.insert(self.channel_axis, np.intp(self.channel))
        return tuple(int(i) for i in idx)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames start..stop-1 as a (n, Y, X) array."""
        lock, array = _open_handle(self.path, self.kind)
        out = np.empty((stop - start, *self.frame_shape), dtype=self.dtype)
        with lock:
            if self.kind == "mrc":
                out[...] = array.reshape(-1, *self.frame_shape)[start:stop]
            elif stop > start:
                # the series' pages of these frames only (read_raw reads series 0 whole)
                if self.channel_axis is None:
                    pages: Any = range(start, stop)
                else:
                    pages = [int(np.ravel_multi_index(self._index(f), self.lead_shape)) for f in range(start, stop)]
                if len(array.series[0].pages) < self.n_frames:  # frames stored as samples of a page
                    data = array.series[0].asarray(maxworkers=1).reshape(-1, *self.frame_shape)[start:stop]
                else:
                    data = array.asarray(key=pages, series=0, maxworkers=1)
                out[...] = data.reshape(out.shape)
        return out


def open_lazy(path: str | Path, channel: int | None = None) -> tuple[RawFile, Any]:
    """Open a raw file without reading its pixels.

    Returns a :class:`RawFile` whose ``frames`` is a dask array (F, Y, X) in file
    order (one frame per chunk; metadata as :func:`io.read_raw` reads it) and the
    :class:`FrameSource` behind it. Files with a channel axis (OME 'C' of size > 1)
    need ``channel``; all other leading axes are flattened into frames, as
    read_raw does. A folder or glob pattern (a sequence of files, see
    :mod:`.sequence`) and an OME-Zarr store (:mod:`.omezarr`) open the same way;
    their second element is then the dask array of frames itself.
    """
    import dask.array as da

    from .sequence import is_sequence, is_zarr_store

    if is_sequence(path):
        from .sequence import open_sequence_lazy

        raw_seq, _ = open_sequence_lazy(path)
        return raw_seq, raw_seq.frames
    if is_zarr_store(Path(path)):
        from .omezarr import open_omezarr_lazy

        raw_zarr = open_omezarr_lazy(path, channel)
        return raw_zarr, raw_zarr.frames
    path = Path(path)
    if not path.exists():
        raise SimInputError(f"file not found: {path}")
    if path.is_dir():
        raise SimInputError(f"{path} is a folder, not an image file")
    kind = "mrc" if path.suffix.lower() in MRC_SUFFIXES else "tiff"
    channel_axis = None
    with broken_file_errors(path):
        if kind == "mrc":
            with quiet_mrc(path) as mrc:
                if mrc.data is None:
                    raise ValueError("no image data")
                shape, dtype = tuple(mrc.data.shape), np.dtype(mrc.data.dtype)
                voxel_x, voxel_z = float(mrc.voxel_size.x), float(mrc.voxel_size.z)
            meta = _mrc_metadata(path, voxel_x, voxel_z)
        else:
            import tifffile

            with TiffLog(path) as log, tifffile.TiffFile(path) as tif:
                if not tif.series:
                    raise ValueError("no image data")
                series = tif.series[0]
                shape, dtype, axes = tuple(series.shape), np.dtype(series.dtype), series.axes
                meta = _tiff_metadata(tif)
            log.check()
            if "C" in axes[:-2] and shape[axes.index("C")] > 1 and not (len(shape) > 2 and shape[-1] in (3, 4)):
                channel_axis = axes.index("C")
    if dtype.kind == "c":
        raise SimInputError(f"{path.name} holds complex values; SIM needs real intensities (write the "
                            "magnitude or the real part explicitly)")
    if len(shape) < 3 or min(shape[-2:]) < 2:
        raise SimInputError(f"{path.name} holds a single 2-D image (shape {shape}); a raw SIM stack "
                            "needs angles × phases frames")
    if shape[-1] in (3, 4) and shape[-3] > 4:
        raise SimInputError(f"{path.name} looks like an RGB image; SIM needs grey-level frames")
    if channel_axis is not None:
        n_channels = shape[channel_axis]
        if channel is None:
            raise SimInputError(f"{path.name} has {n_channels} channels; choose one with --channel")
        if not 0 <= channel < n_channels:
            raise SimInputError(f"{path.name} has channels 0-{n_channels - 1}; --channel {channel} is not one")
    source = FrameSource(path.resolve(), kind, shape[:-2], shape[-2:], dtype, channel_axis,
                         (channel or 0) if channel_axis is not None else 0)  # not None there: checked above
    frames = da.from_array(source, chunks=(1, *source.frame_shape), asarray=False,
                           name=f"frames-{_token(source)}")
    extra = meta.get("extra") or {}
    optics = extra.get("optics", {})
    raw = RawFile(path=path, frames=frames,  # type: ignore[arg-type]  # a dask array
                  pixel_size_um=optics.get("pixel_size_um") or meta.get("pixel_size_um"),
                  wavelength_nm=optics.get("wavelength_nm") or meta.get("wavelength_nm"),
                  na=optics.get("na") or meta.get("na"), extra=extra,
                  immersion_index=optics.get("immersion_index") or meta.get("immersion_index"),
                  z_step_um=extra.get("z_step_um") or meta.get("z_step_um"))
    return raw, source


def _token(*objs: Any) -> str:
    from dask.base import tokenize

    return tokenize(*[(str(o.path), o.channel, _file_key(o.path)) if isinstance(o, FrameSource) else o
                      for o in objs])


def arrange_lazy(frames: Any, layout: FrameLayout) -> Any:
    """Arrange (F, Y, X) frames in file order as a (T, Z, A, P, Y, X) dask array, one plane per chunk.

    The frames are grouped into chunks of one time point (A·P·Z frames), reordered with
    :func:`io.arrange_frames` (a lazy reshape/transpose) and split into planes.

    Parameters
    ----------
    frames : dask.array.Array or FrameSource
        (F, Y, X) frames; the file's :class:`FrameSource` is faster (one read per time point).
    layout : FrameLayout
        Angles, phases, z planes and frame order.

    Returns
    -------
    dask.array.Array
        (T, Z, A, P, Y, X), chunks of one plane (1, 1, A, P, Y, X).

    Raises
    ------
    SimInputError
        The frame count is not a multiple of A·P·Z.
    """
    import dask.array as da

    per = layout.frames_per_set
    lazy: Any = frames
    if isinstance(frames, FrameSource):
        chunk = per if frames.n_frames % per == 0 else 1
        lazy = da.from_array(frames, chunks=(chunk, *frames.frame_shape), asarray=False,
                             name=f"frames-{_token(frames)}-{chunk}")
    if lazy.shape[0] % per == 0 and any(c % per for c in lazy.chunks[0]):
        lazy = lazy.rechunk({0: per})
    stack: Any = arrange_frames(lazy, layout)  # (lazy: a dask array) raises the user's error for a wrong frame count
    return stack.rechunk((1, 1, *stack.shape[2:]))


def estimation_plane(stack: Any, time: int | str = 0, z: int | None = None) -> Any:
    """Return the lazy plane (A, P, Y, X) to estimate the pattern on.

    That of time point ``time`` (an index) or the mean over all time points ('mean'), at plane
    ``z`` (default: the middle one).
    """
    n_t, n_z = stack.shape[:2]
    z = n_z // 2 if z is None else z
    if not 0 <= z < n_z:
        raise SimInputError(f"plane {z} does not exist: the stack has {n_z} planes")
    if time == "mean":
        return stack[:, z].astype(np.float32).mean(axis=0)
    t = int(time)
    if not -n_t <= t < n_t:
        raise SimInputError(f"time point {t} does not exist: the stack has {n_t}")
    return stack[t, z]


__all__ = [
    "FrameSource",
    "PlaneJob",
    "arrange_lazy",
    "close_files",
    "estimation_plane",
    "make_job",
    "open_lazy",
    "reconstruct_lazy",
]
