"""The PINN's physics in torch.

Rendered patterns, transfer functions, the SIM forward model, SSIM, total variation, the
SIM passband and its apodization.

Grids: the object lives on a fine grid with ``factor`` × the camera sampling (2 for our
reconstructions, 4 for the paper's demo sets); fine pixel (s·i, s·j) sits on raw pixel (i, j),
as in :mod:`napari_sim_ml.engine.simulate`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..otf import RadialOTF, ideal_profile
from ..parameters import PatternParameters


def render_patterns(params: PatternParameters, shape: tuple[int, int], fine_px_um: float,
                    origin_px: float, device: torch.device) -> torch.Tensor:
    """Illumination of every frame (F, H, W) float32, angle-major; pixel (origin, origin) is r = 0."""
    y = (torch.arange(shape[0], dtype=torch.float64, device=device) - origin_px) * fine_px_um
    x = (torch.arange(shape[1], dtype=torch.float64, device=device) - origin_px) * fine_px_um
    out = []
    for a in params.angles:
        kx, ky = a.k_cycles_per_um
        base = 2 * math.pi * (ky * y[:, None] + kx * x[None, :])
        for phi in a.phases_rad:
            arg = base + phi
            frame = torch.ones(shape, dtype=torch.float64, device=device)
            for b, m in enumerate(a.modulation, start=1):
                frame = frame + m * torch.cos(b * arg)
            out.append(frame.float())
    return torch.stack(out)


def transfer_function(otf: RadialOTF, shape: tuple[int, int], fine_px_um: float, camera_px_um: float | None,
                      device: torch.device) -> torch.Tensor:
    """OTF(|f|) [× camera-pixel sinc] on the rfft grid of ``shape`` (fine pixels), float32."""
    fy = np.fft.fftfreq(shape[0], fine_px_um)[:, None]
    fx = np.fft.rfftfreq(shape[1], fine_px_um)[None, :]
    t = otf(np.hypot(fy, fx)).astype(np.float64)
    if camera_px_um is not None:
        t = t * np.sinc(fy * camera_px_um) * np.sinc(fx * camera_px_um)
    return torch.from_numpy(t.astype(np.float32)).to(device)


def psf_transfer(psf: np.ndarray, shape: tuple[int, int], fine_px_um: float, camera_px_um: float | None,
                 device: torch.device) -> torch.Tensor:
    """Return the rfft transfer function of a PSF image on the fine grid, complex64.

    The PSF is centred, normalised to sum 1 and zero-padded to ``shape`` [× camera-pixel sinc].
    """
    psf = np.asarray(psf, dtype=np.float64)
    psf = psf / psf.sum()
    full = np.zeros(shape)
    ph, pw = min(psf.shape[0], shape[0]), min(psf.shape[1], shape[1])
    cy, cx = psf.shape[0] // 2, psf.shape[1] // 2
    psf = psf[cy - ph // 2: cy - ph // 2 + ph, cx - pw // 2: cx - pw // 2 + pw]
    full[:ph, :pw] = psf
    full = np.roll(full, (-(ph // 2), -(pw // 2)), axis=(0, 1))
    t = np.fft.rfft2(full)
    if camera_px_um is not None:
        fy = np.fft.fftfreq(shape[0], fine_px_um)[:, None]
        fx = np.fft.rfftfreq(shape[1], fine_px_um)[None, :]
        t = t * np.sinc(fy * camera_px_um) * np.sinc(fx * camera_px_um)
    return torch.from_numpy(t.astype(np.complex64)).to(device)


class ForwardModel:
    """Raw frames (F, Y, X) predicted from an object on the fine grid (H, W).

    obj × pattern_f, blurred by ``transfer`` (FFT, periodic on the fine grid, which carries a
    margin of ``margin`` raw pixels around the field), sampled every ``factor``-th pixel and
    cropped to the field; ``sample=False`` keeps the fine grid (the published recipe).
    When the transfer function vanishes beyond the camera's Nyquist frequency, sampling is
    done by cropping the spectrum and a small inverse FFT (exact, ``factor``² fewer pixels).
    """

    def __init__(self, patterns: torch.Tensor | None, transfer: torch.Tensor, factor: int, margin: int,
                 field: tuple[int, int], sample: bool = True):
        self.patterns, self.transfer = patterns, transfer
        self.factor, self.margin, self.field, self.sample = factor, margin, field, sample
        h, w = patterns.shape[-2:] if patterns is not None else (transfer.shape[-2], 2 * (transfer.shape[-1] - 1))
        self.small = None
        if sample and factor > 1 and h % (2 * factor) == 0 and w % (2 * factor) == 0:
            hr, wr = h // factor, w // factor
            rows = torch.cat([torch.arange(hr // 2), torch.arange(h - hr // 2, h)]).to(transfer.device)
            outside = transfer.abs().clone()
            outside[rows, : wr // 2] = 0
            if float(outside.max()) < 1e-6 * float(transfer.abs().max()):
                self.small = (rows, hr, wr)
                self.transfer_small = transfer[rows, : wr // 2 + 1] / factor**2

    def __call__(self, obj: torch.Tensor, patterns: torch.Tensor | None = None,
                 scale: tuple[torch.Tensor, torch.Tensor] | None = None,
                 modulated: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the raw frames (F, Y, X) of ``obj`` (H, W).

        patterns: (F, H, W) instead of the fixed ones; scale: (full, small) factors on the
        transfer function (e.g. a fitted OTF attenuation) on the full and the small rfft grid;
        modulated: the object seen by the modulated part of the patterns (pattern − 1), when it
        differs from ``obj`` (seen by the constant part).
        """
        h, w = obj.shape[-2:]
        m, (ny, nx), s = self.margin, self.field, self.factor
        pats = self.patterns if patterns is None else patterns
        assert pats is not None, "the forward model was made without patterns; pass them"
        lit = obj * pats if modulated is None else obj + modulated * (pats - 1.0)
        spec = torch.fft.rfft2(lit)
        if self.small is not None:
            rows, hr, wr = self.small
            t = self.transfer_small if scale is None else self.transfer_small * scale[1]
            low = torch.fft.irfft2(spec[:, rows, : wr // 2 + 1] * t, s=(hr, wr))
            return low[:, m:m + ny, m:m + nx]
        blurred = torch.fft.irfft2(spec * (self.transfer if scale is None else self.transfer * scale[0]), s=(h, w))
        if not self.sample:
            return blurred[:, s * m: s * (m + ny), s * m: s * (m + nx)]
        return blurred[:, ::s, ::s][:, m:m + ny, m:m + nx]


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian window of ``size`` taps (SSIM's, σ in pixels)."""
    t = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-t * t / (2 * sigma * sigma))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM of images (F, H, W) in [0, 1]: Gaussian window, 'valid' filtering (as TF's)."""
    n = window.numel()
    wy = window.view(1, 1, n, 1)
    wx = window.view(1, 1, 1, n)

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(z, wy), wx)

    x, y = a[:, None], b[:, None]
    stack = blur(torch.cat([x, y, x * x, y * y, x * y], dim=0))
    f = a.shape[0]
    mx, my, sxx, syy, sxy = stack[:f], stack[f:2 * f], stack[2 * f:3 * f], stack[3 * f:4 * f], stack[4 * f:]
    vx, vy, cxy = sxx - mx * mx, syy - my * my, sxy - mx * my
    c1, c2 = k1 * k1, k2 * k2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()


def total_variation(obj: torch.Tensor, eps: float) -> torch.Tensor:
    """Smoothed isotropic TV, mean over pixels: sqrt(dx² + dy² + ε²) − ε."""
    dx = obj[..., :-1, 1:] - obj[..., :-1, :-1]
    dy = obj[..., 1:, :-1] - obj[..., :-1, :-1]
    return (torch.sqrt(dx * dx + dy * dy + eps * eps) - eps).mean()


def fit_transfer(otf: RadialOTF, psf: np.ndarray | None, shape: tuple[int, int], fine_px: float,
                 camera_px: float | None, device: torch.device) -> torch.Tensor:
    """Return the forward model's transfer function: of the PSF image when one is given, else of ``otf``."""
    if psf is not None:
        return psf_transfer(psf, shape, fine_px, camera_px, device)
    return transfer_function(otf, shape, fine_px, camera_px, device)


def sim_support(otf: RadialOTF, params: PatternParameters | None, fine_px: float, pats: torch.Tensor) -> float:
    """Radius of the SIM passband, kc + highest pattern frequency (cycles/µm).

    From the parameters when given, else from the strongest frequencies of the pattern
    images ``pats`` (F, H, W) on the fine grid (``fine_px`` µm).
    """
    kc = otf.support_cycles_per_um
    if params is not None:
        return kc + params.n_orders * max(a.k_magnitude for a in params.angles)
    spec = torch.fft.rfft2(pats - pats.mean(dim=(-2, -1), keepdim=True)).abs().amax(0).cpu().numpy()
    fy = np.fft.fftfreq(pats.shape[-2], fine_px)[:, None]
    fx = np.fft.rfftfreq(pats.shape[-1], fine_px)[None, :]
    radius = np.hypot(fy, fx)
    strong = spec > 1e-2 * spec.max()
    return kc + float(radius[strong].max()) if strong.any() else 2 * kc


def apodizer(cutoff: float, shape: tuple[int, int], fine_px: float) -> Callable[[np.ndarray], np.ndarray]:
    """Return a function that filters fine-grid images by an ideal OTF profile.

    The profile has radius ``cutoff`` (cycles/µm) on the grid ``shape``: the estimate beyond
    the SIM passband is not determined by the data (as the Wiener's apodization).
    """
    fy = np.fft.fftfreq(shape[0], fine_px)[:, None]
    fx = np.fft.rfftfreq(shape[1], fine_px)[None, :]
    transfer = ideal_profile(np.hypot(fy, fx) / cutoff)
    return lambda img: np.fft.irfft2(np.fft.rfft2(img) * transfer, s=shape)


__all__ = ["render_patterns", "transfer_function", "psf_transfer", "ForwardModel", "gaussian_window", "ssim",
           "total_variation", "fit_transfer", "sim_support", "apodizer"]
