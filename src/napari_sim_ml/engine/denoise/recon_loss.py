"""A loss measured where it matters: the error the Wiener reconstruction makes of a frame error.

The Wiener filter is linear, so an error ``e`` of the raw frames becomes an error of the
reconstruction whose squared norm is a weighted sum over the separated bands: for angle a and
order b, the band error ``S_ab(k) = Σ_n M_bn · FFT(e_an)(k)`` (M: the band-separation matrix of
the trained phases; its modulus does not depend on the absolute phase, which training
randomises) lands at ``K = k + b·p_a`` on the reconstruction grid with the weight

    W_ab(k) = [ apo(K) · att(k) · c_b · OTF(k) / (A · den(K)) ]²,
    den(K) = (1/A) Σ_a' Σ_b' att(K − b'p_a') · c_b'² · OTF(|K − b'p_a'|)² + w²,

with c_0 = 1 and c_b = m_b / 2, ``att`` the band-centre attenuation and ``apo`` the apodization
of the default :class:`..parameters.FilterSettings` (isotropic approximation of the support:
kc + the top order's |k|), and w a fixed Wiener parameter. Cross terms between angles are left
out (their noise is independent). Errors beyond the raw OTF support carry no weight at all,
so the loss is mixed with a small share of the plain scaled MSE (:data:`MSE_SHARE`) to keep the
denoised frames clean there too. With rotation/flip augmentation a patch's pattern may be any of
the 8 dihedral images of the trained one, so the weights are averaged over them.

Both terms are in units of the camera noise variance at the mean signal: an untrained
(identity) network scores ≈ 1, as with the plain MSE. numpy builds the weights, torch
(imported inside :func:`recon_loss`) evaluates the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..bands import band_orders, separation_matrix
from ..otf import RadialOTF, ideal_otf, ideal_profile
from ..parameters import FilterSettings, Optics, PatternParameters

RECON_WIENER = 0.05  # w of the reconstruction the loss measures through
MSE_SHARE = 0.1  # share of the plain scaled MSE in the loss


@dataclass(frozen=True)
class ReconWeights:
    """Weights of :func:`recon_loss` for ``patch``² patches.

    mixing: (A, B, P) complex64 band-separation matrices; weight: (A, B, patch, patch) float32
    (FFT order, ``norm="ortho"``); noise_norm: the weighted loss of white unit-variance noise.
    """

    mixing: np.ndarray
    weight: np.ndarray
    noise_norm: float


def _dihedral_k(params: PatternParameters, t: int) -> PatternParameters:
    """Return the pattern as seen in frames rotated by t·90° (t mod 4) and, for t ≥ 4, mirrored."""
    angles = []
    for a in params.angles:
        kx, ky = a.k_cycles_per_um
        for _ in range(t % 4):
            kx, ky = -ky, kx
        if t >= 4:
            kx = -kx
        angles.append(replace(a, k_cycles_per_um=(kx, ky)))
    return PatternParameters(tuple(angles))


def recon_weights(optics: Optics, params: PatternParameters, patch: int, wiener: float = RECON_WIENER,
                  otf: RadialOTF | None = None, augmented: bool = False) -> ReconWeights:
    """Build the per-band frequency weights of the reconstruction error for ``patch``² px patches.

    augmented: the patches are rotated and flipped (training augmentation), so the pattern of a
    patch may be any of the 8 dihedral images of ``params``: the weights are averaged over them.
    """
    if augmented:
        sets = [recon_weights(optics, _dihedral_k(params, t), patch, wiener, otf) for t in range(8)]
        weight = np.mean([w.weight for w in sets], axis=0).astype(np.float32)
        noise = float(np.sum(weight.mean(axis=(-2, -1)) * np.sum(np.abs(sets[0].mixing) ** 2, axis=-1)))
        return ReconWeights(sets[0].mixing, weight, noise)
    otf = otf or ideal_otf(optics)
    s = FilterSettings()
    f = np.fft.fftfreq(patch, optics.pixel_size_um)
    ky, kx = np.meshgrid(f, f, indexing="ij")
    orders = band_orders(params.n_orders)
    sigma = s.attenuation_fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))

    def att(qy: np.ndarray, qx: np.ndarray) -> np.ndarray:
        return 1.0 - s.attenuation * np.exp(-(qy**2 + qx**2) / (2 * sigma**2))

    def c(a: int, b: int) -> float:
        return 1.0 if b == 0 else float(params.angles[a].modulation[abs(b) - 1]) / 2.0

    n_a = params.n_angles
    shifts = [[(b * p.k_cycles_per_um[1], b * p.k_cycles_per_um[0]) for b in orders] for p in params.angles]
    edge = optics.cutoff_cycles_per_um + params.n_orders * max(p.k_magnitude for p in params.angles)

    def den(qy: np.ndarray, qx: np.ndarray) -> np.ndarray:
        total = np.zeros_like(qy)
        for a in range(n_a):
            for j, b in enumerate(orders):
                if b == 0 and a:  # band 0 is averaged over the angles: counted once
                    continue
                sy, sx = shifts[a][j]
                dy, dx = qy - sy, qx - sx
                h = otf(np.hypot(dy, dx)).astype(np.float64)
                total += att(dy, dx) * (c(a, b) * h) ** 2 * (n_a if b == 0 else 1)
        return total / n_a + wiener**2

    h0 = otf(np.hypot(ky, kx)).astype(np.float64) * att(ky, kx)
    weight = np.zeros((n_a, len(orders), patch, patch))
    mixing = np.zeros((n_a, len(orders), params.n_phases), np.complex128)
    for a in range(n_a):
        mixing[a] = separation_matrix(params.angles[a].phases_rad, params.n_orders)
        for j, b in enumerate(orders):
            sy, sx = shifts[a][j]
            qy, qx = ky + sy, kx + sx
            apo = ideal_profile(np.hypot(qy, qx) / edge) ** s.apo_bend
            weight[a, j] = (apo * c(a, b) * h0 / (n_a * den(qy, qx))) ** 2
    noise = float(np.sum(weight.mean(axis=(-2, -1)) * np.sum(np.abs(mixing) ** 2, axis=-1)))
    return ReconWeights(mixing.astype(np.complex64), weight.astype(np.float32), noise)


def recon_loss(pred, target, rw: ReconWeights, noise_var, tensors: dict | None = None):
    """Scaled reconstruction-domain loss of (B, F, Y, X) frames (counts); see the module docstring.

    noise_var: the camera noise variance at the mean signal (counts²), the unit of the loss: one
        number, or a (B,) tensor (each example in units of its own noise).
    tensors: a cache dict for the weights as torch tensors on the device of ``pred``.
    """
    import torch

    cache = tensors if tensors is not None else {}
    if cache.get("device") != pred.device:
        cache["mixing"] = torch.from_numpy(rw.mixing).to(pred.device)
        cache["weight"] = torch.from_numpy(rw.weight).to(pred.device)
        cache["device"] = pred.device
    n_a, _, n_p = rw.mixing.shape
    err = (pred - target).reshape(pred.shape[0], n_a, n_p, *pred.shape[-2:])
    spec = torch.fft.fft2(err, norm="ortho")
    bands = torch.einsum("abn,zanyx->zabyx", cache["mixing"], spec)
    if not isinstance(noise_var, torch.Tensor):
        noise_var = torch.full((pred.shape[0],), float(noise_var), device=pred.device)
    weighted = torch.mean(torch.sum(cache["weight"] * (bands.real**2 + bands.imag**2), dim=(1, 2)), dim=(-2, -1))
    recon = torch.mean(weighted / noise_var) / rw.noise_norm
    mse = torch.mean(torch.mean((pred - target) ** 2, dim=(1, 2, 3)) / noise_var)
    return (1.0 - MSE_SHARE) * recon + MSE_SHARE * mse


__all__ = ["RECON_WIENER", "MSE_SHARE", "ReconWeights", "recon_weights", "recon_loss"]
