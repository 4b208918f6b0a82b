"""Image sequences: a folder, or a glob pattern, of TIFF/MRC files read as one raw stack.

Many acquisition programs write one file per frame (``HE_00.tif`` … ``HE_14.tif``)
or one multi-frame file per time point. A *sequence* is the files of a folder (not
recursive, hidden files skipped) or the files a glob pattern (``'cell_*.tif'``)
matches, sorted **naturally** (``frame_2`` before ``frame_10``), their frames put
one after the other in file order: a file of shape (…, Y, X) gives prod(…) frames,
a 2-D file one frame. The frame layout (angles × phases × planes, order) then
applies exactly as for one stacked file. Metadata (pixel size, optics, z step) come
from the first file; every file must have the same frame size and pixel type.

Trailing average frames: some programs add the mean of the raw frames as a last
file (the 3-beam DL-SIM set: HE_15.tif = mean of HE_00…HE_14). Such a frame is
never dropped silently: when the frame count fits no usual layout but all frames
but the last do, and the last equals the mean of the others, the reader records
it (``extra["sequence"]["average_frame"]``) and the layout error names it and asks
for ``--frames`` (e.g. ``--frames 0-14``), which selects frames by index.
"""

from __future__ import annotations

import glob
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SimInputError
from .metadata import MRC_SUFFIXES, RAW_SUFFIXES
from .rawfile import LazyFrames, RawFile, broken_file_errors, quiet_mrc, read_file

SEQUENCE_SUFFIXES = RAW_SUFFIXES  # the one list (engine.metadata)
USUAL_SET_SIZES = (9, 15, 25, 6, 12)  # angles × phases of the layouts guess_layout knows
AVERAGE_CHECK_MAX_FRAMES = 256  # larger sequences are not scanned for an average frame
AVERAGE_TOLERANCE = 0.01  # |last − mean(others)| / mean(others), on a subsample


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: frame_2 < frame_10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def is_zarr_store(path: Path) -> bool:
    """Tell whether ``path`` is a folder that is a zarr group or array (v2 or v3)."""
    return path.is_dir() and any((path / n).is_file() for n in ("zarr.json", ".zgroup", ".zarray", ".zattrs"))


def is_sequence(path: str | Path) -> bool:
    """Tell whether ``path`` is a sequence: a non-zarr folder, or a glob pattern that is not an existing file."""
    p = Path(path)
    if p.is_dir():
        return not is_zarr_store(p)
    return has_glob(str(path)) and not p.exists()


def sequence_files(spec: str | Path) -> list[Path]:
    """Return the files of a folder or glob pattern, naturally sorted; raises when there are none."""
    p = Path(spec)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                 and f.suffix.lower() in SEQUENCE_SUFFIXES]
        where = f"folder {p}"
    else:
        files = [Path(f) for f in glob.glob(str(Path(spec).expanduser())) if Path(f).is_file()
                 and not Path(f).name.startswith(".")]
        bad = [f.name for f in files if f.suffix.lower() not in SEQUENCE_SUFFIXES]
        if bad:
            raise SimInputError(f"the pattern {spec} matches files that are not TIFF/MRC images: {bad[0]}")
        where = f"pattern {spec}"
    if not files:
        raise SimInputError(f"no TIFF or MRC files in the {where}")
    kinds = {f.suffix.lower() in MRC_SUFFIXES for f in files}
    if len(kinds) > 1:
        raise SimInputError(f"the {where} mixes TIFF and MRC files; one sequence must be of one kind")
    return sorted(files, key=lambda f: natural_key(f.name))


def parse_frames(spec: str, n_frames: int) -> list[int]:
    """'0-14' / '0-4,10-14' / '3' (inclusive, 0-based; negative counts from the end) → indices."""
    out: list[int] = []
    for item in str(spec).replace(" ", "").split(","):
        m = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", item)
        if not m:
            raise SimInputError(f"--frames takes indices and ranges such as 0-14 or 0-4,10-14, not '{spec}'")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        a, b = (a + n_frames if a < 0 else a), (b + n_frames if b < 0 else b)
        if not (0 <= a < n_frames and 0 <= b < n_frames) or b < a:
            raise SimInputError(f"--frames {spec}: the stack has frames 0-{n_frames - 1}")
        out += range(a, b + 1)
    return out


