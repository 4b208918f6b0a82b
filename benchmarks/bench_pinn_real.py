"""PINN against Wiener on the realistic-mismatch simulator and on the real sets in ../shared/data.

Mismatch table: filaments (``--size``², seed 0) with each imperfection of
``mismatch.Imperfections`` alone at its typical strength, all of them together, the clean
case and the resampled frames (``mismatch.EXTRA``: bicubic 2× then 2 × 2 binning, not part of
"all"), at 100 and 1000 photons. Both methods get the parameters a user would have
(``reconstruction_params``: with the k/phase errors) and the ideal OTF; the Wiener is the
default one (w from the data's noise). Columns: PSNR against the SIM-passband truth, pattern
imprint (worst ±b·k over its ring, dB, true k), border cross (dB), bead score (spread of
result / passband truth along the truth's filament skeleton, gain matched; 0 = no beads),
time, iterations, whether the PINN's imprint notch came in.

Real table: the 3-beam microtubules at high and low light (binned 2×2 to the native 128²
grid, the high set's estimated parameters for both), the OMX plane z = 4 and the low-SNR
TIRF crop (its measured 488 nm OTF; the estimator cannot see that pattern, so k and phases
are estimated with ``require_pattern=False`` in the annulus 1.0–1.2 kc the notes give).
For the low-light set, PSNR/SSIM against the high-light reconstructions of the same field
(ours and the published one, registered by phase correlation). PNGs (image | log spectrum)
go to ``--png``.

    python benchmarks/bench_pinn_real.py --real                     # real table
    python benchmarks/bench_pinn_real.py --real --sets 3-beam       # the 3-beam sets only
    python benchmarks/bench_pinn_real.py --mismatch --size 256      # mismatch table
    python benchmarks/bench_pinn_real.py --mismatch --photons 1000 --only all clean
"""

from __future__ import annotations

import argparse
import glob
import os
import time
from pathlib import Path

import numpy as np

from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.io import FrameLayout, arrange_frames, read_raw
from napari_sim_ml.engine.metrics import border_cross, compare_to_truth, pattern_imprint, sim_passband_truth
from napari_sim_ml.engine.mismatch import EXTRA, TYPICAL, Imperfections
from napari_sim_ml.engine.otf import otf_from_file
from napari_sim_ml.engine.parameters import FilterSettings, Optics
from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter

DATA = Path(__file__).resolve().parent / ".." / ".." / "shared" / "data"


def png(path: Path, img: np.ndarray) -> None:
    """image | log spectrum, 8-bit, percentile-stretched."""
    from PIL import Image

    a = np.asarray(img, np.float64)
    lo, hi = np.percentile(a, (0.5, 99.8))
    tiles = [np.clip((a - lo) / (hi - lo + 1e-12), 0, 1)]
    spec = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(a - a.mean()))))
    lo, hi = np.percentile(spec, (1, 99.95))
    tiles.append(np.clip((spec - lo) / (hi - lo + 1e-12), 0, 1))
    Image.fromarray((np.concatenate(tiles, axis=1) * 255).astype(np.uint8)).save(path)


def scores(img, px, params) -> dict:
    return dict(imprint=pattern_imprint(img, px, params).worst_db, cross=border_cross(img, px).worst_db)


def pinn(plane, optics, params, bg, otf=None, threads=None, haze_start=True):
    t0 = time.perf_counter()
    res = fit_pinn(plane, optics, params, PinnSettings(threads=threads, haze_start=haze_start), otf=otf, background=bg)
    return res, time.perf_counter() - t0


def wiener(plane, optics, params, bg, otf=None, w=0.05):
    t0 = time.perf_counter()
    img = wiener_filter(prepare_reconstruction(plane, optics, params, otf, bg), FilterSettings(wiener=w))
    return img, time.perf_counter() - t0


def bead_score(img: np.ndarray, ref: np.ndarray, truth: np.ndarray, border: int = 8) -> float:
    """Spread (std) of ``img`` / ``ref`` along the skeleton of ``truth`` > 0.3 max, after a least-squares gain.

    ``ref`` is the SIM-passband truth: a filament rendered without beads scores ≈ 0 (at
    crossings the ratio stays 1 too); beads and gaps along the filaments raise it.
    """
    from skimage.morphology import skeletonize

    sk = skeletonize(truth > 0.3 * truth.max())
    sk[:border] = sk[-border:] = False
    sk[:, :border] = sk[:, -border:] = False
    gain = float(np.sum(img * ref) / max(np.sum(ref * ref), 1e-12))
    return float(np.std(img[sk] / (gain * np.maximum(ref[sk], 1e-6))))


