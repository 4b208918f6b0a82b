"""Real data: a denoiser trained by thinning the high-light 3-beam frames, applied to the low-light ones.

Data: ../shared/data/3beam-microtubules-x2 (15 single-frame TIFFs per folder, 3 angles × 5 phases,
angle-major; bicubically upsampled 2×, so binned 2×2 back to the native 128² at 0.060 µm; NA 1.49
and 525 nm assumed, as the set does not state them). The field is the same at both light levels,
so the denoiser is trained on the TOP half of the high-light frames only (thinned by S = the ratio
of the mean signals) and scored on the BOTTOM half: PSNR/SSIM of the low-light reconstruction
(plain Wiener at its best w, and denoiser + Wiener at its best w) against the high-light Wiener
reconstruction (and against the published high-light reconstruction), after a least-squares
gain/offset match. Prints the data-consistency figures and writes PNGs to --png.

    python benchmarks/bench_denoiser_real.py [--train-minutes 6] [--png /tmp/denoiser-png]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_plane  # noqa: E402
from napari_sim_ml.engine.denoise.check import consistency_check  # noqa: E402
from napari_sim_ml.engine.denoise.data import thinned_set  # noqa: E402
from napari_sim_ml.engine.denoise.train import TrainSettings, train_denoiser  # noqa: E402
from napari_sim_ml.engine.estimate import estimate_pattern  # noqa: E402
from napari_sim_ml.engine.metrics import compare_to_truth  # noqa: E402
from napari_sim_ml.engine.otf import ideal_otf  # noqa: E402
from napari_sim_ml.engine.parameters import FilterSettings, Optics  # noqa: E402
from napari_sim_ml.engine.pinn.noise import NoiseModel  # noqa: E402
from napari_sim_ml.engine.wiener import log_spectrum, prepare_reconstruction, wiener_filter  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "3beam-microtubules-x2"
W_GRID = np.geomspace(0.005, 1.0, 12)
OPTICS = Optics(1.49, 525.0, 0.06)
BACKGROUND = 95.0  # camera offset: the low-light frames' 1st percentile is 97 counts


def load(folder: str, prefix: str) -> np.ndarray:
    files = sorted(glob.glob(str(DATA / folder / f"{prefix}_*.tif")))[:15]
    frames = np.stack([tifffile.imread(f) for f in files]).astype(np.float32)
    return frames.reshape(15, 128, 2, 128, 2).mean(axis=(2, 4)).reshape(3, 5, 128, 128)


def paired_noise(high: np.ndarray, low: np.ndarray, s: float) -> NoiseModel:
    """The low-light noise model measured on the paired frames: variance of low − high/S (high/S is
    nearly noise-free at this light ratio) binned against high/S, a straight line fitted."""
    m = ((high - BACKGROUND) / s).ravel()
    d = ((low - BACKGROUND) - (high - BACKGROUND) / s).ravel()
    edges = np.quantile(m, np.linspace(0, 1, 21))
    idx = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, 19)
    mb = np.array([m[idx == i].mean() for i in range(20)])
    vb = np.array([d[idx == i].var() for i in range(20)])
    g, v0 = np.polyfit(mb, vb, 1)
    return NoiseModel(float(g), float(max(v0, 0.0)))


def best(plane, params, ref, rows):
    prepared = prepare_reconstruction(plane, OPTICS, params, background=BACKGROUND)
    out = (-np.inf, 0.0, 0.0, None)
    for w in W_GRID:
        img = wiener_filter(prepared, FilterSettings(wiener=float(w)))
        psnr, ssim = compare_to_truth(img[rows], ref[rows], crop=8)
        if psnr > out[0]:
            out = (psnr, ssim, float(w), img)
    return out


def png(path: Path, img: np.ndarray, lo: float = 0.5, hi: float = 99.8) -> None:
    from skimage.io import imsave

    a, b = np.percentile(img, [lo, hi])
    imsave(path, (np.clip((img - a) / max(b - a, 1e-9), 0, 1) * 255).astype(np.uint8), check_contrast=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-minutes", type=float, default=6.0)
    ap.add_argument("--model", default="/tmp/denoiser-3beam.pt")
    ap.add_argument("--augment", action="store_true", help="90° rotations/flips in training")
    ap.add_argument("--no-augment", action="store_true", help="(the default) no rotations/flips")
    ap.add_argument("--noise", default="paired", choices=("paired", "fit"),
                    help="low-light noise model: measured on the paired frames, or the photon-transfer fit "
                         "(underestimates here: the bicubic upsampling attenuated the high frequencies it uses)")
    ap.add_argument("--png", default="/tmp/denoiser-png")
    ap.add_argument("--loss", default=TrainSettings.loss, choices=("recon", "mse", "mae", "anscombe"))
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is missing")
        return 0
    high, low = load("high", "HE"), load("low", "LE")
    otf = ideal_otf(OPTICS)
    params_high = estimate_pattern(high, OPTICS, background=BACKGROUND).params
    try:
        est_low = estimate_pattern(low, OPTICS, background=BACKGROUND)
        params_low = est_low.params
        low_note = "estimated on the low-light frames (quality " + ", ".join(
            f"{d.quality:.0f}" for d in est_low.diagnostics) + ")"
    except Exception as exc:  # noqa: BLE001 - a failed estimate is reported, the high-light pattern used
        params_low, low_note = params_high, f"from the high-light frames (low-light estimate failed: {exc})"
    s = float((high.mean() - BACKGROUND) / (low.mean() - BACKGROUND))
    model = Path(args.model)
    top = high[..., :64, :].reshape(15, 64, 128)
    from napari_sim_ml.engine.pinn.noise import estimate_noise

    low_fit = estimate_noise(low.reshape(15, 128, 128) - BACKGROUND, OPTICS.pixel_size_um, otf.support_cycles_per_um)
    paired = paired_noise(high[..., :64, :], low[..., :64, :], s)  # calibrated on the training half only
    if args.noise == "paired":
        model_noise = paired
    else:
        model_noise = NoiseModel(low_fit.gain, max(low_fit.var0, 0.0))
    print(f"low-light noise: photon-transfer fit gain {low_fit.gain:.3g}, var0 {low_fit.var0:.3g}; from the "
          f"pairs (low − high/S) gain {paired.gain:.3g}, var0 {paired.var0:.3g}; using the {args.noise} model")
    ts, noise = thinned_set([top], s, OPTICS.pixel_size_um, otf.support_cycles_per_um, BACKGROUND,
                            noise=model_noise, names=["HE_00-14 rows 0-63 (native)"], read_var=model_noise.var0)
    settings = TrainSettings(epochs=10_000, steps_per_epoch=50, batch=8, patch=32, threads=1, loss=args.loss,
                             time_limit_s=60 * args.train_minutes, augment=args.augment and not args.no_augment)
    res = train_denoiser(ts, OPTICS, params_high, settings, checkpoint=model)
    den = Denoiser.from_weights(res.meta, res.weights, "cpu")
    print(f"thinning S = {s:.1f}; trained {res.steps} steps in {res.seconds:.0f} s, validation "
          f"{res.val_losses[0]:.3f} → {res.val_losses[-1]:.3f}; load average {os.getloadavg()[0]:.1f}")
    print(f"low-light pattern {low_note}")
    from napari_sim_ml.engine.denoise.checkpoint import check_compatible
    from napari_sim_ml.engine.errors import SimInputError

    try:
        check_compatible(den.meta, OPTICS, params_low)
    except SimInputError as exc:
        print(f"the low-light estimate is refused by the denoiser ({exc}); using the high-light pattern")
        params_low = params_high
    dn = denoise_plane(low, den, OPTICS, params_low, background=BACKGROUND)
    rep = consistency_check(low, dn, OPTICS, params_low, model_noise.gain, model_noise.var0, BACKGROUND)
    print("data consistency (whole low-light plane): " + rep.summary())
    bottom = (slice(128, 256), slice(None))
    ref = wiener_filter(prepare_reconstruction(high, OPTICS, params_high, background=BACKGROUND))
    published = tifffile.imread(DATA / "high-reconstruction.tif").astype(np.float32)
    table = []
    for name, reference in (("our high-light Wiener", ref), ("published high-light reconstruction", published)):
        p0, s0, w0, img0 = best(low, params_low, reference, bottom)
        p1, s1, w1, img1 = best(dn, params_low, reference, bottom)
        table.append((name, p0, s0, w0, p1, s1, w1))
    print("\n| reference (bottom half, not trained on) | low-light Wiener PSNR / SSIM (w) | "
          "denoiser + Wiener PSNR / SSIM (w) | gain dB |")
    print("|---|---|---|---|")
    for name, p0, s0, w0, p1, s1, w1 in table:
        print(f"| {name} | {p0:.2f} / {s0:.3f} ({w0:.3g}) | {p1:.2f} / {s1:.3f} ({w1:.3g}) | {p1 - p0:+.2f} |")
    out = Path(args.png)
    out.mkdir(parents=True, exist_ok=True)
    _, _, _, img0 = best(low, params_low, ref, bottom)
    _, _, _, img1 = best(dn, params_low, ref, bottom)
    png(out / "high_wiener.png", ref)
    png(out / "low_wiener.png", img0)
    png(out / "low_denoised_wiener.png", img1)
    png(out / "low_frame0.png", low[0, 0])
    png(out / "low_frame0_denoised.png", dn[0, 0])
    png(out / "high_frame0.png", high[0, 0])
    png(out / "residual_frame0.png", rep.residual[0], 0.5, 99.5)
    png(out / "flags.png", rep.flags.astype(np.float32), 0, 100)
    png(out / "low_denoised_wiener_spectrum.png", log_spectrum(img1), 1, 99.9)
    png(out / "low_wiener_spectrum.png", log_spectrum(img0), 1, 99.9)
    print(f"wrote PNGs to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
