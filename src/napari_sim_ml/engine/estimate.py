"""Estimation of the illumination pattern from the raw frames.

Per angle (phases in rad, k in Fourier px of the raw grid):

1. k, coarsely, and the quality: the top band (equidistant phases assumed) is
   cross-correlated with band 0; quality = peak / median correlation (~4 for noise).
2. Phase steps, unequal ones too: with the right phases the bands obey the object
   constraint B_b(f) H(f − bk) = c_b H(f) B_0(f − bk). The steps minimise its misfit
   (best c_b per trial, inverse-noise weights, expected noise part removed). With
   several angles a second pass adds the misfit of the angle's band 0 against the
   other angles' (the same widefield image) and fits per-frame gains (bleaching).
   The misfits are quadratic forms in the unmixing weights, so after one pass of
   FFTs an L-BFGS-B trial (analytic gradient) costs a few (2P × 2P) products.
3. k, finely, and the absolute phase: u = H(f − k) B_1(f) and v = H(f) B_0(f − k)
   (B_0 of all angles) agree up to c_1 exp(i2π δ·r) when k is off by δ: the peak of
   u v* (away from the edge taper, which breaks the constraint) gives δ, its phase
   the phase at the origin.
4. Modulation m_b = 2 |c_b|, from object frequencies above ~0.15 kc.

Frames are not equalised: a frame's mean carries the object's structure at k, and
rescaling by it biases the phases (the fitted gains take its place).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import scipy.fft

from .bands import FFT_WORKERS, band_orders, fft2, ifft2, preprocess, separate_bands, serial_blas
from .candidates import (
    CANDIDATE_HEIGHT,
    MAX_CANDIDATES,
    MIN_MARGIN,
    Candidate,
    choose,
    coherence,
    local_maxima,
    rotation,
)
from .errors import NoPatternError, SimInputError
from .otf import RadialOTF
from .parameters import Optics, PatternParameters, equidistant_phases
from .phasefit import (
    C_GUESS,
    FINAL_GRIDS,
    OTF_FLOOR,
    Transfer,
    angle_pattern,
    first_pass,
    fit_grid,
    modulations,
    ramp,
    refine_peak,
    second_pass,
    slope_and_offset,
    widefield_of,
)

_T = TypeVar("_T")
MIN_QUALITY = 6.5  # pure noise scores 4-5.5 (measured on 45 noise stacks of 64²-256²)
QUALITY_GRADES = ((MIN_QUALITY, "inadequate"), (12.0, "low"), (30.0, "good"))

def quality_grade(quality: float) -> str:
    """'inadequate' < 6.5 ≤ 'low' < 12 ≤ 'good' < 30 ≤ 'excellent' (QUALITY_GRADES)."""
    for limit, name in QUALITY_GRADES:
        if quality < limit:
            return name
    return "excellent"


@dataclass(frozen=True)
class AngleDiagnostics:
    """What the estimator saw for one angle.

    quality: correlation peak / median correlation in the search annulus.
    grade: quality_grade(quality), at most 'low' when the angle disagrees with the others
        (``note``) or its margin is below MIN_MARGIN.
    peak_px: (row, col) position of the top-order peak in Fourier pixels (FFT
        frequency index, may be negative), for marking on a spectrum.
    modulation_measured: modulation per order before clipping to [0.05, 1].
    margin: the chosen peak over the runner-up: the ratio of their joint likelihoods
        (coherence × consistency prior) when both were judged, else of their correlation heights.
    note: why this angle is inconsistent with the others ('' when it is not).
    candidates: every peak kept for this angle (highest correlation first); ``chosen`` indexes it.
    """

    quality: float
    grade: str
    peak_px: tuple[float, float]
    modulation_measured: tuple[float, ...]
    margin: float = float("inf")
    note: str = ""
    candidates: tuple[Candidate, ...] = ()
    chosen: int = 0

    @property
    def runner_up_px(self) -> tuple[float, float] | None:
        """The best candidate not chosen (Fourier px), for drawing on a spectrum."""
        others = [c for i, c in enumerate(self.candidates) if i != self.chosen]
        return max(others, key=lambda c: c.log_score if c.coherence == c.coherence else -1e9 + c.height).k_px \
            if others else None


@dataclass(frozen=True)
class EstimationResult:
    """params and one AngleDiagnostics per angle; warnings: one sentence per doubtful angle."""

    params: PatternParameters
    diagnostics: tuple[AngleDiagnostics, ...]
    warnings: tuple[str, ...] = ()


def _wrap_signed(idx: np.ndarray, n: int) -> np.ndarray:
    return np.where(idx > n // 2, idx - n, idx)


def band_correlation(frames: np.ndarray, n_orders: int, kr: np.ndarray, otf_grid: np.ndarray,
                     kc: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Correlate one angle's top band with its band 0.

    Bands of one angle's frames (P, Y, X) for equidistant phases, the top band's spectrum, the
    product p = x_top x_0* of the OTF-weighted top band and band 0 (real space), and |FFT(p)|:
    the top order's correlation with band 0, peaked at the top-order k (Fourier px).
    """
    ny, nx = frames.shape[-2:]
    bands = separate_bands(frames, equidistant_phases(frames.shape[0]), n_orders)
    weight = (otf_grid > 0.02) * (1.0 - np.exp(-(kr / (0.15 * kc)) ** 2))
    weight = (weight / np.maximum(otf_grid, 0.1)).astype(np.float32)
    half = weight[:, : nx // 2 + 1]  # the weight is radial, so band 0 stays real: half spectra suffice
    x0 = scipy.fft.irfft2(scipy.fft.rfft2(bands[0].real, workers=FFT_WORKERS) * half, s=(ny, nx), workers=FFT_WORKERS)
    top_spectrum = fft2(bands[2 * n_orders - 1])
    prod = ifft2(top_spectrum * weight) * np.conj(x0)
    return bands, top_spectrum, prod, np.abs(fft2(prod))


def _find_candidates(frames: np.ndarray, n_orders: int, kr: np.ndarray, otf_grid: np.ndarray, kc: float,
                     k_range: tuple[float, float], transfer: Transfer, h0: np.ndarray, noise_region: np.ndarray,
                     min_quality: float) -> list[Candidate]:
    """Find one angle's candidate pattern peaks.

    Top-order correlation peaks (ky, kx) in Fourier px of the raw grid, highest first, each with
    its quality (height), rotation and, when within CANDIDATE_HEIGHT of the highest peak that
    moves with the phase steps, its object-constraint coherence (see candidates.py).
    """
    ny, nx = frames.shape[-2:]
    bands, top_spectrum, prod, corr = band_correlation(frames, n_orders, kr, otf_grid, kc)
    annulus = (kr >= k_range[0] * kc) & (kr <= k_range[1] * kc)
    if not annulus.any():
        raise SimInputError("the pattern search range holds no frequencies; check NA, wavelength and pixel size")
    peaks = local_maxima(np.where(annulus, corr, 0.0), MAX_CANDIDATES)
    fy = _wrap_signed(np.arange(ny), ny)[:, None]
    fx = _wrap_signed(np.arange(nx), nx)[None, :]
    y0, x0_ = (float(_wrap_signed(np.array(v), n)) for v, n in zip(peaks[0], (ny, nx), strict=False))
    far = annulus & (np.hypot(fy - y0, fx - x0_) > 3)
    background = max(float(np.median(corr[far])) if far.any() else np.inf, 1e-30)
    cands = []
    for rank, (iy, ix) in enumerate(peaks):
        height = corr[iy, ix] / background
        if rank and height < min_quality:
            break
        # band −b's correlation at +s is band +b's at −s (real frames, real band 0): equal for a fixed structure
        k_px = (float(_wrap_signed(np.array(iy), ny)), float(_wrap_signed(np.array(ix), nx)))
        cands.append(Candidate(k_px, float(height), rotation(corr[iy, ix], corr[-iy, -ix])))
    moving = [c.height for c in cands if c.moves_with_phase] or [cands[0].height]
    judged = [i for i, c in enumerate(cands) if c.height >= CANDIDATE_HEIGHT * max(moving)
              and (c.moves_with_phase or i == 0)]
    noise = None
    for i in judged:  # sub-pixel peak and quality; the others keep their integer peak (refined if chosen)
        ky, kx, peak = refine_peak(prod, cands[i].k_px)
        cands[i] = replace(cands[i], k_px=(ky, kx), height=abs(peak) / background)
        if len(judged) > 1 and cands[i].moves_with_phase:
            if noise is None:
                enough = noise_region.sum() > 64
                noise = (float(np.mean(np.abs(top_spectrum[noise_region]) ** 2)) if enough else 0.0,
                         float(np.mean(np.abs(fft2(bands[0].real)[noise_region]) ** 2)) if enough else 0.0)
            cands[i] = replace(cands[i], coherence=_coherence(bands[0].real, top_spectrum, cands[i].k_px,
                                                              transfer, h0, noise))
    return cands


def _coherence(band0: np.ndarray, top_spectrum: np.ndarray, k_px: tuple[float, float], transfer: Transfer,
               h0: np.ndarray, noise: tuple[float, float]) -> float:
    """Score a candidate shift by the object constraint.

    Object-constraint coherence of H(f − s) B_top(f) with H(f) B_0(f − s), s = ``k_px``, over
    the overlap (both OTFs > OTF_FLOOR), weighted as the constraint; noise per coefficient given.
    """
    hs = transfer(*k_px)
    region = (h0 > OTF_FLOOR) & (hs > OTF_FLOOR)
    w = 1.0 / np.sqrt(hs[region] ** 2 + C_GUESS**2 * h0[region] ** 2)
    u = top_spectrum[region] * (hs[region] * w)
    v = fft2(band0 * ramp(band0.shape, k_px))[region] * (h0[region] * w)
    return coherence(u, v, noise[0] * float(np.sum((hs[region] * w) ** 2)),
                     noise[1] * float(np.sum((h0[region] * w) ** 2)))


def _guarded(peaks: list[tuple[tuple[float, float], float]], min_quality: float,
             fn: Callable[..., _T], *args: object) -> _T:
    """Run a fitting step, turning numerical failures into one-sentence errors.

    Run a fitting step; a numerical failure (it happens on patternless noise) becomes a
    NoPatternError for the weakest angle, or a SimInputError, never a traceback.
    """
    try:
        with np.errstate(all="ignore"):
            return fn(*args)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        weakest = min(range(len(peaks)), key=lambda i: peaks[i][1])
        if peaks[weakest][1] < min_quality:
            raise NoPatternError(weakest, peaks[weakest][1], min_quality) from None
        raise SimInputError(f"the pattern fit failed numerically ({exc}); check the frame order") from None


def estimate_pattern(
    plane: np.ndarray,
    optics: Optics,
    otf: RadialOTF | None = None,
    n_orders: int | None = None,
    background: float = 0.0,
    k_range: tuple[float, float] = (0.3, 1.1),
    min_quality: float = MIN_QUALITY,
    require_pattern: bool = True,
    consistency_prior: bool = True,
) -> EstimationResult:
    """Estimate k, per-frame phases and modulation of every angle.

    plane: (A, P, Y, X) raw counts; background: camera offset (counts).
    n_orders: 1 (2-beam) or 2 (3-beam); default 2 when P ≥ 5, else 1.
    k_range: search annulus for the top order, in units of the OTF cutoff kc.
    consistency_prior: prefer peaks with equal |k| on every angle and angles 180°/n apart (see
    candidates.py); off, each angle takes its best-judged peak (inconsistency is still reported).
    Raises NoPatternError when an angle's quality is below ``min_quality`` and
    ``require_pattern`` is true.
    """
    with serial_blas():
        return _estimate(plane, optics, otf, n_orders, background, k_range, min_quality, require_pattern,
                         consistency_prior)


def _estimate(plane: np.ndarray, optics: Optics, otf: RadialOTF | None, n_orders: int | None, background: float,
              k_range: tuple[float, float], min_quality: float, require_pattern: bool,
              consistency_prior: bool) -> EstimationResult:
    frames_all = preprocess(plane, background)
    n_angles, n_phases, ny, nx = frames_all.shape
    n_orders = n_orders or (2 if n_phases >= 5 else 1)
    if n_phases < len(band_orders(n_orders)):
        raise SimInputError(f"{n_phases} phases cannot separate {len(band_orders(n_orders))} orders")
    raw = preprocess(plane, background, taper_px=0, equalize=False)
    grid = fit_grid((ny, nx), optics, otf)
    kr, otf_grid, kc, transfer, h0 = grid.kr, grid.otf_grid, grid.kc, grid.transfer, grid.h0
    noise_region, interior = grid.noise_region, grid.interior
    candidates = [_find_candidates(frames_all[d], n_orders, kr, otf_grid, kc, k_range, transfer, h0, noise_region,
                                   min_quality) for d in range(n_angles)]
    choice = choose(candidates, (ny, nx), consistency_prior)
    fits, peaks = [], []
    for d in range(n_angles):
        chosen = candidates[d][choice.index[d]]
        quality = chosen.height
        if require_pattern and quality < min_quality:
            raise NoPatternError(d, quality, min_quality)
        ky_top, kx_top = chosen.k_px
        peaks.append(((ky_top, kx_top), float(quality)))
        fits.append(_guarded(peaks, min_quality, first_pass, raw[d], n_orders,
                             (ky_top / n_orders, kx_top / n_orders), transfer, h0, noise_region, interior))
    if n_angles > 1:
        _guarded(peaks, min_quality, second_pass, fits, n_orders, h0 > OTF_FLOOR)
    widefield = widefield_of(fits, n_orders)
    angles, diags, warnings = [], [], []
    for d, (fit, (peak, quality)) in enumerate(zip(fits, peaks, strict=False)):
        (dy, dx), offset = slope_and_offset(fit, widefield, h0, n_orders, interior, FINAL_GRIDS)
        mods = modulations(fit, n_orders)
        angles.append(angle_pattern(fit, grid, (fit.k_px[0] + dy, fit.k_px[1] + dx), offset, mods))
        grade, note, margin = quality_grade(quality), choice.notes[d], choice.margin[d]
        doubt = note or (f"the runner-up peak is nearly as likely (margin {margin:.2f} < {MIN_MARGIN:g})"
                         if margin < MIN_MARGIN else "")
        if doubt:
            warnings.append(f"angle {d}: {doubt}" + ("; graded 'low'" if grade in ("good", "excellent") else ""))
            grade = "low" if grade in ("good", "excellent") else grade
        diags.append(AngleDiagnostics(quality=quality, grade=grade, peak_px=peak, modulation_measured=mods,
                                      margin=margin, note=note, candidates=tuple(candidates[d]),
                                      chosen=choice.index[d]))
    return EstimationResult(PatternParameters(tuple(angles)), tuple(diags), tuple(warnings))