def mismatch_table(args) -> None:
    cases = args.only or ["clean", *TYPICAL, "all", *EXTRA]
    print(f"{'case':<24}{'ph':>6} | {'Wiener PSNR':>11}{'imprint':>8}{'cross':>6}{'beads':>6}{'s':>6} | "
          f"{'PINN PSNR':>10}{'imprint':>8}{'cross':>6}{'beads':>6}{'s':>7}{'iters':>6}  notch", flush=True)
    for photons in args.photons:
        for case in cases:
            imp = None if case == "clean" else Imperfections.typical() if case == "all" else Imperfections.only(case)
            sim = simulate_acquisition("filaments", args.size, photons=photons, seed=args.seed, imperfections=imp)
            ref = sim_passband_truth(sim.truth, sim.optics, sim.params)
            par, px = sim.reconstruction_params, sim.optics.pixel_size_um / 2
            t0 = time.perf_counter()
            w_img = wiener_filter(prepare_reconstruction(sim.raw, sim.optics, par, background=sim.offset))
            w_s = time.perf_counter() - t0
            res, p_s = pinn(sim.raw, sim.optics, par, sim.offset, threads=args.threads,
                            haze_start=not args.no_haze_start)
            ws, ps = scores(w_img, px, sim.params), scores(res.image, px, sim.params)
            notch = f"on (step {res.noise['notch_restart_step']})" if res.noise.get("notch") else "off"
            print(f"{case:<24}{photons:>6g} | {compare_to_truth(w_img, ref)[0]:>11.2f}{ws['imprint']:>8.1f}"
                  f"{ws['cross']:>6.1f}{bead_score(w_img, ref, sim.truth):>6.3f}{w_s:>6.1f} | "
                  f"{compare_to_truth(res.image, ref)[0]:>10.2f}{ps['imprint']:>8.1f}{ps['cross']:>6.1f}"
                  f"{bead_score(res.image, ref, sim.truth):>6.3f}{p_s:>7.1f}{res.iterations:>6d}  {notch}", flush=True)
            if args.png:
                png(args.png / f"mismatch_{case}_{photons:g}_wiener.png", w_img)
                png(args.png / f"mismatch_{case}_{photons:g}_pinn.png", res.image)


def three_beam(which: str) -> tuple[np.ndarray, Optics, float]:
    files = sorted(glob.glob(str(DATA / f"3beam-microtubules-x2/{which}/{which[0].upper()}E_*.tif")))[:15]
    import tifffile

    frames = np.stack([tifffile.imread(f) for f in files]).astype(np.float32)
    native = frames.reshape(15, 128, 2, 128, 2).mean(axis=(2, 4))  # undo the 2× bicubic upsampling
    return arrange_frames(native, FrameLayout(3, 5, 1, "PAZ"))[0, 0], Optics(1.49, 525.0, 0.06), 90.0


def real_sets():
    """(name, plane, optics, background, otf, params) for every real set present."""
    out = []
    if (DATA / "3beam-microtubules-x2").is_dir():
        high, optics, bg = three_beam("high")
        params = estimate_pattern(high, optics, background=bg).params
        out.append(("3-beam high", high, optics, bg, None, params))
        out.append(("3-beam low", three_beam("low")[0], optics, bg, None, params))
    if (DATA / "omx-3d-sim-64px").is_dir():
        raw = read_raw(DATA / "omx-3d-sim-64px/raw.tif")
        # pre-scaled float data (≈1e-5…9e-3): brought to a count-like range; the noise model is fitted
        plane = arrange_frames(raw.frames, FrameLayout(3, 5, 9, "PZA"))[0, 4].astype(np.float64) * 1e5
        optics = Optics(1.42, 528.0, 0.08)
        out.append(("OMX plane z=4", plane, optics, 0.0, None, estimate_pattern(plane, optics).params))
    if (DATA / "tirf-sim-microtubules-lowsnr").is_dir():
        raw = read_raw(DATA / "tirf-sim-microtubules-lowsnr/MT.mrc")
        plane = arrange_frames(raw.frames, FrameLayout(3, 3))[0, 0].astype(np.float32)
        optics = Optics(1.3, 525.0, raw.pixel_size_um)
        otf = otf_from_file(DATA / "tirf-sim-microtubules-lowsnr/otf/TIRF488_cam1_0_z30_OTF2d.mrc", 0.0626)
        params = estimate_pattern(plane, optics, otf=otf, background=100.0, require_pattern=False,
                                  k_range=(1.0, 1.2)).params
        out.append(("TIRF low-SNR 256²", plane, optics, 100.0, otf, params))
    return out


