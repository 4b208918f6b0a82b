"""Engine speed and memory: estimate, prepare, filter (one slider move), full reconstruction.

Prints medians for 256² and 512² raw stacks (3 angles × 3 phases), each also as a ratio to one
1024² inverse real FFT (complex64 → float32, scipy.fft) timed in the same run, and the peak
memory (tracemalloc) of each stage. ``--json`` prints the same as one JSON object.

    python benchmarks/bench_engine.py [--repeats 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc

import numpy as np
import scipy.fft

from napari_sim_ml.engine.bands import FFT_WORKERS
from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.parameters import FilterSettings
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (plans, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def fft_floor_ms(repeats: int) -> float:
    spec = (np.random.default_rng(0).standard_normal((1024, 513))
            + 1j * np.random.default_rng(1).standard_normal((1024, 513))).astype(np.complex64)
    return median_ms(lambda: scipy.fft.irfft2(spec, s=(1024, 1024), workers=FFT_WORKERS), repeats)


def bench_size(size: int, repeats: int, floor: float) -> dict:
    sim = simulate_acquisition("filaments", size, photons=1000, seed=0)
    params, optics, bg = sim.params, sim.optics, sim.offset
    prepared = prepare_reconstruction(sim.raw, optics, params, background=bg)
    ws = iter(np.geomspace(0.01, 0.5, 10_000))

    def slider_move():  # a new w each time, as a dragged slider gives
        wiener_filter(prepared, FilterSettings(wiener=float(next(ws))))

    stages = {
        "estimate": lambda: estimate_pattern(sim.raw, optics, background=bg),
        "prepare": lambda: prepare_reconstruction(sim.raw, optics, params, background=bg),
        "filter (slider move)": slider_move,
        "full (known params)": lambda: wiener_filter(prepare_reconstruction(sim.raw, optics, params,
                                                                            background=bg)),
    }
    out = {}
    for name, fn in stages.items():
        ms = median_ms(fn, repeats)
        out[name] = {"median_ms": ms, "ratio_to_fft": ms / floor, "peak_mb": peak_mb(fn)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    floor = fft_floor_ms(args.repeats * 3)
    results = {"fft_floor_ms_1024": floor, "sizes": {}}
    for size in (256, 512):
        results["sizes"][str(size)] = bench_size(size, args.repeats, floor)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"FFT floor: one 1024² irfft2 = {floor:.2f} ms (median of {args.repeats * 3})")
    print(f"{'raw size':>8} | {'stage':<22} | {'median ms':>9} | {'× floor':>8} | {'peak MB':>8}")
    print("-" * 68)
    for size, stages in results["sizes"].items():
        for name, r in stages.items():
            print(f"{size + '²':>8} | {name:<22} | {r['median_ms']:9.1f} | {r['ratio_to_fft']:8.1f} | "
                  f"{r['peak_mb']:8.1f}")


if __name__ == "__main__":
    main()
