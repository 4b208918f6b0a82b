"""Classical SIM reconstruction in two stages: prepare (slow, once) and filter (fast).

prepare_reconstruction: pre-processing, band separation with the estimated phases,
exact sub-pixel band shift (a fractional phase ramp before the FFT plus an integer
placement on the 2× grid), and each band multiplied by its conjugate OTF. The result
is cached per band as a small box around the band centre, plus the summed
numerator and denominator on the half-spectrum (rfft) of the 2× grid.

wiener_filter: generalised Wiener (cudasirecon's statistically right form, which
weights every order by its modulation instead of dividing by it)

    Ŝ(f) = A(f) Σ_{d,b} a_b(f) c_b* H*(f + b k_d) D_{d,b}(f + b k_d)
           / (Σ_{d,b} a_b(f) |c_b|² |H(f + b k_d)|² / n_angles + w²) / n_angles

with band-centre attenuation a_b(f) = 1 − s·exp(−|f + b k|² / 2σ²) applied only in
windows around the band centres. a_b is a least-squares weight (numerator and
denominator both carry it once), so it down-weights the out-of-focus-rich band
centres without amplifying anything; fairSIM's variant, which attenuates the OTF
(a_b² in the denominator), boosts zero frequency by up to 1/(1 − s). The result is
multiplied by an apodization A looked up from a table and brought back to real space
with one inverse real FFT, so a slider move costs a few passes over (2Y) × (X + 1)
values.

Output grid: (2Y, 2X), pixel = raw pixel / 2; output pixel (2i, 2j) sits on raw
pixel (i, j) (Fourier zero-padding registration), so translate = 0.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.fft

from .bandnoise import noise_power_beyond_otf, noise_power_in_band, noise_profile
from .bands import (
    FFT_WORKERS,
    default_taper_px,
    edge_window,
    fft2,
    periodic_smooth,
    phase_ramp,
    preprocess,
    separate_positive_bands,
)
from .equalize import frame_gains
from .errors import SimInputError
from .otf import RadialOTF, ideal_otf
from .parameters import FilterSettings, Optics, PatternParameters
from .prepared import (  # noqa: F401  (the prepared bands live below wiener and filters)
    LUT_MAX,
    LUT_SCALE,
    BandBox,
    PreparedReconstruction,
    _apodization,
    _attenuated,
    _centre_slice,
    _paste,
    upsample2x,
)


def _centre_box(spectrum: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Frequencies -ry..ry × -rx..rx of an FFT-ordered spectrum, zero frequency at the centre."""
    ny, nx = spectrum.shape
    rows = np.concatenate([spectrum[ny - ry:], spectrum[:ry + 1]])
    return np.concatenate([rows[:, nx - rx:], rows[:, :rx + 1]], axis=1)


def _support_radius(half_shape: tuple[int, int], ny: int, df: tuple[float, float],
                    centres: np.ndarray, radius: float) -> np.ndarray:
    """Return |f| / R(θ) on the half grid.

    R(θ) = distance from 0 to the edge of the union of OTF discs (radius ``radius``) around the
    band centres, along direction θ.
    """
    # R(θ) on a fine table of directions (the half plane fx ≥ 0: θ in [-π/2, π/2]), then looked up
    theta = np.linspace(-np.pi / 2, np.pi / 2, 4096)
    uy, ux = np.sin(theta), np.cos(theta)
    reach = np.zeros_like(theta)
    for cy, cx in centres:
        along = cy * uy + cx * ux
        disc = along * along - (cy * cy + cx * cx - radius * radius)
        reach = np.maximum(reach, np.where(disc >= 0, along + np.sqrt(np.maximum(disc, 0)), 0))
    fy = ((np.arange(half_shape[0]) - ny) * df[0]).astype(np.float32)[:, None]
    fx = (np.arange(half_shape[1]) * df[1]).astype(np.float32)[None, :]
    angle = np.arctan2(fy, fx)
    index = ((angle + np.float32(np.pi / 2)) * np.float32(4095 / np.pi) + np.float32(0.5)).astype(np.int32)
    inverse_reach = (1.0 / np.maximum(reach, 1e-6)).astype(np.float32)
    return np.sqrt(fy * fy + fx * fx) * inverse_reach[index]


