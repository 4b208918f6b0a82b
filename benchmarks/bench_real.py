"""Real data first: truth-free figures of every method on every real set, and the mismatch simulator.

Real sets (../shared/data, see each NOTES.md):
  3beam-high / 3beam-low  3-beam microtubules, 15 single-frame TIFFs per folder, stacked and binned 2×2 to the
                          native 0.06 µm grid; NA 1.49 and 525 nm assumed (not stated); background 90. The low set
                          is reconstructed with the high set's estimated parameters.
  omx                     OMX plane z = 4 (order PZA), NA 1.42, 528 nm, 0.08 µm, ideal OTF, estimated parameters.
  tirf                    low-SNR TIRF (MT.mrc), NA 1.3, 525 nm, its measured 488 OTF, background 100; estimation
                          is impossible there, so k comes from NOTES.md (|k| = 5.53 /µm, their angle presets) and
                          the phases are equidistant steps at the offsets the estimator returns (given parameters).
Methods: widefield, "old" default Wiener (taper to the mean, mean equalisation, w = 0.05: the filter before this
issue), default Wiener (w from the noise), best-w Wiener (3-beam low: best PSNR against our high-light result;
3-beam high: against the published high-light reconstruction; the other sets have no reference), the
spectrum-optimised filter ("hifi") and the PINN (public API; --no-pinn skips it).
Figures: pattern imprint (worst of ±k/±2k, dB), border cross (dB), normalised residual (mean, variance, pattern at
k in dB), decorrelation resolution (nm), time (s). 3-beam low adds PSNR/SSIM against our high-light default Wiener
and against the published high-light reconstruction. --mismatch: PSNR against the passband truth per imperfection.

    python benchmarks/bench_real.py [--no-pinn | --pinn-sets SET ...] [--mismatch] [--png-dir /tmp/classical-png]
"""

from __future__ import annotations

import argparse
import glob
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.filters import auto_wiener, hifi_filter
from napari_sim_ml.engine.io import FrameLayout, arrange_frames, read_raw
from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth
from napari_sim_ml.engine.mismatch import TYPICAL, Imperfections
from napari_sim_ml.engine.otf import otf_from_file
from napari_sim_ml.engine.parameters import AnglePattern, FilterSettings, Optics, PatternParameters
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.trust import truth_free_report
from napari_sim_ml.engine.wiener import log_spectrum, prepare_reconstruction, wiener_filter

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
OLD = dict(border="taper", equalize="mean")
PUBLISHED = {"3beam-high": "3beam-microtubules-x2/high-reconstruction.tif",
             "3beam-low": "3beam-microtubules-x2/low-reconstruction.tif"}


@dataclass
class RealSet:
    name: str
    plane: np.ndarray
    optics: Optics
    params: PatternParameters
    otf: object = None
    background: float = 0.0


def _three_beam(folder: Path, prefix: str) -> np.ndarray:
    files = sorted(glob.glob(str(folder / f"{prefix}_*.tif")))[:15]
    frames = np.stack([tifffile.imread(f) for f in files]).astype(np.float32)
    native = frames.reshape(15, 128, 2, 128, 2).mean(axis=(2, 4))  # undo the 2× bicubic upsampling
    return arrange_frames(native, FrameLayout(3, 5, 1, "PAZ"))[0, 0]


def load_sets() -> list[RealSet]:
    sets = []
    three = DATA / "3beam-microtubules-x2"
    optics3 = Optics(1.49, 525.0, 0.06)
    high = _three_beam(three / "high", "HE")
    params3 = estimate_pattern(high, optics3, background=90.0).params
    sets.append(RealSet("3beam-high", high, optics3, params3, None, 90.0))
    sets.append(RealSet("3beam-low", _three_beam(three / "low", "LE"), optics3, params3, None, 90.0))
    omx = read_raw(DATA / "omx-3d-sim-64px/raw.tif")
    plane = arrange_frames(omx.frames, FrameLayout(3, 5, 9, "PZA"))[0, 4]
    plane = plane / plane.max() * 10000.0  # the file is pre-scaled to ~1e-2; any gain is fine for a linear filter
    optics_omx = Optics(1.42, 528.0, 0.08)
    sets.append(RealSet("omx", plane, optics_omx, estimate_pattern(plane, optics_omx).params))
    tirf = read_raw(DATA / "tirf-sim-microtubules-lowsnr/MT.mrc")
    plane = arrange_frames(tirf.frames, FrameLayout(3, 3))[0, 0].astype(np.float32)
    optics_t = Optics(1.3, 525.0, tirf.pixel_size_um)
    otf = otf_from_file(DATA / "tirf-sim-microtubules-lowsnr/otf/TIRF488_cam1_0_z30_OTF2d.mrc", optics_t.pixel_size_um)
    est = estimate_pattern(plane, optics_t, otf=otf, background=100.0, require_pattern=False).params
    angles = []
    for theta, a in zip((1.48, 2.5272, 3.5744), est.angles, strict=False):
        offset = a.phases_rad[0]
        angles.append(AnglePattern((5.53 * np.cos(theta), 5.53 * np.sin(theta)),
                                   tuple(offset + 2 * np.pi * n / 3 for n in range(3)), (0.5,)).canonical())
    sets.append(RealSet("tirf", plane, optics_t, PatternParameters(tuple(angles)), otf, 100.0))
    return sets


