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
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
import scipy.fft
from scipy.optimize import minimize

from .bands import FFT_WORKERS, band_orders, edge_window, fft2, ifft2, preprocess, separate_bands, serial_blas
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
from .otf import RadialOTF, ideal_otf
from .parameters import AnglePattern, Optics, PatternParameters, equidistant_phases, wrap_phase

MIN_QUALITY = 6.5  # pure noise scores 4-5.5 (measured on 45 noise stacks of 64²-256²)
QUALITY_GRADES = ((6.5, "inadequate"), (12.0, "low"), (30.0, "good"))
TAPER_PX = 8  # the frames fade to zero over this many px at the border
SLOPE_MARGIN_PX = 4  # u v* starts this far inside the taper, fading in over TAPER_PX / 2
OTF_FLOOR = 0.02  # constraint region: both OTF values above this
C_GUESS = 0.4  # m_b / 2 assumed by the weights
COARSE_GRIDS = ((0.25, 13), (0.05, 9), (0.01, 9))  # (step, points) of the first k search: ±1.5 px around
# the chosen correlation peak (a wider search can run off to a neighbouring specimen or camera peak)
FINAL_GRIDS = ((0.25, 17), (0.04, 13), (0.005, 9), (0.0006, 9))  # and of the final one: ±2 px
REFINE_GRIDS = ((0.25, 9), (0.05, 9), (0.01, 9), (0.002, 9))  # of a correlation peak
PHASE_RANGE = 0.4  # phases searched within this × 2π/P of their start (keeps the unmixing well posed)
GAIN_RANGE = 0.5  # |log gain| searched, relative to frame 0
MODULATION_OTF = (0.1, 0.8)  # m_b where both OTFs > 0.1 and H(f − bk) < 0.8 (no out-of-focus haze)


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


Transfer = Callable[[float, float], np.ndarray]  # (sy, sx) Fourier px -> H(f − s) on the FFT grid
_Gram = tuple[np.ndarray, np.ndarray]  # a Gram matrix (2P, 2P) and its columns' noise powers (2P,)
_T = TypeVar("_T")


@dataclass
class _AngleFit:
    """One angle: tapered frames (P, Y, X), FFTs, noise power per Fourier coefficient (P,),
    k (Fourier px), H(f − bk) per order, Gram matrices, fit (phases rad, frame 0 at 0; gains).
    """

    tapered: np.ndarray
    spectra: np.ndarray
    noise: np.ndarray
    k_px: tuple[float, float]
    shifted_otfs: list[np.ndarray]
    phases: np.ndarray
    gains: np.ndarray
    grams: list[_Gram] = field(default_factory=list)
    modulation_grams: list[_Gram] = field(default_factory=list)