def prepare_reconstruction(
    plane: np.ndarray,
    optics: Optics,
    params: PatternParameters,
    otf: RadialOTF | None = None,
    background: float = 0.0,
    taper_px: int | None = None,
    equalize: bool | str = True,
    border: str = "periodic",
) -> PreparedReconstruction:
    """Stage 1: bands separated, shifted and OTF-weighted; see the module docstring.

    plane: (A, P, Y, X) raw counts matching ``params`` (angles, phases).
    background: camera offset subtracted first (counts).
    equalize: True / "spectrum": per-frame gains measured where a sparse sample cannot fake
        them (``equalize.frame_gains``); "mean": every frame scaled to the mean of all; False: none.
    border: "periodic": band 0 (the widefield) loses the smooth component of its
        periodic-plus-smooth decomposition (Moisan 2011) within ``taper_px`` of the border only,
        u − (1 − window)·smooth, so it is periodic there and untouched inside, and the side bands
        fade to zero over the same width: no border cross and no grey frame (the outer pixels
        keep their brightness at widefield resolution). "taper": the older sin² fade of every frame
        towards its mean (a grey frame).
    """
    if plane.ndim != 4 or plane.shape[:2] != (params.n_angles, params.n_phases):
        raise SimInputError(
            f"the stack has {plane.shape[0] if plane.ndim == 4 else '?'} angles × "
            f"{plane.shape[1] if plane.ndim == 4 else '?'} phases but the parameters describe "
            f"{params.n_angles} × {params.n_phases}"
        )
    if border not in ("periodic", "taper"):
        raise SimInputError(f"border handling must be 'periodic' or 'taper', not '{border}'")
    if equalize not in (True, False, "spectrum", "mean"):
        raise SimInputError(f"equalize must be true, false, 'spectrum' or 'mean', not '{equalize}'")
    otf = otf or ideal_otf(optics)
    periodic = border == "periodic"
    frames = preprocess(plane, background, taper_px if not periodic else 0, equalize == "mean")
    if equalize in (True, "spectrum"):
        gains = frame_gains(frames, optics, params, otf)
        frames /= gains.astype(np.float32)[..., None, None]
    n_angles, _, ny, nx = frames.shape
    dx = optics.pixel_size_um
    df = (1.0 / (ny * dx), 1.0 / (nx * dx))
    support = otf.support_cycles_per_um
    ry = int(min(np.ceil(support / df[0]) + 1, ny // 2 - 1))
    rx = int(min(np.ceil(support / df[1]) + 1, nx // 2 - 1))
    jy = np.arange(-ry, ry + 1)
    jx = np.arange(-rx, rx + 1)
    half_shape = (2 * ny, nx + 1)
    boxes: list[BandBox] = []
    widefield_sum = np.zeros((ny, nx), dtype=np.float32)
    centres = [(0.0, 0.0)]
    if periodic:
        taper = default_taper_px((ny, nx)) if taper_px is None else int(taper_px)
        win = edge_window(ny, taper)[:, None] * edge_window(nx, taper)[None, :]
    for d, pattern in enumerate(params.angles):
        band0, positive = separate_positive_bands(frames[d], pattern.phases_rad, params.n_orders)
        widefield_sum += band0
        if d == 0:
            band0_difference = band0.copy()
        elif d == 1:
            band0_difference -= band0  # every angle's band 0 is h ⊛ S: the difference is noise alone
        if periodic:  # the side bands fade to zero at the border (their jumps would draw crosses at ±k)
            positive *= win
        kx, ky = pattern.k_cycles_per_um
        for b in range(1, params.n_orders + 1):
            c_b = pattern.modulation[b - 1] / 2.0
            shift = (b * ky / df[0], b * kx / df[1])
            q = (int(np.rint(shift[0])), int(np.rint(shift[1])))
            frac = (shift[0] - q[0], shift[1] - q[1])
            ramp_y, ramp_x = phase_ramp((ny, nx), frac)
            band = positive[b - 1]
            band *= ramp_y[:, None]
            band *= ramp_x[None, :]
            box = _centre_box(fft2(band), ry, rx)
            dist2 = ((((jy + frac[0]) * df[0]) ** 2)[:, None]
                     + (((jx + frac[1]) * df[1]) ** 2)[None, :]).astype(np.float32)
            h = otf(np.sqrt(dist2)) * np.float32(c_b)
            numer = h * box
            denom = h * h
            boxes.append(BandBox((ny - q[0], -q[1]), numer, denom, dist2, c_b))
            boxes.append(BandBox((ny + q[0], q[1]), np.conj(numer[::-1, ::-1]),
                                 denom[::-1, ::-1].copy(), dist2[::-1, ::-1].copy(), c_b))
            centres += [(-b * ky, -b * kx), (b * ky, b * kx)]
    dist2 = (((jy * df[0]) ** 2)[:, None] + ((jx * df[1]) ** 2)[None, :]).astype(np.float32)
    h0 = otf(np.sqrt(dist2))
    if periodic:  # band 0 made periodic at the border only: u − (1 − window)·smooth, untouched inside
        smooth = periodic_smooth(widefield_sum)[1]
        smooth *= 1.0 - win
        widefield_sum -= smooth
    wide_spectrum = fft2(widefield_sum)
    boxes.append(BandBox((ny, 0), h0 * _centre_box(wide_spectrum, ry, rx), n_angles * h0 * h0, dist2))
    noise_power = (noise_power_in_band(band0_difference, dx, otf.support_cycles_per_um, params, n_angles)
                   if n_angles > 1 else noise_power_beyond_otf(wide_spectrum, dx, support, n_angles))
    profile = (noise_profile(band0_difference, dx, support, params, n_angles, noise_power)
               if n_angles > 1 else ((), ()))
    numer = np.zeros(half_shape, dtype=np.complex64)
    denom = np.zeros(half_shape, dtype=np.float32)
    for band_box in boxes:
        _paste(numer, band_box.numer, band_box.centre)
        _paste(denom, band_box.denom, band_box.centre)
    rho = _support_radius(half_shape, ny, df, np.array(centres), support)
    rho *= np.float32(LUT_SCALE)
    rho += np.float32(0.5)
    np.minimum(rho, np.float32(LUT_SCALE * LUT_MAX), out=rho)
    rho_index = rho.astype(np.int32)
    numer *= np.float32(1.0 / n_angles)
    denom *= np.float32(1.0 / n_angles)
    return PreparedReconstruction(
        shape=(ny, nx), optics=optics, params=params, numer=numer, denom=denom,
        boxes=boxes, rho_index=rho_index, widefield_raw=widefield_sum / n_angles, df=df,
        noise_power=noise_power, otf_has_pixel=otf.source.startswith("measured"),
        side_noise_share=float(np.mean(win * win)) if periodic else 1.0, noise_profile=profile,
    )




def wiener_filter(prepared: PreparedReconstruction, settings: FilterSettings | None = None) -> np.ndarray:
    """Stage 2: the filtered reconstruction (2Y, 2X) float32; negatives are kept.

    settings None: the default apodization and attenuation with w chosen from the data's noise
    (``filters.auto_wiener``).
    """
    s = settings or default_settings(prepared)
    numer, denom = _attenuated(prepared, s.attenuation, s.attenuation_fwhm)
    apo = _apodization(prepared, s.apo_cutoff, s.apo_bend)
    ny, nx = prepared.shape
    weight = denom + np.float32(s.wiener**2)
    np.divide(apo, weight, out=weight)
    weight *= np.float32(4.0)  # the 2× grid's inverse FFT normalisation
    spectrum = np.empty_like(numer)  # rows un-shifted on the fly: zero frequency back to row 0
    np.multiply(numer[ny:], weight[ny:], out=spectrum[:ny])
    np.multiply(numer[:ny], weight[:ny], out=spectrum[ny:])
    out = scipy.fft.irfft2(spectrum, s=(2 * ny, 2 * nx), workers=FFT_WORKERS, overwrite_x=True)
    return out.astype(np.float32, copy=False)


def default_settings(prepared: PreparedReconstruction) -> FilterSettings:
    """FilterSettings() with w chosen from the data's noise (``filters.auto_wiener``)."""
    from .filters import auto_wiener

    return replace(FilterSettings(), wiener=auto_wiener(prepared))


def wiener_reconstruct(
    plane: np.ndarray,
    optics: Optics,
    params: PatternParameters,
    settings: FilterSettings | None = None,
    otf: RadialOTF | None = None,
    background: float = 0.0,
) -> np.ndarray:
    """prepare_reconstruction + wiener_filter in one call; (2Y, 2X) float32 (settings None: w from the noise)."""
    return wiener_filter(prepare_reconstruction(plane, optics, params, otf, background), settings)


def log_spectrum(image: np.ndarray) -> np.ndarray:
    """log(1 + |FFT|) of an image, zero frequency in the centre, float32."""
    spec = np.abs(scipy.fft.fft2(np.asarray(image, dtype=np.float32), workers=FFT_WORKERS))
    return np.log1p(np.fft.fftshift(spec)).astype(np.float32)


__all__ = [
    "BandBox", "PreparedReconstruction", "prepare_reconstruction", "wiener_filter",
    "wiener_reconstruct", "log_spectrum", "upsample2x", "default_settings",
]
