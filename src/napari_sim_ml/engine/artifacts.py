"""Truth-free artefact measures of a reconstruction, and the warnings they raise.

Does the output carry the illumination pattern (:func:`pattern_imprint`), a cross from the
image borders (:func:`border_cross`), or data the model leaves unexplained
(:func:`normalised_residual_stats`)? :func:`trust_warnings` turns them into sentences.
Below :mod:`.metrics`, which re-exports them; also the spectrum's populated radius.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from .bands import periodic_smooth
from .parameters import Optics, PatternParameters


def _radial_bins(shape: tuple[int, int], pixel_size_um: float) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    fy = scipy.fft.fftfreq(ny, pixel_size_um)[:, None]
    fx = scipy.fft.fftfreq(nx, pixel_size_um)[None, :]
    step = 1.0 / (max(ny, nx) * pixel_size_um)
    index = np.rint(np.hypot(fy, fx) / step).astype(int)
    return index, np.arange(min(ny, nx) // 2) * step



def populated_radius(image: np.ndarray, pixel_size_um: float, floor: float = 1e-6) -> float:
    """Radius (cycles/µm) up to which the image's spectrum holds anything at all.

    A camera-grid image fills its spectrum up to the Nyquist frequency; the same image
    Fourier zero-padded to a finer grid holds exactly nothing beyond the old Nyquist. The
    radius is the first ring in which fewer than 90 % of the Fourier pixels exceed ``floor`` ×
    the largest magnitude (the mean is removed first), capped at the grid's Nyquist frequency.
    """
    img = np.asarray(image, dtype=np.float64)
    mag = np.abs(scipy.fft.fft2(img - img.mean()))
    index, freqs = _radial_bins(img.shape, pixel_size_um)
    n = freqs.size
    ring = index.ravel()
    keep = ring < n
    filled = mag.ravel()[keep] > floor * max(float(mag.max()), 1e-300)
    frac = np.bincount(ring[keep], filled.astype(np.float64), n) / np.maximum(np.bincount(ring[keep], None, n), 1)
    empty = np.nonzero((frac < 0.9) & (np.arange(n) > 1))[0]
    nyquist = 0.5 / pixel_size_um
    return float(min(freqs[empty[0]], nyquist)) if empty.size else nyquist


IMPRINT_WARN_DB = 12.0  # a pattern peak this far above its ring: the illumination is in the image
CROSS_WARN_DB = 3.0  # spectral-axis cross this far above its neighbours: borders leak into the image


@dataclass(frozen=True)
class ImprintScore:
    """Pattern imprint of an image.

    peaks_db: one value per (angle, order): |F(b·k_d)| over the median |F| of its ring
    (peaks left out), in dB of magnitude (20 log10); 0 dB on average for pure noise.
    frequencies: the (fx, fy) evaluated, cycles/µm, in the same order. worst_db: the largest.
    """

    peaks_db: tuple[float, ...]
    frequencies: tuple[tuple[float, float], ...]
    worst_db: float


def _hann2d(shape: tuple[int, int]) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1]))


def pattern_imprint(image: np.ndarray, pixel_size_um: float, params: PatternParameters,
                    ring_halfwidth_px: float = 3.0, exclude_px: float = 4.0) -> ImprintScore:
    """How strongly the illumination pattern shows in an image's spectrum.

    image: (Y, X), any grid (a reconstruction on the 2× grid, or a raw frame / residual on
    the camera grid) with pixel ``pixel_size_um`` µm. The mean-removed image is multiplied by
    a 2-D Hann window (no border leakage, no cross); its spectrum is evaluated exactly at
    b·k_d (b = 1..n_orders, i.e. ±k and, for 3-beam, ±2k; a direct DFT, so no rounding of k
    to the grid) and compared with the median magnitude of the ring |f| = |b·k_d| ±
    ``ring_halfwidth_px`` Fourier pixels, leaving out discs of ``exclude_px`` around every
    pattern peak ±b·k of every angle. Peaks beyond the grid's Nyquist frequency are skipped.
    """
    img = np.asarray(image, dtype=np.float64)
    ny, nx = img.shape
    windowed = (img - img.mean()) * _hann2d(img.shape)
    spec = np.abs(scipy.fft.fft2(windowed))
    fy = scipy.fft.fftfreq(ny, pixel_size_um)[:, None]
    fx = scipy.fft.fftfreq(nx, pixel_size_um)[None, :]
    df = 1.0 / (max(ny, nx) * pixel_size_um)
    radius = np.hypot(fy, fx)
    nyquist = 0.5 / pixel_size_um
    peaks = [(b * a.k_cycles_per_um[0], b * a.k_cycles_per_um[1])
             for a in params.angles for b in range(1, a.n_orders + 1)]
    excluded = np.zeros(img.shape, dtype=bool)
    for kx, ky in peaks:
        for sign in (1, -1):
            excluded |= np.hypot(fx - sign * kx, fy - sign * ky) < exclude_px * df
    y = np.arange(ny) * pixel_size_um
    x = np.arange(nx) * pixel_size_um
    values, freqs = [], []
    for kx, ky in peaks:
        k = float(np.hypot(kx, ky))
        if max(abs(kx), abs(ky)) >= nyquist:
            continue
        ring = (np.abs(radius - k) <= ring_halfwidth_px * df) & ~excluded
        if ring.sum() < 8:
            continue
        # separable direct DFT at exactly (kx, ky)
        at_k = abs(np.exp(-2j * np.pi * ky * y) @ windowed @ np.exp(-2j * np.pi * kx * x))
        values.append(float(20 * np.log10(max(at_k, 1e-300) / max(float(np.median(spec[ring])), 1e-300))))
        freqs.append((float(kx), float(ky)))
    return ImprintScore(tuple(values), tuple(freqs), max(values) if values else float("nan"))


@dataclass(frozen=True)
class CrossScore:
    """Border cross of an image.

    Mean |F| along the spectral axes over the mean of the neighbouring lines, dB of magnitude;
    kx0_db is the column kx = 0, ky0_db the row ky = 0.
    """

    kx0_db: float
    ky0_db: float

    @property
    def worst_db(self) -> float:
        """The larger of the two axes' cross, dB."""
        return max(self.kx0_db, self.ky0_db)