def _u8(a: np.ndarray, lo: float = 0.5, hi: float = 99.8) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    low, high = np.percentile(a, [lo, hi])
    return (np.clip((a - low) / max(high - low, 1e-12), 0, 1) * 255).astype(np.uint8)


def save_png(path: Path, images: dict[str, np.ndarray]) -> None:
    """One column per method: the image over its log spectrum."""
    cols = [np.concatenate([_u8(img), _u8(log_spectrum(img), 1, 99.99)], axis=0) for img in images.values()]
    Image.fromarray(np.concatenate(cols, axis=1)).save(path)


def run_methods(s: RealSet, pinn: bool, threads: int | None = 1) -> dict[str, tuple[np.ndarray, float, float | None]]:
    """name → (image, seconds, w used)."""
    out = {}
    t0 = time.perf_counter()
    old = prepare_reconstruction(s.plane, s.optics, s.params, s.otf, s.background, **OLD)
    out["old Wiener"] = (wiener_filter(old, FilterSettings()), time.perf_counter() - t0, 0.05)
    t0 = time.perf_counter()
    prepared = prepare_reconstruction(s.plane, s.optics, s.params, s.otf, s.background)
    w = auto_wiener(prepared)
    image = wiener_filter(prepared, replace(FilterSettings(), wiener=w))
    out["default Wiener"] = (image, time.perf_counter() - t0, w)
    out["widefield"] = (prepared.widefield, 0.0, None)
    t0 = time.perf_counter()
    out["hifi"] = (hifi_filter(prepared), time.perf_counter() - t0, 0.1)
    out["_prepared"] = (prepared, 0.0, None)  # type: ignore[assignment]
    if pinn:
        from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn

        res = fit_pinn(s.plane, s.optics, s.params, PinnSettings(threads=threads), otf=s.otf, background=s.background)
        out["PINN"] = (res.image, res.seconds, None)
        n = res.noise or {}
        print(f"PINN on {s.name}: {res.iterations} iterations, {res.seconds:.1f} s, noise inflation "
              f"{n.get('noise_inflation', 1.0):.2f}, notch {'on' if n.get('notch') else 'off'}", flush=True)
    return out


def _row(name: str, image: np.ndarray, s: RealSet, seconds: float, w: float | None, noise: float,
         extra: str = "") -> str:
    rep = truth_free_report(image, s.plane, s.optics, s.params, s.otf, s.background, noise_variance=noise)
    r = rep.residual
    res = f"{r.mean:+6.2f} {r.variance:7.2f} {r.worst_imprint_db:6.1f}" if r else "     —       —      —"
    wtxt = f"{w:.3g}" if w is not None else "—"
    return (f"| {s.name} | {name} | {wtxt} | {rep.imprint.worst_db:.1f} | {rep.cross.worst_db:.1f} | "
            f"{res.split()[0] if r else '—'} | {res.split()[1] if r else '—'} | {res.split()[2] if r else '—'} | "
            f"{rep.resolution_um * 1e3:.0f} | {seconds:.2f} |{extra}")


