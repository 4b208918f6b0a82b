"""Real data: step 2 (trained on simulation for this set's optics and pattern) on the 3-beam low-light set.

Data as in bench_denoiser_real.py (../shared/data/3beam-microtubules-x2, binned 2×2 to 128² at
0.060 µm, NA 1.49, 525 nm, offset 95; the high-light pattern used for both light levels). A step-2
model is trained by simulation (filaments and bundles, 10–200 photons, the high-light pattern
with random absolute phases) and applied to the low-light Wiener reconstruction (w chosen from the
noise, as the command line does); with --step1 MODEL.pt (e.g. the model bench_denoiser_real.py
wrote) also step 1 + Wiener and step 1 + step 2 (step 2 trained again on step-1 reconstructions).
Scored against our Wiener reconstruction of the high-light frames (PSNR/SSIM after a gain/offset
match); the re-imaging check of each step-2 output against the low-light frames uses the noise
model measured on the paired frames. Writes PNGs (images and log spectra) to --png.

    python benchmarks/bench_denoiser_step2_real.py [--train-minutes 3] [--step1 /tmp/denoiser-3beam.pt]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_denoiser_real import BACKGROUND, DATA, OPTICS, load, paired_noise, png  # noqa: E402

from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_plane  # noqa: E402
from napari_sim_ml.engine.denoise.step2 import apply_step2, step2_set  # noqa: E402
from napari_sim_ml.engine.denoise.step2_check import step2_check  # noqa: E402
from napari_sim_ml.engine.denoise.step2_train import train_step2  # noqa: E402
from napari_sim_ml.engine.denoise.train import TrainSettings  # noqa: E402
from napari_sim_ml.engine.estimate import estimate_pattern  # noqa: E402
from napari_sim_ml.engine.methods import MethodSettings, reconstruct_plane  # noqa: E402
from napari_sim_ml.engine.metrics import compare_to_truth  # noqa: E402
from napari_sim_ml.engine.otf import ideal_otf  # noqa: E402
from napari_sim_ml.engine.wiener import log_spectrum  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-minutes", type=float, default=3.0)
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--step1", help="a step-1 model for this set (bench_denoiser_real.py --model)")
    ap.add_argument("--models", default="/tmp/s2real", help="folder for the step-2 models (reused when present)")
    ap.add_argument("--png", default="/tmp/step2-png")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is missing")
        return 0
    import torch

    torch.set_num_threads(1)
    high, low = load("high", "HE"), load("low", "LE")
    otf = ideal_otf(OPTICS)
    params = estimate_pattern(high, OPTICS, background=BACKGROUND).params
    s = float((high.mean() - BACKGROUND) / (low.mean() - BACKGROUND))
    noise = paired_noise(high, low, s)
    wiener = MethodSettings.from_flags()
    ref = reconstruct_plane(high, OPTICS, params, otf, BACKGROUND, wiener).image
    step1 = Denoiser.load(args.step1, "cpu") if args.step1 else None
    folder = Path(args.models)
    folder.mkdir(parents=True, exist_ok=True)
    chains = [("step 2 on Wiener", None, folder / "step2.pt")]
    if step1 is not None:
        chains.append(("step 1 + step 2", step1, folder / "step2_after_step1.pt"))
    images = {"low Wiener": reconstruct_plane(low, OPTICS, params, otf, BACKGROUND, wiener).image}
    if step1 is not None:
        images["step 1 + Wiener"] = reconstruct_plane(denoise_plane(low, step1, OPTICS, params, BACKGROUND),
                                                      OPTICS, params, otf, BACKGROUND, wiener).image
    from napari_sim_ml.engine.denoise.step2 import load_step2

    for name, den1, path in chains:
        if not path.exists():
            t0 = time.perf_counter()
            ts = step2_set(OPTICS, params, args.pairs, 64, (10.0, 200.0), ("filaments", "bundles"), step1=den1,
                           otf=otf, seed=7)
            sim_s = time.perf_counter() - t0
            res = train_step2(ts, OPTICS, params, TrainSettings(epochs=10_000, steps_per_epoch=50, batch=8, patch=64,
                                                                threads=1, augment=True,
                                                                time_limit_s=60 * args.train_minutes), checkpoint=path)
            print(f"{name}: {len(ts.inputs)} pairs in {sim_s:.0f} s; {res.steps} steps in {res.seconds:.0f} s, "
                  f"validation {res.val_losses[0]:.3f} → {res.val_losses[-1]:.3f}; load {os.getloadavg()[0]:.1f}")
        base = images["step 1 + Wiener" if den1 is not None else "low Wiener"]
        images[name] = apply_step2(base, load_step2(path, "cpu"), threads=1)
        images[name + " (not band-limited)"] = apply_step2(base, load_step2(path, "cpu"), threads=1,
                                                            band_limit=False)
    print("| low-light image | vs high-light Wiener PSNR / SSIM | re-imaging check against the low-light frames |")
    print("|---|---|---|")
    for name, img in images.items():
        p, q = compare_to_truth(img, ref, crop=8)
        chk = step2_check(img, low, OPTICS, params, otf, BACKGROUND, gain=noise.gain, var0=noise.var0)
        r = chk.report
        print(f"| {name} | {p:.2f} / {q:.3f} | mean {r.mean:+.3f}, variance {r.variance:.3f}, flagged "
              f"{r.flagged_fraction:.2%} |")
    out = Path(args.png)
    out.mkdir(parents=True, exist_ok=True)
    png(out / "high_wiener.png", ref)
    for name, img in images.items():
        stem = name.replace(" + ", "_").replace(" (not band-limited)", "_raw").replace(" ", "_")
        png(out / f"{stem}.png", img)
        png(out / f"{stem}_spectrum.png", log_spectrum(img), 1, 99.9)
    side = np.concatenate([_norm(images[k]) for k in ("low Wiener", "step 2 on Wiener (not band-limited)",
                                                      "step 2 on Wiener")] + [_norm(ref)], axis=1)
    png(out / "low_wiener__step2raw__step2__high_wiener.png", side, 0, 100)
    print(f"noise (paired frames): gain {noise.gain:.3g}, var0 {noise.var0:.3g}; wrote PNGs to {out}")
    return 0


def _norm(img: np.ndarray) -> np.ndarray:
    a, b = np.percentile(img, [0.5, 99.8])
    return np.clip((img - a) / max(b - a, 1e-9), 0, 1)


if __name__ == "__main__":
    sys.exit(main())
