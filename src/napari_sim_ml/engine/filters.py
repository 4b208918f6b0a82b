"""Filter stages beside the generalised Wiener of ``wiener.wiener_filter``.

All work on a ``PreparedReconstruction`` (the cached, shifted, OTF-weighted bands), so each is
a fast, slider-speed operation: a few passes over the half spectrum and one inverse FFT.

* ``textbook_wiener``: the reference form most tools use: every band divided by its modulation
  (c_b = m_b/2) before the Wiener sum, an isotropic apodization reaching zero at kc + |k_top|.
* ``auto_wiener``: the w that minimises an unbiased estimate of the error up to gain and offset,
  from the noise measured in the data (so low-light data get a large w, not a honeycomb).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .bands import FFT_WORKERS
from .otf import ideal_profile
from .parameters import FilterSettings
from .prepared import PreparedReconstruction, _apodization, _attenuated, _paste


def half_grid_radius(prepared: PreparedReconstruction) -> np.ndarray:
    """|f| (cycles/µm) on the prepared half grid (2Y, X + 1), rows fft-shifted."""
    ny, _ = prepared.shape
    fy = ((np.arange(2 * ny) - ny) * prepared.df[0]).astype(np.float32)[:, None]
    fx = (np.arange(prepared.numer.shape[1]) * prepared.df[1]).astype(np.float32)[None, :]
    return np.sqrt(fy * fy + fx * fx)


def reweighted(prepared: PreparedReconstruction, power: float) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator with every band's terms scaled by c_b^(−2·power).

    power 0: the cached sums (bands weighted by their modulation, the statistically right
    form); power 1: every band divided by its modulation (the textbook form). Cached.
    """
    key = ("rew", power)
    cache = prepared._cache
    if cache.get("rew_key") != key:
        if power == 0:
            out = (prepared.numer, prepared.denom)
        else:
            n_angles = prepared.params.n_angles
            numer = np.zeros_like(prepared.numer)
            denom = np.zeros_like(prepared.denom)
            for box in prepared.boxes:
                scale = np.float32(box.c ** (-2.0 * power) / n_angles)
                _paste(numer, box.numer * scale, box.centre)
                _paste(denom, box.denom * scale, box.centre)
            out = (numer, denom)
        cache["rew"], cache["rew_key"] = out, key
    return cache["rew"]


def _inverse(prepared: PreparedReconstruction, spectrum_half: np.ndarray) -> np.ndarray:
    """Image (2Y, 2X) float32 from a half spectrum with rows fft-shifted."""
    ny, nx = prepared.shape
    spectrum = np.empty_like(spectrum_half)
    spectrum[:ny] = spectrum_half[ny:]
    spectrum[ny:] = spectrum_half[:ny]
    spectrum *= np.float32(4.0)  # the 2× grid's inverse FFT normalisation
    out = scipy.fft.irfft2(spectrum, s=(2 * ny, 2 * nx), workers=FFT_WORKERS, overwrite_x=True)
    return out.astype(np.float32, copy=False)


def textbook_wiener(prepared: PreparedReconstruction, wiener: float = 0.05) -> np.ndarray:
    """Reconstruct with the reference Wiener: bands divided by m, apodization ideal(|f| / (kc + |k_top|)).

    Ŝ = A_iso · Σ H* D_b / c_b / (Σ |H|² + w²) on the 2× grid, (2Y, 2X) float32. ``w`` is on
    the same scale as ``wiener_filter``'s (the denominator is 1 at zero frequency per angle).
    """
    numer, denom = reweighted(prepared, 1.0)
    p = prepared.params
    k_top = max(a.k_magnitude for a in p.angles) * p.n_orders
    cutoff = prepared.optics.cutoff_cycles_per_um + k_top
    apo = ideal_profile(half_grid_radius(prepared) / cutoff).astype(np.float32)
    return _inverse(prepared, numer * (apo / (denom + np.float32(wiener**2))))


