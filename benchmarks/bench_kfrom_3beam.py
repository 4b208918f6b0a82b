"""Calibration reuse on the real 3-beam low-light set: phases refitted at the high-light k (``--k-from``).

../shared/data/3beam-microtubules-x2 (NOTES.md): 15 raw frames per light level (frame 15, an average, left out),
3 angles × 5 phases angle-major, 2× bicubic-upsampled: binned 2×2 back to the native 128² (0.060 µm); NA 1.49 and
525 nm assumed (not stated), camera offset 90. The high-light pattern is estimated; on the low-light frames the
phases, modulation and gains are refitted at its k (engine/refit.py). Both low-light reconstructions (default
Wiener, w from the noise, and the best w for each) are compared with the high-light reconstruction of the same
field, ours and the published one (PSNR dB / SSIM after a gain/offset fit, shifted by the sub-pixel registration
of the widefield images when they are not aligned), and by the truth-free pattern imprint and border cross
(engine/metrics.py). Also: what estimation alone does on the low-light frames.

    python benchmarks/bench_kfrom_3beam.py [--png-dir /tmp/kfrom-png]
"""

from __future__ import annotations

import argparse
import glob
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from napari_sim_ml.engine.errors import NoPatternError, SimInputError
from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.filters import auto_wiener
from napari_sim_ml.engine.io import FrameLayout, arrange_frames
from napari_sim_ml.engine.metrics import border_cross, compare_to_truth, pattern_imprint
from napari_sim_ml.engine.parameters import FilterSettings, Optics, PatternParameters, wrap_phase
from napari_sim_ml.engine.refit import refit_with_known_k
from napari_sim_ml.engine.wiener import log_spectrum, prepare_reconstruction, wiener_filter

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "3beam-microtubules-x2"
OPTICS = Optics(1.49, 525.0, 0.06)
BACKGROUND = 90.0


def load(level: str) -> np.ndarray:
    """(3, 5, 128, 128) native-grid plane of the 'high' or 'low' frames 0-14."""
    prefix = "HE" if level == "high" else "LE"
    files = sorted(glob.glob(str(DATA / level / f"{prefix}_*.tif")))[:15]
    frames = np.stack([tifffile.imread(f) for f in files]).astype(np.float32)
    native = frames.reshape(15, 128, 2, 128, 2).mean(axis=(2, 4))  # undo the 2× bicubic upsampling
    return arrange_frames(native, FrameLayout(3, 5, 1, "PAZ"))[0, 0]


def reconstruct(plane: np.ndarray, params: PatternParameters, w: float | None = None) -> tuple[np.ndarray, float]:
    prepared = prepare_reconstruction(plane, OPTICS, params, None, BACKGROUND)
    w = auto_wiener(prepared) if w is None else w
    return wiener_filter(prepared, replace(FilterSettings(), wiener=w)), w


def best_w(plane: np.ndarray, params: PatternParameters, reference: np.ndarray) -> tuple[np.ndarray, float]:
    prepared = prepare_reconstruction(plane, OPTICS, params, None, BACKGROUND)
    ws = np.geomspace(0.01, 3.0, 19)
    images = [wiener_filter(prepared, FilterSettings(wiener=w)) for w in ws]
    i = int(np.argmax([compare_to_truth(im, reference)[0] for im in images]))
    return images[i], float(ws[i])


