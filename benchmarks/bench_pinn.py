"""PINN benchmark: quality against the truth, time, memory and uncertainty coverage.

Simulated stacks (``simulate_acquisition(structure, size, photons=..., seed=...)``): PSNR/SSIM
against the SIM-passband truth for widefield, Wiener with estimated parameters, the faithful
PINN (published recipe, ``--faithful-steps`` steps) and the noise-aware PINN (estimated
parameters, estimated camera noise); wall time, iterations, peak RSS; coverage of the truth by
±1σ / ±2σ of the noise-aware σ map.

    python benchmarks/bench_pinn.py                      # 256² filaments + mesh at 1000 and 60 photons
    python benchmarks/bench_pinn.py --demo               # faithful mode on the paper's demo set
    python benchmarks/bench_pinn.py --calibrate          # fit SIGMA_CALIBRATION on 128² simulations

Coverage is measured after mapping the passband truth onto the image by a least-squares gain
and offset (as the PSNR does), 16 px border excluded. Times exclude the one-off torch import,
which is done before the first timed fit and printed separately.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import numpy as np

from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth
from napari_sim_ml.engine.parameters import Optics
from napari_sim_ml.engine.pinn import SIGMA_CALIBRATION, PinnSettings, pinn_steps
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.steps import run_to_end
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter

DEMO = Path(__file__).resolve().parent / ".." / ".." / "shared" / "data" / "pinn-demo" / "SIM" / "microtubules"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakRSS:
    """Peak resident memory above the level at entry, polled every 20 ms."""

    def __enter__(self):
        self.base = self.peak = rss_mb()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, rss_mb())
        self.mb = self.peak - self.base


def run_fit(plane, optics, params, settings, **kw):
    """Run pinn_steps; returns (result, fit seconds without the uncertainty continuations)."""
    stamps = {}
    t0 = time.perf_counter()
    result = run_to_end(pinn_steps(plane, optics, params, settings, **kw),
                        lambda p: stamps.__setitem__(p.step, time.perf_counter() - t0))
    return result, stamps.get(result.iterations, result.seconds)


def coverage(image: np.ndarray, sigma: np.ndarray, ref: np.ndarray, crop: int = 16) -> np.ndarray:
    """|image − truth mapped onto the image| / σ per pixel (border excluded)."""
    sl = (slice(crop, -crop), slice(crop, -crop))
    a, r, s = image[sl].astype(np.float64), ref[sl].astype(np.float64), sigma[sl].astype(np.float64)
    coef = np.linalg.lstsq(np.stack([r.ravel(), np.ones(r.size)], 1), a.ravel(), rcond=None)[0]
    return np.abs(a - (coef[0] * r + coef[1])) / np.maximum(s, 1e-12)


def warm_up() -> float:
    t0 = time.perf_counter()
    import torch  # noqa: F401  (the one-off import, seconds on a slow disk)

    sim = simulate_acquisition("filaments", 32, photons=100, seed=0)
    run_fit(sim.raw, sim.optics, sim.params, PinnSettings(iterations=2), background=sim.offset)
    return time.perf_counter() - t0


def bench_stack(structure: str, size: int, photons: float, seed: int, args) -> list[dict]:
    sim = simulate_acquisition(structure, size, photons=photons, seed=seed)
    ref = sim_passband_truth(sim.truth, sim.optics, sim.params)
    t0 = time.perf_counter()
    params = estimate_pattern(sim.raw, sim.optics, background=sim.offset).params
    prepared = prepare_reconstruction(sim.raw, sim.optics, params, background=sim.offset)
    wiener = wiener_filter(prepared)
    t_wiener = time.perf_counter() - t0
    rows = [dict(method="widefield", image=prepared.widefield),
            dict(method="Wiener (est. params)", image=wiener, seconds=t_wiener)]
    if args.faithful_steps:
        with PeakRSS() as mem:
            res, fit_s = run_fit(sim.raw, sim.optics, params,
                                 PinnSettings(mode="faithful", iterations=args.faithful_steps, seed=seed),
                                 background=sim.offset)
        rows.append(dict(method=f"PINN faithful ({args.faithful_steps} steps)", image=res.image,
                         seconds=fit_s, iterations=res.iterations, mb=mem.mb))
    with PeakRSS() as mem:
        res, fit_s = run_fit(sim.raw, sim.optics, params,
                             PinnSettings(uncertainty_samples=args.samples, seed=seed), background=sim.offset)
    row = dict(method="PINN noise-aware", image=res.image, seconds=fit_s, iterations=res.iterations,
               mb=mem.mb, unc_seconds=res.seconds - fit_s)
    if res.sigma is not None:
        z = coverage(res.image, res.sigma, ref)
        row.update(cov1=float((z < 1).mean()), cov2=float((z < 2).mean()))
    rows.append(row)
    for r in rows:
        r["psnr"], r["ssim"] = compare_to_truth(r.pop("image"), ref)
        r.update(structure=structure, photons=photons)
    return rows


def print_table(rows: list[dict], flush: bool = False) -> None:
    head = (f"{'stack':<18}{'method':<30}{'PSNR dB':>8}{'SSIM':>7}{'time s':>8}{'iters':>6}"
            f"{'peak MB':>8}{'unc s':>7}{'cov1σ':>7}{'cov2σ':>7}")
    print(head)
    print("-" * len(head))

    def fmt(v, spec):
        return format(v, spec) if v is not None else ""

    for r in rows:
        print(f"{r['structure'] + ' ' + format(r['photons'], 'g') + ' ph':<18}{r['method']:<30}"
              f"{r['psnr']:>8.2f}{r['ssim']:>7.3f}{fmt(r.get('seconds'), '8.1f'):>8}"
              f"{fmt(r.get('iterations'), 'd'):>6}{fmt(r.get('mb'), '8.0f'):>8}"
              f"{fmt(r.get('unc_seconds'), '7.1f'):>7}{fmt(r.get('cov1'), '7.1%'):>7}{fmt(r.get('cov2'), '7.1%'):>7}",
              flush=flush)


def calibrate(args) -> None:
    """σ scale that makes ±σ cover 68 % of the pooled pixels; prints the 2σ coverage it gives."""
    zs = []
    for structure in ("filaments", "mesh"):
        for photons in (60, 1000):
            for seed in range(args.calibration_seeds):
                sim = simulate_acquisition(structure, 128, photons=photons, seed=100 + seed)
                ref = sim_passband_truth(sim.truth, sim.optics, sim.params)
                res, _ = run_fit(sim.raw, sim.optics, sim.params,
                                 PinnSettings(uncertainty_samples=args.samples, seed=seed),
                                 background=sim.offset)
                z = coverage(res.image, res.sigma, ref) * SIGMA_CALIBRATION  # back to the raw spread
                zs.append(z.ravel())
                c = np.quantile(z, 0.68)
                print(f"{structure:<10}{photons:>6} ph seed {seed}: c68 {c:.3f}  2σ coverage at c68 "
                      f"{(z < 2 * c).mean():.1%}")
    z = np.concatenate(zs)
    c = float(np.quantile(z, 0.68))
    print(f"SIGMA_CALIBRATION = {c:.3f}  (pooled; 2σ coverage {np.mean(z < 2 * c):.1%})")


def demo(args) -> None:
    """Faithful mode on the paper's linear-SIM demo set 23 (published normalisation)."""
    from skimage.io import imread

    from napari_sim_ml.engine.otf import otf_from_psf

    root = DEMO.resolve()
    if not root.is_dir():
        raise SystemExit(f"demo data not found: {root}")
    frames = np.stack([imread(root / "input_frames" / f"23_{i}.png") for i in range(1, 10)]).astype(np.float32)
    patterns = np.stack([imread(root / "patterns" / f"{i}.png") for i in range(1, 10)]).astype(np.float32)
    truth = imread(root / "ground_truth" / "23.png").astype(np.float64)
    low = imread(root / "low_res" / "23.png").astype(np.float64)
    psf = imread(root / "psf.png").astype(np.float64)
    optics = Optics(na=1.4, wavelength_nm=525.0, pixel_size_um=0.1)  # only the pixel size matters here
    otf = otf_from_psf(psf, optics.pixel_size_um / 4)

    def score(img):
        sl = (slice(20, -20), slice(20, -20))
        a, t = img[sl].astype(np.float64), truth[sl]
        a = (a - a.min()) / (a.max() - a.min())
        t = (t - t.min()) / (t.max() - t.min())
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity
        return peak_signal_noise_ratio(t, a, data_range=1.0), structural_similarity(t, a, data_range=1.0)

    print(f"demo set 23: widefield (low_res) PSNR {score(low)[0]:.2f} dB SSIM {score(low)[1]:.3f}")
    settings = PinnSettings(mode="faithful", iterations=args.demo_steps, preview_every=10, seed=args.seed,
                            bf16=args.bf16 or None)
    gen = pinn_steps(frames.reshape(3, 3, 120, 120), optics, None, settings, otf=otf, patterns=patterns,
                     psf=psf if args.exact_psf else None)
    t0 = time.perf_counter()

    def report(p):
        if p.preview is not None:
            db, ss = score(p.preview)
            print(f"  step {p.step:4d}  loss {p.loss:.4f}  PSNR {db:.2f} dB  SSIM {ss:.3f}  "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)

    with PeakRSS() as mem:
        res = run_to_end(gen, report)
    db, ss = score(res.image)
    print(f"faithful PINN: {res.iterations} steps, {res.seconds:.0f} s, peak {mem.mb:.0f} MB: "
          f"PSNR {db:.2f} dB SSIM {ss:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--structures", nargs="+", default=["filaments", "mesh"])
    parser.add_argument("--photons", nargs="+", type=float, default=[1000.0, 60.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=6, help="bootstrap continuations for σ")
    parser.add_argument("--faithful-steps", type=int, default=50, help="0 skips the faithful mode")
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--demo-steps", type=int, default=100)
    parser.add_argument("--bf16", action="store_true", help="bf16 network in the faithful demo (CPU speed)")
    parser.add_argument("--exact-psf", action="store_true", help="demo: use psf.png itself, not its radial OTF")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--calibration-seeds", type=int, default=2)
    args = parser.parse_args()
    print(f"warm-up (torch import + a tiny fit): {warm_up():.1f} s; cores {os.cpu_count()}")
    if args.calibrate:
        calibrate(args)
        return
    if args.demo:
        demo(args)
        return
    rows = []
    for structure in args.structures:
        for photons in args.photons:
            new = bench_stack(structure, args.size, photons, args.seed, args)
            print_table(new, flush=True)
            rows += new
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
