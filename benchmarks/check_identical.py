"""Are the command line's outputs on the samples unchanged by a refactor?

``record DIR`` runs a fixed set of commands (``demo``, ``estimate``, ``reconstruct`` with
``--params`` / ``--widefield`` / ``--filter hifi`` / ``--otf-attenuation`` / a two-time-point
stack, the PINN with ``--uncertainty`` and ``--residual`` on a 64² simulation, ``batch`` to
OME-TIFF and OME-Zarr, ``batch --method pinn``) into ``DIR`` with the package on ``PYTHONPATH``;
``compare A B`` then compares every output of two records:

* image data (TIFF pages, Zarr arrays) must be bit-identical (``np.array_equal`` on the
  stored dtype, NaN-aware);
* the JSON files must be equal;
* the plugin metadata stored in each image is compared key by key after ``normalise``
  (paths of the record folder, times): the keys that differ are listed, so a schema change
  shows as exactly the keys it renamed or added;
* the standard output of each command is compared with the timings masked.

    PYTHONPATH=src python benchmarks/check_identical.py record /tmp/before   # on the old commit
    PYTHONPATH=src python benchmarks/check_identical.py record /tmp/after    # on the new one
    python benchmarks/check_identical.py compare /tmp/before /tmp/after

Exit status 0 when every array and JSON file is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_data"
FIL, MESH = SAMPLES / "filaments_3x3.tif", SAMPLES / "mesh_3beam_3x5.tif"


def commands(d: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) of every recorded command; inputs the commands need are made first."""
    return [
        ("demo", ["demo", str(FIL), "--out", str(d / "demo")]),
        ("estimate", ["estimate", str(MESH), "--json", str(d / "est_mesh.json")]),
        ("rec_params", ["reconstruct", str(MESH), "-o", str(d / "rec_mesh.tif"), "--widefield",
                        str(d / "wf_mesh.tif"), "--params", str(SAMPLES / "mesh_3beam_3x5_params.json")]),
        ("rec_hifi", ["reconstruct", str(FIL), "-o", str(d / "rec_hifi.tif"), "--filter", "hifi"]),
        ("rec_att", ["reconstruct", str(FIL), "-o", str(d / "rec_att.tif"), "--otf-attenuation", "0.5",
                     "--wiener", "0.05", "--background", "90", "--orders", "1"]),
        ("rec_time", ["reconstruct", str(d / "in" / "time2.tif"), "-o", str(d / "rec_time.tif"),
                      "--widefield", str(d / "wf_time.tif")]),
        ("rec_pinn", ["reconstruct", str(d / "in" / "small.tif"), "-o", str(d / "pinn.tif"), "--method", "pinn",
                      "--iterations", "30", "--uncertainty", str(d / "pinn_sigma.tif"), "--uncertainty-samples",
                      "2", "--residual", str(d / "pinn_res.tif"), "--widefield", str(d / "pinn_wf.tif"),
                      "--params", str(d / "in" / "small_params.json")]),
        ("batch", ["batch", str(d / "in" / "folder"), "-o", str(d / "batch"), "--no-progress",
                   "--workers", "2"]),
        ("batch_zarr", ["batch", str(d / "in" / "time2.tif"), "-o", str(d / "batch_zarr"), "--format", "ome-zarr",
                        "--estimate-on", "mean", "--no-progress", "--workers", "2"]),
        ("batch_pinn", ["batch", str(d / "in" / "small.tif"), "-o", str(d / "batch_pinn"), "--method", "pinn",
                        "--iterations", "10", "--params", str(d / "in" / "small_params.json"),
                        "--no-progress", "--workers", "1"]),
    ]


def make_inputs(d: Path) -> None:
    import tifffile

    from napari_sim_ml.engine.io import read_raw, save_tiff

    (d / "in" / "folder").mkdir(parents=True)
    for f in (FIL, MESH):
        shutil.copy(f, d / "in" / "folder" / f.name)
    raw = read_raw(FIL)
    two = np.concatenate([raw.frames, raw.frames[:, ::-1]])  # two time points, the second mirrored
    save_tiff(d / "in" / "time2.tif", two, raw.pixel_size_um or 0.08, raw.extra)
    run(d, "simulate", ["simulate", "-o", str(d / "in" / "small.tif"), "--size", "64", "--seed", "3"])
    assert tifffile.imread(d / "in" / "small.tif").shape[0] == 9


def run(d: Path, name: str, argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "napari_sim_ml.cli", *argv], capture_output=True, text=True,
                          env=env)
    (d / "logs").mkdir(exist_ok=True)
    (d / "logs" / f"{name}.out").write_text(proc.stdout)
    (d / "logs" / f"{name}.err").write_text(proc.stderr)
    (d / "logs" / f"{name}.rc").write_text(str(proc.returncode))
    print(f"{name}: exit {proc.returncode}")


