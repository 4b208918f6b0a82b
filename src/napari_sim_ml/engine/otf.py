"""Optical transfer functions, all represented as radial profiles.

A detection OTF of a well-aligned microscope is rotationally symmetric, so every
OTF here (ideal, fairSIM-style attenuated, measured from an OTF or PSF file) is a
sampled profile OTF(|f|) with |f| in cycles/µm, normalised to 1 at f = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SimInputError
from .parameters import Optics

TABLE_SIZE = 8192


@dataclass(frozen=True, eq=False)
class RadialOTF:
    """OTF(|f|) sampled at ``freqs`` (cycles/µm, increasing from 0); zero beyond.

    Evaluation uses a uniform table of TABLE_SIZE samples (nearest sample; the
    error is below 1e-3 of the peak), which is several times faster than np.interp
    on the large frequency grids of a reconstruction.
    """

    freqs: np.ndarray
    values: np.ndarray
    source: str = "ideal"
    _table: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grid = np.linspace(0.0, float(self.freqs[-1]), TABLE_SIZE)
        table = np.interp(grid, self.freqs, self.values, right=0.0).astype(np.float32)
        object.__setattr__(self, "_table", np.append(table, np.float32(0.0)))

    def __eq__(self, other: object) -> bool:
        """Equal when the samples and the source are (arrays compared by value)."""
        if not isinstance(other, RadialOTF):
            return NotImplemented
        return (self.source == other.source and np.array_equal(self.freqs, other.freqs)
                and np.array_equal(self.values, other.values))

    def __hash__(self) -> int:
        return hash((self.source, np.asarray(self.freqs).tobytes(), np.asarray(self.values).tobytes()))

    @property
    def support_cycles_per_um(self) -> float:
        """Largest frequency where the OTF exceeds 0.1 % of its peak."""
        above = np.nonzero(self.values > 1e-3)[0]
        return float(self.freqs[above[-1]]) if above.size else 0.0

    def __call__(self, k: np.ndarray) -> np.ndarray:
        """OTF at radial frequencies ``k`` (cycles/µm, any shape), float32."""
        scale = (TABLE_SIZE - 1) / float(self.freqs[-1])
        index = np.asarray(k, dtype=np.float32) * np.float32(scale) + np.float32(0.5)
        np.minimum(index, np.float32(TABLE_SIZE), out=index)
        return self._table[index.astype(np.int32)]


def ideal_profile(rho: np.ndarray) -> np.ndarray:
    """Ideal incoherent 2-D OTF of a circular pupil at normalised radius ρ = |f|/kc."""
    r = np.clip(np.asarray(rho, dtype=np.float64), 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(r) - r * np.sqrt(1.0 - r * r))


def ideal_otf(optics: Optics, attenuation: float | None = None, samples: int = 2048) -> RadialOTF:
    """Ideal OTF for NA and emission wavelength; cutoff kc = 2 NA / λ.

    Parameters
    ----------
    optics : Optics
        NA and emission wavelength (nm) give kc in cycles/µm.
    attenuation : float or None
        fairSIM's approximation ideal(ρ) · a^ρ (ρ = |f| / kc) with a in (0, 1] (measured OMX OTFs
        fit a = 0.25-0.46); None for the plain ideal OTF.
    samples : int
        Samples of the radial profile from 0 to kc.

    Returns
    -------
    RadialOTF
        OTF(|f|), |f| in cycles/µm, 1 at f = 0 and 0 from kc on.
    """
    kc = optics.cutoff_cycles_per_um
    rho = np.linspace(0.0, 1.0, samples)
    values = ideal_profile(rho)
    source = "ideal"
    if attenuation is not None:
        if not (0.0 < attenuation <= 1.0):
            raise SimInputError("OTF attenuation a must be in (0, 1]")
        values = values * attenuation**rho
        source = f"attenuated a={attenuation:g}"
    return RadialOTF(freqs=rho * kc, values=values.astype(np.float64), source=source)


def radial_average(image: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Radial mean of a centred 2-D array; returns (radius in units of spacing, mean)."""
    ny, nx = image.shape
    yy, xx = np.indices(image.shape)
    r = np.hypot((yy - ny // 2), (xx - nx // 2))
    ri = np.rint(r).astype(int)
    sums = np.bincount(ri.ravel(), weights=image.ravel())
    counts = np.bincount(ri.ravel())
    nmax = min(ny, nx) // 2
    return np.arange(nmax) * spacing, sums[:nmax] / np.maximum(counts[:nmax], 1)


def otf_from_psf(psf: np.ndarray, pixel_size_um: float) -> RadialOTF:
    """Radially averaged OTF of a PSF image.

    Parameters
    ----------
    psf : numpy.ndarray
        (Y, X) PSF, or (Z, Y, X): the plane with the brightest peak is used. Its border median
        is taken as the background.
    pixel_size_um : float
        Pixel size of the PSF image, µm.

    Returns
    -------
    RadialOTF
        |FFT(psf)| averaged over rings, normalised to 1 at f = 0; |f| in cycles/µm.
    """
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim == 3:  # a z-stack: use the plane with the brightest peak
        psf = psf[int(np.argmax(psf.reshape(psf.shape[0], -1).max(axis=1)))]
    if psf.ndim != 2 or min(psf.shape) < 8:
        raise SimInputError("a PSF must be a 2-D image of at least 8 × 8 pixels")
    psf = psf - np.median(np.concatenate([psf[0], psf[-1], psf[:, 0], psf[:, -1]]))
    psf = np.clip(psf, 0.0, None)
    if psf.sum() <= 0:
        raise SimInputError("the PSF image holds no signal above its border level")
    n = min(psf.shape)  # a centred square, so one frequency spacing serves both axes
    y0, x0 = (psf.shape[0] - n) // 2, (psf.shape[1] - n) // 2
    psf = psf[y0:y0 + n, x0:x0 + n]
    otf2d = np.abs(np.fft.fftshift(np.fft.fft2(psf)))
    otf2d /= otf2d[n // 2, n // 2]
    freqs, values = radial_average(otf2d, 1.0 / (n * pixel_size_um))
    return RadialOTF(freqs=freqs, values=np.clip(values, 0.0, 1.0), source="measured PSF")


def otf_from_file(path: str | Path, pixel_size_um: float) -> RadialOTF:
    """Load a measured OTF or PSF.

    * MRC with complex values and one row (e.g. 1 × 257): a radially averaged OTF
      whose sample spacing (cycles/µm) is the header's voxel size; sample 0 is f = 0.
    * A real 2-D image (TIFF or MRC): a PSF; its pixel size comes from the file's
      metadata, or ``pixel_size_um`` (the raw data's) when the file has none.

    Parameters
    ----------
    path : str or pathlib.Path
        The OTF or PSF file.
    pixel_size_um : float
        Pixel size (µm) assumed for a PSF whose file states none: the raw data's.

    Returns
    -------
    RadialOTF
        OTF(|f|), |f| in cycles/µm, normalised to 1 at f = 0.

    Raises
    ------
    SimInputError
        The file is missing, unreadable, or holds an OTF laid out as an image.
    """
    from .io import read_image_with_pixel_size  # local: io imports this module's users

    path = Path(path)
    if not path.is_file():
        raise SimInputError(f"OTF/PSF file not found: {path}")
    data, file_pixel = read_image_with_pixel_size(path)
    if np.iscomplexobj(data):
        profile = np.abs(np.asarray(data).reshape(-1, data.shape[-1])[0]).astype(np.float64)
        if profile.size < 4 or profile[0] <= 0:
            raise SimInputError(f"{path.name} does not hold a usable radial OTF")
        if not file_pixel:
            raise SimInputError(f"{path.name}: a radial OTF file must state its sample spacing")
        profile /= profile[0]
        freqs = np.arange(profile.size) * file_pixel
        return RadialOTF(freqs=freqs, values=np.clip(profile, 0.0, 1.0), source=f"measured OTF {path.name}")
    if looks_like_otf(np.asarray(data)):
        raise SimInputError(
            f"{path.name} holds an OTF (frequency samples: its largest value, about 1, is the first sample), "
            "not a PSF image, and a TIFF does not state the OTF's frequency spacing; give a PSF image, or a "
            "radially averaged OTF as MRC with the spacing in its header")
    return otf_from_psf(np.asarray(data), file_pixel or pixel_size_um)


def looks_like_otf(data: np.ndarray) -> bool:
    """Tell whether a real array is laid out as an OTF, not a PSF.

    True when the largest magnitude of its first plane is the first sample (f = 0, about 1);
    a PSF peaks inside the image.
    """
    data = np.asarray(data)
    if data.ndim < 2 or data.size == 0:
        return False
    first = np.abs(data.reshape(-1, *data.shape[-2:])[0].astype(np.float64))
    if not np.all(np.isfinite(first)):
        return False
    peak = np.unravel_index(int(np.argmax(first)), first.shape)
    return peak == (0, 0) and 0.5 <= first[0, 0] <= 2.0
