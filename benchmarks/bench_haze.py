"""The PINN's haze measure: does it find out-of-focus haze, and only haze?

For filaments with each relevant imperfection of the mismatch simulator (and the real sets in ../shared/data),
prints the true haze fraction (from noise-free stacks with and without the haze), what ``estimate_haze`` measures
(its median map's mean over the frames' mean), the smallest band's value, how many modulated bands could measure
it, and whether the PINN's haze start fires (every band ≥ ``HAZE_START_FRACTION``). ``--sweep`` counts how often
the start fires over seeds, photon counts and field sizes.

    python benchmarks/bench_haze.py                 # 256², seed 0, 2- and 3-beam, 100 and 1000 photons, real sets
    python benchmarks/bench_haze.py --sweep         # 4 seeds × 30/100/1000 photons at 64², 128² and 256²
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_sim_ml.engine.mismatch import Imperfections
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.pinn.haze import band_haze, estimate_haze
from napari_sim_ml.engine.pinn.noise_aware import HAZE_START_FRACTION
from napari_sim_ml.engine.simulate import simulate_acquisition

CASES = ("clean", "background", "otf_mismatch", "resampled", "modulation_variation", "envelope", "k_error",
         "stripe", "all")


def _imperfections(case: str) -> Imperfections | None:
    return None if case == "clean" else Imperfections.typical() if case == "all" else Imperfections.only(case)


def _true_fraction(case: str, size: int, n_phases: int) -> float:
    imp = _imperfections(case)
    if imp is None or not imp.background:
        return 0.0
    hazy = simulate_acquisition("filaments", size, photons=100, seed=0, n_phases=n_phases, imperfections=imp,
                                noise=False)
    clear = simulate_acquisition("filaments", size, photons=100, seed=0, n_phases=n_phases,
                                 imperfections=replace(imp, background=0.0), noise=False)
    return float((hazy.raw - clear.raw).mean() / (hazy.raw - hazy.offset).mean())


def _row(name: str, truth: str, frames: np.ndarray, params, otf, px: float) -> None:
    mean = float(frames.mean())
    bands = band_haze(frames, params, otf, px)
    measured = estimate_haze(frames, params, otf, px)
    fires = estimate_haze(frames, params, otf, px, HAZE_START_FRACTION) is not None
    text = "—" if measured is None else f"{measured.mean() / mean:.2f}"
    smallest = "—" if not bands else f"{min(float(b.mean()) for b in bands) / mean:.2f}"
    print(f"| {name} | {truth} | {text} | {smallest} | {len(bands)} | {'yes' if fires else 'no'} |", flush=True)


def table(real: bool) -> None:
    print("| case | true haze / mean | measured | smallest band | usable bands | haze start |")
    print("|---|---|---|---|---|---|")
    for n_phases in (3, 5):
        beams = "2-beam" if n_phases == 3 else "3-beam"
        for photons in (100, 1000):
            for case in CASES:
                sim = simulate_acquisition("filaments", 256, photons=photons, seed=0, n_phases=n_phases,
                                           imperfections=_imperfections(case))
                _row(f"{beams} {case} {photons:g} ph", f"{_true_fraction(case, 256, n_phases):.2f}",
                     sim.raw - sim.offset, sim.reconstruction_params, ideal_otf(sim.optics),
                     sim.optics.pixel_size_um)
    if real:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_real import DATA, load_sets

        if not DATA.is_dir():
            print(f"(real sets skipped: {DATA} not found)")
            return
        for s in load_sets():
            otf = s.otf if s.otf is not None else ideal_otf(s.optics)
            _row(f"real {s.name}", "?", s.plane - s.background, s.params, otf, s.optics.pixel_size_um)


def sweep() -> None:
    print("| beams | size | case | haze start fired |")
    print("|---|---|---|---|")
    for n_phases in (3, 5):
        for size in (64, 128, 256):
            for case in CASES:
                fired = total = 0
                for seed in range(4):
                    for photons in (30, 100, 1000):
                        sim = simulate_acquisition("filaments", size, photons=photons, seed=seed,
                                                   n_phases=n_phases, imperfections=_imperfections(case))
                        est = estimate_haze(sim.raw - sim.offset, sim.reconstruction_params,
                                            ideal_otf(sim.optics), sim.optics.pixel_size_um, HAZE_START_FRACTION)
                        fired += est is not None
                        total += 1
                print(f"| {'2' if n_phases == 3 else '3'}-beam | {size}² | {case} | {fired} / {total} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", action="store_true", help="count the haze start over seeds, photons and sizes")
    ap.add_argument("--no-real", action="store_true", help="skip the real sets")
    args = ap.parse_args()
    if args.sweep:
        sweep()
    else:
        table(not args.no_real)


if __name__ == "__main__":
    main()
