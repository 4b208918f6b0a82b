"""Step 2 of the two-step method (a denoiser of the reconstruction): gain and distortion on simulation.

Optics NA 1.4, 525 nm, 80 nm pixels, one fixed 2-beam 3 × 3 pattern (as bench_denoiser.py).
Models (each trained for a time budget on 1 thread, or reused from --models):

* step 1: the raw-frame denoiser, trained on filaments and rings, 20–300 photons;
* step 2 on Wiener: trained on (Wiener reconstruction of noisy stacks, matched passband truth)
  pairs of the same structures and photons; the Wiener is the command line's default (w chosen
  from the noise), the one step 2 is applied after;
* step 2 after step 1: the same, on reconstructions of step-1-denoised frames.

Scored on new seeds of filaments (seen in training), mesh and bundles (never seen) and needles
(short straight segments 0.4–1.6 µm, never seen) at 256², 30 / 60 / 200 photons, for Wiener, step
2 on Wiener, step 1 + Wiener and step 1 + step 2: PSNR/SSIM against the SIM-passband truth
(median over filaments, mesh, bundles) and the literature's risks, measured on the needles against
their own passband truth: signed change of length (nm; the needle's extent above half its
median along-axis intensity), displacement of the ends and lateral shift of the centre line (nm,
medians over needles), and on the mesh the spectral power between the widefield cutoff and the
SIM support relative to the passband truth's (1 = texture kept, < 1 = smoothed). The step-2
outputs' re-imaging check (variance of the normalised residual, 1 = noise only) is printed too.
Step 2's output is limited to the SIM support (``apply_step2``'s default) unless --no-band-limit.

    python benchmarks/bench_denoiser_step2.py [--minutes 3 4 4] [--models /tmp/s2bench] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter, map_coordinates

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_plane  # noqa: E402
from napari_sim_ml.engine.denoise.data import random_object, simulated_set  # noqa: E402
from napari_sim_ml.engine.denoise.step2 import apply_step2, load_step2, step2_set  # noqa: E402
from napari_sim_ml.engine.denoise.step2_check import step2_check  # noqa: E402
from napari_sim_ml.engine.denoise.step2_train import train_step2  # noqa: E402
from napari_sim_ml.engine.denoise.train import TrainSettings, train_denoiser  # noqa: E402
from napari_sim_ml.engine.methods import MethodSettings, reconstruct_plane  # noqa: E402
from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth  # noqa: E402
from napari_sim_ml.engine.otf import ideal_otf  # noqa: E402
from napari_sim_ml.engine.parameters import Optics  # noqa: E402
from napari_sim_ml.engine.simulate import random_parameters, simulate_acquisition  # noqa: E402

OPTICS = Optics(1.4, 525.0, 0.08)
PARAMS = random_parameters(OPTICS, 3, 3, 1, rng=np.random.default_rng(2024))
METHODS = ("Wiener", "step 2 on Wiener", "step 1 + Wiener", "step 1 + step 2")
FINE = OPTICS.pixel_size_um / 2


def make_needles(shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """Short straight needles (0.4–1.6 µm) one per 4 µm cell, values ≈ 1; returns image and (p0, p1) ends (px)."""
    from skimage.draw import line_aa

    img = np.zeros(shape)
    cell = int(4.0 / FINE)
    ends = []
    for cy in range(cell // 2, shape[0] - cell // 2 + 1, cell):
        for cx in range(cell // 2, shape[1] - cell // 2 + 1, cell):
            length = rng.uniform(0.4, 1.6) / FINE
            theta = rng.uniform(0, np.pi)
            c = np.array([cy, cx]) + rng.uniform(-0.1, 0.1, 2) * cell
            d = 0.5 * length * np.array([np.sin(theta), np.cos(theta)])
            p0, p1 = c - d, c + d
            rr, cc, val = line_aa(int(round(p0[0])), int(round(p0[1])), int(round(p1[0])), int(round(p1[1])))
            np.maximum.at(img, (rr, cc), val * rng.uniform(0.6, 1.0))
            ends.append((p0, p1))
    img = gaussian_filter(img, 0.6)
    return (img / img.max()).astype(np.float32), ends


def needle_geometry(image: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> tuple[float, float, float, float]:
    """(length nm, end0 along-axis nm, end1 along-axis nm, lateral centre nm) of one needle in ``image``."""
    axis = (p1 - p0) / np.linalg.norm(p1 - p0)
    normal = np.array([-axis[1], axis[0]])
    length = float(np.linalg.norm(p1 - p0))
    margin = 0.5 / FINE
    t = np.arange(-margin, length + margin, 0.25)
    s = np.arange(-4.0, 4.25, 0.25)
    pts = p0[:, None, None] + axis[:, None, None] * t[None, :, None] + normal[:, None, None] * s[None, None, :]
    patch = map_coordinates(image.astype(np.float64), pts.reshape(2, -1), order=1).reshape(len(t), len(s))
    bg = float(np.median(patch[:, [0, 1, -2, -1]]))
    along = patch[:, np.abs(s) <= 1.0].mean(axis=1) - bg
    inside = (t > 0.2 * length) & (t < 0.8 * length)
    half = 0.5 * float(np.median(along[inside]))
    above = np.nonzero(along > half)[0]
    if half <= 0 or not len(above):
        return float("nan"), float("nan"), float("nan"), float("nan")
    i0, i1 = above[0], above[-1]

    def cross(i: int, j: int) -> float:  # sub-sample half-maximum crossing between samples i and j
        a, b = along[i] - half, along[j] - half
        return float(t[i] + (t[j] - t[i]) * a / (a - b)) if a != b else float(t[i])

    e0 = cross(i0 - 1, i0) if i0 > 0 else float(t[0])
    e1 = cross(i1, i1 + 1) if i1 + 1 < len(t) else float(t[-1])
    across = np.clip(patch[inside].mean(axis=0) - bg, 0, None)
    lateral = float((across * s).sum() / max(across.sum(), 1e-12))
    nm = FINE * 1e3
    return (e1 - e0) * nm, e0 * nm, e1 * nm, lateral * nm


def distortion(image: np.ndarray, ref: np.ndarray, ends: list, crop: int = 16) -> dict[str, float]:
    """Needle length change, end displacement and lateral shift of ``image`` against ``ref`` (medians, nm)."""
    dl, de, dc = [], [], []
    for p0, p1 in ends:
        if min(p0.min(), p1.min()) < crop + 12 or max(p0.max(), p1.max()) > image.shape[0] - crop - 12:
            continue
        a, b = needle_geometry(image, p0, p1), needle_geometry(ref, p0, p1)
        if np.isnan(a[0]) or np.isnan(b[0]):
            continue
        dl.append(a[0] - b[0])
        de += [abs(a[1] - b[1]), abs(a[2] - b[2])]
        dc.append(abs(a[3] - b[3]))
    return {"dlength": float(np.median(dl)), "dend": float(np.median(de)), "dlateral": float(np.median(dc)),
            "needles": len(dl)}


def texture_power(image: np.ndarray, ref: np.ndarray, crop: int = 16) -> float:
    """Power between kc and the SIM support of ``image`` (scaled onto ``ref``) over ``ref``'s."""
    sl = (slice(crop, -crop), slice(crop, -crop))
    a, r = image[sl].astype(np.float64), ref[sl].astype(np.float64)
    g, b = np.linalg.lstsq(np.vstack([a.ravel(), np.ones(a.size)]).T, r.ravel(), rcond=None)[0]
    a = g * a + b
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    f = np.hypot(*np.meshgrid(scipy.fft.fftfreq(a.shape[0], FINE), scipy.fft.fftfreq(a.shape[1], FINE),
                              indexing="ij"))
    band = (f > OPTICS.cutoff_cycles_per_um) & (f < OPTICS.cutoff_cycles_per_um + PARAMS.angles[0].k_magnitude)
    pa = np.abs(scipy.fft.fft2((a - a.mean()) * win)) ** 2
    pr = np.abs(scipy.fft.fft2((r - r.mean()) * win)) ** 2
    return float(pa[band].sum() / pr[band].sum())


