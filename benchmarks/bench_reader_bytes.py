"""Bytes the napari reader reads to decide whether it takes a file, and to open it, per kind of file.

Writes small files of each kind (ImageJ stack without axes, OME-TIFF with 2 channels, a
complex OTF, an RGB stack, a 2-D image, a one-frame stack, an MRC stack and a complex MRC,
a text file) into a temporary folder, then in a fresh process per file (imports done
before measuring) reads ``rchar`` of /proc/self/io around ``napari_get_reader(path)`` (the
decision) and around the reader call (opening), and prints a table. Linux only.

    python benchmarks/bench_reader_bytes.py [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _rchar() -> int:
    line = [x for x in Path("/proc/self/io").read_text().splitlines() if x.startswith("rchar")][0]
    return int(line.split()[1])


def child(path: str) -> None:
    import dask.array  # noqa: F401  - imports are not what we measure
    import mrcfile  # noqa: F401
    import tifffile  # noqa: F401

    from napari_sim_ml._reader import napari_get_reader
    from napari_sim_ml.engine import lazy, omezarr, sequence  # noqa: F401

    napari_get_reader(__file__)  # warm the code path on a file it refuses
    r0 = _rchar()
    reader = napari_get_reader(path)
    r1 = _rchar()
    layers = reader(path) if reader else []
    r2 = _rchar()
    print(json.dumps({"decide_mb": (r1 - r0) / 1e6, "open_mb": (r2 - r1) / 1e6, "accepted": reader is not None,
                      "lazy": [not isinstance(layer[0], np.ndarray) for layer in layers],
                      "shapes": [list(layer[0].shape) for layer in layers]}))


def write_files(d: Path) -> dict[str, Path]:
    import mrcfile
    import tifffile

    rng = np.random.default_rng(0)
    files = {}
    f = d / "stack_ij.tif"
    tifffile.imwrite(f, rng.integers(0, 4000, (45, 512, 512), dtype=np.uint16), imagej=True)
    files["ImageJ stack, no axes (45 × 512²)"] = f
    f = d / "multichannel.ome.tif"
    tifffile.imwrite(f, rng.integers(0, 4000, (2, 45, 512, 512), dtype=np.uint16), metadata={"axes": "CZYX"},
                     ome=True)
    files["OME-TIFF, 2 channels"] = f
    f = d / "complex.tif"
    tifffile.imwrite(f, (rng.random((64, 512, 512)) + 1j).astype(np.complex64))
    files["complex TIFF (OTF)"] = f
    f = d / "rgb.tif"
    tifffile.imwrite(f, rng.integers(0, 255, (30, 512, 512, 3), dtype=np.uint8), photometric="rgb")
    files["RGB stack"] = f
    f = d / "big2d.tif"
    tifffile.imwrite(f, rng.random((4096, 4096)).astype(np.float32))
    files["2-D image 4096²"] = f
    f = d / "one.tif"
    tifffile.imwrite(f, rng.random((1, 2048, 2048)).astype(np.float32))
    files["1-frame stack"] = f
    f = d / "stack.mrc"
    with mrcfile.new(f, overwrite=True) as m:
        m.set_data(rng.random((45, 512, 512)).astype(np.float32))
    files["MRC stack (45 × 512²)"] = f
    f = d / "cmplx.mrc"
    with mrcfile.new(f, overwrite=True) as m:
        m.set_data((rng.random((32, 512, 257)) + 0j).astype(np.complex64))
    files["MRC complex OTF"] = f
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    folder = Path(tempfile.mkdtemp(prefix="bench_reader_bytes_", dir=args.dir))
    try:
        print("| file | size (MB) | accepted | read to decide (MB) | read to open (MB) | lazy |")
        print("|---|---|---|---|---|---|")
        for name, path in write_files(folder).items():
            out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True)
            line = [x for x in out.stdout.splitlines() if x.startswith("{")]
            if not line:
                raise RuntimeError(out.stderr[-2000:])
            r = json.loads(line[-1])
            lazy = ", ".join("yes" if x else "no" for x in r["lazy"]) or "–"
            print(f"| {name} | {path.stat().st_size / 1e6:.1f} | {'yes' if r['accepted'] else 'no'} | "
                  f"{r['decide_mb']:.3f} | {r['open_mb']:.3f} | {lazy} |", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
