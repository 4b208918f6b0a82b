"""Where the 2-beam phase error comes from: the estimator against an oracle.

For simulated filament stacks (256², ``--photons``, seeds 0..``--seeds``-1) it prints per angle the
estimator's mean phase error (common to the angle's frames), its worst frame-to-frame step error,
the worst frame, and −2π δk·r_c (the k error's lever to the origin, r_c = field centre). Then the
same k/phase fit run as an oracle — TRUE phase steps, and band 0 either noise-free or from the
noisy frames — which bounds what the final k/phase step can reach with this data.

    python benchmarks/bench_phase.py [--seeds 6] [--photons 100]

Uses the estimator's private pieces on purpose (a diagnostic, not an API).
"""

from __future__ import annotations

import argparse

import numpy as np

from napari_sim_ml.engine import estimate as est
from napari_sim_ml.engine.bands import edge_window, fft2, preprocess, serial_blas
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.parameters import wrap_phase
from napari_sim_ml.engine.simulate import simulate_acquisition


def estimator_rows(sim) -> list[tuple[float, float, float, float]]:
    res = est.estimate_pattern(sim.raw, sim.optics, background=sim.offset)
    centre = np.array(sim.raw.shape[-2:][::-1]) / 2 * sim.optics.pixel_size_um  # (x, y) µm
    rows = []
    for a, e in zip(sim.params.angles, res.params.angles, strict=False):
        a, e = a.canonical(), e.canonical()
        err = np.array([wrap_phase(y - x) for x, y in zip(a.phases_rad, e.phases_rad, strict=False)])
        lever = -2 * np.pi * np.subtract(e.k_cycles_per_um, a.k_cycles_per_um) @ centre
        rows.append((err.mean(), np.abs(err - err.mean()).max(), np.abs(err).max(), lever))
    return rows


def oracle_errors(sim, clean) -> dict[str, list[float]]:
    """Origin-phase error of the final k/phase step given the true phase steps and true k."""
    ny, nx = sim.raw.shape[-2:]
    px = sim.optics.pixel_size_um
    transfer = est._transfer(ideal_otf(sim.optics), (ny, nx), px, True)
    h0 = transfer(0.0, 0.0)
    skip = est.TAPER_PX + est.SLOPE_MARGIN_PX
    interior = np.outer(*(np.pad(edge_window(n - 2 * skip, est.TAPER_PX // 2), skip) for n in (ny, nx)))
    window = edge_window(ny, est.TAPER_PX)[:, None] * edge_window(nx, est.TAPER_PX)[None, :]
    noisy = preprocess(sim.raw, sim.offset, taper_px=0, equalize=False)
    truth = preprocess(clean.raw, clean.offset, taper_px=0, equalize=False)
    band0 = {"noise-free band 0": (truth.mean(axis=1) * window).sum(axis=0),
             "noisy band 0": (noisy.mean(axis=1) * window).sum(axis=0)}
    out: dict[str, list[float]] = {name: [] for name in band0}
    for d, a in enumerate(sim.params.angles):
        kx, ky = a.k_cycles_per_um
        k_px = (ky * ny * px, kx * nx * px)
        tapered = noisy[d] * window
        fit = est._AngleFit(tapered, fft2(tapered), np.ones(len(a.phases_rad)), k_px, [transfer(*k_px)],
                            np.array(a.phases_rad) - a.phases_rad[0], np.ones(len(a.phases_rad)))
        for name, reference in band0.items():
            _, offset = est._slope_and_offset(fit, reference, h0, 1, interior, est.FINAL_GRIDS)
            out[name].append(wrap_phase(offset - a.phases_rad[0]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--photons", type=float, default=100.0)
    args = parser.parse_args()
    rows, oracle = [], {}
    print(f"{'seed':>4} {'angle':>5} | {'mean err':>9} {'max step':>9} {'max frame':>9} | {'-2π δk·r_c':>10}")
    for seed in range(args.seeds):
        sim = simulate_acquisition("filaments", 256, photons=args.photons, seed=seed)
        clean = simulate_acquisition("filaments", 256, photons=args.photons, seed=seed, noise=False,
                                     truth=sim.truth, params=sim.params)
        for d, r in enumerate(estimator_rows(sim)):
            rows.append(r)
            print(f"{seed:>4} {d:>5} | {r[0]:+9.3f} {r[1]:9.3f} {r[2]:9.3f} | {r[3]:+10.3f}")
        with serial_blas():
            for name, errs in oracle_errors(sim, clean).items():
                oracle.setdefault(name, []).extend(errs)
    r = np.array(rows)
    print(f"\nestimator: common (mean) error rms {np.sqrt(np.mean(r[:, 0] ** 2)):.4f} rad, "
          f"worst frame {r[:, 2].max():.4f} rad, corr(mean error, lever) {np.corrcoef(r[:, 0], r[:, 3])[0, 1]:.2f}")
    for name, errs in oracle.items():
        e = np.abs(errs)
        print(f"oracle (true steps, {name}): origin-phase error rms {np.sqrt(np.mean(e ** 2)):.4f}, "
              f"max {e.max():.4f} rad")


if __name__ == "__main__":
    main()