def train_models(args: argparse.Namespace, folder: Path) -> tuple[Denoiser, Denoiser, Denoiser, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    m1, m2, m12 = folder / "step1.pt", folder / "step2.pt", folder / "step2_after_step1.pt"
    structures = tuple(args.train_structures.split(","))
    photons = tuple(args.train_photons)
    info = {}
    common = dict(steps_per_epoch=50, epochs=10_000, batch=8, threads=1)
    if not m1.exists():
        ts = simulated_set(OPTICS, PARAMS, 96, 128, photons, structures, seed=1)
        r = train_denoiser(ts, OPTICS, PARAMS, TrainSettings(patch=64, time_limit_s=60 * args.minutes[0], **common),
                           checkpoint=m1)
        info["step 1"] = (r.steps, r.seconds, r.val_losses[0], r.val_losses[-1])
    den1 = Denoiser.load(m1, "cpu")
    for path, step1, minutes, name in ((m2, None, args.minutes[1], "step 2 on Wiener"),
                                       (m12, den1, args.minutes[2], "step 2 after step 1")):
        if path.exists():
            continue
        t0 = time.perf_counter()
        ts2 = step2_set(OPTICS, PARAMS, args.pairs, 64, photons, structures, step1=step1,
                        step1_name=m1.name if step1 else None, seed=3)
        sim_s = time.perf_counter() - t0
        r = train_step2(ts2, OPTICS, PARAMS, TrainSettings(patch=64, time_limit_s=60 * minutes, augment=True,
                                                           **common), checkpoint=path)
        info[name] = (r.steps, r.seconds, r.val_losses[0], r.val_losses[-1], sim_s)
    return den1, load_step2(m2, "cpu"), load_step2(m12, "cpu"), info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs=3, default=(3.0, 4.0, 4.0),
                    help="training budgets: step 1, step 2 on Wiener, step 2 after step 1")
    ap.add_argument("--models", default="/tmp/s2bench", help="folder of the models (reused when present)")
    ap.add_argument("--pairs", type=int, default=96, help="step-2 training pairs")
    ap.add_argument("--train-photons", type=float, nargs=2, default=(20.0, 300.0))
    ap.add_argument("--train-structures", default="filaments,rings")
    ap.add_argument("--photons", type=float, nargs="+", default=(30.0, 60.0, 200.0))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--no-band-limit", action="store_true",
                    help="keep the step-2 output's content beyond the SIM support (apply_step2 band_limit=False)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    bl = not args.no_band_limit
    import torch

    torch.set_num_threads(1)
    load0 = os.getloadavg()[0]
    den1, s2, s12, info = train_models(args, Path(args.models))
    for name, v in info.items():
        print(f"{name}: {v[0]} steps in {v[1]:.0f} s, validation {v[2]:.3f} → {v[3]:.3f}"
              + (f" (pairs simulated in {v[4]:.0f} s)" if len(v) > 4 else ""))
    otf = ideal_otf(OPTICS)
    wiener = MethodSettings.from_flags()
    rows = []
    for photons in args.photons:
        per: dict[str, dict[str, list]] = {m: {} for m in METHODS}
        for j, structure in enumerate(("filaments", "mesh", "bundles", "needles")):
            seed = 5000 + 10 * j + int(photons)
            rng = np.random.default_rng(seed)
            shape = (2 * args.size, 2 * args.size)
            ends: list = []
            if structure == "needles":
                truth, ends = make_needles(shape, rng)
            else:
                truth = random_object(structure, shape, FINE, rng)
            sim = simulate_acquisition(structure, args.size, OPTICS, params=PARAMS, photons=photons, truth=truth,
                                       seed=seed)
            ref = sim_passband_truth(sim.truth, OPTICS, PARAMS)
            plain = reconstruct_plane(sim.raw, OPTICS, PARAMS, otf, sim.offset, wiener).image
            dn = denoise_plane(sim.raw, den1, OPTICS, PARAMS, sim.offset)
            den_w = reconstruct_plane(dn, OPTICS, PARAMS, otf, sim.offset, wiener).image
            t0 = time.perf_counter()
            out2 = apply_step2(plain, s2, threads=1, band_limit=bl)
            per_ms = 1e3 * (time.perf_counter() - t0)
            images = {"Wiener": plain, "step 2 on Wiener": out2, "step 1 + Wiener": den_w,
                      "step 1 + step 2": apply_step2(den_w, s12, threads=1, band_limit=bl)}
            for m, img in images.items():
                d = per[m]
                d.setdefault("infer_ms", []).append(per_ms)
                if structure == "needles":
                    for k, v in distortion(img, ref, ends).items():
                        d.setdefault(k, []).append(v)
                    continue
                p, s = compare_to_truth(img, ref)
                d.setdefault("psnr", []).append(p)
                d.setdefault("ssim", []).append(s)
                d.setdefault(f"psnr_{structure}", []).append(p)
                if structure == "mesh":
                    d.setdefault("texture", []).append(texture_power(img, ref))
                if m in ("step 2 on Wiener", "step 1 + step 2"):
                    chk = step2_check(img, sim.raw, OPTICS, PARAMS, otf, sim.offset, gain=1.0, var0=1.0)
                    d.setdefault("check_var", []).append(chk.report.variance)
        for m in METHODS:
            rows.append({"photons": photons, "method": m, **{k: float(np.median(v)) for k, v in per[m].items()}})
    summary = {"rows": rows, "training": info, "load_average": [load0, os.getloadavg()[0]], "threads": 1}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"\nload average {load0:.1f} → {os.getloadavg()[0]:.1f}; torch 1 thread; step-2 inference "
          f"{np.median([r['infer_ms'] for r in rows]):.0f} ms per {2 * args.size}² reconstruction")
    print("| photons | method | PSNR / SSIM (median) | filaments / mesh / bundles PSNR | needle Δlength nm | "
          "needle end shift nm | needle lateral shift nm | mesh texture power | re-imaging variance |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cv = f"{r['check_var']:.2f}" if "check_var" in r else "–"
        print(f"| {r['photons']:.0f} | {r['method']} | {r['psnr']:.2f} / {r['ssim']:.3f} | {r['psnr_filaments']:.2f}"
              f" / {r['psnr_mesh']:.2f} / {r['psnr_bundles']:.2f} | {r['dlength']:+.0f} | {r['dend']:.0f} | "
              f"{r['dlateral']:.1f} | {r['texture']:.2f} | {cv} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
