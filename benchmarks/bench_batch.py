"""Batch throughput and memory: ``napari-sim-ml batch`` on 512² time-lapses.

Writes simulated time-lapses (3 angles × 3 phases × 512² uint16 per time point, a
fresh noise realisation per time point) and runs the batch on each in a fresh
process whose address space is capped (RLIMIT_AS, ``--limit-mb``), so a series
larger than the cap can only complete if it is streamed. Reports

* throughput (reconstructed planes per second, wall clock of the whole batch
  including reading, writing and start-up; pattern from a parameters JSON) with
  1 and 2 local threads, and with 2 local processes;
* peak resident memory (the summed RSS of the batch process and its worker
  processes, sampled every 20 ms) against the number of time points, which must
  stay flat while the series outgrows the cap;
* for reference, the bare engine loop (prepare_reconstruction + wiener_filter on
  one in-memory plane, one thread) in the same run: the machine may be shared;
* output formats: OME-Zarr (NGFF) next to OME-TIFF, throughput and peak memory for
  one time-lapse of ``--format-t`` time points (2 threads) whose input and output
  are each larger than the cap (``--sections formats`` runs only this part).

    python benchmarks/bench_batch.py [--throughput-t 30] [--memory-t 20 80 320] [--format-t 240] \
        [--limit-mb 1024] [--sections throughput memory formats] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 512


def make_series(path: Path, n_t: int, clean: np.ndarray) -> float:
    """Write n_t time points (9 frames each) page by page; returns the file size in MB."""
    import tifffile

    rng = np.random.default_rng(n_t)

    def frames():
        for _ in range(n_t):
            counts = rng.poisson(clean).astype(np.float32) + rng.normal(0, 1, clean.shape).astype(np.float32)
            yield from np.clip(np.rint(counts + 100), 0, 65535).astype(np.uint16).reshape(-1, SIZE, SIZE)

    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(frames(), shape=(n_t * 9, SIZE, SIZE), dtype=np.uint16)
    return path.stat().st_size / 2**20


def child(args: argparse.Namespace) -> None:
    """One batch run under an address-space cap; prints a JSON line."""
    limit = args.limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from napari_sim_ml.batch import build_parser, run_batch

    argv = [args.input, "-o", args.out, "--scheduler", args.scheduler, "--workers", str(args.workers),
            "--params", args.params, "--background", "100", "--angles", "3", "--phases", "3", "--no-progress",
            "--format", args.format]
    t0 = time.perf_counter()
    rc = run_batch(build_parser().parse_args(argv))
    seconds = time.perf_counter() - t0
    # VmHWM: this process's own peak (ru_maxrss would include the parent's RSS inherited at fork)
    status = Path("/proc/self/status").read_text()
    hwm = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({"rc": rc, "seconds": seconds, "batch_process_peak_mb": hwm}))


def run_one(series: Path, params: Path, out: Path, scheduler: str, workers: int, limit_mb: int,
            fmt: str = "ome-tiff") -> dict:
    cmd = [sys.executable, __file__, "--child", "--input", str(series), "--out", str(out), "--params", str(params),
           "--scheduler", scheduler, "--workers", str(workers), "--limit-mb", str(limit_mb), "--format", fmt]
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    import psutil

    with tempfile.TemporaryFile("w+") as fout, tempfile.TemporaryFile("w+") as ferr:
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, text=True, env=env)
        peak = 0.0
        root = psutil.Process(proc.pid)
        while proc.poll() is None:  # total RSS of the batch and its worker processes, every 20 ms
            try:
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                peak = max(peak, total / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.02)
        fout.seek(0)
        ferr.seek(0)
        stdout, stderr = fout.read(), ferr.read()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"batch run failed ({proc.returncode}): {stderr[-2000:]}")
    out_info = {**json.loads(lines[-1]), "peak_total_rss_mb": peak}
    if out_info["rc"] != 0:
        raise RuntimeError(f"batch exit status {out_info['rc']}: {stderr[-2000:]}")
    return out_info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--throughput-t", type=int, default=30, help="time points for the throughput runs")
    ap.add_argument("--memory-t", type=int, nargs="+", default=[20, 80, 320],
                    help="time points of the memory runs (2 threads)")
    ap.add_argument("--format-t", type=int, default=240, help="time points of the OME-Zarr vs OME-TIFF runs")
    ap.add_argument("--limit-mb", type=int, default=1024, help="address-space cap of each batch run (MiB)")
    ap.add_argument("--sections", nargs="+", default=["throughput", "memory", "formats"],
                    choices=("throughput", "memory", "formats"))
    ap.add_argument("--format", default="ome-tiff", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--input", "--out", "--params", "--scheduler"):
        ap.add_argument(name, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    from napari_sim_ml.engine.io import write_json
    from napari_sim_ml.engine.simulate import simulate_acquisition

    sim = simulate_acquisition("filaments", SIZE, photons=1000, seed=0, noise=False, offset=0.0)
    clean = np.clip(sim.raw, 0, None)
    results: dict = {"plane": f"3x3x{SIZE}x{SIZE} -> {2 * SIZE}x{2 * SIZE}", "cores": os.cpu_count(),
                     "limit_mb": args.limit_mb, "throughput": [], "memory": [], "formats": []}
    from napari_sim_ml.engine.otf import ideal_otf
    from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter

    plane = (np.random.default_rng(0).poisson(clean) + 100).astype(np.uint16)
    otf = ideal_otf(sim.optics)
    wiener_filter(prepare_reconstruction(plane, sim.optics, sim.params, otf, 100.0))
    t0 = time.perf_counter()
    for _ in range(10):
        wiener_filter(prepare_reconstruction(plane, sim.optics, sim.params, otf, 100.0))
    results["engine_planes_per_s"] = 10 / (time.perf_counter() - t0)
    results["load_average"] = os.getloadavg()
    if not args.json:
        print(f"engine loop (in memory, no dask): {results['engine_planes_per_s']:.2f} planes/s; "
              f"load average {results['load_average'][0]:.1f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        folder = Path(tmp)
        params = write_json(folder / "params.json", sim.params.to_dict(sim.optics))
        series = folder / f"t{args.throughput_t}.tif"
        if "throughput" in args.sections:
            make_series(series, args.throughput_t, clean)
        for scheduler, workers in (("threads", 1), ("threads", 2), ("processes", 2)):
            if "throughput" not in args.sections:
                break
            out = folder / f"out_{scheduler}_{workers}"
            info = run_one(series, params, out, scheduler, workers, args.limit_mb)
            row = {"scheduler": scheduler, "workers": workers, "time_points": args.throughput_t,
                   "planes_per_s": args.throughput_t / info["seconds"], **info}
            results["throughput"].append(row)
            if not args.json:
                print(f"{scheduler:>9} × {workers}: {row['planes_per_s']:.2f} planes/s "
                      f"({args.throughput_t} planes in {info['seconds']:.1f} s), "
                      f"peak RSS {info['peak_total_rss_mb']:.0f} MB"
                      + (" (batch + worker processes)" if scheduler == "processes" else ""),
                      flush=True)
            for p in out.iterdir():
                p.unlink()
        series.unlink(missing_ok=True)
        for n_t in (args.memory_t if "memory" in args.sections else []):
            series = folder / f"t{n_t}.tif"
            size_mb = make_series(series, n_t, clean)
            out = folder / f"mem_{n_t}"
            info = run_one(series, params, out, "threads", 2, args.limit_mb)
            out_mb = sum(p.stat().st_size for p in out.iterdir()) / 2**20
            row = {"time_points": n_t, "input_mb": size_mb, "output_mb": out_mb,
                   "planes_per_s": n_t / info["seconds"], **info}
            results["memory"].append(row)
            if not args.json:
                print(f"T={n_t:>4}: input {size_mb:7.0f} MB + output {out_mb:7.0f} MB, cap {args.limit_mb} MB: "
                      f"peak RSS {info['peak_total_rss_mb']:.0f} MB, {row['planes_per_s']:.2f} planes/s", flush=True)
            series.unlink()
            for p in out.iterdir():
                p.unlink()
        if "formats" in args.sections:
            series = folder / f"t{args.format_t}.tif"
            size_mb = make_series(series, args.format_t, clean)
            for fmt in ("ome-tiff", "ome-zarr"):
                out = folder / f"fmt_{fmt}"
                info = run_one(series, params, out, "threads", 2, args.limit_mb, fmt)
                out_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
                row = {"format": fmt, "time_points": args.format_t, "input_mb": size_mb, "output_mb": out_mb,
                       "planes_per_s": args.format_t / info["seconds"], **info}
                results["formats"].append(row)
                if not args.json:
                    print(f"{fmt:>9}: T={args.format_t}, input {size_mb:.0f} MB, output {out_mb:.0f} MB, cap "
                          f"{args.limit_mb} MB: {row['planes_per_s']:.2f} planes/s, peak RSS "
                          f"{info['peak_total_rss_mb']:.0f} MB", flush=True)
                shutil.rmtree(out, ignore_errors=True)
            series.unlink()
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