AUTO_W_RANGE = (0.003, 3.0)
NOISE_LEVEL_ERROR = 0.05  # relative error allowed for the measured noise level in ``auto_wiener``


def _support_target(prepared: PreparedReconstruction) -> np.ndarray:
    """Ideal OTF of the direction-dependent SIM support on the half grid (1 at 0, 0 at the boundary); cached."""
    cache = prepared._cache
    if "support_target" not in cache:
        from .prepared import LUT_MAX, LUT_SCALE

        rho = np.arange(int(LUT_SCALE * LUT_MAX) + 1, dtype=np.float64) / LUT_SCALE
        cache["support_target"] = ideal_profile(rho).astype(np.float32)[prepared.rho_index]
    return cache["support_target"]


def _passband_target(prepared: PreparedReconstruction) -> np.ndarray:
    """Ideal OTF to kc + |k_top| (isotropic, as ``metrics.sim_passband_truth``) on the half grid; cached."""
    cache = prepared._cache
    if "passband_target" not in cache:
        p = prepared.params
        cutoff = prepared.optics.cutoff_cycles_per_um + max(x.k_magnitude for x in p.angles) * p.n_orders
        radius = half_grid_radius(prepared)
        radius *= np.float32(1024.0 / cutoff)
        table = ideal_profile(np.arange(1026) / 1024.0).astype(np.float32)
        cache["passband_target"] = table[np.minimum(radius + np.float32(0.5), 1025).astype(np.int32)]
    return cache["passband_target"]


def _signal_transfer_ratio(prepared: PreparedReconstruction) -> np.ndarray:
    """D̃/D on the half grid: the share of the denominator that signal actually reaches; cached.

    The bands are weighted by the OTF of the parameters, but a camera integrates over its pixels,
    so the signal a band carries at raw frequency (fy, fx) is further multiplied by
    sinc(fy·p)·sinc(fx·p) (p the pixel size, µm). D̃ = Σ_b c_b² H_b² · sinc_b, D = Σ_b c_b² H_b².
    A measured OTF already holds the pixel: the ratio is 1 there.
    """
    cache = prepared._cache
    if "signal_ratio" not in cache:
        if prepared.otf_has_pixel:
            cache["signal_ratio"] = np.ones_like(prepared.denom)
        else:
            px = prepared.optics.pixel_size_um
            reached = np.zeros_like(prepared.denom)
            for box in prepared.boxes:
                ry, rx = box.denom.shape[0] // 2, box.denom.shape[1] // 2
                sy = np.sinc(np.arange(-ry, ry + 1) * prepared.df[0] * px).astype(np.float32)
                sx = np.sinc(np.arange(-rx, rx + 1) * prepared.df[1] * px).astype(np.float32)
                _paste(reached, box.denom * sy[:, None] * sx[None, :], box.centre)
            reached *= np.float32(1.0 / prepared.params.n_angles)
            cache["signal_ratio"] = np.clip(reached / np.maximum(prepared.denom, np.float32(1e-30)), 0.0, 1.0)
    return cache["signal_ratio"]


def _noise_shape(prepared: PreparedReconstruction) -> np.ndarray:
    """Return the numerator's noise variance over noise_power on the half grid (D for white noise); cached.

    Σ_b q_b · c_b² H_b² · σ²(|f − b·k|) / n_angles: every band's noise follows the measured profile
    against its own raw frequency (``PreparedReconstruction.noise_profile``, 1 when not measured), and
    the side bands, faded to zero at the border, carry the share q = ``side_noise_share`` of it.
    """
    cache = prepared._cache
    if "noise_shape" not in cache:
        centres, ratios = prepared.noise_profile
        out = np.zeros_like(prepared.denom)
        if centres:  # the profile on a table of 1024 radii up to the last ring (held beyond)
            step = np.float32(centres[-1] / 1023.0)
            table = np.interp(np.arange(1024) * float(step), centres, ratios).astype(np.float32)
        for box in prepared.boxes:
            share = 1.0 if box.c == 1.0 and box.centre == (prepared.shape[0], 0) else prepared.side_noise_share
            weighted = box.denom * np.float32(share)
            if centres:
                index = np.minimum(np.sqrt(box.dist2) / step + np.float32(0.5), np.float32(1023)).astype(np.int32)
                weighted *= table[index]
            _paste(out, weighted, box.centre)
        out *= np.float32(1.0 / prepared.params.n_angles)
        cache["noise_shape"] = out
    return cache["noise_shape"]