def select_frames(raw: RawFile, spec: str | None) -> RawFile:
    """Return the RawFile with only the frames ``spec`` names (numpy or dask frames); unchanged for None."""
    if not spec:
        return raw
    idx = parse_frames(spec, raw.frames.shape[0])
    extra = {**raw.extra, "frames_selected": str(spec)}
    extra.pop("layout", None) if len(idx) != raw.frames.shape[0] else None
    return RawFile(raw.path, raw.frames[np.asarray(idx)], raw.pixel_size_um, raw.wavelength_nm, raw.na,
                   extra, z_step_um=raw.z_step_um)


def average_frame_hint(raw: RawFile) -> str:
    """'; the last frame (X) is the average …' when the reader flagged a trailing average, else ''."""
    seq = raw.extra.get("sequence") or {}
    index = seq.get("average_frame")
    if index is None:
        return ""
    name = (seq.get("files") or ["?"])[-1]
    return (f"; the last frame ({name}) is the average of the others (a widefield image, not a raw frame): "
            f"select the raw frames with --frames 0-{index - 1}")


def _is_trailing_average(frames: Any) -> bool:
    n = frames.shape[0]
    if n < 4 or n > AVERAGE_CHECK_MAX_FRAMES:
        return False
    if any(n % s == 0 for s in USUAL_SET_SIZES) or not any((n - 1) % s == 0 for s in USUAL_SET_SIZES):
        return False
    sub = np.asarray(frames[:, ::4, ::4], dtype=np.float64)
    mean = sub[:-1].mean(axis=0)
    level = float(np.abs(mean).mean())
    return level > 0 and float(np.abs(sub[-1] - mean).mean()) / level < AVERAGE_TOLERANCE


@dataclass(frozen=True)
class SequenceSource(LazyFrames):
    """Frames (F, Y, X) of a sequence of files, read on demand; picklable.

    paths: the files in order; counts: frames per file. Every read opens the file it
    needs and closes it again, so a sequence of thousands of files holds no file open.
    """

    paths: tuple[Path, ...]
    counts: tuple[int, ...]
    frame_shape: tuple[int, int]
    dtype: np.dtype

    @property
    def n_frames(self) -> int:
        """Frames in all files together."""
        return int(sum(self.counts))

    def _read_file(self, i: int, start: int, stop: int) -> np.ndarray:
        path = self.paths[i]
        if path.suffix.lower() in MRC_SUFFIXES:
            with quiet_mrc(path) as mrc:
                return np.array(np.asarray(mrc.data).reshape(-1, *self.frame_shape)[start:stop])
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if len(series.pages) < self.counts[i]:  # frames stored as samples of a page (planar)
                data = series.asarray(maxworkers=1).reshape(-1, *self.frame_shape)[start:stop]
            else:
                data = tif.asarray(key=range(start, stop), series=0, maxworkers=1)
        return np.asarray(data).reshape(-1, *self.frame_shape)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames start..stop-1 as a (n, Y, X) array."""
        out = np.empty((max(stop - start, 0), *self.frame_shape), dtype=self.dtype)
        bounds = np.concatenate([[0], np.cumsum(self.counts)])
        pos = 0
        for i in range(len(self.paths)):
            a, b = max(start, bounds[i]), min(stop, bounds[i + 1])
            if b > a:
                out[pos:pos + b - a] = self._read_file(i, int(a - bounds[i]), int(b - bounds[i]))
                pos += b - a
        return out


def _probe(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a file's image data without reading its pixels."""
    with broken_file_errors(path):
        if path.suffix.lower() in MRC_SUFFIXES:
            with quiet_mrc(path) as mrc:
                if mrc.data is None:
                    raise ValueError("no image data")
                return tuple(mrc.data.shape), np.dtype(mrc.data.dtype)
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if "C" in series.axes[:-2] and series.shape[series.axes.index("C")] > 1:
                raise SimInputError(f"{path.name} has several channels; sequences of multi-channel files "
                                    "are not supported (split the channels first)")
            return tuple(series.shape), np.dtype(series.dtype)