def registered(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
    """``image`` moved onto ``reference`` by their sub-pixel cross-correlation peak, and the shift (px)."""
    from scipy.ndimage import fourier_shift
    from skimage.registration import phase_cross_correlation

    shift = phase_cross_correlation(reference, image, upsample_factor=20)[0]
    moved = np.fft.ifft2(fourier_shift(np.fft.fft2(image), shift)).real
    return moved, float(np.hypot(*shift))


def scores(image: np.ndarray, reference: np.ndarray) -> str:
    """PSNR / SSIM as is, then after registration (with the shift in 2×-grid px)."""
    a = compare_to_truth(image, reference)
    moved, shift = registered(image, reference)
    b = compare_to_truth(moved, reference)
    return f"{a[0]:.2f} / {a[1]:.3f} | {b[0]:.2f} / {b[1]:.3f} ({shift:.2f} px)"


def truth_free(image: np.ndarray, params: PatternParameters) -> str:
    imprint = pattern_imprint(image, OPTICS.pixel_size_um / 2, params).worst_db
    return f"{imprint:.1f} / {border_cross(image, OPTICS.pixel_size_um / 2).worst_db:.1f}"


def _u8(a: np.ndarray, lo: float = 0.5, hi: float = 99.8) -> np.ndarray:
    low, high = np.percentile(a, [lo, hi])
    return (np.clip((np.asarray(a, float) - low) / max(high - low, 1e-12), 0, 1) * 255).astype(np.uint8)


def save_png(path: Path, images: dict[str, np.ndarray]) -> None:
    """One column per image: the image over its log spectrum."""
    cols = [np.concatenate([_u8(v), _u8(log_spectrum(v), 1, 99.99)], axis=0) for v in images.values()]
    Image.fromarray(np.concatenate(cols, axis=1)).save(path)
    print(f"wrote {path} (columns: {', '.join(images)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png-dir", default="/tmp/kfrom-png")
    args = parser.parse_args()
    png = Path(args.png_dir)
    png.mkdir(parents=True, exist_ok=True)
    high, low = load("high"), load("low")
    t0 = time.perf_counter()
    est_high = estimate_pattern(high, OPTICS, background=BACKGROUND)
    print(f"high-light estimate ({time.perf_counter() - t0:.2f} s): " + ", ".join(
        f"{a.angle_deg:.2f}° |k| {a.k_magnitude:.4f}/µm {d.grade} ({d.quality:.0f})"
        for a, d in zip(est_high.params.angles, est_high.diagnostics, strict=True)))
    try:
        est_low = estimate_pattern(low, OPTICS, background=BACKGROUND)
        print("low-light estimate alone: " + ", ".join(
            f"{a.angle_deg:.2f}° |k| {100 * (a.k_magnitude / h.k_magnitude - 1):+.2f} % {d.grade} ({d.quality:.1f})"
            for a, h, d in zip(est_low.params.angles, est_high.params.angles, est_low.diagnostics, strict=True)))
    except (NoPatternError, SimInputError) as exc:
        print(f"low-light estimate alone: refused: {exc}")
    t0 = time.perf_counter()
    refit = refit_with_known_k(low, OPTICS, est_high.params, background=BACKGROUND)
    print(f"low-light refit at the high-light k ({time.perf_counter() - t0:.2f} s): " + ", ".join(
        f"{d.grade} ({d.quality:.1f})" for d in refit.diagnostics)
          + "".join(f"\n  warning: {w}" for w in refit.warnings))
    for d, (h, r) in enumerate(zip(est_high.params.angles, refit.params.angles, strict=True)):
        steps_h = [wrap_phase(p - h.phases_rad[0]) for p in h.phases_rad]
        steps_r = [wrap_phase(p - r.phases_rad[0]) for p in r.phases_rad]
        print(f"  angle {d}: offset low − high {wrap_phase(r.phases_rad[0] - h.phases_rad[0]):+.3f} rad; steps "
              f"high {np.round(steps_h, 2).tolist()} low {np.round(steps_r, 2).tolist()}; "
              f"m high {np.round(h.modulation, 2).tolist()} low {np.round(r.modulation, 2).tolist()}")
    ours_high, w_high = reconstruct(high, est_high.params)
    published_high = tifffile.imread(DATA / "high-reconstruction.tif").astype(np.float32)
    published_low = tifffile.imread(DATA / "low-reconstruction.tif").astype(np.float32)
    results = {}
    for name, params in (("high-light phases", est_high.params), ("refitted phases (--k-from)", refit.params)):
        results[name + ", default w"] = (reconstruct(low, params), params)
        results[name + ", best w"] = (best_w(low, params, ours_high), params)
    print(f"\nour high-light reference: default Wiener, w = {w_high:.3g}; truth-free imprint / cross dB "
          f"{truth_free(ours_high, est_high.params)}\n")
    print("| low-light reconstruction | w | vs our high-light | registered | vs published high-light | registered "
          "| imprint / cross dB |")
    print("|---|---|---|---|---|---|---|")
    for name, ((image, w), params) in results.items():
        print(f"| {name} | {w:.3g} | {scores(image, ours_high)} | {scores(image, published_high)} | "
              f"{truth_free(image, params)} |")
    print(f"| published low-light | — | {scores(published_low, ours_high)} | {scores(published_low, published_high)} | "
          f"{truth_free(published_low, est_high.params)} |")
    save_png(png / "kfrom_3beam_low.png", {"high phases": results["high-light phases, default w"][0][0],
                                           "refitted": results["refitted phases (--k-from), default w"][0][0],
                                           "ours high": ours_high, "published high": published_high})


if __name__ == "__main__":
    main()