def auto_wiener(prepared: PreparedReconstruction, settings: FilterSettings | None = None,
                n_bins: int = 256) -> float:
    """Choose the Wiener w that minimises an unbiased estimate of the error, up to gain and offset.

    At every frequency f the numerator is N = D̃·S + noise, noise variance v = noise_power · V(f)
    (``PreparedReconstruction.noise_power``, measured from two angles' band 0 inside the OTF; V from
    ``_noise_shape``: every band's noise at its own raw frequency, so coloured noise counts where it
    acts; V = D for white noise), D the denominator and D̃ ≤ D its part that signal reaches through
    the camera pixel (``_signal_transfer_ratio``); the output is A·N / (D + w²). The reference is the object seen
    through the ideal SIM passband T (ideal OTF to kc + |k_top|, as ``metrics.sim_passband_truth``).
    The output's gain and offset are arbitrary (a background left in the frames, a scaled band
    sum), so the error is taken after the best gain and without the zero frequency, as PSNR/SSIM
    comparisons do: with F = A/(D + w²), R(w) = Σ T²|S|² − (Σ F·T·D̃|S|²)² / Σ F²·E|N|². Both sums are
    estimated without bias (E|N|² by |N|², D̃|S|² by (|N|² − v)/D̃) and accumulated once in
    ``n_bins`` logarithmic bins of D, since w enters only through D + w²; w is then searched on 96
    log-spaced values over AUTO_W_RANGE and 9 around the best. The signal sum is taken two standard
    deviations of its noise low (its noise alone has variance Σ (F·T·v/D̃)²) and with the noise level
    NOISE_LEVEL_ERROR (5 %) high, so a w is chosen for
    signal the data show, not for a chance excess: pure noise gets the top of the range. (A risk that counted the zero
    frequency and the gain picked w ≈ 4× too small on the real 3-beam low-light set: the shrinkage of
    an unsubtracted background outweighed the noise.) The apodization and attenuation of
    ``settings`` are used. Returns FilterSettings().wiener when the noise cannot be measured, and the
    top of AUTO_W_RANGE when no w finds signal above the noise.
    """
    s = settings or FilterSettings()
    if not np.isfinite(prepared.noise_power) or prepared.noise_power <= 0:
        return FilterSettings().wiener
    key = ("auto", s.apo_cutoff, s.apo_bend, s.attenuation, s.attenuation_fwhm)
    cache = prepared._cache
    if key in cache:
        return cache[key]
    numer, denom = _attenuated(prepared, s.attenuation, s.attenuation_fwhm)
    apo = _apodization(prepared, s.apo_cutoff, s.apo_bend)
    t = _passband_target(prepared)
    inside = denom > np.float32(1e-6 * denom.max())
    inside[prepared.shape[0], 0] = False  # the zero frequency: the offset is not scored
    d, a, t = denom[inside], apo[inside], t[inside]
    reached = d * _signal_transfer_ratio(prepared)[inside]
    kappa = np.float32(prepared.noise_power)
    n2 = numer[inside]
    n2 = n2.real * n2.real + n2.imag * n2.imag
    v = kappa * _noise_shape(prepared)[inside] * (d / np.maximum(prepared.denom[inside], np.float32(1e-30)))
    weight = (a * t) / np.maximum(reached, np.float32(1e-30))
    cross = weight * (n2 - v)  # A·T·D̃|S|², unbiased; its variance without signal is (weight·v)²
    power = a * a * n2  # A²·E|N|²
    log_d = np.log(d)
    lo, hi = float(log_d.min()), float(log_d.max()) + 1e-6
    index = ((log_d - lo) * ((n_bins - 1) / (hi - lo))).astype(np.int64)
    centres = np.exp(lo + (np.arange(n_bins) + 0.5) * (hi - lo) / (n_bins - 1))
    power_bins = np.bincount(index, power.astype(np.float64), n_bins)
    cross_bins = np.bincount(index, cross.astype(np.float64), n_bins)
    spread_bins = np.bincount(index, ((weight * v).astype(np.float64)) ** 2, n_bins)
    level_bins = np.bincount(index, (weight * v).astype(np.float64), n_bins)  # for the noise level's own error

    def risk(ws: np.ndarray) -> np.ndarray:  # R(w) − Σ T²|S|², with the signal term taken 2 σ low
        inv = 1.0 / (centres[None, :] + (ws * ws)[:, None])
        gain_term = ((cross_bins - NOISE_LEVEL_ERROR * level_bins) * inv).sum(axis=1)
        gain_term -= 2.0 * np.sqrt((spread_bins * inv * inv).sum(axis=1))
        return -np.maximum(gain_term, 0.0) ** 2 / np.maximum((power_bins * inv * inv).sum(axis=1), 1e-300)

    n_coarse = 96
    coarse = np.geomspace(*AUTO_W_RANGE, n_coarse)
    coarse_risk = risk(coarse)
    if not coarse_risk.min() < 0:  # no w finds any signal above the noise: the strongest regularisation
        cache[key] = float(AUTO_W_RANGE[1])
        return cache[key]
    best = coarse[int(np.argmin(coarse_risk))]
    step = (AUTO_W_RANGE[1] / AUTO_W_RANGE[0]) ** (1 / (n_coarse - 1))
    fine = np.clip(best * step ** np.linspace(-1, 1, 9), *AUTO_W_RANGE)
    cache[key] = float(fine[int(np.argmin(risk(fine)))])
    return cache[key]