def bench_real(pinn: bool, png_dir: Path, pinn_sets: list[str] | None = None, threads: int | None = 1) -> None:
    sets = load_sets()
    print("| set | method | w | imprint dB | cross dB | resid mean | resid var | resid k dB | decorr nm | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    for s in sets:
        methods = run_methods(s, pinn and (pinn_sets is None or s.name in pinn_sets), threads)
        prepared = methods.pop("_prepared")[0]
        results[s.name] = (s, methods, prepared)
        for name, (image, seconds, w) in methods.items():
            print(_row(name, image, s, seconds, w, prepared.frame_noise_variance), flush=True)
        save_png(png_dir / f"real_{s.name}.png", {k: v[0] for k, v in methods.items()})
        side = {k: methods[k][0] for k in ("widefield", "default Wiener", "PINN") if k in methods}
        published = PUBLISHED.get(s.name)
        if published is not None:
            side["published"] = tifffile.imread(DATA / published).astype(np.float32)
        save_png(png_dir / f"real_{s.name}_side.png", side)  # widefield | default Wiener | PINN | published
    # 3-beam low light against the high-light reconstructions of the same field
    s_low, low, prepared_low = results["3beam-low"]
    ours_high = results["3beam-high"][1]["default Wiener"][0]
    published_high = tifffile.imread(DATA / "3beam-microtubules-x2/high-reconstruction.tif").astype(np.float32)
    published_low = tifffile.imread(DATA / "3beam-microtubules-x2/low-reconstruction.tif").astype(np.float32)
    ws = np.geomspace(0.01, 3.0, 25)
    scores = [compare_to_truth(wiener_filter(prepared_low, FilterSettings(wiener=w)), ours_high)[0] for w in ws]
    best_w = float(ws[int(np.argmax(scores))])
    best = wiener_filter(prepared_low, FilterSettings(wiener=best_w))
    print(_row("best-w Wiener", best, s_low, 0.0, best_w, prepared_low.frame_noise_variance))
    # the high-light set's best w against the published high-light reconstruction (the only other reference)
    s_high, _, prepared_high = results["3beam-high"]
    scores = [compare_to_truth(wiener_filter(prepared_high, FilterSettings(wiener=w)), published_high)[0] for w in ws]
    best_wh = float(ws[int(np.argmax(scores))])
    print(_row("best-w Wiener (vs published)", wiener_filter(prepared_high, FilterSettings(wiener=best_wh)), s_high,
               0.0, best_wh, prepared_high.frame_noise_variance))
    save_png(png_dir / "real_3beam-low_best.png", {"best-w": best, "published low": published_low,
                                                     "published high": published_high, "ours high": ours_high})
    high_pinn = results["3beam-high"][1].get("PINN", (None,))[0]
    print("\n3-beam low light against the high-light reconstruction of the same field (PSNR dB / SSIM)\n")
    print("| low-light result | vs our high-light default Wiener | vs the published high-light |"
          + (" vs our high-light PINN |" if high_pinn is not None else ""))
    print("|---|---|---|" + ("---|" if high_pinn is not None else ""))
    candidates = {k: v[0] for k, v in low.items()}
    candidates[f"best-w Wiener (w = {best_w:.2g})"] = best
    candidates["published low-light"] = published_low
    for name, image in candidates.items():
        a = compare_to_truth(image, ours_high)
        b = compare_to_truth(image, published_high)
        c = f" {compare_to_truth(image, high_pinn)[0]:.2f} / {compare_to_truth(image, high_pinn)[1]:.3f} |" \
            if high_pinn is not None else ""
        print(f"| {name} | {a[0]:.2f} / {a[1]:.3f} | {b[0]:.2f} / {b[1]:.3f} |{c}", flush=True)


def bench_mismatch(pinn: bool, png_dir: Path, size: int = 256, seed: int = 0) -> None:
    from napari_sim_ml.engine.metrics import border_cross, pattern_imprint

    print("\nMismatch simulator (filaments 256², seed 0): PSNR dB against the passband truth; imprint / cross dB\n")
    head = "| photons | imperfection | old Wiener | default Wiener | hifi |" + (" PINN |" if pinn else "")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    cases = [("none", Imperfections())] + [(k, Imperfections.only(k)) for k in TYPICAL] + [
        ("all", Imperfections.typical())]
    for photons in (100, 1000):
        for label, imp in cases:
            sim = simulate_acquisition("filaments", size, photons=photons, seed=seed, imperfections=imp)
            ref = sim_passband_truth(sim.truth, sim.optics, sim.params)
            params = sim.reconstruction_params
            px = sim.optics.pixel_size_um / 2
            old = wiener_filter(prepare_reconstruction(sim.raw, sim.optics, params, background=sim.offset, **OLD),
                                FilterSettings())
            prepared = prepare_reconstruction(sim.raw, sim.optics, params, background=sim.offset)
            images = {"old": old, "default": wiener_filter(prepared), "hifi": hifi_filter(prepared)}
            if pinn:
                from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn

                images["PINN"] = fit_pinn(sim.raw, sim.optics, params, PinnSettings(threads=1),
                                          background=sim.offset).image
            cells = []
            for img in images.values():
                cells.append(f"{compare_to_truth(img, ref)[0]:.2f} ({pattern_imprint(img, px, params).worst_db:.1f}"
                             f" / {border_cross(img, px).worst_db:.1f})")
            print(f"| {photons} | {label} | " + " | ".join(cells) + " |")
            if label == "all" and photons == 100:
                save_png(png_dir / "mismatch_all_100.png", {**images, "passband truth": ref})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-pinn", action="store_true", help="skip the PINN")
    parser.add_argument("--mismatch", action="store_true", help="also run the mismatch simulator table")
    parser.add_argument("--no-real", action="store_true", help="skip the real sets")
    parser.add_argument("--png-dir", default="/tmp/classical-png")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the PINN (default 1)")
    parser.add_argument("--pinn-sets", nargs="+", default=None, metavar="SET",
                        help="run the PINN on these real sets only (3beam-high 3beam-low omx tirf)")
    args = parser.parse_args()
    png_dir = Path(args.png_dir)
    png_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_real:
        if not DATA.is_dir():
            raise SystemExit(f"the real data are not at {DATA}")
        bench_real(not args.no_pinn, png_dir, args.pinn_sets, args.threads)
    if args.mismatch:
        bench_mismatch(not args.no_pinn, png_dir)


if __name__ == "__main__":
    main()
