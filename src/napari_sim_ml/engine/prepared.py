"""The prepared bands of a SIM plane and the cached terms the filter stage reads from them.

:class:`PreparedReconstruction` is what ``wiener.prepare_reconstruction`` makes (stage 1)
and what every filter reads (stage 2: ``wiener.wiener_filter``, ``filters``): the summed
numerator and denominator on the half grid of the 2× output, the per-band boxes, and a
cache of the apodization table and of the band-centre attenuation for the last settings.
Below both ``wiener`` and ``filters``, so that neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from .bands import FFT_WORKERS
from .otf import ideal_profile
from .parameters import Optics, PatternParameters

LUT_SCALE = 1024  # apodization table entries per unit of normalised radius
LUT_MAX = 3.0  # largest normalised radius in the table


@dataclass
class BandBox:
    """One band's cached spectrum in a (2Ry+1, 2Rx+1) box around its centre.

    centre: (row, col) of the band centre on the row-shifted half grid.
    numer: c_b* H* D_b (complex64); denom: |c_b|² |H|² (float32);
    dist2: squared distance from the band centre, (cycles/µm)².
    """

    centre: tuple[int, int]
    numer: np.ndarray
    denom: np.ndarray
    dist2: np.ndarray
    c: float = 1.0  # the band's modulation weight c_b = m_b / 2 (1 for band 0)


@dataclass
class PreparedReconstruction:
    """Everything the filter stage needs; arrays on the half grid (2Y, X + 1).

    Rows fft-shifted (zero frequency at row Y). noise_power: the numerator's noise variance per
    Fourier coefficient is noise_power · denom(f), measured from the difference of two angles'
    band 0 inside the OTF (one angle: white noise beyond the OTF support; NaN when neither can be
    measured).
    """

    shape: tuple[int, int]
    optics: Optics
    params: PatternParameters
    numer: np.ndarray
    denom: np.ndarray
    boxes: list[BandBox]
    rho_index: np.ndarray
    widefield_raw: np.ndarray
    df: tuple[float, float]
    noise_power: float = float("nan")
    otf_has_pixel: bool = False  # True for a measured OTF (it already holds the camera pixel's sinc)
    side_noise_share: float = 1.0  # noise variance of the side bands relative to band 0's (their border fade)
    noise_profile: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # (raw |f| cycles/µm, power / noise_power)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def output_pixel_size_um(self) -> float:
        """Pixel size of the 2× output grid (µm)."""
        return self.optics.pixel_size_um / 2.0

    @property
    def frame_noise_variance(self) -> float:
        """Per-pixel noise variance of one raw frame (counts², after background and equalisation).

        From ``noise_power`` (equal phase steps assumed).
        """
        ny, nx = self.shape
        return self.noise_power * self.params.n_angles * self.params.n_phases / (ny * nx)

    @property
    def widefield(self) -> np.ndarray:
        """Widefield (band 0, background-subtracted) on the 2× grid, (2Y, 2X) float32."""
        if "widefield" not in self._cache:
            self._cache["widefield"] = upsample2x(self.widefield_raw)
        return self._cache["widefield"]


def _paste(target: np.ndarray, box: np.ndarray, centre: tuple[int, int]) -> None:
    """Add ``box`` centred at ``centre`` into ``target``, clipped to its bounds."""
    ry, rx = box.shape[0] // 2, box.shape[1] // 2
    y0, x0 = centre[0] - ry, centre[1] - rx
    ty0, tx0 = max(y0, 0), max(x0, 0)
    ty1, tx1 = min(y0 + box.shape[0], target.shape[0]), min(x0 + box.shape[1], target.shape[1])
    if ty1 <= ty0 or tx1 <= tx0:
        return
    target[ty0:ty1, tx0:tx1] += box[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0]



def _centre_slice(box_shape: tuple[int, int], ry: int, rx: int) -> tuple[slice, slice]:
    cy, cx = box_shape[0] // 2, box_shape[1] // 2
    ry, rx = min(ry, cy), min(rx, cx)
    return slice(cy - ry, cy + ry + 1), slice(cx - rx, cx + rx + 1)


def upsample2x(image: np.ndarray) -> np.ndarray:
    """Fourier zero-padding of (Y, X) to (2Y, 2X); output pixel (2i, 2j) = input pixel (i, j)."""
    ny, nx = image.shape
    spec = scipy.fft.rfft2(image, workers=FFT_WORKERS)
    padded = np.zeros((2 * ny, nx + 1), dtype=np.complex64)
    h = ny // 2
    padded[:h, : nx // 2 + 1] = spec[:h]
    padded[-(ny - h):, : nx // 2 + 1] = spec[h:]
    return (4.0 * scipy.fft.irfft2(padded, s=(2 * ny, 2 * nx), workers=FFT_WORKERS)).astype(np.float32)


def _apodization(prepared: PreparedReconstruction, cutoff: float, bend: float) -> np.ndarray:
    key = ("apo", cutoff, bend)
    cache = prepared._cache
    if cache.get("apo_key") != key:
        radius = np.arange(int(LUT_SCALE * LUT_MAX) + 1, dtype=np.float64) / LUT_SCALE
        table = (ideal_profile(radius / cutoff) ** bend).astype(np.float32)
        cache["apo"], cache["apo_key"] = table[prepared.rho_index], key
    return cache["apo"]


def _attenuated(prepared: PreparedReconstruction, strength: float, fwhm: float) -> tuple[np.ndarray, np.ndarray]:
    key = ("att", strength, fwhm)
    cache = prepared._cache
    if cache.get("att_key") != key:
        numer, denom = prepared.numer, prepared.denom
        if strength > 0:
            numer, denom = numer.copy(), denom.copy()
            sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
            ry = int(np.ceil(4 * sigma / prepared.df[0]))
            rx = int(np.ceil(4 * sigma / prepared.df[1]))
            n_angles = prepared.params.n_angles
            for box in prepared.boxes:
                window = _centre_slice(box.numer.shape, ry, rx)
                gauss = strength * np.exp(-box.dist2[window] / (2 * sigma * sigma))
                _paste(numer, -gauss * box.numer[window] / n_angles, box.centre)
                _paste(denom, -gauss * box.denom[window] / n_angles, box.centre)
        cache["att"], cache["att_key"] = (numer, denom), key
    return cache["att"]


__all__ = ["LUT_SCALE", "LUT_MAX", "BandBox", "PreparedReconstruction", "upsample2x"]
