"""Filter stages beside the generalised Wiener of ``wiener.wiener_filter``.

All work on a ``PreparedReconstruction`` (the cached, shifted, OTF-weighted bands), so each is
a fast, slider-speed operation: a few passes over the half spectrum and one inverse FFT.

* ``textbook_wiener``: the reference form most tools use: every band divided by its modulation
  (c_b = m_b/2) before the Wiener sum, an isotropic apodization reaching zero at kc + |k_top|.
* ``auto_wiener``: the w that minimises an unbiased estimate of the error, from the noise the
  data carry beyond the OTF support (so low-light data get a large w, not a honeycomb).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .bands import FFT_WORKERS
from .otf import ideal_profile
from .parameters import FilterSettings
from .wiener import PreparedReconstruction, _apodization, _attenuated, _paste


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
    """Reference Wiener: bands divided by m, isotropic apodization ideal(|f| / (kc + |k_top|)).

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


def _support_target(prepared: PreparedReconstruction) -> np.ndarray:
    """Ideal OTF of the direction-dependent SIM support on the half grid (1 at 0, 0 at the boundary); cached."""
    cache = prepared._cache
    if "support_target" not in cache:
        from .wiener import LUT_MAX, LUT_SCALE

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


def auto_wiener(prepared: PreparedReconstruction, settings: FilterSettings | None = None,
                n_bins: int = 256) -> float:
    """The Wiener parameter w that minimises an unbiased estimate of the squared error.

    At every frequency the numerator is N(f) = D(f)·S(f) + noise with variance v(f) =
    noise_power · D(f) (``PreparedReconstruction.noise_power``, measured beyond the OTF support),
    D the denominator; the output is A·N / (D + w²). Against the object seen through the ideal SIM
    passband T (ideal OTF to kc + |k_top|, the reference of ``metrics.sim_passband_truth``) the
    expected error is Σ_f |S|²·(A·D/(D + w²) − T)² + A²·v/(D + w²)², with |S|² estimated without bias
    as (|N|² − v)/D². Since w enters only through D + w², the sum is Σ α/(D + w²)² − β/(D + w²) +
    const, and α, β are accumulated once over every frequency in ``n_bins`` logarithmic bins of D;
    w is then searched on 32 log-spaced values over AUTO_W_RANGE and 9 around the best. The
    apodization and attenuation of ``settings`` are used. Returns FilterSettings().wiener when the
    noise cannot be measured.
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
    d, a, t = denom[inside], apo[inside], t[inside]
    kappa = np.float32(prepared.noise_power)
    n2 = numer[inside]
    n2 = n2.real * n2.real + n2.imag * n2.imag
    sig_d = (n2 - kappa * d) / d  # |S|²·D, unbiased
    alpha = a * a * (sig_d + kappa) * d
    beta = 2.0 * sig_d * a * t
    log_d = np.log(d)
    lo, hi = float(log_d.min()), float(log_d.max()) + 1e-6
    index = ((log_d - lo) * ((n_bins - 1) / (hi - lo))).astype(np.int64)
    centres = np.exp(lo + (np.arange(n_bins) + 0.5) * (hi - lo) / (n_bins - 1))
    alpha_bins = np.bincount(index, alpha.astype(np.float64), n_bins)
    beta_bins = np.bincount(index, beta.astype(np.float64), n_bins)

    def risk(ws: np.ndarray) -> np.ndarray:
        inv = 1.0 / (centres[None, :] + (ws * ws)[:, None])
        return (alpha_bins * inv * inv - beta_bins * inv).sum(axis=1)

    coarse = np.geomspace(*AUTO_W_RANGE, 32)
    best = coarse[int(np.argmin(risk(coarse)))]
    step = (AUTO_W_RANGE[1] / AUTO_W_RANGE[0]) ** (1 / 31)
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
    effective transfer H1 = T·D/(D + w1²) (scaled to 1 at zero frequency) is smooth and free of the dips between bands. Step 2 is a
    mild Wiener on that under the apodization A of ``wiener_filter``: Ŝ = A·S1·H1/(H1² + w²), so the
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
