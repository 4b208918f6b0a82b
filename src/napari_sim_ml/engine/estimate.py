"""Estimation of the illumination pattern from the raw frames.

Per angle:

1. k: the bands are separated assuming equidistant phases; the top-order band
   (first order for 2-beam, second for 3-beam) is cross-correlated with band 0
   (both notched at DC and restricted to the OTF support). The correlation's
   integer peak is refined to ~0.01 Fourier px by evaluating the correlation's
   DFT on zoomed sub-pixel grids (a few small matrix products, no big FFTs).
2. Phases: every frame's own phase, without assuming equal steps, as the argument
   of Σ_r (d_n − b0)(r) · b0(r) · exp(−i 2π k·r) (the modulated part of frame n
   correlated with the widefield shifted by k; cf. Wicker 2013). Two passes: the
   second uses the widefield separated with the first pass's phases.
3. Modulation per order: least-squares ratio of the shifted band to band 0 in
   their OTF overlap, with band 0's noise power subtracted.
4. Quality: the correlation peak over the median correlation magnitude in the
   search annulus ("modulation contrast to noise" of the peak; ~4 for pure noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bands import band_orders, fft2, ifft2, preprocess, separate_bands, separation_matrix
from .errors import NoPatternError, SimInputError
from .otf import RadialOTF, ideal_otf
from .parameters import AnglePattern, Optics, PatternParameters, equidistant_phases, wrap_phase

MIN_QUALITY = 8.0
QUALITY_GRADES = ((8.0, "inadequate"), (15.0, "low"), (40.0, "good"))


def quality_grade(quality: float) -> str:
    """'inadequate' < 8 ≤ 'low' < 15 ≤ 'good' < 40 ≤ 'excellent'."""
    for limit, name in QUALITY_GRADES:
        if quality < limit:
            return name
    return "excellent"


@dataclass(frozen=True)
class AngleDiagnostics:
    """What the estimator saw for one angle.

    quality: correlation peak / median correlation in the search annulus.
    peak_px: (row, col) position of the top-order peak in Fourier pixels (FFT
        frequency index, may be negative), for marking on a spectrum.
    modulation_measured: modulation per order before clipping to [0.05, 1].
    """

    quality: float
    grade: str
    peak_px: tuple[float, float]
    modulation_measured: tuple[float, ...]


@dataclass(frozen=True)
class EstimationResult:
    params: PatternParameters
    diagnostics: tuple[AngleDiagnostics, ...]


def _dft_at(p: np.ndarray, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
    """|Σ_r p(r) exp(−i2π(ky row/Y + kx col/X))| on the grid ky × kx (Fourier px)."""
    ny, nx = p.shape
    ey = np.exp(-2j * np.pi * np.outer(ky, np.arange(ny)) / ny)
    ex = np.exp(-2j * np.pi * np.outer(np.arange(nx), kx) / nx)
    return np.abs(ey @ (p @ ex))


def _refine_peak(p: np.ndarray, start: tuple[float, float]) -> tuple[float, float, float]:
    """Zoomed-DFT refinement of the correlation peak; returns (ky, kx, |peak|)."""
    ky, kx = start
    offsets = np.linspace(-4, 4, 9)
    for step in (0.25, 0.05, 0.01, 0.002):
        mag = _dft_at(p, ky + offsets * step, kx + offsets * step)
        iy, ix = np.unravel_index(np.argmax(mag), mag.shape)
        ky, kx = ky + offsets[iy] * step, kx + offsets[ix] * step
    return ky, kx, float(mag[iy, ix])


def _wrap_signed(idx: np.ndarray, n: int) -> np.ndarray:
    return np.where(idx > n // 2, idx - n, idx)


def _find_k(frames: np.ndarray, n_orders: int, kr: np.ndarray, otf_grid: np.ndarray,
            kc: float, k_range: tuple[float, float]) -> tuple[tuple[float, float], float]:
    """Top-order peak (ky, kx) in Fourier px of the raw grid and its quality."""
    ny, nx = frames.shape[-2:]
    bands = separate_bands(frames, equidistant_phases(frames.shape[0]), n_orders)
    weight = (otf_grid > 0.02) * (1.0 - np.exp(-(kr / (0.15 * kc)) ** 2))
    weight = weight / np.maximum(otf_grid, 0.1)
    x0 = ifft2(fft2(bands[0].real) * weight)
    xt = ifft2(fft2(bands[2 * n_orders - 1]) * weight)
    prod = xt * np.conj(x0)
    corr = np.abs(fft2(prod))
    annulus = (kr >= k_range[0] * kc) & (kr <= k_range[1] * kc)
    if not annulus.any():
        raise SimInputError("the pattern search range holds no frequencies; check NA, wavelength and pixel size")
    masked = np.where(annulus, corr, 0.0)
    iy, ix = np.unravel_index(np.argmax(masked), masked.shape)
    ky0, kx0 = _wrap_signed(np.array(iy), ny), _wrap_signed(np.array(ix), nx)
    ky, kx, peak = _refine_peak(prod, (float(ky0), float(kx0)))
    fy = _wrap_signed(np.arange(ny), ny)[:, None]
    fx = _wrap_signed(np.arange(nx), nx)[None, :]
    far = np.hypot(fy - ky, fx - kx) > 3
    background = np.median(corr[annulus & far]) if (annulus & far).any() else np.inf
    return (ky, kx), peak / max(background, 1e-30)


def _fit_phases(spectra: np.ndarray, n_orders: int, k_px: tuple[float, float], otf: RadialOTF,
                otf_grid: np.ndarray, df: tuple[float, float], iterations: int = 3,
                phases: np.ndarray | None = None) -> np.ndarray:
    """Per-frame phases by a linear least-squares fit against the widefield.

    Band b of a frame is c_b e^{i b φ_n} H(f) S(f − b k) and band 0 is
    B0(f) = H(f) S(f), so with Π = Π_{b≠0} H(f − b k) the modulated part obeys
    Π · (D_n − B0)(f) = Σ_{b≠0} a_{n,b} H(f) Π_{b'≠b} H(f − b' k) B0(f − b k)
    exactly, without dividing by any OTF. The a_{n,b} = c_b e^{i b φ_n} follow by
    linear least squares; φ_n = arg a_{n,+1}. B0 is re-separated with the new
    phases and the fit repeated (unequal steps leak into a plain average).
    """
    p, ny, nx = spectra.shape
    orders = band_orders(n_orders)[1:]
    fy = np.fft.fftfreq(ny, 1.0 / ny)[:, None]
    fx = np.fft.fftfreq(nx, 1.0 / nx)[None, :]
    region = otf_grid > 1e-3
    shifted_otf = [otf(np.hypot((fy - b * k_px[0]) * df[0], (fx - b * k_px[1]) * df[1])) for b in orders]
    product = np.prod(shifted_otf, axis=0)
    others = [otf_grid * np.prod([h for j, h in enumerate(shifted_otf) if j != i], axis=0)
              for i in range(len(orders))]
    ramps = [(np.exp(2j * np.pi * b * k_px[0] * np.arange(ny) / ny)[:, None]
              * np.exp(2j * np.pi * b * k_px[1] * np.arange(nx) / nx)[None, :]) for b in orders]
    phases = np.array(equidistant_phases(p)) if phases is None else phases
    for _ in range(iterations):
        b0_spec = np.tensordot(separation_matrix(phases, n_orders)[0], spectra, axes=1)
        b0 = ifft2(b0_spec)
        design = np.stack([(fft2(b0 * ramp) * w)[region] for ramp, w in zip(ramps, others)], axis=1)
        target = ((spectra - b0_spec[None]) * product)[:, region].T
        coef, *_ = np.linalg.lstsq(design, target, rcond=None)
        phases = np.angle(coef[0])
    return phases


def _modulation(frames: np.ndarray, phases: np.ndarray, n_orders: int, k_px: tuple[float, float],
                kr: np.ndarray, otf: RadialOTF, otf_grid: np.ndarray, kc: float,
                df: tuple[float, float]) -> tuple[tuple[float, ...], np.ndarray]:
    """Modulation per order and the widefield (band 0) separated with ``phases``."""
    ny, nx = frames.shape[-2:]
    bands = separate_bands(frames, phases, n_orders)
    s0 = fft2(bands[0].real)
    noise_region = kr > 1.1 * otf.support_cycles_per_um
    noise_power = float(np.mean(np.abs(s0[noise_region]) ** 2)) if noise_region.sum() > 64 else 0.0
    fy = np.fft.fftfreq(ny, 1.0 / ny)[:, None]
    fx = np.fft.fftfreq(nx, 1.0 / nx)[None, :]
    mods = []
    for b in range(1, n_orders + 1):
        sy, sx = b * k_px[0], b * k_px[1]
        ramp = (np.exp(-2j * np.pi * sy * np.arange(ny) / ny)[:, None]
                * np.exp(-2j * np.pi * sx * np.arange(nx) / nx)[None, :])
        g = fft2(bands[2 * b - 1] * ramp)
        otf_b = otf(np.hypot((fy + sy) * df[0], (fx + sx) * df[1]))
        region = (otf_grid > 0.1) & (otf_b > 0.1) & (kr > 0.15 * kc)
        if region.sum() < 16:
            mods.append(0.0)
            continue
        num = np.sum((g * otf_grid * np.conj(s0) * otf_b)[region])
        den = np.sum(((np.abs(s0) ** 2 - noise_power) * otf_b**2)[region])
        mods.append(float(2.0 * abs(num) / den) if den > 0 else 0.0)
    return tuple(mods), bands[0].real


def estimate_pattern(
    plane: np.ndarray,
    optics: Optics,
    otf: RadialOTF | None = None,
    n_orders: int | None = None,
    background: float = 0.0,
    k_range: tuple[float, float] = (0.3, 1.1),
    min_quality: float = MIN_QUALITY,
    require_pattern: bool = True,
) -> EstimationResult:
    """Estimate k, per-frame phases and modulation of every angle.

    plane: (A, P, Y, X) raw counts; background: camera offset (counts).
    n_orders: 1 (2-beam) or 2 (3-beam); default 2 when P ≥ 5, else 1.
    k_range: search annulus for the top order, in units of the OTF cutoff kc.
    Raises NoPatternError when an angle's quality is below ``min_quality`` and
    ``require_pattern`` is true.
    """
    frames_all = preprocess(plane, background)
    n_angles, n_phases, ny, nx = frames_all.shape
    n_orders = n_orders or (2 if n_phases >= 5 else 1)
    if n_phases < len(band_orders(n_orders)):
        raise SimInputError(f"{n_phases} phases cannot separate {len(band_orders(n_orders))} orders")
    otf = otf or ideal_otf(optics)
    kc = optics.cutoff_cycles_per_um
    df = (1.0 / (ny * optics.pixel_size_um), 1.0 / (nx * optics.pixel_size_um))
    fy = np.fft.fftfreq(ny, optics.pixel_size_um)[:, None]
    fx = np.fft.fftfreq(nx, optics.pixel_size_um)[None, :]
    kr = np.hypot(fy, fx)
    otf_grid = otf(kr)
    angles, diags = [], []
    for d in range(n_angles):
        frames = frames_all[d]
        (ky_top, kx_top), quality = _find_k(frames, n_orders, kr, otf_grid, kc, k_range)
        if require_pattern and quality < min_quality:
            raise NoPatternError(d, quality, min_quality)
        k_px = (ky_top / n_orders, kx_top / n_orders)
        phases = _fit_phases(fft2(frames), n_orders, k_px, otf, otf_grid, df)
        mods, _ = _modulation(frames, phases, n_orders, k_px, kr, otf, otf_grid, kc, df)
        pattern = AnglePattern(
            k_cycles_per_um=(k_px[1] * df[1], k_px[0] * df[0]),
            phases_rad=tuple(wrap_phase(p) for p in phases),
            modulation=tuple(float(np.clip(m, 0.05, 1.0)) for m in mods),
        )
        angles.append(pattern.canonical())
        diags.append(AngleDiagnostics(quality=float(quality), grade=quality_grade(quality),
                                      peak_px=(ky_top, kx_top), modulation_measured=mods))
    return EstimationResult(PatternParameters(tuple(angles)), tuple(diags))