def _sequence_raw(spec: str | Path, files: list[Path], frames: Any, counts: list[int]) -> RawFile:
    first = read_raw_header(files[0])
    extra = {k: v for k, v in first.extra.items() if k != "layout"} if len(files) > 1 else dict(first.extra)
    seq: dict[str, Any] = {"files": [f.name for f in files], "frames_per_file": counts}
    if _is_trailing_average(frames):
        seq["average_frame"] = int(frames.shape[0] - 1)
    extra["sequence"] = seq
    return RawFile(Path(spec), frames, first.pixel_size_um, first.wavelength_nm, first.na, extra,
                   z_step_um=first.z_step_um)


def read_raw_header(path: Path) -> RawFile:
    """Read the metadata of one file, without reading its pixels (``frames`` is an empty array)."""
    from .rawfile import _mrc_metadata, _tiff_metadata

    with broken_file_errors(path):
        if path.suffix.lower() in MRC_SUFFIXES:
            with quiet_mrc(path) as mrc:
                voxel = mrc.voxel_size
            meta = _mrc_metadata(path, float(voxel.x), float(voxel.z))
        else:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                meta = _tiff_metadata(tif)
    extra = meta.get("extra") or {}
    optics = extra.get("optics", {})
    return RawFile(path, np.empty((0, 0, 0)), optics.get("pixel_size_um") or meta.get("pixel_size_um"),
                   optics.get("wavelength_nm") or meta.get("wavelength_nm"), optics.get("na") or meta.get("na"),
                   extra, z_step_um=extra.get("z_step_um") or meta.get("z_step_um"))


def _shapes(files: list[Path]) -> tuple[list[int], tuple[int, int], np.dtype]:
    counts, frame_shape, dtype = [], None, None
    for f in files:
        shape, dt = _probe(f)
        if len(shape) < 2:
            raise SimInputError(f"{f.name} does not hold an image (shape {shape})")
        if frame_shape is None:
            frame_shape, dtype = tuple(shape[-2:]), dt
        elif tuple(shape[-2:]) != frame_shape:
            raise SimInputError(f"{f.name} has frames of {shape[-2]} × {shape[-1]} px but {files[0].name} "
                                f"has {frame_shape[0]} × {frame_shape[1]}; a sequence needs one frame size")
        elif dt != dtype:
            raise SimInputError(f"{f.name} stores {dt} pixels but {files[0].name} stores {dtype}; "
                                "a sequence needs one pixel type")
        counts.append(math.prod(shape[:-2]))
    return counts, frame_shape, dtype  # type: ignore[return-value]


def read_sequence(spec: str | Path) -> RawFile:
    """Read a folder or glob pattern of TIFF/MRC files into one RawFile of frames (F, Y, X)."""
    files = sequence_files(spec)
    counts, _, _ = _shapes(files)
    parts = []
    for f in files:
        data = read_file(f, require_frames=False).frames
        parts.append(data[None] if data.ndim == 2 else data)
    return _sequence_raw(spec, files, np.concatenate(parts), counts)


def open_sequence_lazy(spec: str | Path) -> tuple[RawFile, SequenceSource]:
    """Open a folder or glob pattern as one lazy stack: (RawFile with dask frames, its source)."""
    import dask.array as da
    from dask.base import tokenize

    files = sequence_files(spec)
    counts, frame_shape, dtype = _shapes(files)
    source = SequenceSource(tuple(f.resolve() for f in files), tuple(counts), frame_shape, dtype)
    stamp = [(str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files]
    frames = da.from_array(source, chunks=(1, *frame_shape), asarray=False, name=f"sequence-{tokenize(stamp)}")
    return _sequence_raw(spec, files, frames, counts), source



def is_frame_folder(path: str | Path) -> bool:
    """Tell whether ``path`` is a folder (not a zarr store) whose image files all hold one 2-D frame.

    Such a folder is one stack, not many inputs.
    """
    p = Path(path)
    if not is_sequence(p) or not p.is_dir():
        return False
    try:
        files = sequence_files(p)
        return all(len(_probe(f)[0]) == 2 for f in files)
    except SimInputError:
        return False


__all__ = ["SequenceSource", "average_frame_hint", "is_frame_folder", "is_sequence", "natural_key",
           "open_sequence_lazy", "parse_frames", "read_sequence", "select_frames", "sequence_files"]