def record(d: Path) -> None:
    if d.exists():
        raise SystemExit(f"{d} exists")
    d.mkdir(parents=True)
    make_inputs(d)
    for name, argv in commands(d):
        run(d, name, argv)


# ---------------------------------------------------------------- compare
TIMING = re.compile(r"\d+(\.\d+)? ?(s|planes/s|/s)\b|in \d+(\.\d+)? s")


def normalise(obj: Any, root: str) -> Any:
    """Record-folder paths replaced by '<D>', timings and devices dropped."""
    if isinstance(obj, dict):
        return {k: normalise(v, root) for k, v in obj.items() if k not in ("seconds",)}
    if isinstance(obj, list):
        return [normalise(v, root) for v in obj]
    if isinstance(obj, str):
        return obj.replace(root, "<D>")
    return obj


def image_data(path: Path) -> list[np.ndarray]:
    if path.suffix == ".zarr" or path.is_dir():
        import zarr

        out: list[np.ndarray] = []

        def walk(group: Any) -> None:
            out.extend(np.asarray(group[k]) for k in sorted(group.array_keys()))
            for k in sorted(group.group_keys()):
                walk(group[k])

        walk(zarr.open_group(str(path), mode="r"))
        return out
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return [tif.asarray()]


def plugin_meta(path: Path) -> dict[str, Any]:
    from napari_sim_ml.engine.outputs import read_output_metadata

    if path.suffix == ".zarr" or path.is_dir():
        meta = read_output_metadata(path)
        return meta or {}
    from napari_sim_ml.engine.io import read_raw

    return read_raw(path, require_frames=False).extra


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def outputs(d: Path) -> list[Path]:
    made_here = ("in/time2.tif", "in/folder")  # inputs this script wrote, not the command line
    found = [p for p in d.rglob("*") if p.suffix in (".tif", ".json")
             and not str(p.relative_to(d)).startswith(made_here)
             and not any(part.endswith(".zarr") for part in p.relative_to(d).parts)]
    found += [p for p in d.rglob("*.zarr") if p.is_dir()
              and not any(part.endswith(".zarr") for part in p.relative_to(d).parts[:-1])]
    return sorted(p.relative_to(d) for p in found)


def compare(a: Path, b: Path) -> int:
    bad = 0
    files_a, files_b = outputs(a), outputs(b)
    if files_a != files_b:
        print(f"DIFFERENT FILE SETS: only in A {sorted(set(files_a) - set(files_b))}, "
              f"only in B {sorted(set(files_b) - set(files_a))}")
        bad += 1
    for rel in files_a:
        if rel not in files_b:
            continue
        pa, pb = a / rel, b / rel
        if rel.suffix == ".json":
            same = normalise(json.loads(pa.read_text()), str(a)) == normalise(json.loads(pb.read_text()), str(b))
            print(f"{'identical' if same else 'DIFFERENT'}  {rel}")
            bad += not same
            continue
        da, db = image_data(pa), image_data(pb)
        same = len(da) == len(db) and all(x.dtype == y.dtype and x.shape == y.shape
                                          and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
                                          for x, y in zip(da, db, strict=True))
        ma, mb = flat(normalise(plugin_meta(pa), str(a))), flat(normalise(plugin_meta(pb), str(b)))
        changed = sorted(k for k in set(ma) | set(mb) if ma.get(k, "<absent>") != mb.get(k, "<absent>"))
        shape = "×".join(map(str, da[0].shape)) if da else "?"
        note = "" if not changed else "; metadata keys differing: " + ", ".join(
            f"{k} ({ma.get(k, '<absent>')!r} → {mb.get(k, '<absent>')!r})" for k in changed)
        print(f"{'pixels identical' if same else 'PIXELS DIFFERENT'}  {rel} ({shape}, {da[0].dtype}){note}")
        bad += not same
    for log in sorted((a / "logs").glob("*.out")):
        ta = TIMING.sub("<t>", log.read_text().replace(str(a), "<D>"))
        other = b / "logs" / log.name
        tb = TIMING.sub("<t>", other.read_text().replace(str(b), "<D>")) if other.exists() else None
        rc_a, rc_b = ((x / "logs" / log.with_suffix(".rc").name).read_text() for x in (a, b))
        print(f"stdout {'same' if ta == tb else 'differs'}, exit {rc_a} / {rc_b}: {log.stem}")
        if ta != tb and tb is not None:
            import difflib

            for line in difflib.unified_diff(ta.splitlines(), tb.splitlines(), lineterm="", n=0):
                print("    " + line)
        bad += rc_a != rc_b
    print("ALL IDENTICAL" if not bad else f"{bad} difference(s)")
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("record").add_argument("dir", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = p.parse_args()
    if args.cmd == "record":
        record(args.dir)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
