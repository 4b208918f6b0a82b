"""The automatic Wiener w against the best w, on simulations with known truth and on the real 3-beam low-light set.

Simulations: filaments 256², 2-beam 3 × 3 and 3-beam 3 × 5, from 10 to 1000 photons, and low-light 3-beam cases
with out-of-focus background and read noise (the real low-light set's imperfections: ~5 photons of signal on ~10
of unsubtracted background, read noise), seeds 0-1; PSNR against the SIM-passband truth. Real: the 3-beam
low-light set (binned 2 × 2 to the native grid, the high-light set's parameters, NA 1.49 / 525 nm assumed) against
our high-light reconstruction and the published one. "best" is the best of 31 log-spaced w in [0.01, 3].

Sparse rings (--rings): the default pipeline against our best-w Wiener and the textbook Wiener at its best w
(bands divided by m, isotropic apodization), 256², 1000 photons, true parameters.

    python benchmarks/bench_auto_w.py [--no-real] [--rings] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_sim_ml.engine.filters import auto_wiener
from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth
from napari_sim_ml.engine.parameters import FilterSettings
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import PreparedReconstruction, prepare_reconstruction, wiener_filter

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
W_GRID = np.geomspace(0.01, 3.0, 31)
# (label, photons, phases, background photons, read noise σ)
CASES = [("2-beam", 10, 3, 0.0, 1.0), ("2-beam", 100, 3, 0.0, 1.0), ("2-beam", 1000, 3, 0.0, 1.0),
         ("3-beam", 100, 5, 0.0, 1.0), ("3-beam", 1000, 5, 0.0, 1.0),
         ("3-beam + haze + read 3", 20, 5, 20.0, 3.0), ("3-beam + haze + read 3", 60, 5, 20.0, 3.0)]


def _row(label: str, prepared: PreparedReconstruction, reference: np.ndarray) -> str:
    w = auto_wiener(prepared)
    auto = compare_to_truth(wiener_filter(prepared, FilterSettings(wiener=w)), reference)[0]
    scores = [compare_to_truth(wiener_filter(prepared, FilterSettings(wiener=x)), reference)[0] for x in W_GRID]
    i = int(np.argmax(scores))
    return f"| {label} | {w:.3f} | {auto:.2f} | {W_GRID[i]:.3f} | {scores[i]:.2f} | {scores[i] - auto:.2f} |"


def rings(seeds: list[int]) -> None:
    """Sparse rings at 1000 photons: default, best-w and textbook Wiener (PSNR dB against the passband truth)."""
    from napari_sim_ml.engine.filters import textbook_wiener
    from napari_sim_ml.engine.simulate import sparse_rings

    print("| sparse rings, seed | auto w | default | ours at best w | textbook at best w |")
    print("|---|---|---|---|---|")
    ws = np.geomspace(0.005, 0.3, 16)
    for seed in seeds:
        truth = sparse_rings((512, 512), 0.04, np.random.default_rng(seed))
        sim = simulate_acquisition(size=256, photons=1000, seed=seed, truth=truth)
        ref = sim_passband_truth(sim.truth, sim.optics, sim.params)
        prepared = prepare_reconstruction(sim.raw, sim.optics, sim.params, background=sim.offset)

        def psnr(image: np.ndarray, ref: np.ndarray = ref) -> float:
            return compare_to_truth(image, ref)[0]

        ours = max(psnr(wiener_filter(prepared, FilterSettings(wiener=w))) for w in ws)
        textbook = max(psnr(textbook_wiener(prepared, w)) for w in ws)
        print(f"| {seed} | {auto_wiener(prepared):.4f} | {psnr(wiener_filter(prepared)):.2f} | {ours:.2f} | "
              f"{textbook:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-real", action="store_true", help="skip the real 3-beam low-light set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rings", action="store_true", help="only the sparse-rings comparison with the textbook form")
    args = parser.parse_args()
    if args.rings:
        rings(args.seeds)
        return
    print("| case | auto w | auto PSNR | best w | best PSNR | gap dB |")
    print("|---|---|---|---|---|---|")
    for label, photons, phases, haze, read in CASES:
        for seed in args.seeds:
            sim = simulate_acquisition("filaments", 256, photons=photons, n_phases=phases, background_photons=haze,
                                       read_noise=read, seed=seed)
            prepared = prepare_reconstruction(sim.raw, sim.optics, sim.params, background=sim.offset)
            truth = sim_passband_truth(sim.truth, sim.optics, sim.params)
            print(_row(f"{label}, {photons} ph, seed {seed}", prepared, truth), flush=True)
    if args.no_real:
        return
    import tifffile
    from bench_real import _three_beam  # type: ignore[import-not-found]

    from napari_sim_ml.engine.estimate import estimate_pattern
    from napari_sim_ml.engine.parameters import Optics

    folder = DATA / "3beam-microtubules-x2"
    if not folder.is_dir():
        raise SystemExit(f"the real data are not at {folder}")
    optics = Optics(1.49, 525.0, 0.06)
    high, low = _three_beam(folder / "high", "HE"), _three_beam(folder / "low", "LE")
    params = estimate_pattern(high, optics, background=90.0).params
    ours_high = wiener_filter(prepare_reconstruction(high, optics, params, background=90.0))
    prepared = prepare_reconstruction(low, optics, params, background=90.0)
    published = tifffile.imread(folder / "high-reconstruction.tif").astype(np.float32)
    print(_row("real 3-beam low vs our high-light", prepared, ours_high))
    print(_row("real 3-beam low vs published high-light", prepared, published))


if __name__ == "__main__":
    main()
