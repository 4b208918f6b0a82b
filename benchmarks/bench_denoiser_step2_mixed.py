"""Step 2 trained on one structure against step 2 trained on a mix: the literature's second risk.

Same optics and pattern as bench_denoiser_step2.py. Step-2 models (Wiener input, w chosen from the
noise, 20–300 photons, 90° rotations/flips), each for the same time budget on 1 thread and the same
number of training pairs: one per structure in --structures and one on their mix. Scored at
--photons on new seeds of every structure (PSNR/SSIM against the passband truth, medians over
--seeds stacks of 256²): does the mixed model do worse on each structure than its specialist?

    python benchmarks/bench_denoiser_step2_mixed.py [--minutes 2.5] [--structures filaments,mesh]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_sim_ml.engine.denoise.data import random_object  # noqa: E402
from napari_sim_ml.engine.denoise.step2 import apply_step2, load_step2, step2_set  # noqa: E402
from napari_sim_ml.engine.denoise.step2_train import train_step2  # noqa: E402
from napari_sim_ml.engine.denoise.train import TrainSettings  # noqa: E402
from napari_sim_ml.engine.methods import MethodSettings, reconstruct_plane  # noqa: E402
from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth  # noqa: E402
from napari_sim_ml.engine.otf import ideal_otf  # noqa: E402
from napari_sim_ml.engine.parameters import Optics  # noqa: E402
from napari_sim_ml.engine.simulate import random_parameters, simulate_acquisition  # noqa: E402

OPTICS = Optics(1.4, 525.0, 0.08)
PARAMS = random_parameters(OPTICS, 3, 3, 1, rng=np.random.default_rng(2024))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.5)
    ap.add_argument("--pairs", type=int, default=96)
    ap.add_argument("--structures", default="filaments,mesh")
    ap.add_argument("--photons", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--models", default="/tmp/s2mixed")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    structures = tuple(args.structures.split(","))
    folder = Path(args.models)
    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    for name, train_on in [(s, (s,)) for s in structures] + [("mixed", structures)]:
        path = folder / f"{name}.pt"
        if not path.exists():
            ts = step2_set(OPTICS, PARAMS, args.pairs, 64, (20.0, 300.0), train_on, seed=3)
            r = train_step2(ts, OPTICS, PARAMS, TrainSettings(epochs=10_000, steps_per_epoch=50, batch=8, patch=64,
                                                              threads=1, augment=True,
                                                              time_limit_s=60 * args.minutes), checkpoint=path)
            print(f"{name} ({', '.join(train_on)}): {r.steps} steps in {r.seconds:.0f} s, validation "
                  f"{r.val_losses[0]:.3f} → {r.val_losses[-1]:.3f}; load {os.getloadavg()[0]:.1f}", flush=True)
        models[name] = load_step2(path, "cpu")
    otf = ideal_otf(OPTICS)
    print(f"\n| test structure ({args.photons:.0f} photons) | Wiener PSNR / SSIM | step 2 trained on it alone | "
          "step 2 trained on the mix | mix − alone dB |")
    print("|---|---|---|---|---|")
    for j, structure in enumerate(structures):
        scores: dict[str, list] = {"wiener": [], "alone": [], "mixed": []}
        for k in range(args.seeds):
            seed = 9000 + 100 * j + k
            truth = random_object(structure, (512, 512), OPTICS.pixel_size_um / 2, np.random.default_rng(seed))
            sim = simulate_acquisition(structure, 256, OPTICS, params=PARAMS, photons=args.photons, truth=truth,
                                       seed=seed)
            ref = sim_passband_truth(sim.truth, OPTICS, PARAMS)
            plain = reconstruct_plane(sim.raw, OPTICS, PARAMS, otf, sim.offset, MethodSettings.from_flags()).image
            scores["wiener"].append(compare_to_truth(plain, ref))
            scores["alone"].append(compare_to_truth(apply_step2(plain, models[structure], threads=1), ref))
            scores["mixed"].append(compare_to_truth(apply_step2(plain, models["mixed"], threads=1), ref))
        med = {k: np.median(np.array(v), axis=0) for k, v in scores.items()}
        print(f"| {structure} | {med['wiener'][0]:.2f} / {med['wiener'][1]:.3f} | {med['alone'][0]:.2f} / "
              f"{med['alone'][1]:.3f} | {med['mixed'][0]:.2f} / {med['mixed'][1]:.3f} | "
              f"{med['mixed'][0] - med['alone'][0]:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
