"""The published recipe of the PINN ("faithful" mode; Burns & Liu, Opt. Express 31:8714, 2023).

Imported only inside :func:`napari_sim_ml.engine.pinn.fit.pinn_steps` (torch stays out of
the classical engine).
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SimInputError
from .net import FAITHFUL_NET, Adam, UNet, run_net, seeded_generator
from .physics import ForwardModel, fit_transfer, gaussian_window, render_patterns, ssim
from .types import FitContext, PinnProgress, PinnResult, nan_error, progress


def faithful(ctx: FitContext) -> Generator[PinnProgress, None, PinnResult]:
    """Fit by the published recipe (generator): yields progress, returns the result.

    Raw frames offset-subtracted, clipped at 0 and divided by their global maximum, upsampled
    (bicubic) as input and target; U-Net 32-64-128-256; simulated frames on the fine grid
    (linear convolution by zero padding) min–max normalised over all frames; loss 1 − SSIM;
    Adam 1e-3 decayed ×0.9 every 50 steps; the last weights.
    """
    s, dev, f, optics = ctx.settings, ctx.device, ctx.factor, ctx.optics
    n_a, n_p, ny, nx = ctx.plane.shape
    nf = n_a * n_p
    raw = ctx.plane.reshape(nf, ny, nx)
    raw = np.clip(raw - ctx.background, 0.0, None)  # as published: offset off, negatives to 0, / global max
    if not raw.max() > 0:
        raise SimInputError(f"every pixel is at or below the camera offset ({ctx.background:g} counts); "
                            "lower the background")
    norm = torch.from_numpy((raw / max(float(raw.max()), 1e-12)).astype(np.float32))
    target = F.interpolate(norm[None], scale_factor=f, mode="bicubic", align_corners=False)[0].to(dev)
    fine_px = optics.pixel_size_um / f
    if ctx.patterns is None:
        assert ctx.params is not None  # checked by pinn_steps
        pats = render_patterns(ctx.params, (f * ny, f * nx), fine_px, 0.0, dev)
    else:
        pats = torch.from_numpy(ctx.patterns).to(dev)
    q = f * (int(math.ceil(3.0 / (ctx.otf.support_cycles_per_um * optics.pixel_size_um))) + 1)
    pats = F.pad(pats, (q, q, q, q))  # zero padding: a linear ('SAME') convolution, as published
    shape = (f * ny + 2 * q, f * nx + 2 * q)
    fm = ForwardModel(pats, fit_transfer(ctx.otf, ctx.psf, shape, fine_px, None, dev), f, q // f, (ny, nx),
                      sample=False)
    net = UNet(nf, **FAITHFUL_NET, shuffle=1, generator=seeded_generator(s.seed)).to(dev)
    opt = Adam([{"params": net.parameters()}], lr=s.lr)
    bf16 = bool(s.bf16) and dev.type == "cpu"
    window = gaussian_window(device=dev)
    losses: list[float] = []
    last: list[torch.Tensor] = []

    def simulate(o: torch.Tensor) -> torch.Tensor:
        sim = fm(F.pad(o, (q, q, q, q)))
        return (sim - sim.min()) / (sim.max() - sim.min() + 1e-12)

    for step in range(1, s.max_steps + 1):
        o = torch.clamp(run_net(net, target, 8, bf16), 0.0, 1.0)
        loss = 1.0 - ssim(simulate(o), target, window)
        if not torch.isfinite(loss):
            raise nan_error(step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:  # staircase decay ×0.9 every 50 steps
            opt.scale_lr(0.9)
        last[:] = [o.detach()]
        losses.append(float(loss.detach()))
        yield progress(step, s.max_steps, losses[-1], s.preview_every, lambda: last[0].cpu().numpy())
    with torch.no_grad():
        o = torch.clamp(run_net(net, target, 8, bf16), 0.0, 1.0)
        low = F.avg_pool2d(simulate(o)[None], f)[0]
        diff = (low - norm.to(dev)).cpu().numpy()
    spread = 1.4826 * np.median(np.abs(diff - np.median(diff))) or 1.0
    residual = np.sqrt(((diff / spread) ** 2).mean(0)).astype(np.float32)
    return PinnResult(image=o.cpu().numpy().astype(np.float32), sigma=None, residual=residual, losses=losses,
                      iterations=s.max_steps, seconds=0.0, device=str(dev), stopped_early=False)


__all__ = ["faithful"]
