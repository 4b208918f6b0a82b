"""Opening a large raw stack with the napari reader: time and memory to accept and open it.

Writes a ~1 GB uint16 stack (``--frames`` × 512 × 512) in four flavours — an ImageJ
TIFF (as this plugin writes), a multi-page TIFF with tifffile's "shaped" description,
a bare multi-page TIFF without any description (as many acquisition programs write:
every page header must be walked) and an OME-Zarr store — then, in a fresh process per run (imports done before timing),
calls ``napari_get_reader(path)`` and the returned reader function, as napari does.
Reports the median wall time of the two calls together and the peak resident
memory they added (VmHWM after − VmRSS before), over ``--repeat`` runs. The files
are deleted afterwards.

    python benchmarks/bench_reader.py [--frames 2000] [--repeat 3] [--dir /tmp] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 512


def _status_mb(key: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(text.split(f"{key}:")[1].split()[0]) / 1024


def child(path: str) -> None:
    """One open, timed, in this fresh process; prints a JSON line."""
    import dask.array  # noqa: F401  - imports are not what we time
    import tifffile  # noqa: F401
    import zarr  # noqa: F401

    from napari_sim_ml._reader import napari_get_reader
    from napari_sim_ml.engine import lazy, omezarr, sequence  # noqa: F401

    try:
        import ngff_zarr  # noqa: F401
    except ImportError:
        pass
    before = _status_mb("VmRSS")
    t0 = time.perf_counter()
    reader = napari_get_reader(path)
    layers = reader(path) if reader else []
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    data = layers[0][0] if layers else None
    print(json.dumps({"seconds": seconds, "added_peak_mb": peak - before, "lazy": not isinstance(data, np.ndarray),
                      "shape": list(data.shape) if data is not None else None}))


def write_files(folder: Path, n_frames: int) -> dict[str, Path]:
    import tifffile

    rng = np.random.default_rng(0)
    block = rng.integers(100, 4000, (9, SIZE, SIZE), dtype=np.uint16)

    def frames():
        for i in range(n_frames):
            yield block[i % 9]

    paths = {"ImageJ TIFF": folder / "big_ij.tif", "plain TIFF": folder / "big_plain.tif",
             "bare TIFF": folder / "big_bare.tif", "OME-Zarr": folder / "big.ome.zarr"}
    with tifffile.TiffWriter(paths["ImageJ TIFF"], imagej=True) as tw:
        tw.write(frames(), shape=(n_frames, SIZE, SIZE), dtype=np.uint16, resolution=(12.5, 12.5),
                 metadata={"unit": "um", "axes": "ZYX"})
    with tifffile.TiffWriter(paths["plain TIFF"], bigtiff=True) as tw:
        tw.write(frames(), shape=(n_frames, SIZE, SIZE), dtype=np.uint16)
    with tifffile.TiffWriter(paths["bare TIFF"], bigtiff=True) as tw:  # no description: pages must be walked
        for frame in frames():
            tw.write(frame, metadata=None, contiguous=False)
    from napari_sim_ml.engine.omezarr import create_omezarr

    array = create_omezarr(paths["OME-Zarr"], (1, n_frames, SIZE, SIZE), 0.08, 0.125, {"kind": "raw"},
                           dtype=np.uint16)
    for i in range(0, n_frames, 100):
        array[i:i + 100] = np.stack([block[j % 9] for j in range(i, min(i + 100, n_frames))])
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000, help="frames of 512² uint16 (2000 ≈ 1 GB)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    folder = Path(tempfile.mkdtemp(prefix="bench_reader_", dir=args.dir))
    results = []
    try:
        paths = write_files(folder, args.frames)
        for name, path in paths.items():
            size = (sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir()
                    else path.stat().st_size) / 2**30
            runs = []
            for _ in range(args.repeat):
                out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True,
                                     text=True, timeout=600)
                line = [x for x in out.stdout.splitlines() if x.startswith("{")]
                if out.returncode or not line:
                    raise RuntimeError(out.stderr[-2000:])
                runs.append(json.loads(line[-1]))
            row = {"file": name, "size_gib": size, "shape": runs[0]["shape"], "lazy": runs[0]["lazy"],
                   "median_s": statistics.median(r["seconds"] for r in runs),
                   "max_added_peak_mb": max(r["added_peak_mb"] for r in runs)}
            results.append(row)
            if not args.json:
                print(f"{name:>12}: {size:.2f} GiB {tuple(row['shape'])}, lazy {row['lazy']}: open "
                      f"{row['median_s']:.3f} s (median of {args.repeat}), peak memory added "
                      f"{row['max_added_peak_mb']:.0f} MB", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