def register(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``img`` shifted onto ``ref`` (sub-pixel, phase correlation; a Fourier shift)."""
    from scipy.ndimage import fourier_shift
    from skimage.registration import phase_cross_correlation

    shift = phase_cross_correlation(ref, img, upsample_factor=20, normalization=None)[0]
    return np.fft.ifft2(fourier_shift(np.fft.fft2(img), shift)).real


def real_table(args) -> None:
    sets = [s for s in real_sets() if not args.sets or any(s[0].startswith(p) for p in args.sets)]
    if not sets:
        raise SystemExit(f"no real data under {DATA.resolve()}")
    print(f"{'set':<20}{'method':<16}{'imprint':>8}{'cross':>7}{'s':>7}{'iters':>6}  residual / note", flush=True)
    images = {}
    for name, plane, optics, bg, otf, params in sets:
        px = optics.pixel_size_um / 2
        for w in (0.05, 0.5):
            img, sec = wiener(plane, optics, params, bg, otf, w)
            images[(name, f"Wiener w={w}")] = img
            sc = scores(img, px, params)
            print(f"{name:<20}{f'Wiener w={w}':<16}{sc['imprint']:>8.1f}{sc['cross']:>7.1f}{sec:>7.2f}", flush=True)
        res, sec = pinn(plane, optics, params, bg, otf, args.threads)
        images[(name, "PINN")] = res.image
        sc = scores(res.image, px, params)
        rms = float(np.sqrt(np.mean(res.residual.astype(np.float64) ** 2)))
        note = f"residual RMS {rms:.2f}"
        if res.noise and "otf_attenuation" in res.noise:
            note += f", OTF a {res.noise['otf_attenuation']:.2f}"
        print(f"{name:<20}{'PINN':<16}{sc['imprint']:>8.1f}{sc['cross']:>7.1f}{sec:>7.1f}{res.iterations:>6d}  {note}",
              flush=True)
        if args.png:
            tag = name.split()[0] + "_" + name.split()[1]
            for (n, m), img in images.items():
                if n == name:
                    png(args.png / f"real_{tag}_{m.replace(' ', '').replace('=', '')}.png".replace("²", ""), img)
    if ("3-beam low", "PINN") in images:
        import tifffile

        published = tifffile.imread(DATA / "3beam-microtubules-x2/high-reconstruction.tif").astype(np.float64)
        refs = {"our Wiener high": images[("3-beam high", "Wiener w=0.05")],
                "our PINN high": images[("3-beam high", "PINN")], "published high": published}
        print("\n3-beam low light against the high-light reconstructions of the same field (PSNR dB / SSIM):")
        print(f"{'low-light method':<18}" + "".join(f"{k:>20}" for k in refs))
        for m in ("Wiener w=0.05", "Wiener w=0.5", "PINN"):
            low = images[("3-beam low", m)]
            row = []
            for k, ref in refs.items():
                img = register(low, ref) if k == "published high" else low
                p, s = compare_to_truth(img, ref)
                row.append(f"{p:>12.2f} / {s:.3f}")
            print(f"{m:<18}" + "".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--mismatch", action="store_true")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--photons", nargs="+", type=float, default=[100.0, 1000.0])
    parser.add_argument("--only", nargs="+", help="mismatch cases (clean, all, or Imperfections field names)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    parser.add_argument("--no-haze-start", action="store_true", help="mismatch table: PinnSettings(haze_start=False)")
    parser.add_argument("--sets", nargs="+", help="real sets whose names start with these (e.g. 3-beam TIRF)")
    parser.add_argument("--png", type=Path, default=None, help="folder for image | spectrum PNGs")
    args = parser.parse_args()
    if args.png:
        args.png.mkdir(parents=True, exist_ok=True)
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.real or not args.mismatch:
        real_table(args)
    if args.mismatch:
        mismatch_table(args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
