"""The per-angle pattern fit shared by estimation (estimate.py) and calibration reuse (refit.py).

An angle's frames are tapered and Fourier transformed once (``AngleFit``); the object
constraint B_b(f) H(f − bk) = c_b H(f) B_0(f − bk) becomes, per order b, a Gram matrix of
the frames' spectra (``constraint_grams``), so a trial of phase steps and gains costs a few
(2P × 2P) products (``misfit``, minimised by ``fit_steps``). ``slope_and_offset`` gives the
remaining k error and the absolute phase from the peak of u v*, u = H(f − k) B_1(f),
v = H(f) B_0(f − k). Phases in rad, k in Fourier px of the raw grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from .bands import band_orders, edge_window, fft2, ifft2
from .otf import RadialOTF, ideal_otf
from .parameters import AnglePattern, Optics, equidistant_phases, wrap_phase

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



Transfer = Callable[[float, float], np.ndarray]  # (sy, sx) Fourier px -> H(f − s) on the FFT grid
Gram = tuple[np.ndarray, np.ndarray]  # a Gram matrix (2P, 2P) and its columns' noise powers (2P,)


@dataclass
class AngleFit:
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
    grams: list[Gram] = field(default_factory=list)
    modulation_grams: list[Gram] = field(default_factory=list)


def dft_at(p: np.ndarray, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
    """Σ_r p(r) exp(−i2π(ky row/Y + kx col/X)) on the grid ky × kx (Fourier px)."""
    ny, nx = p.shape
    ey = np.exp(-2j * np.pi * np.outer(ky, np.arange(ny)) / ny).astype(np.complex64)
    ex = np.exp(-2j * np.pi * np.outer(np.arange(nx), kx) / nx).astype(np.complex64)
    return ey @ (p.astype(np.complex64, copy=False) @ ex)


def refine_peak(p: np.ndarray, start: tuple[float, float],
                 grids: tuple[tuple[float, int], ...] = REFINE_GRIDS) -> tuple[float, float, complex]:
    """|DFT(p)|'s peak searched on successive (step, points) grids around ``start``
    (Fourier px); returns (ky, kx, the DFT value there).
    """
    ky, kx = start
    for step, points in grids:
        offsets = step * (np.arange(points) - points // 2)
        vals = dft_at(p, ky + offsets, kx + offsets)
        iy, ix = np.unravel_index(np.argmax(np.abs(vals)), vals.shape)
        ky, kx = ky + offsets[iy], kx + offsets[ix]
    return ky, kx, complex(vals[iy, ix])


def make_transfer(otf: RadialOTF, shape: tuple[int, int], pixel_um: float, pixel_sinc: bool) -> Transfer:
    """H(f − s) on the FFT grid for a shift s (Fourier px): the OTF, times the camera pixel's
    sinc per axis when ``pixel_sinc`` (a theoretical OTF lacks the pixel; a measured one has it).
    """
    def transfer(sy: float, sx: float) -> np.ndarray:
        gy = ((np.fft.fftfreq(shape[0], 1.0 / shape[0]) - sy) / (shape[0] * pixel_um)).astype(np.float32)
        gx = ((np.fft.fftfreq(shape[1], 1.0 / shape[1]) - sx) / (shape[1] * pixel_um)).astype(np.float32)
        h = otf(np.hypot(gy[:, None], gx[None, :]))
        return h * np.outer(np.sinc(gy * pixel_um), np.sinc(gx * pixel_um)) if pixel_sinc else h

    return transfer


def ramp(shape: tuple[int, int], shift_px: tuple[float, float]) -> np.ndarray:
    """exp(+i2π(sy row/Y + sx col/X)) as complex64: moves a spectrum by +shift_px."""
    ry = np.exp(2j * np.pi * shift_px[0] * np.arange(shape[0]) / shape[0])
    rx = np.exp(2j * np.pi * shift_px[1] * np.arange(shape[1]) / shape[1])
    return (ry[:, None] * rx[None, :]).astype(np.complex64)


def unmix_weights(phases: np.ndarray, gains: np.ndarray, n_orders: int,
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


def constraint_grams(fit: AngleFit, h0: np.ndarray, scale: float) -> None:
    """Per order b, the (2P, 2P) Gram matrix of [H(f−bk) D_n(f), H(f) D_n(f−bk)] where both OTFs
    exceed OTF_FLOOR, weighted by 1 / (H(f−bk)² + C_GUESS² H(f)²) (the constraint's inverse
    noise variance), and its columns' noise powers, × ``scale``; also over MODULATION_OTF.
    """
    fit.grams, fit.modulation_grams = [], []
    for b, hb in enumerate(fit.shifted_otfs, start=1):
        region = (h0 > OTF_FLOOR) & (hb > OTF_FLOOR)
        weight = scale / (hb[region] ** 2 + C_GUESS**2 * h0[region] ** 2)
        shifted = fft2(fit.tapered * ramp(fit.tapered.shape[-2:], (b * fit.k_px[0], b * fit.k_px[1])))
        z = np.concatenate([fit.spectra[:, region] * (hb[region] * np.sqrt(weight)),
                            shifted[:, region] * (h0[region] * np.sqrt(weight))])
        low, high = MODULATION_OTF
        modulation_region = (h0[region] > low) & (hb[region] > low) & (hb[region] < high)
        for grams, keep in ((fit.grams, slice(None)), (fit.modulation_grams, modulation_region)):
            noise = np.concatenate([fit.noise * np.sum((weight * hb[region] ** 2)[keep]),
                                    fit.noise * np.sum((weight * h0[region] ** 2)[keep])])
            grams.append(((z[:, keep].conj() @ z[:, keep].T).astype(np.complex128), noise))


def term(gram: Gram, a: np.ndarray, da: np.ndarray, z: np.ndarray,
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


def misfit(x: np.ndarray, fit: AngleFit, gram0: Gram | None, n_orders: int) -> tuple[float, np.ndarray]:
    """Σ_b min_c ‖H(f−bk) B_b(f) − c H(f) B_0(f−bk)‖² (+ min_γ ‖B_0 − γ B_0,other‖² with ``gram0``)
    less noise, and its gradient at x = (phases of frames 1.., [log gains]).
    """
    p = len(fit.phases)
    gains = np.exp(np.concatenate([[0.0], x[p - 1:]])) if gram0 is not None else fit.gains
    unmix, derivs = unmix_weights(np.concatenate([[0.0], x[:p - 1]]), gains, n_orders, gram0 is not None)
    total, grad = 0.0, np.zeros(len(x))
    for b, gram in enumerate(fit.grams, start=1):
        value, g, _ = term(gram, unmix[2 * b - 1], derivs[:, 2 * b - 1], unmix[0], derivs[:, 0])
        total, grad = total + value, grad + g
    if gram0 is not None:
        value, g, _ = term(gram0, unmix[0], derivs[:, 0], np.eye(p)[0], np.zeros_like(derivs[:, 0]))
        total, grad = total + value, grad + g
    return total, grad


def fit_steps(fit: AngleFit, gram0: Gram | None, n_orders: int, rounds: int = 1) -> None:
    """Minimise the misfit (L-BFGS-B) over the phases, within PHASE_RANGE × 2π/P of the start, re-centred
    up to ``rounds`` times while one ends on a bound; with ``gram0`` also the gains (±GAIN_RANGE).
    """
    p, span = len(fit.phases), PHASE_RANGE * 2.0 * np.pi / len(fit.phases)
    n_gains = p - 1 if gram0 is not None else 0
    x = np.concatenate([fit.phases[1:] - fit.phases[0], np.log(fit.gains[1:] / fit.gains[0])[:n_gains]])
    for _ in range(rounds):
        centre = x[:p - 1].copy()
        bounds = [(v - span, v + span) for v in centre] + [(-GAIN_RANGE, GAIN_RANGE)] * n_gains
        x = minimize(misfit, np.clip(x, *np.array(bounds).T), jac=True, args=(fit, gram0, n_orders),
                     method="L-BFGS-B", bounds=bounds).x
        if np.all(np.abs(x[:p - 1] - centre) < span - 1e-6):
            break
    fit.phases = np.concatenate([[0.0], x[:p - 1]])
    fit.gains = np.exp(np.concatenate([[0.0], x[p - 1:]])) if n_gains else fit.gains


def slope_and_offset(fit: AngleFit, widefield: np.ndarray, h0: np.ndarray, n_orders: int,
                      interior: np.ndarray, grids: tuple[tuple[float, int], ...]) -> tuple[tuple[float, float], float]:
    """K error δ (Fourier px) and phase at the origin (rad) of band 1 against ``widefield``
    (real-space band 0), from the peak of u v* (filters weighted as the constraint).
    """
    h1 = fit.shifted_otfs[0]
    weight = 1.0 / np.sqrt(h1**2 + C_GUESS**2 * h0**2 + 1e-6)
    band1 = np.tensordot(unmix_weights(fit.phases, fit.gains, n_orders)[0][1].astype(np.complex64), fit.spectra, 1)
    u = ifft2(band1 * (h1 * weight))
    v = ifft2(fft2(widefield * ramp(widefield.shape, fit.k_px)) * (h0 * weight))
    dy, dx, value = refine_peak(interior * u * np.conj(v), (0.0, 0.0), grids)
    return (dy, dx), float(np.angle(value))


def angle_spectra(frames: np.ndarray, k_px: tuple[float, float], transfer: Transfer, noise_region: np.ndarray,
                  phases: np.ndarray | None = None) -> AngleFit:
    """An AngleFit of one angle's frames (P, Y, X): tapered, transformed, noise power per frame
    (beyond the OTF support), k (Fourier px) with H(f − k), ``phases`` (default equidistant), gains 1.
    """
    p, ny, nx = frames.shape
    tapered = frames * (edge_window(ny, TAPER_PX)[:, None] * edge_window(nx, TAPER_PX)[None, :])
    spectra = fft2(tapered)
    power = np.abs(spectra) ** 2
    noise = np.maximum(np.mean(power[:, noise_region], axis=1) if noise_region.sum() > 64 else 0.0,
                       1e-9 * np.mean(power, axis=(1, 2)))  # a floor where nothing lies beyond the OTF
    start = np.array(equidistant_phases(p)) if phases is None else np.asarray(phases, dtype=float)
    return AngleFit(tapered, spectra, noise, k_px, [transfer(*k_px)], start, np.ones(p))


def set_k(fit: AngleFit, k_px: tuple[float, float], transfer: Transfer, h0: np.ndarray, n_orders: int) -> None:
    """Put k (Fourier px) into ``fit``: H(f − bk) per order and the constraint's Gram matrices."""
    fit.k_px = k_px
    fit.shifted_otfs = [transfer(b * k_px[0], b * k_px[1]) for b in range(1, n_orders + 1)]
    constraint_grams(fit, h0, len(fit.noise) / np.mean(fit.noise))  # misfit in units of its noise


