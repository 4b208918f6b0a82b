"""Issue 10: estimation on periodic specimens, camera stripes, and layout detection, as tables.

    python benchmarks/bench_estimate_cases.py [--seeds 3]

Prints, per case, the worst |k| error over angles (%), the grades, and whether a wrong k (> 0.2 %) was graded
good or better ('BAD'); then layout-detection time (CPU and wall) for 512² stacks of 9, 15, 135 and 360 frames,
and the 512² estimation time (CPU-time median; the machine may be shared, CPU time is steadier than wall).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from napari_sim_ml.engine.errors import NoPatternError
from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.layout import detect_layout
from napari_sim_ml.engine.simulate import simulate_acquisition


def add_stripe(raw, period_px, angle_deg, amplitude, frames=None):
    ny, nx = raw.shape[-2:]
    y, x = np.mgrid[:ny, :nx]
    t = np.radians(angle_deg)
    stripe = amplitude * np.cos(2 * np.pi * (x * np.cos(t) + y * np.sin(t)) / period_px + 0.3)
    out = raw.copy().reshape(-1, ny, nx)
    out[list(range(len(out))) if frames is None else list(frames)] += stripe.astype(np.float32)
    return out.reshape(raw.shape)


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
    args = ap.parse_args()
    print(f"{'case':<38} {'worst |k| err':>10}  grades")
    for structure in ("grating", "linepairs"):
        for phases in (3, 5):
            for photons in (60, 200, 1000):
                for seed in range(args.seeds):
                    sim = simulate_acquisition(structure, 256, n_phases=phases, photons=photons, seed=seed)
                    print(row(f"{structure} 3x{phases} {photons} ph seed {seed}", sim, sim.raw))
    for period in (4.0, 5.9):
        for frames, label in ((None, "every"), ((0, 1, 3, 4, 6, 7), "some")):
            for seed in range(args.seeds):
                sim = simulate_acquisition("filaments", 256, photons=30, seed=seed)
                raw = add_stripe(sim.raw, period, 44.0, 8.0, frames)
                print(row(f"stripe {period} px {label} 30 ph seed {seed}", sim, raw))
    print("\nlayout detection, 512² frames (3×3 or 3×5, PAZ)")
    for n_frames, (a, p) in ((9, (3, 3)), (15, (3, 5)), (135, (3, 5)), (360, (3, 3))):
        sim = simulate_acquisition("filaments", 512, n_angles=a, n_phases=p, photons=300, seed=0)
        frames = np.tile(sim.raw.reshape(-1, 512, 512), (n_frames // (a * p), 1, 1))
        t0, c0 = time.perf_counter(), time.process_time()
        choice = detect_layout(frames, sim.optics, background=sim.offset)
        print(f"  {n_frames:4d} frames: {time.process_time() - c0:.2f} s CPU, {time.perf_counter() - t0:.2f} s wall, "
              f"{len(choice.scores)} layouts, chose {choice.layout.n_angles}x{choice.layout.n_phases} "
              f"{choice.layout.order} z={choice.layout.n_z} ({choice.confidence})")
    sim = simulate_acquisition("filaments", 512, photons=1000, seed=0)
    estimate_pattern(sim.raw, sim.optics, background=sim.offset)
    cpu = []
    for _ in range(7):
        c0 = time.process_time()
        estimate_pattern(sim.raw, sim.optics, background=sim.offset)
        cpu.append((time.process_time() - c0) * 1e3)
    print(f"\n512² estimate (filaments, 1000 ph): {statistics.median(cpu):.0f} ms CPU (median of 7)")


if __name__ == "__main__":
    main()
