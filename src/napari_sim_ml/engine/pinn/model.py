"""The PINN fits: the noise-aware mode (ours) and the faithful mode (the published recipe).

Each fit is a generator that yields progress and returns the result tuple; imported only by
:mod:`napari_sim_ml.engine.pinn` inside its functions, so that the classical engine never
imports torch. The network is in :mod:`.pinn_net`, the physics in :mod:`.pinn_physics`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from ..errors import SimInputError
from ..otf import RadialOTF
from ..parameters import FilterSettings, Optics, PatternParameters
from .net import FAITHFUL_NET, SLIM_NET, Adam, UNet, native_bf16, run_net
from .physics import (
    ForwardModel,
    gaussian_window,
    psf_transfer,
    render_patterns,
    ssim,
    total_variation,
    transfer_function,
)

SOFTPLUS_BETA = 20.0  # sharpness of the positivity (object units: robust data scale = 1)
EMA_DECAY = 0.9
SIGMA_SMOOTH_PX = 2.0  # Gaussian smoothing of the bootstrap variance (fine pixels): more degrees of freedom


@dataclass
class Context:
    """Inputs of one fit (see :func:`napari_sim_ml.engine.pinn.pinn_steps`)."""

    plane: np.ndarray
    optics: Optics
    params: PatternParameters | None
    settings: object
    otf: RadialOTF
    background: float
    patterns: np.ndarray | None
    psf: np.ndarray | None
    factor: int
    device: torch.device
    store: dict = field(default_factory=dict)

    def release(self) -> None:
        self.store.clear()
        self.patterns = None


def _progress(step: int, total: int, loss: float, every: int, image) -> object:
    from .fit import PinnProgress

    preview = None
    if every and step % every == 0 and image is not None:
        preview = image().astype(np.float32, copy=True)
    return PinnProgress(step=step, total=total, loss=float(loss), preview=preview)


def _nan(step: int) -> SimInputError:
    return SimInputError(f"the PINN fit failed: the loss became NaN at step {step}; check the background "
                         "(camera offset), the pattern parameters and the optics, or lower the learning rate")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def noise_model_for(y: np.ndarray, ctx: Context):
    """The camera noise model: given values where the user gave them, else the photon-transfer fit."""
    from .noise import NoiseModel, estimate_noise

    s = ctx.settings
    if s.camera_gain is not None and s.read_noise is not None and s.camera_offset is not None:
        var0 = s.read_noise ** 2 - s.camera_gain * (s.camera_offset - ctx.background)
        return NoiseModel(gain=float(s.camera_gain), var0=float(var0))
    fitted = estimate_noise(y, ctx.optics.pixel_size_um, ctx.otf.support_cycles_per_um, gain=s.camera_gain)
    if s.read_noise is not None and s.camera_offset is not None:
        var0 = s.read_noise ** 2 - fitted.gain * (s.camera_offset - ctx.background)
        return NoiseModel(gain=fitted.gain, var0=float(var0), reliable=fitted.reliable)
    return fitted


def _pad_field(img: np.ndarray, factor: int, margin: int, shape: tuple[int, int]) -> np.ndarray:
    t = factor * margin
    return np.pad(img, ((t, shape[0] - img.shape[0] - t), (t, shape[1] - img.shape[1] - t)), mode="reflect")


def _transfer(ctx: Context, shape: tuple[int, int], fine_px: float, camera_px: float | None) -> torch.Tensor:
    if ctx.psf is not None:
        return psf_transfer(ctx.psf, shape, fine_px, camera_px, ctx.device)
    return transfer_function(ctx.otf, shape, fine_px, camera_px, ctx.device)


def sim_support(ctx: Context, fine_px: float, pats: torch.Tensor) -> float:
    """Radius of the SIM passband, kc + highest pattern frequency (cycles/µm)."""
    kc = ctx.otf.support_cycles_per_um
    if ctx.params is not None and ctx.patterns is None:
        return kc + ctx.params.n_orders * max(a.k_magnitude for a in ctx.params.angles)
    spec = torch.fft.rfft2(pats - pats.mean(dim=(-2, -1), keepdim=True)).abs().amax(0).cpu().numpy()
    fy = np.fft.fftfreq(pats.shape[-2], fine_px)[:, None]
    fx = np.fft.rfftfreq(pats.shape[-1], fine_px)[None, :]
    radius = np.hypot(fy, fx)
    strong = spec > 1e-2 * spec.max()
    return kc + float(radius[strong].max()) if strong.any() else 2 * kc


def apodizer(cutoff: float, shape: tuple[int, int], fine_px: float):
    """A function that filters fine-grid images by the ideal OTF profile of radius ``cutoff``:
    the estimate beyond the SIM passband is not determined by the data (as the Wiener's apodization).
    """
    from ..otf import ideal_profile

    fy = np.fft.fftfreq(shape[0], fine_px)[:, None]
    fx = np.fft.rfftfreq(shape[1], fine_px)[None, :]
    transfer = ideal_profile(np.hypot(fy, fx) / cutoff)
    return lambda img: np.fft.irfft2(np.fft.rfft2(img) * transfer, s=shape)


def noise_aware(ctx: Context):
    """Noise-aware fit (generator): yields progress, returns the result tuple."""
    from .fit import SIGMA_CALIBRATION
    from .noise import robust_scale
    from .refine import Nuisance, PatternModel, imprint_notch, periodic_border, power_law_prior
    from ..wiener import prepare_reconstruction, wiener_filter

    s, dev, f, optics = ctx.settings, ctx.device, ctx.factor, ctx.optics
    n_a, n_p, ny, nx = ctx.plane.shape
    nf = n_a * n_p
    y_np = (ctx.plane - ctx.background).reshape(nf, ny, nx)
    noise = noise_model_for(y_np, ctx)
    scale = robust_scale(y_np)
    depth_mult = 2 ** (len(SLIM_NET["widths"]) - 1)
    known = ctx.patterns is None  # pattern parameters (not pattern images) are given
    if known:
        margin = s.margin_px
        raw_h, raw_w = _ceil_to(ny + 2 * margin, depth_mult), _ceil_to(nx + 2 * margin, depth_mult)
    else:
        margin, raw_h, raw_w = 0, ny, nx
    shape = (f * raw_h, f * raw_w)
    fine_px, px = optics.pixel_size_um / f, optics.pixel_size_um
    refine = known and s.refine
    pmodel = None
    if known:
        pmodel = PatternModel(ctx.params, shape, fine_px, f * margin, (ny * px, nx * px), dev,
                              fit_phases=refine, fit_modulation=refine, fit_k=refine and s.fit_k)
        with torch.no_grad():
            pats = pmodel()
    else:
        pats = torch.from_numpy(ctx.patterns).to(dev)
    fm = ForwardModel(pats, _transfer(ctx, shape, fine_px, px), f, margin, (ny, nx))
    fit_otf = refine and (s.fit_otf if s.fit_otf is not None else (ctx.psf is None and ctx.otf.source == "ideal"))
    rho = None
    if fit_otf:
        fy = np.fft.fftfreq(shape[0], fine_px)[:, None]
        fx = np.fft.rfftfreq(shape[1], fine_px)[None, :]
        full = torch.from_numpy(np.clip(np.hypot(fy, fx) / ctx.otf.support_cycles_per_um, 0, 1)
                                .astype(np.float32)).to(dev)
        rho = (full, full[fm.small[0], : fm.small[2] // 2 + 1] if fm.small is not None else full)
    # warm start: the Wiener reconstruction (or the upsampled widefield without parameters)
    if known:
        prepared = prepare_reconstruction(ctx.plane, optics, ctx.params, ctx.otf, ctx.background)
        wien, wide = wiener_filter(prepared, FilterSettings(wiener=s.start_wiener)), prepared.widefield
        del prepared
    else:
        mean = torch.from_numpy(y_np.mean(axis=0).astype(np.float32))[None, None]
        wide = F.interpolate(mean, scale_factor=f, mode="bicubic", align_corners=False)[0, 0].numpy()
        wien = wide
    wien_p, wide_p = (_pad_field(np.asarray(a, np.float64), f, margin, shape) for a in (wien, wide))
    start = np.clip(wien_p, 0.0, None) / robust_scale(np.clip(wien_p, 0, None))
    x = np.stack([wien_p / robust_scale(np.abs(wien_p)), wide_p / robust_scale(np.abs(wide_p))])
    x = F.pixel_unshuffle(torch.from_numpy(x.astype(np.float32))[None], f)[0].to(dev)
    y = torch.from_numpy(y_np.astype(np.float32)).to(dev)
    with torch.no_grad():  # intensity and background of the start so that A·fm(start) + b ≈ y
        pred = fm(torch.from_numpy(start.astype(np.float32)).to(dev)).double().cpu().numpy().ravel()
    lsq = np.linalg.lstsq(np.stack([pred, np.ones_like(pred)], 1), y_np.ravel(), rcond=None)[0]
    gain_start = float(lsq[0]) if lsq[0] > 0 else float(y_np.mean() / max(pred.mean(), 1e-12))
    offset0 = float(lsq[1]) / scale if lsq[0] > 0 else 0.0
    target = torch.from_numpy((start * gain_start / scale).astype(np.float32)).to(dev)
    nuis = Nuisance(nf, (ny, nx), dev, 1.0, offset0, envelope=refine and s.envelope,
                    haze=refine and s.envelope, attenuation=fit_otf, rho=rho)
    notch = None
    if known and s.imprint_notch > 0:
        notch = imprint_notch(ctx.params, shape, fine_px, s.imprint_notch / (max(ny, nx) * px), dev)
    inv_power = None
    if s.spectral_prior > 0:
        inv_power = power_law_prior(y_np.mean(0) / scale - offset0, px, ctx.otf, shape, fine_px, dev)
    n_data = float(nf * ny * nx)

    net = UNet(x.shape[0], **SLIM_NET, shuffle=f, generator=_generator(s.seed)).to(dev)
    nn.init.zeros_(net.head.weight)  # the network starts as a zero correction
    t = torch.clamp(target, min=1e-3)
    u = (t + torch.log(-torch.expm1(-SOFTPLUS_BETA * t)) / SOFTPLUS_BETA).requires_grad_(True)
    extra = nuis.trainable + nuis.fast + (pmodel.trainable if pmodel is not None else [])
    opt = Adam([{"params": net.parameters()}, {"params": nuis.trainable[1:2]},
                {"params": nuis.trainable[:1] + nuis.trainable[2:] + (pmodel.trainable if pmodel else []),
                 "lr": s.nuisance_rate}, {"params": nuis.fast, "lr": 5 * s.nuisance_rate},
                {"params": [u], "lr": s.pixel_rate}], lr=s.lr)
    bf16 = native_bf16(dev) if s.bf16 is None else (s.bf16 and dev.type == "cpu")
    g, v0, floor = noise.gain, noise.var0, noise.floor()
    tv_w, eps = s.tv_weight, 0.01
    crop = (slice(f * margin, f * (margin + ny)), slice(f * margin, f * (margin + nx)))
    apo = apodizer(sim_support(ctx, fine_px, pats), shape, fine_px) if s.apodize else (lambda a: a)
    max_steps, n_unc = s.max_steps, s.uncertainty_samples
    total = max_steps + n_unc * s.uncertainty_steps

    def obj() -> torch.Tensor:
        return F.softplus(u + run_net(net, x, depth_mult, bf16), beta=SOFTPLUS_BETA)

    kappa = [1.0]  # variance inflation: the reduced χ² when it exceeds 1 (see PinnSettings.inflate)

    frozen: dict = {}  # the bootstrap continuations keep the fitted illumination fixed

    def physics(o: torch.Tensor, data: torch.Tensor):
        p = frozen.get("p", pmodel() if refine else None)
        spec = torch.fft.rfft2(o) if notch is not None or inv_power is not None else None
        o_mod = None if notch is None else torch.fft.irfft2(spec * notch, s=shape)
        mu = scale * nuis.frames(fm(o, p, nuis.transfer_scale(), o_mod))
        v = torch.clamp(g * mu + v0, min=floor)
        chi = ((data - mu) ** 2 / v).mean()
        if s.inflate:
            kappa[0] = max(1.0, float(chi.detach()))
            chi = chi / kappa[0]
        reg = tv_w * total_variation(o, eps)
        if inv_power is not None:
            reg = reg + s.spectral_prior * 0.5 * ((spec.real ** 2 + spec.imag ** 2) * inv_power).sum() / n_data
        return 0.5 * chi + 0.5 * torch.log(v).mean() + reg, chi + 2 * reg, mu, v

    def train_step(data: torch.Tensor, step: int):
        o = obj()
        loss, crit, _, _ = physics(o, data)
        if not torch.isfinite(loss):
            raise _nan(step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return o.detach(), float(loss.detach()), float(crit.detach())

    def finish(img: np.ndarray) -> np.ndarray:
        out = apo(img)[crop]
        return periodic_border(out, f * margin) if s.periodic_output else out

    losses: list[float] = []
    crits: list[float] = []
    with torch.no_grad():
        ema = obj().detach()
    show = lambda: finish(ema.cpu().numpy()) * scale  # noqa: E731
    stopped_early, step = False, 0
    while step < max_steps:
        o, loss, crit = train_step(y, step + 1)
        step += 1
        ema.mul_(EMA_DECAY).add_(o, alpha=1.0 - EMA_DECAY)
        losses.append(loss)
        crits.append(crit)
        yield _progress(step, total, loss, s.preview_every, show)
        if s.early_stopping and _plateau(crits):
            stopped_early = True
            break
    with torch.no_grad():
        _, _, mu, v = physics(ema, y)
        residual = torch.sqrt((((y - mu) ** 2) / v).mean(0)).cpu().numpy().astype(np.float32)
    image = (finish(ema.cpu().numpy()) * scale).astype(np.float32)
    sigma = None
    if n_unc:  # parametric bootstrap: short continuations on resampled data
        if refine:
            with torch.no_grad():
                frozen["p"] = pmodel()
        state = copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict())
        fixed = [p.detach().clone() for p in [u, *extra]]
        gen = _generator(s.seed + 7919)
        outs = []
        for _ in range(n_unc):
            net.load_state_dict(state[0])
            opt.load_state_dict(state[1])
            with torch.no_grad():
                for p, p0 in zip([u, *extra], fixed, strict=False):
                    p.copy_(p0)
            data = mu + torch.sqrt(v) * torch.randn(mu.shape, generator=gen).to(dev)
            for _ in range(s.uncertainty_steps):
                o, loss, _ = train_step(data, step + 1)
                step += 1
                losses.append(loss)
                yield _progress(step, total, loss, 0, None)
            outs.append(apo(o.cpu().numpy())[crop])
        spread = np.sqrt(gaussian_filter(np.var(np.stack(outs), axis=0, ddof=1), SIGMA_SMOOTH_PX))
        sigma = (SIGMA_CALIBRATION * spread * scale).astype(np.float32)
        step -= n_unc * s.uncertainty_steps
    info = {"gain": g, "var0": v0, "fitted": s.camera_gain is None, "reliable": noise.reliable,
            "scale": scale, **nuis.summary()}
    info["background"] = info.pop("offset") * scale
    if refine:
        info["params"] = pmodel.fitted()
    return image, sigma, residual, losses, step, stopped_early, info


def _plateau(crits: list[float], window: int = 20, min_steps: int = 40, tol: float = 0.01) -> bool:
    """True when the smoothed criterion improved by less than ``tol`` (relative) over ``window`` steps."""
    if len(crits) < max(min_steps, window + 5):
        return False
    now = float(np.mean(crits[-5:]))
    return float(np.mean(crits[-window - 5:-window])) - now < tol * max(now, 1e-12)


def faithful(ctx: Context):
    """The published recipe (generator): yields progress, returns the result tuple."""
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
        pats = render_patterns(ctx.params, (f * ny, f * nx), fine_px, 0.0, dev)
    else:
        pats = torch.from_numpy(ctx.patterns).to(dev)
    q = f * (int(math.ceil(3.0 / (ctx.otf.support_cycles_per_um * optics.pixel_size_um))) + 1)
    pats = F.pad(pats, (q, q, q, q))  # zero padding: a linear ('SAME') convolution, as published
    shape = (f * ny + 2 * q, f * nx + 2 * q)
    fm = ForwardModel(pats, _transfer(ctx, shape, fine_px, None), f, q // f, (ny, nx), sample=False)
    net = UNet(nf, **FAITHFUL_NET, shuffle=1, generator=_generator(s.seed)).to(dev)
    opt = Adam([{"params": net.parameters()}], lr=s.lr)
    bf16 = bool(s.bf16) and dev.type == "cpu"
    window = gaussian_window(device=dev)
    losses: list[float] = []
    last: list[torch.Tensor | None] = [None]
    show = lambda: last[0].cpu().numpy()  # noqa: E731

    def simulate(o: torch.Tensor) -> torch.Tensor:
        sim = fm(F.pad(o, (q, q, q, q)))
        return (sim - sim.min()) / (sim.max() - sim.min() + 1e-12)

    for step in range(1, s.max_steps + 1):
        o = torch.clamp(run_net(net, target, 8, bf16), 0.0, 1.0)
        loss = 1.0 - ssim(simulate(o), target, window)
        if not torch.isfinite(loss):
            raise _nan(step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:  # staircase decay ×0.9 every 50 steps
            opt.scale_lr(0.9)
        last[0] = o.detach()
        losses.append(float(loss.detach()))
        yield _progress(step, s.max_steps, losses[-1], s.preview_every, show)
    with torch.no_grad():
        o = torch.clamp(run_net(net, target, 8, bf16), 0.0, 1.0)
        low = F.avg_pool2d(simulate(o)[None], f)[0]
        diff = (low - norm.to(dev)).cpu().numpy()
    spread = 1.4826 * np.median(np.abs(diff - np.median(diff))) or 1.0
    residual = np.sqrt(((diff / spread) ** 2).mean(0)).astype(np.float32)
    image = o.cpu().numpy().astype(np.float32)
    return image, None, residual, losses, s.max_steps, False, None


__all__ = ["Context", "noise_aware", "faithful"]
