"""Issue 10: estimation on periodic specimens, camera stripes, and layout detection, as tables.

    python benchmarks/bench_estimate_cases.py [--seeds 3] [--parts cases,layout,estimate] [--repeats 7]

Prints, per case, the worst |k| error over angles (%), the grades, and whether a wrong k (> 0.2 %) was graded
good or better ('BAD'); then layout-detection time (CPU and wall) for 512² stacks of 9, 15, 135 and 360 frames
(also at 20 photons, where the pattern is faint and the layouts are scored a second time on 256²), and the 512²
estimation time (CPU-time median; the machine may be shared, CPU time is steadier than wall).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from napari_sim_ml.engine.errors import NoPatternError
from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.layout import detect_layout
from napari_sim_ml.engine.mismatch import add_camera_stripe
from napari_sim_ml.engine.simulate import simulate_acquisition


def row(name, sim, raw, **kw):
    try:
        res = estimate_pattern(raw, sim.optics, background=sim.offset, **kw)
    except NoPatternError:
        return f"{name:<38} refused"
    err = [abs(e.k_magnitude - a.k_magnitude) / a.k_magnitude * 100
           for a, e in zip(sim.params.angles, res.params.angles, strict=False)]
    grades = [d.grade for d in res.diagnostics]
    bad = any(e > 0.2 and g in ("good", "excellent") for e, g in zip(err, grades, strict=False))
    return f"{name:<38} {max(err):8.3f} %  {','.join(grades):<32} {'BAD' if bad else ''}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--parts", default="cases,layout,estimate")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    if "cases" in args.parts:
        cases(args.seeds)
    if "layout" in args.parts:
        layouts()
    if "estimate" in args.parts:
        estimate_time(args.repeats)


def cases(seeds: int) -> None:
    print(f"{'case':<38} {'worst |k| err':>10}  grades")
    for structure in ("grating", "linepairs"):
        for phases in (3, 5):
            for photons in (60, 200, 1000):
                for seed in range(seeds):
                    sim = simulate_acquisition(structure, 256, n_phases=phases, photons=photons, seed=seed)
                    print(row(f"{structure} 3x{phases} {photons} ph seed {seed}", sim, sim.raw))
    for period in (4.0, 5.9):
        for frames, label in ((None, "every"), ((0, 1, 3, 4, 6, 7), "some")):
            for seed in range(seeds):
                sim = simulate_acquisition("filaments", 256, photons=30, seed=seed)
                raw = add_camera_stripe(sim.raw, 8.0, period, 44.0, frames, phase_rad=0.3)
                print(row(f"stripe {period} px {label} 30 ph seed {seed}", sim, raw))


def layouts() -> None:
    print("\nlayout detection, 512² frames (3×3 or 3×5, PAZ)")
    for n_frames, (a, p), photons in ((9, (3, 3), 300), (15, (3, 5), 300), (135, (3, 5), 300), (360, (3, 3), 300),
                                      (15, (3, 5), 20), (360, (3, 3), 20)):
        sim = simulate_acquisition("filaments", 512, n_angles=a, n_phases=p, photons=photons, seed=0)
        frames = np.tile(sim.raw.reshape(-1, 512, 512), (n_frames // (a * p), 1, 1))
        t0, c0 = time.perf_counter(), time.process_time()
        choice = detect_layout(frames, sim.optics, background=sim.offset)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        print(f"  {n_frames:4d} frames, {photons:3d} ph: {cpu:.2f} s CPU, {wall:.2f} s wall, "
              f"{len(choice.scores)} layouts, chose {choice.layout.n_angles}x{choice.layout.n_phases} "
              f"{choice.layout.order} z={choice.layout.n_z} ({choice.confidence})")


def estimate_time(repeats: int) -> None:
    sim = simulate_acquisition("filaments", 512, photons=1000, seed=0)
    estimate_pattern(sim.raw, sim.optics, background=sim.offset)
    cpu, wall = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        estimate_pattern(sim.raw, sim.optics, background=sim.offset)
        cpu.append((time.process_time() - c0) * 1e3)
        wall.append((time.perf_counter() - t0) * 1e3)
    print(f"\n512² estimate (filaments, 1000 ph): {statistics.median(cpu):.0f} ms CPU, "
          f"{statistics.median(wall):.0f} ms wall (medians of {repeats})")


if __name__ == "__main__":
    main()