def first_pass(frames: np.ndarray, n_orders: int, k_px: tuple[float, float], transfer: Transfer,
               h0: np.ndarray, noise_region: np.ndarray, interior: np.ndarray) -> AngleFit:
    """Taper and FFT one angle's frames (P, Y, X), refine k within ±1.5 px with equidistant
    phases, then fit the phase steps to the constraint alone.
    """
    fit = angle_spectra(frames, k_px, transfer, noise_region)
    (dy, dx), _ = slope_and_offset(fit, fit.tapered.mean(axis=0), h0, n_orders, interior, COARSE_GRIDS)
    set_k(fit, (k_px[0] + dy, k_px[1] + dx), transfer, h0, n_orders)
    fit_steps(fit, None, n_orders, rounds=3)
    return fit


def second_pass(fits: list[AngleFit], n_orders: int, region: np.ndarray) -> None:
    """Refit every angle with gains, adding the misfit of its band 0 against the others' mean."""
    spectra = [fit.spectra[:, region] for fit in fits]
    weights = [unmix_weights(fit.phases, fit.gains, n_orders)[0][0] for fit in fits]
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
        fit_steps(fit, (gram0 * scale, noise * scale), n_orders)


@dataclass(frozen=True)
class FitGrid:
    """The Fourier grid of one plane's frames (Y, X) and what every angle's fit shares.

    kr: |f| per FFT coefficient (cycles/µm); otf_grid: the OTF there; h0: H(f) (with the
    pixel sinc for a theoretical OTF); transfer: H(f − s) for a shift s (Fourier px);
    interior: the weight of u v* (zero in the taper); noise_region: beyond the OTF support.
    """

    shape: tuple[int, int]
    pixel_um: float
    kc: float
    otf: RadialOTF
    kr: np.ndarray
    otf_grid: np.ndarray
    h0: np.ndarray
    transfer: Transfer
    interior: np.ndarray
    noise_region: np.ndarray

    def cycles_per_um(self, k_px: tuple[float, float]) -> tuple[float, float]:
        """(kx, ky) cycles/µm of a (row, col) shift in Fourier px."""
        return k_px[1] / (self.shape[1] * self.pixel_um), k_px[0] / (self.shape[0] * self.pixel_um)

    def fourier_px(self, k_cycles_per_um: tuple[float, float]) -> tuple[float, float]:
        """(row, col) Fourier px of a k = (kx, ky) in cycles/µm."""
        return k_cycles_per_um[1] * self.shape[0] * self.pixel_um, k_cycles_per_um[0] * self.shape[1] * self.pixel_um