def _dft_at(p: np.ndarray, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
    """Σ_r p(r) exp(−i2π(ky row/Y + kx col/X)) on the grid ky × kx (Fourier px)."""
    ny, nx = p.shape
    ey = np.exp(-2j * np.pi * np.outer(ky, np.arange(ny)) / ny).astype(np.complex64)
    ex = np.exp(-2j * np.pi * np.outer(np.arange(nx), kx) / nx).astype(np.complex64)
    return ey @ (p.astype(np.complex64, copy=False) @ ex)


def _refine_peak(p: np.ndarray, start: tuple[float, float],
                 grids: tuple[tuple[float, int], ...] = REFINE_GRIDS) -> tuple[float, float, complex]:
    """|DFT(p)|'s peak searched on successive (step, points) grids around ``start``
    (Fourier px); returns (ky, kx, the DFT value there).
    """
    ky, kx = start
    for step, points in grids:
        offsets = step * (np.arange(points) - points // 2)
        vals = _dft_at(p, ky + offsets, kx + offsets)
        iy, ix = np.unravel_index(np.argmax(np.abs(vals)), vals.shape)
        ky, kx = ky + offsets[iy], kx + offsets[ix]
    return ky, kx, complex(vals[iy, ix])


def _wrap_signed(idx: np.ndarray, n: int) -> np.ndarray:
    return np.where(idx > n // 2, idx - n, idx)


def _find_candidates(frames: np.ndarray, n_orders: int, kr: np.ndarray, otf_grid: np.ndarray, kc: float,
                     k_range: tuple[float, float], transfer: Transfer, h0: np.ndarray, noise_region: np.ndarray,
                     min_quality: float) -> list[Candidate]:
    """Top-order correlation peaks (ky, kx) in Fourier px of the raw grid, highest first, each with
    its quality (height), rotation and, when within CANDIDATE_HEIGHT of the highest peak that
    moves with the phase steps, its object-constraint coherence (see candidates.py).
    """
    ny, nx = frames.shape[-2:]
    top = 2 * n_orders - 1
    bands = separate_bands(frames, equidistant_phases(frames.shape[0]), n_orders)
    weight = (otf_grid > 0.02) * (1.0 - np.exp(-(kr / (0.15 * kc)) ** 2))
    weight = (weight / np.maximum(otf_grid, 0.1)).astype(np.float32)
    half = weight[:, : nx // 2 + 1]  # the weight is radial, so band 0 stays real: half spectra suffice
    x0 = scipy.fft.irfft2(scipy.fft.rfft2(bands[0].real, workers=FFT_WORKERS) * half, s=(ny, nx), workers=FFT_WORKERS)
    top_spectrum = fft2(bands[top])
    xt = ifft2(top_spectrum * weight)
    prod = xt * np.conj(x0)
    corr = np.abs(fft2(prod))
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
        ky, kx, peak = _refine_peak(prod, cands[i].k_px)
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
    """Object-constraint coherence of H(f − s) B_top(f) with H(f) B_0(f − s), s = ``k_px``, over
    the overlap (both OTFs > OTF_FLOOR), weighted as the constraint; noise per coefficient given.
    """
    hs = transfer(*k_px)
    region = (h0 > OTF_FLOOR) & (hs > OTF_FLOOR)
    w = 1.0 / np.sqrt(hs[region] ** 2 + C_GUESS**2 * h0[region] ** 2)
    u = top_spectrum[region] * (hs[region] * w)
    v = fft2(band0 * _ramp(band0.shape, k_px))[region] * (h0[region] * w)
    return coherence(u, v, noise[0] * float(np.sum((hs[region] * w) ** 2)),
                     noise[1] * float(np.sum((h0[region] * w) ** 2)))


def _transfer(otf: RadialOTF, shape: tuple[int, int], pixel_um: float, pixel_sinc: bool) -> Transfer:
    """H(f − s) on the FFT grid for a shift s (Fourier px): the OTF, times the camera pixel's
    sinc per axis when ``pixel_sinc`` (a theoretical OTF lacks the pixel; a measured one has it).
    """
    def transfer(sy: float, sx: float) -> np.ndarray:
        gy = ((np.fft.fftfreq(shape[0], 1.0 / shape[0]) - sy) / (shape[0] * pixel_um)).astype(np.float32)
        gx = ((np.fft.fftfreq(shape[1], 1.0 / shape[1]) - sx) / (shape[1] * pixel_um)).astype(np.float32)
        h = otf(np.hypot(gy[:, None], gx[None, :]))
        return h * np.outer(np.sinc(gy * pixel_um), np.sinc(gx * pixel_um)) if pixel_sinc else h

    return transfer


def _ramp(shape: tuple[int, int], shift_px: tuple[float, float]) -> np.ndarray:
    """exp(+i2π(sy row/Y + sx col/X)) as complex64: moves a spectrum by +shift_px."""
    ry = np.exp(2j * np.pi * shift_px[0] * np.arange(shape[0]) / shape[0])
    rx = np.exp(2j * np.pi * shift_px[1] * np.arange(shape[1]) / shape[1])
    return (ry[:, None] * rx[None, :]).astype(np.complex64)


def _unmix(phases: np.ndarray, gains: np.ndarray, n_orders: int,
           fit_gains: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Unmixing weights W (bands, P) for ``phases`` (rad) and ``gains``, and dW (params, bands, P)
    over the phases of frames 1.. and, with ``fit_gains``, their log gains.
    """
    orders = np.array(band_orders(n_orders))
    mix = np.exp(1j * np.outer(phases, orders))
    pinv = np.linalg.pinv(mix)
    outside = np.eye(len(phases)) - mix @ pinv
    inv_gram = pinv @ pinv.conj().T  # (E^H E)^-1
    derivs = []
    for j in range(1, len(phases)):
        d_mix = np.zeros_like(mix)
        d_mix[j] = 1j * orders * mix[j]
        derivs.append((-pinv @ d_mix @ pinv + inv_gram @ d_mix.conj().T @ outside) / gains)
    unmix = pinv / gains
    if fit_gains:  # d/d log g_j scales column j by −1
        derivs += list(-unmix[None] * np.eye(len(phases))[1:, None, :])
    return unmix, np.array(derivs)


def _constraint_grams(fit: _AngleFit, h0: np.ndarray, scale: float) -> None:
    """Per order b, the (2P, 2P) Gram matrix of [H(f−bk) D_n(f), H(f) D_n(f−bk)] where both OTFs
    exceed OTF_FLOOR, weighted by 1 / (H(f−bk)² + C_GUESS² H(f)²) (the constraint's inverse
    noise variance), and its columns' noise powers, × ``scale``; also over MODULATION_OTF.
    """
    fit.grams, fit.modulation_grams = [], []
    for b, hb in enumerate(fit.shifted_otfs, start=1):
        region = (h0 > OTF_FLOOR) & (hb > OTF_FLOOR)
        weight = scale / (hb[region] ** 2 + C_GUESS**2 * h0[region] ** 2)
        shifted = fft2(fit.tapered * _ramp(fit.tapered.shape[-2:], (b * fit.k_px[0], b * fit.k_px[1])))
        z = np.concatenate([fit.spectra[:, region] * (hb[region] * np.sqrt(weight)),
                            shifted[:, region] * (h0[region] * np.sqrt(weight))])
        low, high = MODULATION_OTF
        modulation_region = (h0[region] > low) & (hb[region] > low) & (hb[region] < high)
        for grams, keep in ((fit.grams, slice(None)), (fit.modulation_grams, modulation_region)):
            noise = np.concatenate([fit.noise * np.sum((weight * hb[region] ** 2)[keep]),
                                    fit.noise * np.sum((weight * h0[region] ** 2)[keep])])
            grams.append(((z[:, keep].conj() @ z[:, keep].T).astype(np.complex128), noise))


def _term(gram: _Gram, a: np.ndarray, da: np.ndarray, z: np.ndarray,
          dz: np.ndarray) -> tuple[float, np.ndarray, complex]:
    """min_c ‖X a − c Y z‖² less its noise part, from the Gram of [X, Y] and its noise powers;
    its gradient from the weight derivatives da, dz (params, P); and the minimising c.
    """
    (g, noise), p = gram, len(a)
    g = g - np.diag(noise)
    gxx, gyx, gyy = g[:p, :p], g[p:, :p], g[p:, p:]
    s, t = z.conj() @ gyx @ a, np.real(z.conj() @ gyy @ z)
    ds = dz.conj() @ (gyx @ a) + da @ (z.conj() @ gyx)
    dt = 2.0 * np.real(dz.conj() @ (gyy @ z))
    grad = 2.0 * np.real(da.conj() @ (gxx @ a)) - (2.0 * np.real(np.conj(s) * ds) * t - abs(s) ** 2 * dt) / t**2
    return float(np.real(a.conj() @ gxx @ a) - abs(s) ** 2 / t), grad, s / t


def _misfit(x: np.ndarray, fit: _AngleFit, gram0: _Gram | None, n_orders: int) -> tuple[float, np.ndarray]:
    """Σ_b min_c ‖H(f−bk) B_b(f) − c H(f) B_0(f−bk)‖² (+ min_γ ‖B_0 − γ B_0,other‖² with ``gram0``)
    less noise, and its gradient at x = (phases of frames 1.., [log gains]).
    """
    p = len(fit.phases)
    gains = np.exp(np.concatenate([[0.0], x[p - 1:]])) if gram0 is not None else fit.gains
    unmix, derivs = _unmix(np.concatenate([[0.0], x[:p - 1]]), gains, n_orders, gram0 is not None)
    total, grad = 0.0, np.zeros(len(x))
    for b, gram in enumerate(fit.grams, start=1):
        value, g, _ = _term(gram, unmix[2 * b - 1], derivs[:, 2 * b - 1], unmix[0], derivs[:, 0])
        total, grad = total + value, grad + g
    if gram0 is not None:
        value, g, _ = _term(gram0, unmix[0], derivs[:, 0], np.eye(p)[0], np.zeros_like(derivs[:, 0]))
        total, grad = total + value, grad + g
    return total, grad


def _fit(fit: _AngleFit, gram0: _Gram | None, n_orders: int, rounds: int = 1) -> None:
    """Minimise the misfit (L-BFGS-B) over the phases, within PHASE_RANGE × 2π/P of the start, re-centred
    up to ``rounds`` times while one ends on a bound; with ``gram0`` also the gains (±GAIN_RANGE).
    """
    p, span = len(fit.phases), PHASE_RANGE * 2.0 * np.pi / len(fit.phases)
    n_gains = p - 1 if gram0 is not None else 0
    x = np.concatenate([fit.phases[1:] - fit.phases[0], np.log(fit.gains[1:] / fit.gains[0])[:n_gains]])
    for _ in range(rounds):
        centre = x[:p - 1].copy()
        bounds = [(v - span, v + span) for v in centre] + [(-GAIN_RANGE, GAIN_RANGE)] * n_gains
        x = minimize(_misfit, np.clip(x, *np.array(bounds).T), jac=True, args=(fit, gram0, n_orders),
                     method="L-BFGS-B", bounds=bounds).x
        if np.all(np.abs(x[:p - 1] - centre) < span - 1e-6):
            break
    fit.phases = np.concatenate([[0.0], x[:p - 1]])
    fit.gains = np.exp(np.concatenate([[0.0], x[p - 1:]])) if n_gains else fit.gains


def _slope_and_offset(fit: _AngleFit, widefield: np.ndarray, h0: np.ndarray, n_orders: int,
                      interior: np.ndarray, grids: tuple[tuple[float, int], ...]) -> tuple[tuple[float, float], float]:
    """K error δ (Fourier px) and phase at the origin (rad) of band 1 against ``widefield``
    (real-space band 0), from the peak of u v* (filters weighted as the constraint).
    """
    h1 = fit.shifted_otfs[0]
    weight = 1.0 / np.sqrt(h1**2 + C_GUESS**2 * h0**2 + 1e-6)
    band1 = np.tensordot(_unmix(fit.phases, fit.gains, n_orders)[0][1].astype(np.complex64), fit.spectra, 1)
    u = ifft2(band1 * (h1 * weight))
    v = ifft2(fft2(widefield * _ramp(widefield.shape, fit.k_px)) * (h0 * weight))
    dy, dx, value = _refine_peak(interior * u * np.conj(v), (0.0, 0.0), grids)
    return (dy, dx), float(np.angle(value))


def _first_pass(frames: np.ndarray, n_orders: int, k_px: tuple[float, float], transfer: Transfer,
                h0: np.ndarray, noise_region: np.ndarray, interior: np.ndarray) -> _AngleFit:
    """Taper and FFT one angle's frames (P, Y, X), refine k within ±1.5 px with equidistant
    phases, then fit the phase steps to the constraint alone.
    """
    p, ny, nx = frames.shape
    tapered = frames * (edge_window(ny, TAPER_PX)[:, None] * edge_window(nx, TAPER_PX)[None, :])
    spectra = fft2(tapered)
    power = np.abs(spectra) ** 2
    noise = np.maximum(np.mean(power[:, noise_region], axis=1) if noise_region.sum() > 64 else 0.0,
                       1e-9 * np.mean(power, axis=(1, 2)))  # a floor where nothing lies beyond the OTF
    fit = _AngleFit(tapered, spectra, noise, k_px, [transfer(*k_px)],
                    np.array(equidistant_phases(p)), np.ones(p))
    (dy, dx), _ = _slope_and_offset(fit, tapered.mean(axis=0), h0, n_orders, interior, COARSE_GRIDS)
    fit.k_px = (k_px[0] + dy, k_px[1] + dx)
    fit.shifted_otfs = [transfer(b * fit.k_px[0], b * fit.k_px[1]) for b in range(1, n_orders + 1)]
    _constraint_grams(fit, h0, p / np.mean(noise))  # misfit in units of its noise
    _fit(fit, None, n_orders, rounds=3)
    return fit


def _second_pass(fits: list[_AngleFit], n_orders: int, region: np.ndarray) -> None:
    """Refit every angle with gains, adding the misfit of its band 0 against the others' mean."""
    spectra = [fit.spectra[:, region] for fit in fits]
    weights = [_unmix(fit.phases, fit.gains, n_orders)[0][0] for fit in fits]
    bands0 = [w.astype(np.complex64) @ s for w, s in zip(weights, spectra, strict=False)]
    noise0 = [np.sum(np.abs(w) ** 2 * fit.noise) for w, fit in zip(weights, fits, strict=False)]
    for d, fit in enumerate(fits):
        others = [i for i in range(len(fits)) if i != d]
        reference = sum(bands0[i] for i in others) / len(others)
        ref_noise = sum(noise0[i] for i in others) / len(others) ** 2
        p, z = len(fit.noise), np.concatenate([spectra[d], reference[None]])
        gram0 = np.zeros((2 * p, 2 * p), dtype=np.complex128)
        gram0[:p + 1, :p + 1] = z.conj() @ z.T
        noise = np.concatenate([fit.noise, [ref_noise], np.zeros(p - 1)]) * region.sum()
        scale = 1.0 / (np.mean(fit.noise) / p + ref_noise)
        _fit(fit, (gram0 * scale, noise * scale), n_orders)


def _guarded(peaks: list[tuple[tuple[float, float], float]], min_quality: float,
             fn: Callable[..., _T], *args: object) -> _T:
    """Run a fitting step; a numerical failure (it happens on patternless noise) becomes a
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
    pixel_sinc = otf is None or not otf.source.startswith("measured")
    otf = otf or ideal_otf(optics)
    transfer = _transfer(otf, (ny, nx), optics.pixel_size_um, pixel_sinc)
    kc = optics.cutoff_cycles_per_um
    kr = np.hypot(np.fft.fftfreq(ny, optics.pixel_size_um)[:, None], np.fft.fftfreq(nx, optics.pixel_size_um)[None, :])
    otf_grid, h0 = otf(kr), transfer(0.0, 0.0)
    skip = TAPER_PX + SLOPE_MARGIN_PX
    interior = np.outer(*(np.pad(edge_window(n - 2 * skip, TAPER_PX // 2), skip) for n in (ny, nx)))
    noise_region = kr > 1.1 * otf.support_cycles_per_um
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
        fits.append(_guarded(peaks, min_quality, _first_pass, raw[d], n_orders,
                             (ky_top / n_orders, kx_top / n_orders), transfer, h0, noise_region, interior))
    if n_angles > 1:
        _guarded(peaks, min_quality, _second_pass, fits, n_orders, h0 > OTF_FLOOR)
    widefield = ifft2(sum(np.tensordot(_unmix(f.phases, f.gains, n_orders)[0][0].astype(np.complex64), f.spectra, 1)
                          for f in fits)).real
    angles, diags, warnings = [], [], []
    for d, (fit, (peak, quality)) in enumerate(zip(fits, peaks, strict=False)):
        (dy, dx), offset = _slope_and_offset(fit, widefield, h0, n_orders, interior, FINAL_GRIDS)
        unmix, none = _unmix(fit.phases, fit.gains, n_orders)[0], np.zeros((0, len(fit.phases)))
        mods = tuple(2.0 * abs(_term(gram, unmix[2 * b - 1], none, unmix[0], none)[2])
                     for b, gram in enumerate(fit.modulation_grams, start=1))
        pattern = AnglePattern(
            k_cycles_per_um=((fit.k_px[1] + dx) / (nx * optics.pixel_size_um),
                             (fit.k_px[0] + dy) / (ny * optics.pixel_size_um)),
            phases_rad=tuple(wrap_phase(p + offset) for p in fit.phases),
            modulation=tuple(float(np.clip(m, 0.05, 1.0)) for m in mods),
        )
        angles.append(pattern.canonical())
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
