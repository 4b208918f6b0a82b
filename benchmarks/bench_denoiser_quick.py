"""Quick denoiser ablation: train for a few minutes at 128², score the gain over best-w Wiener at 128².

Trains on 96 simulated 128² stacks (``--structures``, photons log-uniform in ``--train-photons``; the set
is cached under ``--cache``) with the given loss and network for ``--minutes`` on 1 torch thread, then
scores denoiser + Wiener against best-w Wiener (both with the oracle w of bench_denoiser.W_GRID) on
6 held-out 128² stacks (mesh, bundles, filaments × 2 seeds) at each of ``--photons``; prints one JSON line
(steps, seconds, validation loss first → last, gains: median, mean, per stack).

    python benchmarks/bench_denoiser_quick.py --minutes 3 --loss recon --width 32 --full-convs 1 --lr 4e-3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_denoiser import best_wiener  # noqa: E402

from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_plane  # noqa: E402
from napari_sim_ml.engine.denoise.data import TrainingSet, random_object, simulated_set  # noqa: E402
from napari_sim_ml.engine.denoise.train import TrainSettings, train_denoiser  # noqa: E402
from napari_sim_ml.engine.metrics import sim_passband_truth  # noqa: E402
from napari_sim_ml.engine.parameters import Optics  # noqa: E402
from napari_sim_ml.engine.simulate import random_parameters, simulate_acquisition  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--loss", default=TrainSettings.loss)
    ap.add_argument("--width", type=int, default=24)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--full", type=int)
    ap.add_argument("--full-convs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--photons", type=float, nargs="+", default=[60.0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--structures", default="filaments,rings")
    ap.add_argument("--train-photons", type=float, nargs=2, default=(20.0, 300.0))
    ap.add_argument("--cache", default="/tmp")
    ap.add_argument("--tag", default="run")
    a = ap.parse_args()
    optics = Optics(1.4, 525.0, 0.08)
    params = random_parameters(optics, 3, 3, 1, rng=np.random.default_rng(2024))
    lo, hi = (int(p) for p in a.train_photons)
    cache = Path(a.cache) / f"denoiser_quick_{a.structures}_{a.patch}_{lo}_{hi}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        ts = TrainingSet(z["clean"], 1.0, 1.0, description=z["desc"].item())
    else:
        ts = simulated_set(optics, params, 96, 2 * a.patch, tuple(a.train_photons), tuple(a.structures.split(",")),
                           seed=1)
        np.savez(cache, clean=ts.clean, desc=np.array(ts.description, dtype=object))
    settings = TrainSettings(epochs=10_000, steps_per_epoch=50, batch=a.batch, patch=a.patch, width=a.width,
                             depth=a.depth, full=a.full, full_convs=a.full_convs, lr=a.lr, loss=a.loss, threads=1,
                             time_limit_s=60 * a.minutes)
    res = train_denoiser(ts, optics, params, settings)
    den = Denoiser.from_weights(res.meta, res.weights, "cpu")
    out = {"tag": a.tag, "steps": res.steps, "seconds": round(res.seconds),
           "val": [round(res.val_losses[0], 3), round(res.val_losses[-1], 3)], "load": os.getloadavg()[0]}
    for photons in a.photons:
        gains = []
        for j, structure in enumerate(("mesh", "bundles", "filaments")):
            for s2 in range(2):
                seed = 5000 + 10 * j + s2 + int(photons)
                truth = random_object(structure, (2 * a.size, 2 * a.size), optics.pixel_size_um / 2,
                                      np.random.default_rng(seed))
                sim = simulate_acquisition(structure, a.size, optics, params=params, photons=photons, truth=truth,
                                           seed=seed)
                ref = sim_passband_truth(sim.truth, optics, params)
                p0 = best_wiener(sim.raw, optics, params, sim.offset, ref)[0]
                dn = denoise_plane(sim.raw, den, optics, params, background=sim.offset)
                gains.append(best_wiener(dn, optics, params, sim.offset, ref)[0] - p0)
        out[f"gain{int(photons)}"] = {"median": round(float(np.median(gains)), 2),
                                      "mean": round(float(np.mean(gains)), 2), "stacks": [round(g, 2) for g in gains]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