def fit_grid(shape: tuple[int, int], optics: Optics, otf: RadialOTF | None) -> FitGrid:
    """The FitGrid of (Y, X) frames; ``otf`` None is the ideal OTF of ``optics``."""
    ny, nx = shape
    pixel_sinc = otf is None or not otf.source.startswith("measured")
    otf = otf or ideal_otf(optics)
    transfer = make_transfer(otf, (ny, nx), optics.pixel_size_um, pixel_sinc)
    kr = np.hypot(np.fft.fftfreq(ny, optics.pixel_size_um)[:, None], np.fft.fftfreq(nx, optics.pixel_size_um)[None, :])
    skip = TAPER_PX + SLOPE_MARGIN_PX
    interior = np.outer(*(np.pad(edge_window(n - 2 * skip, TAPER_PX // 2), skip) for n in (ny, nx)))
    return FitGrid((ny, nx), optics.pixel_size_um, optics.cutoff_cycles_per_um, otf, kr, otf(kr),
                   transfer(0.0, 0.0), transfer, interior, kr > 1.1 * otf.support_cycles_per_um)


def widefield_of(fits: list[AngleFit], n_orders: int) -> np.ndarray:
    """Band 0 of every angle summed, in real space (Y, X): the widefield image that v is made of."""
    band0 = np.zeros(fits[0].spectra.shape[1:], dtype=np.complex64)
    for f in fits:
        band0 += np.tensordot(unmix_weights(f.phases, f.gains, n_orders)[0][0].astype(np.complex64), f.spectra, 1)
    return ifft2(band0).real


def modulations(fit: AngleFit, n_orders: int) -> tuple[float, ...]:
    """m_b = 2 |c_b| per order over MODULATION_OTF, unclipped."""
    unmix, none = unmix_weights(fit.phases, fit.gains, n_orders)[0], np.zeros((0, len(fit.phases)))
    return tuple(2.0 * abs(term(gram, unmix[2 * b - 1], none, unmix[0], none)[2])
                 for b, gram in enumerate(fit.modulation_grams, start=1))


def angle_pattern(fit: AngleFit, grid: FitGrid, k_px: tuple[float, float], offset: float,
                  mods: tuple[float, ...]) -> AnglePattern:
    """The canonical AnglePattern of a fit: k (Fourier px), the phases shifted by ``offset`` (rad),
    the modulation clipped to [0.05, 1].
    """
    return AnglePattern(k_cycles_per_um=grid.cycles_per_um(k_px),
                        phases_rad=tuple(wrap_phase(p + offset) for p in fit.phases),
                        modulation=tuple(float(np.clip(m, 0.05, 1.0)) for m in mods)).canonical()
