"""Pre-processing and band separation shared by estimation and reconstruction.

A plane is an array (A, P, Y, X): angles × phases × rows × columns. Bands are
ordered [0, +1, -1] (2-beam) or [0, +1, -1, +2, -2] (3-beam); the separated band
b of an angle is c_b · h ⊛ (S · exp(i 2π b k·r)) with c_0 = 1, c_{±b} = m_b / 2,
i.e. the un-normalised band (its modulation weight is kept).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import scipy.fft
import threadpoolctl
from threadpoolctl import threadpool_limits

from .errors import SimInputError
from .io import validate_plane

FFT_WORKERS = -1  # all cores for scipy.fft


class _SerialBlas:
    """Context manager limiting BLAS (OpenBLAS/MKL) to one thread while any thread is inside it.

    The pattern estimator alternates many small matrix products with FFTs; BLAS worker threads
    that spin after each product starve scipy.fft's workers (measured on 2 cores, 512² stack:
    330-480 ms → 210-240 ms per estimate). Safe when several threads enter at once (batch
    threads): the first to enter sets the limit, the last to leave restores the original.

    OpenBLAS (pthreads) has one process-wide pool, and threadpoolctl ≥ 3.8 lets only one
    "controlling" thread change it: the first thread that sets a limit, until a ``with
    threadpool_limits`` block of that thread ends; other threads' changes are silently
    ignored. The thread that sets the limit here need not be the one that restores it, so
    each change hands the claim back at once: otherwise the first thread that ever entered
    (e.g. an estimate on the main thread) would keep it and every later limit or restore
    from another thread (batch or dock workers) would do nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limiter: threadpool_limits | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._limiter = threadpool_limits(limits=1, user_api="blas")
                _release_blas_control()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._limiter is not None:
                    self._limiter.restore_original_limits()
                    _release_blas_control()
                    self._limiter = None


def _release_blas_control() -> None:
    """Give up this thread's claim on OpenBLAS's thread count (threadpoolctl ≥ 3.8; older ones have none)."""
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    release = getattr(controller, "clear_controlling_thread", None)
    if release is not None:
        release()  # only the claiming thread's own claim: a user's limit held elsewhere stays in force


serial_blas = _SerialBlas()


def band_orders(n_orders: int) -> list[int]:
    """Harmonic orders in band order: [0, 1, -1] or [0, 1, -1, 2, -2]."""
    out = [0]
    for b in range(1, n_orders + 1):
        out += [b, -b]
    return out


def default_taper_px(shape: tuple[int, int]) -> int:
    """Edge-taper width in pixels: ~1/16 of the smaller side, within 4-16 px."""
    return int(np.clip(min(shape) // 16, 4, 16))


def edge_window(n: int, taper: int) -> np.ndarray:
    """1-D window rising as sin² over ``taper`` samples at both ends (float32)."""
    w = np.ones(n, dtype=np.float32)
    if taper > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(taper) + 0.5) / taper) ** 2
        w[:taper] = ramp
        w[n - taper:] = ramp[::-1]
    return w


