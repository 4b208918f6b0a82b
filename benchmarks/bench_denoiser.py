"""Trained raw-frame denoiser: train on simulation for one optics/pattern, score on held-out stacks.

Training: the project's simulator with the given optics and pattern, structures ``--train-structures``
(default filaments, rings), photons log-uniform in ``--train-photons``. Scoring: new seeds of the
structures in ``--test-structures`` (default mesh, bundles, filaments; mesh and bundles are never
seen in training), 256² px, at 30, 60 and 200 photons, PSNR/SSIM against the passband truth for

* best-w Wiener: the Wiener w that scores best on each stack (an oracle; grid of 12 w),
* denoiser + Wiener: the denoised frames, Wiener with its own best w,
* the same two with the default (data-chosen, non-oracle) w of ``filters.auto_wiener``,
* (``--pinn``) the noise-aware PINN and the PINN on the denoised frames (slow),

with the training time, the inference time per 256² plane (wall and CPU time, 1 and 2 torch threads,
median of 7) and the model size, and the
data-consistency figures of the denoised frames. Medians over the test stacks.

    python benchmarks/bench_denoiser.py [--train-minutes 12] [--model out.pt] [--pinn] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_frames, denoise_plane  # noqa: E402
from napari_sim_ml.engine.denoise.check import consistency_check, data_noise  # noqa: E402
from napari_sim_ml.engine.denoise.data import random_object, simulated_set  # noqa: E402
from napari_sim_ml.engine.denoise.train import TrainSettings, train_denoiser  # noqa: E402
from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth  # noqa: E402
from napari_sim_ml.engine.parameters import FilterSettings, Optics  # noqa: E402
from napari_sim_ml.engine.simulate import random_parameters, simulate_acquisition  # noqa: E402
from napari_sim_ml.engine.wiener import default_settings, prepare_reconstruction, wiener_filter  # noqa: E402

W_GRID = np.geomspace(0.005, 1.0, 12)


def best_wiener(plane, optics, params, background, ref, default=False):
    """(PSNR, SSIM, w) at the best w of W_GRID; with ``default`` also (PSNR, SSIM, w) at the auto w."""
    prepared = prepare_reconstruction(plane, optics, params, background=background)
    best = (-np.inf, 0.0, 0.0)
    for w in W_GRID:
        psnr, ssim = compare_to_truth(wiener_filter(prepared, FilterSettings(wiener=float(w))), ref)
        if psnr > best[0]:
            best = (psnr, ssim, float(w))
    if not default:
        return best
    s = default_settings(prepared)
    return best, (*compare_to_truth(wiener_filter(prepared, s), ref), float(s.wiener))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, not {text}")
    return value


def time_inference(den, threads, repeats=7):
    """Median wall and CPU seconds of one 256² plane (9 frames) at ``threads`` torch threads."""
    x = np.random.default_rng(0).poisson(30.0, (1, 9, 256, 256)).astype(np.float32)
    denoise_frames(x, den, threads=threads)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        denoise_frames(x, den, threads=threads)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return 1e3 * float(np.median(wall)), 1e3 * float(np.median(cpu))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-minutes", type=float, default=12.0)
    ap.add_argument("--train-stacks", type=int, default=96)
    ap.add_argument("--train-photons", type=float, nargs=2, default=(20.0, 300.0))
    ap.add_argument("--train-structures", default="filaments,rings")
    ap.add_argument("--test-structures", default="mesh,bundles,filaments")
    ap.add_argument("--photons", type=float, nargs="+", default=(30.0, 60.0, 200.0))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--width", type=int)
    ap.add_argument("--depth", type=int)
    ap.add_argument("--full", type=int, help="channels at the camera grid")
    ap.add_argument("--full-convs", type=int, help="3×3 convolutions per camera-grid block")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--model", help="train into this file, or reuse it if it exists")
    ap.add_argument("--pinn", action="store_true", help="also score the PINN and the PINN on denoised frames")
    ap.add_argument("--pinn-iterations", type=int)
    ap.add_argument("--pinn-structures", help="score the PINN only on these test structures (it is slow)")
    ap.add_argument("--lr", type=float, default=TrainSettings.lr)
    ap.add_argument("--loss", default=TrainSettings.loss, choices=("recon", "mse", "mae", "anscombe"))
    ap.add_argument("--augment", action="store_true", help="90° rotations/flips in training")
    ap.add_argument("--no-augment", action="store_true", help="(the default) no rotations/flips")
    ap.add_argument("--threads", type=_positive_int, default=1, help="torch threads of the training (default 1)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    optics = Optics(1.4, 525.0, 0.08)
    params = random_parameters(optics, 3, 3, 1, rng=np.random.default_rng(2024))
    load0 = os.getloadavg()[0]
    model = Path(args.model) if args.model else Path("/tmp/bench_denoiser.pt")
    train_s = None
    if args.model and model.exists():
        den = Denoiser.load(model, "cpu")
        train_s = den.meta.training.get("seconds")
    else:
        t0 = time.perf_counter()
        ts = simulated_set(optics, params, args.train_stacks, 2 * args.patch, tuple(args.train_photons),
                           tuple(args.train_structures.split(",")), seed=1)
        sim_s = time.perf_counter() - t0
        settings = TrainSettings(epochs=10_000, steps_per_epoch=50, batch=args.batch, patch=args.patch,
                                 width=args.width, depth=args.depth, full=args.full, full_convs=args.full_convs,
                                 lr=args.lr, loss=args.loss, threads=args.threads,
                                 augment=args.augment and not args.no_augment,
                                 time_limit_s=60 * args.train_minutes)
        res = train_denoiser(ts, optics, params, settings, checkpoint=model)
        train_s = res.seconds
        print(f"simulated {args.train_stacks} training stacks in {sim_s:.0f} s; trained {res.steps} steps in "
              f"{res.seconds:.0f} s; validation loss {res.val_losses[0]:.3f} → {res.val_losses[-1]:.3f}")
        den = Denoiser.from_weights(res.meta, res.weights, "cpu")
    n_params = sum(int(np.prod(p.shape)) for p in den.net.state_dict().values())
    timing = {th: time_inference(den, th) for th in (1, 2)}
    infer_ms = timing[1][0]

    rows, pinn_log = [], []
    for photons in args.photons:
        per = {k: [] for k in ("wiener", "wiener_ssim", "den", "den_ssim", "mean", "var", "flag", "w0", "w1",
                               "pinn", "pinn_ssim", "dpinn", "dpinn_ssim", "dwiener", "dwiener_ssim", "dden",
                               "dden_ssim", "dw0", "dw1", "rden", "rden_ssim")}
        for j, structure in enumerate(args.test_structures.split(",")):
            seed = 1000 + 10 * j + int(photons)
            truth = random_object(structure, (2 * args.size, 2 * args.size), optics.pixel_size_um / 2,
                                  np.random.default_rng(seed))
            sim = simulate_acquisition(structure, args.size, optics, params=params, photons=photons, truth=truth,
                                       seed=seed)
            ref = sim_passband_truth(sim.truth, optics, params)
            (p0, s0, w0), (q0, t0, v0) = best_wiener(sim.raw, optics, params, sim.offset, ref, default=True)
            dn = denoise_plane(sim.raw, den, optics, params, background=sim.offset)
            (p1, s1, w1), (q1, t1, v1) = best_wiener(dn, optics, params, sim.offset, ref, default=True)
            rawdefault = wiener_filter(prepare_reconstruction(dn, optics, params, background=sim.offset),
                                       FilterSettings(wiener=v0))  # the denoised frames at the raw frames' w
            q2, t2 = compare_to_truth(rawdefault, ref)
            for k, v in (("dwiener", q0), ("dwiener_ssim", t0), ("dden", q1), ("dden_ssim", t1), ("dw0", v0),
                         ("dw1", v1), ("rden", q2), ("rden_ssim", t2)):
                per[k].append(v)
            g, v0 = data_noise(sim.raw, optics, den.meta.gain, sim.offset)
            rep = consistency_check(sim.raw, dn, optics, params, g, v0, sim.offset)
            for k, v in (("wiener", p0), ("wiener_ssim", s0), ("den", p1), ("den_ssim", s1), ("w0", w0),
                         ("w1", w1), ("mean", rep.mean), ("var", rep.variance), ("flag", rep.flagged_fraction)):
                per[k].append(v)
            if args.pinn and (not args.pinn_structures or structure in args.pinn_structures.split(",")):
                from napari_sim_ml.engine.pinn import PinnSettings, fit_pinn

                kw = {"iterations": args.pinn_iterations} if args.pinn_iterations else {}
                kw["threads"] = 1
                for key, data in (("pinn", sim.raw), ("dpinn", dn)):
                    t_fit = time.perf_counter()
                    r = fit_pinn(data, optics, params, PinnSettings(**kw), background=sim.offset)
                    ps, ss = compare_to_truth(r.image, ref)
                    per[key].append(ps)
                    per[key + "_ssim"].append(ss)
                    pinn_log.append((photons, structure, key, ps, ss, time.perf_counter() - t_fit, p0, p1))
                    print(f"PINN {photons:.0f} ph {structure} {key}: {ps:.2f} dB / {ss:.3f} in "
                          f"{pinn_log[-1][5]:.0f} s", flush=True)
        rows.append({"photons": photons, **{k: float(np.median(v)) for k, v in per.items() if v},
                     "per_structure": {st: {"wiener": a, "den": b} for st, a, b in
                                       zip(args.test_structures.split(","), per["wiener"], per["den"], strict=False)}})
    load1 = os.getloadavg()[0]
    summary = {"train_seconds": train_s, "infer_ms_per_256_plane": infer_ms, "pinn": pinn_log,
               "infer_ms_wall_cpu_by_threads": timing, "parameters": n_params,
               "model_bytes": model.stat().st_size if model.exists() else None, "rows": rows,
               "load_average": [load0, load1], "threads": args.threads, "cores": len(os.sched_getaffinity(0)),
               "net": den.meta.net, "training": {k: v for k, v in den.meta.training.items() if k != "stacks"}}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    times = ", ".join(f"{th} thread(s) {w:.0f} ms wall / {c:.0f} ms CPU" for th, (w, c) in timing.items())
    print(f"\ninference per 256² plane (9 frames, median of 7): {times}")
    print(f"training {train_s:.0f} s, inference {infer_ms:.0f} ms per 256² plane (9 frames), "
          f"{n_params} parameters, model file {summary['model_bytes']} bytes; load average {load0:.1f} → "
          f"{load1:.1f} on {summary['cores']} cores, training on {summary['threads']} torch thread(s)")
    head = "| photons | best-w Wiener PSNR / SSIM | denoiser + Wiener PSNR / SSIM | gain dB | w (W / D+W) " \
           "| residual mean / var | flagged |"
    if args.pinn:
        head += " PINN PSNR / SSIM | denoiser + PINN PSNR / SSIM |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        line = (f"| {r['photons']:.0f} | {r['wiener']:.2f} / {r['wiener_ssim']:.3f} | {r['den']:.2f} / "
                f"{r['den_ssim']:.3f} | {r['den'] - r['wiener']:+.2f} | {r['w0']:.3g} / {r['w1']:.3g} | "
                f"{r['mean']:+.3f} / {r['var']:.3f} | {r['flag']:.2%} |")
        if args.pinn:
            line += f" {r['pinn']:.2f} / {r['pinn_ssim']:.3f} | {r['dpinn']:.2f} / {r['dpinn_ssim']:.3f} |"
        print(line)
    print("\nWith the default (data-chosen) w instead of the oracle:")
    print("| photons | default-w Wiener PSNR / SSIM | denoiser + default-w Wiener PSNR / SSIM | gain dB "
          "| w (W / D+W) | denoiser + Wiener at the raw frames' default w | gain dB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['photons']:.0f} | {r['dwiener']:.2f} / {r['dwiener_ssim']:.3f} | {r['dden']:.2f} / "
              f"{r['dden_ssim']:.3f} | {r['dden'] - r['dwiener']:+.2f} | {r['dw0']:.3g} / {r['dw1']:.3g} | "
              f"{r['rden']:.2f} / {r['rden_ssim']:.3f} | {r['rden'] - r['dwiener']:+.2f} |")
    print("\nPSNR gain of denoiser + Wiener over best-w Wiener per test structure (dB):")
    structures = args.test_structures.split(",")
    print("| photons | " + " | ".join(structures) + " |")
    print("|---|" + "---|" * len(structures))
    for r in rows:
        ps = r["per_structure"]
        print(f"| {r['photons']:.0f} | " + " | ".join(f"{ps[st]['den'] - ps[st]['wiener']:+.2f}" for st in structures)
              + " |")
    if pinn_log:
        print("\nPINN per test stack (best-w Wiener and denoiser + Wiener of the same stack for reference):")
        print("| photons | structure | input | PINN PSNR / SSIM | fit s | best-w Wiener | denoiser + Wiener |")
        print("|---|---|---|---|---|---|---|")
        for ph, st, key, ps, ss, secs, p0, p1 in pinn_log:
            print(f"| {ph:.0f} | {st} | {'denoised' if key == 'dpinn' else 'raw'} | {ps:.2f} / {ss:.3f} | "
                  f"{secs:.0f} | {p0:.2f} | {p1:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