HIFI_W1 = 1.2  # step-1 regularisation (Wen et al. 2021)
HIFI_W2 = 0.1  # step-2 default


def hifi_filter(prepared: PreparedReconstruction, settings: FilterSettings | None = None,
                w1: float = HIFI_W1) -> np.ndarray:
    """Spectrum-optimised two-step filter in the spirit of HiFi-SIM (Wen et al., LSA 10:70, 2021).

    Step 1 maps the bands onto an engineered target OTF T: S1 = T·N/(D + w1²) with a strong w1,
    T = ideal OTF of the direction-dependent SIM support (zero exactly at its boundary), so the
    effective transfer H1 = T·D/(D + w1²) (scaled to 1 at zero frequency) is smooth and free of the
    dips between bands. Step 2 is a mild Wiener on that under the apodization A of
    ``wiener_filter``: Ŝ = A·S1·H1/(H1² + w²), so the
    final transfer A·H1²/(H1² + w²) follows the shaped target instead of the band sum. Live-slider
    settings: ``wiener`` is w (default HIFI_W2 when settings is None); apodization and attenuation
    act as in ``wiener_filter``. (2Y, 2X) float32.
    """
    s = settings or FilterSettings(wiener=HIFI_W2)
    numer, denom = _attenuated(prepared, s.attenuation, s.attenuation_fwhm)
    apo = _apodization(prepared, s.apo_cutoff, s.apo_bend)
    step1 = _support_target(prepared) / (denom + np.float32(w1 * w1))
    d0 = float(denom[prepared.shape[0], 0])  # zero frequency
    step1 *= np.float32((d0 + w1 * w1) / max(d0, 1e-12))  # H1 = 1 at zero frequency, so w is relative
    h1 = step1 * denom
    weight = step1 * apo * h1 / (h1 * h1 + np.float32(s.wiener**2))
    return _inverse(prepared, numer * weight)