def border_cross(image: np.ndarray, pixel_size_um: float = 1.0, offsets: tuple[int, ...] = (2, 3, 4),
                 inner: float = 0.1, outer: float = 0.9) -> CrossScore:
    """Border-cross score of an image (Y, X).

    The FFT of the image as it is (no window: a jump between opposite borders of the
    periodic continuation puts a line of energy on kx = 0 and on ky = 0). Along each axis
    line, between ``inner`` and ``outer`` × the image's populated radius (``populated_radius``;
    a band-limited reconstruction holds nothing beyond its support), the mean magnitude is
    compared with the mean magnitude of the parallel lines ``offsets`` Fourier pixels away on
    both sides. 0 dB: no cross; a hard-edged image scores 10 dB or more.
    """
    img = np.asarray(image, dtype=np.float64)
    ny, nx = img.shape
    mag = np.abs(scipy.fft.fft2(img - img.mean()))
    reach = populated_radius(img, pixel_size_um)

    def along(n_line: int, n_other: int, lines: np.ndarray) -> float:
        # lines: (n_line, n_other) with lines[0] the axis line; positions along it in FFT order
        f = np.abs(scipy.fft.fftfreq(n_other, pixel_size_um))
        sel = (f >= inner * reach) & (f <= outer * reach)
        axis = lines[0, sel].mean()
        rows = [o for o in offsets if o < n_line // 2]
        neigh = np.mean([lines[[o, -o]][:, sel].mean() for o in rows])
        return float(20 * np.log10(max(axis, 1e-300) / max(neigh, 1e-300)))

    return CrossScore(kx0_db=along(nx, ny, mag.T), ky0_db=along(ny, nx, mag))


@dataclass(frozen=True)
class ResidualStats:
    """Noise-normalised data residual r = (data − model) / σ over the inner field.

    mean and variance of r (0 and 1 when the model explains the frames down to the noise);
    imprint_db: the pattern imprint (``pattern_imprint``) of the residual frames, averaged per
    angle over its frames (a residual that still carries the stripes scores high).
    """

    mean: float
    variance: float
    imprint_db: tuple[float, ...]

    @property
    def worst_imprint_db(self) -> float:
        """The worst angle's residual imprint, dB (NaN without frames)."""
        return max(self.imprint_db) if self.imprint_db else float("nan")


def noise_variance_out_of_band(frames: np.ndarray, optics: Optics, margin: float = 1.1) -> np.ndarray:
    """White-noise variance of each frame (…, Y, X) from its spectrum beyond the OTF.

    No light passes the objective beyond kc = 2NA/λ, so the power at |f| > ``margin`` · kc
    (within the camera's Nyquist square, the spectral axes left out) is noise alone; for white
    noise its mean |F|²/N is the per-pixel variance. Raises SimInputError when the grid holds no such frequencies
    (pixels coarser than λ / 4NA·margin).
    """
    from .errors import SimInputError

    arr = np.asarray(frames, dtype=np.float64)
    ny, nx = arr.shape[-2:]
    fy = scipy.fft.fftfreq(ny, optics.pixel_size_um)[:, None]
    fx = scipy.fft.fftfreq(nx, optics.pixel_size_um)[None, :]
    df = 1.0 / (max(ny, nx) * optics.pixel_size_um)
    # the spectral axes carry the border jump of the periodic continuation, not noise
    off_axes = (np.abs(fy) > 3.5 * df) & (np.abs(fx) > 3.5 * df)
    outside = (np.hypot(fy, fx) > margin * optics.cutoff_cycles_per_um) & off_axes
    if outside.sum() < 64:
        raise SimInputError("the camera grid holds no frequencies beyond the OTF cutoff, so the noise "
                            "cannot be measured from the data; pass the noise variance")
    periodic = periodic_smooth(arr)[0].astype(np.float64)  # no border jumps leaking out of band
    power = np.abs(scipy.fft.fft2(periodic - periodic.mean(axis=(-2, -1), keepdims=True))) ** 2
    return power[..., outside].mean(axis=-1) / (ny * nx)


def sim_forward_model(image: np.ndarray, optics: Optics, params: PatternParameters,
                      otf=None) -> np.ndarray:
    """Return the frames (A, P, Y, X) that an object ``image`` (2Y, 2X, output grid) would give.

    Object × illumination, blurred by ``otf`` (ideal if None) and the pixel, sampled on the
    camera grid (arbitrary intensity scale; the FFT blur is periodic).
    """
    from .otf import ideal_otf
    from .simulate import blur_and_sample, illumination

    obj = np.asarray(image, dtype=np.float64)
    fine_px = optics.pixel_size_um / 2.0
    frames = np.stack([np.stack([obj * illumination(obj.shape, fine_px, a, phi) for phi in a.phases_rad])
                       for a in params.angles])
    return blur_and_sample(frames, optics, otf or ideal_otf(optics))


def normalised_residual_stats(data: np.ndarray, model: np.ndarray, params: PatternParameters,
                              pixel_size_um: float, noise_variance: np.ndarray | float,
                              fit_gain: bool = True, crop: int = 8) -> ResidualStats:
    """Statistics of the noise-normalised residual between frames and their model.

    data, model: (A, P, Y, X) background-subtracted frames and a forward model of them (e.g.
    ``sim_forward_model`` of a reconstruction, or a PINN's own prediction). With ``fit_gain``
    each model frame gets the least-squares gain and offset onto its data frame first (a
    reconstruction's intensity scale is arbitrary). noise_variance: per-pixel variance, a scalar
    or one per frame (A, P) (e.g. ``noise_variance_out_of_band``). ``crop`` border pixels are left
    out of mean/variance (the periodic blur wraps there).
    """
    d = np.asarray(data, dtype=np.float64)
    m = np.asarray(model, dtype=np.float64)
    if d.shape != m.shape or d.ndim != 4:
        raise ValueError("data and model must both be (A, P, Y, X) of the same shape")
    if fit_gain:
        flat_m, flat_d = m.reshape(-1, m.shape[-2] * m.shape[-1]), d.reshape(-1, d.shape[-2] * d.shape[-1])
        fitted = np.empty_like(flat_m)
        for i, (mi, di) in enumerate(zip(flat_m, flat_d, strict=False)):
            a = np.vstack([mi, np.ones_like(mi)]).T
            coef, *_ = np.linalg.lstsq(a, di, rcond=None)
            fitted[i] = mi * coef[0] + coef[1]
        m = fitted.reshape(m.shape)
    var = np.broadcast_to(np.asarray(noise_variance, dtype=np.float64), d.shape[:2])[..., None, None]
    r = (d - m) / np.sqrt(np.maximum(var, 1e-30))
    sl = (Ellipsis, slice(crop, -crop or None), slice(crop, -crop or None))
    inner = r[sl]
    imprint = []
    for frames, pattern in zip(r, params.angles, strict=False):
        single = PatternParameters((pattern,))
        imprint.append(float(np.mean([pattern_imprint(f, pixel_size_um, single).worst_db for f in frames])))
    return ResidualStats(float(inner.mean()), float(inner.var()), tuple(imprint))


def trust_warnings(imprint: ImprintScore | None = None, cross: CrossScore | None = None,
                   residual: ResidualStats | None = None) -> list[str]:
    """One sentence per measure that says the result should not be trusted (empty: none)."""
    out = []
    if imprint is not None and imprint.worst_db > IMPRINT_WARN_DB:
        out.append(f"the illumination pattern shows in the result ({imprint.worst_db:.1f} dB over its ring "
                   f"at the pattern frequency; > {IMPRINT_WARN_DB:.0f} dB): stripes/honeycomb are artefacts")
    if cross is not None and cross.worst_db > CROSS_WARN_DB:
        out.append(f"a border cross on the spectral axes ({cross.worst_db:.1f} dB over the neighbouring lines; "
                   f"> {CROSS_WARN_DB:.0f} dB): the borders leak into the image")
    if residual is not None and residual.worst_imprint_db > IMPRINT_WARN_DB:
        out.append(f"the data residual still carries the pattern ({residual.worst_imprint_db:.1f} dB at k): "
                   "the model does not explain the frames (wrong parameters or OTF?)")
    return out