def periodic_smooth(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Periodic-plus-smooth decomposition (Moisan 2011) over the last two axes.

    image = periodic + smooth, where ``smooth`` is the harmonic-like image that holds all
    the jumps between opposite borders and ``periodic`` has none, so its FFT shows no
    border cross; inside the field ``periodic`` keeps every detail (``smooth`` is slowly
    varying). ``smooth`` has zero mean. Returns (periodic, smooth), float32, same shape.
    """
    u = np.asarray(image, dtype=np.float32)
    ny, nx = u.shape[-2:]
    v = np.zeros_like(u)
    jump_rows = u[..., -1, :] - u[..., 0, :]
    jump_cols = u[..., :, -1] - u[..., :, 0]
    v[..., 0, :] += jump_rows
    v[..., -1, :] -= jump_rows
    v[..., :, 0] += jump_cols
    v[..., :, -1] -= jump_cols
    cy = np.cos(2 * np.pi * np.arange(ny) / ny)[:, None]
    cx = np.cos(2 * np.pi * np.arange(nx // 2 + 1) / nx)[None, :]
    denom = 2.0 * cy + 2.0 * cx - 4.0
    denom[0, 0] = 1.0
    spec = scipy.fft.rfft2(v, workers=FFT_WORKERS)
    spec /= denom.astype(np.float32)
    spec[..., 0, 0] = 0.0
    smooth = scipy.fft.irfft2(spec, s=(ny, nx), workers=FFT_WORKERS).astype(np.float32)
    return u - smooth, smooth


def preprocess(
    plane: np.ndarray,
    background: float = 0.0,
    taper_px: int | None = None,
    equalize: bool = True,
) -> np.ndarray:
    """Background subtraction, intensity equalisation and edge taper of a plane.

    Every frame is scaled to the mean of all frames (bleaching, laser drift), and
    its border fades over ``taper_px`` pixels towards that mean, so the frames are
    periodic for the FFT without a dark frame.

    Parameters
    ----------
    plane : numpy.ndarray
        (A, P, Y, X) raw counts of one plane; not modified.
    background : float
        Camera offset to subtract, counts.
    taper_px : int or None
        Width of the edge taper, px (None: :func:`default_taper_px` of the frame shape).
    equalize : bool
        Scale every frame to the mean of all frames.

    Returns
    -------
    numpy.ndarray
        (A, P, Y, X) float32, background-subtracted, equalised and tapered.
    """
    validate_plane(plane)
    out = np.array(plane, dtype=np.float32)  # a copy: the caller's array is never modified
    out -= np.float32(background)
    means = out.mean(axis=(-2, -1), keepdims=True, dtype=np.float64).astype(np.float32)
    mean_all = np.float32(means.mean())
    if not np.all(means > 0):  # not intensities (or a wrong offset), whether or not they are equalised
        n_bad = int(np.count_nonzero(~(means > 0)))
        raise SimInputError(
            f"after subtracting the camera offset {float(background):g}, {n_bad} of {means.size} frames have a "
            "mean of zero or below, so they are not intensities; check the offset (--background) "
            "and that the data are intensities")
    if equalize:
        out *= mean_all / means
        means = np.full_like(means, mean_all)
    taper = default_taper_px(out.shape[-2:]) if taper_px is None else int(taper_px)
    if taper > 0:  # out = means + (out - means) · window, only the border rows/cols change
        ny, nx = out.shape[-2:]
        win = edge_window(ny, taper)[:, None] * edge_window(nx, taper)[None, :]
        for rows, cols in ((slice(0, taper), slice(None)), (slice(ny - taper, ny), slice(None)),
                           (slice(taper, ny - taper), slice(0, taper)),
                           (slice(taper, ny - taper), slice(nx - taper, nx))):
            border = out[..., rows, cols]
            border -= means
            border *= win[rows, cols]
            border += means
    return out


def separation_matrix(phases: tuple[float, ...] | np.ndarray, n_orders: int) -> np.ndarray:
    """Unmixing matrix pinv(E), E[n, b] = exp(i b φ_n).

    Parameters
    ----------
    phases : sequence of float or numpy.ndarray
        (P,) phase of every frame, radians.
    n_orders : int
        1 (bands 0, ±1: 2-beam) or 2 (also ±2: 3-beam).

    Returns
    -------
    numpy.ndarray
        (n_bands, P) complex128, bands in :func:`band_orders` order.
    """
    phases = np.asarray(phases, dtype=np.float64)
    orders = np.array(band_orders(n_orders))
    mixing = np.exp(1j * np.outer(phases, orders))
    return np.linalg.pinv(mixing)


def separate_bands(frames: np.ndarray, phases: tuple[float, ...] | np.ndarray, n_orders: int) -> np.ndarray:
    """Separate the frames of one angle into their real-space bands.

    Parameters
    ----------
    frames : numpy.ndarray
        (P, Y, X) frames of one angle (counts, preprocessed).
    phases : sequence of float or numpy.ndarray
        (P,) phase of every frame, radians.
    n_orders : int
        1 (2-beam) or 2 (3-beam).

    Returns
    -------
    numpy.ndarray
        (n_bands, Y, X) complex64, bands in :func:`band_orders` order.
    """
    unmix = separation_matrix(phases, n_orders).astype(np.complex64)
    p, ny, nx = frames.shape
    return (unmix @ frames.reshape(p, -1).astype(np.complex64)).reshape(-1, ny, nx)


def separate_positive_bands(frames: np.ndarray, phases: tuple[float, ...] | np.ndarray,
                            n_orders: int) -> tuple[np.ndarray, np.ndarray]:
    """Band 0 (Y, X) float32 and bands +1..+B (B, Y, X) complex64 from frames (P, Y, X).

    Bands -b are the complex conjugates of +b for real frames, so they are not
    computed; one real matrix product (BLAS) does all the work.
    """
    unmix = separation_matrix(phases, n_orders)
    rows = [unmix[0].real] + [part for b in range(1, n_orders + 1)
                               for part in (unmix[2 * b - 1].real, unmix[2 * b - 1].imag)]
    p, ny, nx = frames.shape
    mixed = (np.asarray(rows, dtype=np.float32) @ frames.reshape(p, -1)).reshape(-1, ny, nx)
    positive = np.empty((n_orders, ny, nx), dtype=np.complex64)
    positive.real = mixed[1::2]
    positive.imag = mixed[2::2]
    return mixed[0], positive


def frequency_axes(shape: tuple[int, int], pixel_size_um: float) -> tuple[np.ndarray, np.ndarray]:
    """FFT-ordered frequencies (fy, fx) in cycles/µm of a (Y, X) grid."""
    ny, nx = shape
    return (scipy.fft.fftfreq(ny, d=pixel_size_um).astype(np.float32),
            scipy.fft.fftfreq(nx, d=pixel_size_um).astype(np.float32))


def phase_ramp(shape: tuple[int, int], shift_px: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Separable factors of exp(-i 2π (sy row / Y + sx col / X)) as (column, row) vectors.

    Multiplying a real-space image by ``ry[:, None] * rx[None, :]`` moves its
    spectrum by -shift_px Fourier pixels (sub-pixel shifts allowed).
    """
    ny, nx = shape
    ry = np.exp(-2j * np.pi * shift_px[0] * np.arange(ny) / ny).astype(np.complex64)
    rx = np.exp(-2j * np.pi * shift_px[1] * np.arange(nx) / nx).astype(np.complex64)
    return ry, rx


def fft2(a: np.ndarray) -> np.ndarray:
    """Return the 2-D FFT over the last two axes of ``a`` (..., Y, X), on FFT_WORKERS threads."""
    """Return the 2-D FFT over the last two axes of ``a`` (..., Y, X), on FFT_WORKERS threads."""
    return scipy.fft.fft2(a, workers=FFT_WORKERS)


def ifft2(a: np.ndarray) -> np.ndarray:
    """Return the inverse 2-D FFT over the last two axes of ``a`` (..., Y, X), on FFT_WORKERS threads."""
    """Return the inverse 2-D FFT over the last two axes of ``a`` (..., Y, X), on FFT_WORKERS threads."""
    return scipy.fft.ifft2(a, workers=FFT_WORKERS)
