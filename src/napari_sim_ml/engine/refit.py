"""Calibration reuse: keep k (and the angles) of a known pattern, refit phases and modulation.

k is estimated once, where the pattern is bright (a high-light acquisition, a bead slide);
for new data of the same instrument only the phases (they drift between acquisitions),
the modulation and the per-frame gains are refitted, with the fit of estimate.py
(phasefit.py) at the given k: the phase steps minimise the object-constraint misfit, the
absolute phase is that of u v* = H(f − k) B_1(f) [H(f) B_0(f − k)]* summed over the field
(the phase at the field centre, carried to the origin with the given k, which is what a
reconstruction with that k needs). This works where the pattern is too faint to be found
(a search for k would take a noise or specimen peak), but the grade still says how faint:
the correlation height at the given k, graded as in estimation, and a warning where the
data's own peak lies clearly off the given k (a calibration that does not fit the data).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .bands import band_orders, preprocess, serial_blas
from .errors import SimInputError
from .estimate import MIN_QUALITY, AngleDiagnostics, EstimationResult, band_correlation, quality_grade
from .otf import RadialOTF
from .parameters import Optics, PatternParameters, check_pattern_optics, wrap_phase
from .phasefit import (
    FINAL_GRIDS,
    OTF_FLOOR,
    AngleFit,
    FitGrid,
    angle_pattern,
    angle_spectra,
    dft_at,
    fit_grid,
    fit_steps,
    modulations,
    second_pass,
    set_k,
    slope_and_offset,
    widefield_of,
)

K_OFFSET_WARN_PX = 0.25  # the data's own peak this far (Fourier px) from the given k: the calibration may not fit
# (a k error δ px shifts the phase by π δ at the field's edge; 0.25 px is 0.8 rad there)
ZERO_SHIFT = ((0.0, 1),)  # a refine grid of one point: u v* summed at δ = 0


def refit_with_known_k(
    plane: np.ndarray,
    optics: Optics,
    known: PatternParameters,
    otf: RadialOTF | None = None,
    n_orders: int | None = None,
    background: float = 0.0,
    fit_gains: bool = True,
) -> EstimationResult:
    """Refit phases, modulation (and frame gains) of ``plane`` at the k of ``known``.

    Parameters
    ----------
    plane : (A, P, Y, X) raw counts; A and P must be those of ``known``.
    optics : the optics of ``plane`` (its pixel size turns k in cycles/µm into Fourier px).
    known : parameters whose k (cycles/µm, per angle) are kept exactly; their phase steps
        start the fit, their absolute phases and modulation are not used.
    otf : detection OTF (default: the ideal one of ``optics``).
    n_orders : 1 (2-beam) or 2 (3-beam); default, and it must equal, ``known.n_orders``.
    background : camera offset, counts.
    fit_gains : with several angles, also fit per-frame gains (bleaching) as estimation does.

    Returns
    -------
    EstimationResult with k from ``known`` and the refitted phases (rad) and modulation;
    per angle the quality (correlation height at the given k) and its grade, margin ∞ (k
    was not chosen among candidates), and a note where the data's peak lies off the given k.

    Raises
    ------
    SimInputError
        when ``known`` does not match the stack (angles, phases, orders) or the optics.
    """
    plane = np.asarray(plane)
    if plane.ndim != 4:
        raise SimInputError(f"a plane of raw frames is (angles, phases, Y, X), not an array of {plane.ndim} "
                            "dimensions")
    n_angles, n_phases = plane.shape[:2]
    if known.n_angles != n_angles:
        raise SimInputError(f"the known parameters have {known.n_angles} angles but the stack has {n_angles}; "
                            "reuse k only from an acquisition with the same angles")
    if known.n_phases != n_phases:
        raise SimInputError(f"the known parameters have {known.n_phases} phases per angle but the stack has "
                            f"{n_phases}; reuse k only from an acquisition with the same phases")
    if n_orders is not None and n_orders != known.n_orders:
        raise SimInputError(f"the known parameters describe {known.n_orders} harmonic order(s) "
                            f"({'3' if known.n_orders == 2 else '2'}-beam), not the {n_orders} asked for")
    if n_phases < len(band_orders(known.n_orders)):
        raise SimInputError(f"{n_phases} phases cannot separate {len(band_orders(known.n_orders))} orders")
    check_pattern_optics(known, optics)
    with serial_blas():
        return _refit(plane, optics, known, otf, background, fit_gains)


def _quality_at(frames: np.ndarray, n_orders: int, grid: FitGrid, k_top: tuple[float, float]) -> float:
    """Correlation height of the top band with band 0 at ±the top-order k (Fourier px), over the
    median of the search annulus away from ±k: estimation's quality, at a given k.
    """
    ny, nx = grid.shape
    _, _, prod, corr = band_correlation(frames, n_orders, grid.kr, grid.otf_grid, grid.kc)
    fy = np.fft.fftfreq(ny, 1.0 / ny)[:, None]
    fx = np.fft.fftfreq(nx, 1.0 / nx)[None, :]
    annulus = (grid.kr >= 0.3 * grid.kc) & (grid.kr <= 1.1 * grid.kc)
    far = annulus & (np.hypot(fy - k_top[0], fx - k_top[1]) > 3) & (np.hypot(fy + k_top[0], fx + k_top[1]) > 3)
    background = max(float(np.median(corr[far])) if far.any() else np.inf, 1e-30)
    # equidistant phase steps of the opposite sense to the data's put the top band at −k: the higher of ±k
    height = max(abs(dft_at(prod, np.array([s * k_top[0]]), np.array([s * k_top[1]]))[0, 0]) for s in (1, -1))
    return float(height / background)


def _refit(plane: np.ndarray, optics: Optics, known: PatternParameters, otf: RadialOTF | None,
           background: float, fit_gains: bool) -> EstimationResult:
    n_orders = known.n_orders
    equalised = preprocess(plane, background)
    raw = preprocess(plane, background, taper_px=0, equalize=False)
    grid = fit_grid(plane.shape[-2:], optics, otf)
    ny, nx = grid.shape
    fits: list[AngleFit] = []
    with np.errstate(all="ignore"):
        for d, pattern in enumerate(known.angles):
            k_px = grid.fourier_px(pattern.k_cycles_per_um)
            steps = [wrap_phase(v - pattern.phases_rad[0]) for v in pattern.phases_rad]
            fit = angle_spectra(raw[d], k_px, grid.transfer, grid.noise_region, np.array(steps))
            set_k(fit, k_px, grid.transfer, grid.h0, n_orders)
            fit_steps(fit, None, n_orders, rounds=3)
            fits.append(fit)
        if len(fits) > 1 and fit_gains:
            second_pass(fits, n_orders, grid.h0 > OTF_FLOOR)
        widefield = widefield_of(fits, n_orders)
    angles, diags, warnings = [], [], []
    for d, fit in enumerate(fits):
        k_top = (n_orders * fit.k_px[0], n_orders * fit.k_px[1])
        quality = _quality_at(equalised[d], n_orders, grid, k_top)
        with np.errstate(all="ignore"):
            _, offset = slope_and_offset(fit, widefield, grid.h0, n_orders, grid.interior, ZERO_SHIFT)
            (dy, dx), _ = slope_and_offset(fit, widefield, grid.h0, n_orders, grid.interior, FINAL_GRIDS)
            mods = modulations(fit, n_orders)
        if not all(math.isfinite(v) for v in (offset, *mods, *fit.phases)):
            raise SimInputError(f"angle {d}: the phase fit at the given k failed numerically; check the frame "
                                "order and that the parameters belong to this instrument")
        pattern = angle_pattern(fit, grid, fit.k_px, offset, mods)  # k exactly as given, not via Fourier px:
        pattern = replace(pattern, k_cycles_per_um=known.angles[d].canonical().k_cycles_per_um)
        angles.append(pattern)
        grade, note = quality_grade(quality), ""
        if quality >= MIN_QUALITY and math.hypot(dy, dx) > K_OFFSET_WARN_PX:
            note = (f"the data's pattern peak lies {math.hypot(dy, dx):.2f} Fourier px from the given k "
                    f"(|k| {100 * _relative_k(fit.k_px, (dy, dx)):+.2f} %); the calibration may not fit this "
                    "acquisition")
            grade = "low" if grade in ("good", "excellent") else grade
        elif quality < MIN_QUALITY:
            note = (f"the pattern is barely visible at the given k (quality {quality:.1f} < {MIN_QUALITY:g}); "
                    "the refitted phases are uncertain")
        if note:
            warnings.append(f"angle {d}: {note}")
        diags.append(AngleDiagnostics(quality=quality, grade=grade, peak_px=k_top, modulation_measured=mods,
                                      margin=float("inf"), note=note))
    return EstimationResult(PatternParameters(tuple(angles)), tuple(diags), tuple(warnings))


def _relative_k(k_px: tuple[float, float], delta: tuple[float, float]) -> float:
    """Relative |k| change of a first-order k (Fourier px) moved by ``delta``."""
    k = math.hypot(*k_px)
    return (math.hypot(k_px[0] + delta[0], k_px[1] + delta[1]) - k) / k



def estimate_or_refit(plane: np.ndarray, optics: Optics, known: PatternParameters | None = None,
                      otf: RadialOTF | None = None, n_orders: int | None = None, background: float = 0.0,
                      consistency_prior: bool = True) -> EstimationResult:
    """What the front ends call: ``refit_with_known_k`` when ``known`` is given (``--k-from``),
    else ``estimate_pattern``; the same arguments and result either way.
    """
    if known is not None:
        return refit_with_known_k(plane, optics, known, otf=otf, n_orders=n_orders, background=background)
    from .estimate import estimate_pattern

    return estimate_pattern(plane, optics, otf=otf, n_orders=n_orders, background=background,
                            consistency_prior=consistency_prior)
