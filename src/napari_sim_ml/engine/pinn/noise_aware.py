"""The noise-aware PINN fit (ours): Poisson–Gaussian likelihood at camera resolution.

The object is softplus(u + net(x)) on a fine canvas with a free margin: a pixel map u
started at the Wiener result plus a slim U-Net (zero-initialised output) fed with the
Wiener and widefield images. With pattern parameters the illumination, per-frame gains,
envelope, haze and OTF attenuation are fitted too (:mod:`.refine`). Imported only inside
:func:`napari_sim_ml.engine.pinn.fit.pinn_steps` (torch stays out of the classical engine).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..artifacts import pattern_imprint
from ..parameters import FilterSettings
from .haze import estimate_haze
from .net import SLIM_NET, Adam, UNet, native_bf16, run_net, seeded_generator
from .noise import NoiseModel, inband_noise_ratio, noise_model_for, robust_scale
from .physics import ForwardModel, apodizer, fit_transfer, sim_support, total_variation
from .refine import Nuisance, PatternModel, imprint_notch, periodic_border, power_law_prior
from .types import NOISE_CHECK_RATIO, FitContext, PinnProgress, PinnResult, nan_error, progress
from .uncertainty import Snapshot, bootstrap_sigma

PROBE_EVERY, PROBE_STEPS = 10, 40  # steps between imprint checks, last step checked (the adaptive notch)
STEP_SCALE_MAX = 3.0  # the noise-scaled steps follow √r up to r = 9 (the binned bicubic sets: 6.9–7.1)
SOFTPLUS_BETA = 20.0  # sharpness of the positivity (object units: robust data scale = 1)
EMA_DECAY = 0.9
HAZE_START_FRACTION = 0.1  # the measured haze starts the fit when every band sees ≥ 10 % of the frames' mean


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def _pad_field(img: np.ndarray, factor: int, margin: int, shape: tuple[int, int]) -> np.ndarray:
    t = factor * margin
    return np.pad(img, ((t, shape[0] - img.shape[0] - t), (t, shape[1] - img.shape[1] - t)), mode="reflect")


def _warm_start(ctx: FitContext, y_np: np.ndarray, w_scale: float = 1.0,
                haze: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (Wiener, widefield) on the fine grid of the field, the warm start.

    With pattern parameters the Wiener reconstruction (w = ``start_wiener`` × ``w_scale``) of
    the frames less ``haze`` (Y, X counts, the measured unmodulated background, scaled by each
    frame's mean intensity; None: none)
    and the widefield image, else the upsampled mean frame twice.
    """
    if ctx.patterns is None:
        from ..wiener import prepare_reconstruction, wiener_filter

        assert ctx.params is not None  # checked by pinn_steps
        from ..filters import auto_wiener

        prepared = prepare_reconstruction(ctx.plane, ctx.optics, ctx.params, ctx.otf, ctx.background)
        w = ctx.settings.start_wiener
        w = auto_wiener(prepared, FilterSettings()) if w is None else w * w_scale
        wien = wiener_filter(prepared, FilterSettings(wiener=w))
        if haze is not None:  # the haze's share of that reconstruction (it is linear in the frames) leaves it
            rel = y_np.mean(axis=(-2, -1)) / float(y_np.mean())
            hplane = (rel.reshape(ctx.plane.shape[:2])[..., None, None] * haze).astype(np.float32)
            hprep = prepare_reconstruction(hplane + np.float32(ctx.background), ctx.optics, ctx.params, ctx.otf,
                                           ctx.background)
            wien = wien - wiener_filter(hprep, FilterSettings(wiener=w))
        return wien, prepared.widefield
    mean = torch.from_numpy(y_np.mean(axis=0).astype(np.float32))[None, None]
    wide = F.interpolate(mean, scale_factor=ctx.factor, mode="bicubic", align_corners=False)[0, 0].numpy()
    return wide, wide


def _plateau(crits: list[float], window: int = 20, min_steps: int = 40, tol: float = 0.01) -> bool:
    """Tell whether the smoothed criterion improved by less than ``tol`` (relative) over ``window`` steps."""
    if len(crits) < max(min_steps, window + 5):
        return False
    now = float(np.mean(crits[-5:]))
    return float(np.mean(crits[-window - 5:-window])) - now < tol * max(now, 1e-12)


def noise_aware(ctx: FitContext) -> Generator[PinnProgress, None, PinnResult]:
    """Noise-aware fit (generator): yields progress, returns the result."""
    s, dev, f, optics = ctx.settings, ctx.device, ctx.factor, ctx.optics
    n_a, n_p, ny, nx = ctx.plane.shape
    nf = n_a * n_p
    y_np = (ctx.plane - ctx.background).reshape(nf, ny, nx)
    noise = noise_model_for(y_np, s, ctx.background, optics.pixel_size_um, ctx.otf.support_cycles_per_um)
    inflation = 1.0
    user_camera = s.camera_gain is not None and s.read_noise is not None and s.camera_offset is not None
    if s.check_noise and ctx.params is not None and ctx.patterns is None and not user_camera:
        ratio = inband_noise_ratio(y_np.reshape(ctx.plane.shape), ctx.params, optics.pixel_size_um,
                                   ctx.otf.support_cycles_per_um, noise)
        if ratio is not None and ratio > NOISE_CHECK_RATIO:
            inflation = ratio
            noise = NoiseModel(gain=noise.gain * ratio, var0=noise.var0 * ratio, reliable=noise.reliable)
    scale = robust_scale(y_np)
    depth_mult = 2 ** (len(SLIM_NET["widths"]) - 1)
    params = ctx.params if ctx.patterns is None else None  # pattern parameters (not pattern images) are given
    if params is not None:
        margin = s.margin_px
        raw_h, raw_w = _ceil_to(ny + 2 * margin, depth_mult), _ceil_to(nx + 2 * margin, depth_mult)
    else:
        margin, raw_h, raw_w = 0, ny, nx
    shape = (f * raw_h, f * raw_w)
    fine_px, px = optics.pixel_size_um / f, optics.pixel_size_um
    refine = params is not None and s.refine
    def new_pattern_model() -> PatternModel | None:
        if params is None:
            return None
        return PatternModel(params, shape, fine_px, f * margin, (ny * px, nx * px), dev,
                            fit_phases=refine, fit_modulation=refine, fit_k=refine and s.fit_k)

    pmodel = new_pattern_model()
    if pmodel is not None:
        with torch.no_grad():
            pats = pmodel()
    else:
        assert ctx.patterns is not None
        pats = torch.from_numpy(ctx.patterns).to(dev)
    fm = ForwardModel(pats, fit_transfer(ctx.otf, ctx.psf, shape, fine_px, px, dev), f, margin, (ny, nx))
    fit_otf = refine and (s.fit_otf if s.fit_otf is not None else (ctx.psf is None and ctx.otf.source == "ideal"))
    rho = None
    if fit_otf:
        fy = np.fft.fftfreq(shape[0], fine_px)[:, None]
        fx = np.fft.rfftfreq(shape[1], fine_px)[None, :]
        full = torch.from_numpy(np.clip(np.hypot(fy, fx) / ctx.otf.support_cycles_per_um, 0, 1)
                                .astype(np.float32)).to(dev)
        rho = (full, full[fm.small[0], : fm.small[2] // 2 + 1] if fm.small is not None else full)
    # the noise check's inflation r: the data hold r× the noise variance the model had, so the
    # Wiener start's w (√ of a noise-to-signal power ratio) grows by √r and the pixel map's
    # Adam step (≈ the rate per step, whatever the gradient's noise) shrinks by √r
    # (at most STEP_SCALE_MAX: far larger ratios mean pre-processed data the camera model does not
    # describe, e.g. the OMX file's ×921, where the steps would freeze the fit at its start)
    step_scale = min(float(np.sqrt(inflation)), STEP_SCALE_MAX) if s.noise_scaled_steps else 1.0
    haze_cam = None  # the unmodulated background measured from the bands, when it is a clear part of the light
    if refine and s.envelope and params is not None and s.haze_start:
        haze_cam = estimate_haze(y_np.reshape(ctx.plane.shape), params, ctx.otf, px, HAZE_START_FRACTION)
    y = torch.from_numpy(y_np.astype(np.float32)).to(dev)
    notch = None  # on from the start, or only once the fit shows the imprint (notch_trigger_db)
    if params is not None and s.imprint_notch > 0:
        notch = imprint_notch(params, shape, fine_px, s.imprint_notch / (max(ny, nx) * px), dev)
    notch_on = notch is not None and s.notch_trigger_db is None
    floor_power = None
    if inflation > 1.0:  # the model's noise power of the mean frame (per DFT coefficient, object units)
        floor_power = ny * nx * max(noise.gain * float(y_np.mean()) + noise.var0, 0.0) / (nf * scale**2)

    def begin(haze: np.ndarray | None) -> tuple:
        """Return the network input, start object, offset, haze grid and prior, given the measured haze."""
        wien, wide = _warm_start(ctx, y_np, step_scale, haze)
        wien_p, wide_p = (_pad_field(np.asarray(a, np.float64), f, margin, shape) for a in (wien, wide))
        start = np.clip(wien_p, 0.0, None) / robust_scale(np.clip(wien_p, 0, None))
        x_np = np.stack([wien_p / robust_scale(np.abs(wien_p)), wide_p / robust_scale(np.abs(wide_p))])
        x = F.pixel_unshuffle(torch.from_numpy(x_np.astype(np.float32))[None], f)[0].to(dev)
        with torch.no_grad():  # intensity and background of the start so that A·fm(start) + b ≈ y
            pred = fm(torch.from_numpy(start.astype(np.float32)).to(dev)).double().cpu().numpy().ravel()
        lsq = np.linalg.lstsq(np.stack([pred, np.ones_like(pred)], 1), y_np.ravel(), rcond=None)[0]
        gain_start = float(lsq[0]) if lsq[0] > 0 else float(y_np.mean() / max(pred.mean(), 1e-12))
        offset0 = float(lsq[1]) / scale if lsq[0] > 0 else 0.0
        target = torch.from_numpy((start * gain_start / scale).astype(np.float32)).to(dev)
        haze0 = None
        if haze is not None and lsq[0] > 0:  # the haze map starts at the light the start leaves unexplained
            resid = (y_np - (gain_start * pred.reshape(y_np.shape) + lsq[1])).mean(0) / scale
            haze0 = Nuisance.haze_start(resid)
        inv_power = None
        if s.spectral_prior > 0:
            mean_obj = y_np.mean(0) / scale - offset0
            if haze is not None:  # the object's spectrum: the haze's variation is not the object's
                mean_obj = mean_obj - (haze - haze.mean()) / scale
            inv_power = power_law_prior(mean_obj, px, ctx.otf, shape, fine_px, dev, floor_power)
        return x, target, offset0, haze0, inv_power

    x, target, offset0, haze0, inv_power = begin(haze_cam)
    n_data = float(nf * ny * nx)

    def new_fit() -> tuple:
        """Fresh nuisances, pattern model, network, pixel map and optimiser (deterministic: seeded)."""
        pm = new_pattern_model() if refine else pmodel
        nuis = Nuisance(nf, (ny, nx), dev, 1.0, offset0, envelope=refine and s.envelope,
                        haze=refine and s.envelope, attenuation=fit_otf, rho=rho, haze0=haze0)
        net = UNet(x.shape[0], **SLIM_NET, shuffle=f, generator=seeded_generator(s.seed)).to(dev)
        nn.init.zeros_(net.head.weight)  # the network starts as a zero correction
        t = torch.clamp(target, min=1e-3)
        u = (t + torch.log(-torch.expm1(-SOFTPLUS_BETA * t)) / SOFTPLUS_BETA).requires_grad_(True)
        pattern_params = pm.trainable if pm is not None else []
        extra = nuis.trainable + nuis.fast + pattern_params
        opt = Adam([{"params": net.parameters()}, {"params": nuis.trainable[1:2]},
                    {"params": nuis.trainable[:1] + nuis.trainable[2:] + pattern_params, "lr": s.nuisance_rate},
                    {"params": nuis.fast, "lr": 5 * s.nuisance_rate},
                    {"params": [u], "lr": s.pixel_rate / step_scale}], lr=s.lr)
        return pm, nuis, net, u, opt, extra

    pmodel, nuis, net, u, opt, extra = new_fit()
    bf16 = native_bf16(dev) if s.bf16 is None else (s.bf16 and dev.type == "cpu")
    g, v0, floor = noise.gain, noise.var0, noise.floor()
    tv_w, eps = s.tv_weight, 0.01
    crop = (slice(f * margin, f * (margin + ny)), slice(f * margin, f * (margin + nx)))
    apo = apodizer(sim_support(ctx.otf, params, fine_px, pats), shape, fine_px) if s.apodize else (lambda a: a)
    max_steps, n_unc = s.max_steps, s.uncertainty_samples
    total = max_steps + n_unc * s.uncertainty_steps

    def obj() -> torch.Tensor:
        return F.softplus(u + run_net(net, x, depth_mult, bf16), beta=SOFTPLUS_BETA)

    frozen: dict = {}  # the bootstrap continuations keep the fitted illumination fixed

    def physics(o: torch.Tensor, data: torch.Tensor):
        p = frozen["p"] if "p" in frozen else (pmodel() if refine and pmodel is not None else None)
        cut = notch if notch_on else None
        spec = torch.fft.rfft2(o) if cut is not None or inv_power is not None else None
        o_mod = None if cut is None or spec is None else torch.fft.irfft2(spec * cut, s=shape)
        mu = scale * nuis.frames(fm(o, p, nuis.transfer_scale(), o_mod))
        v = torch.clamp(g * mu + v0, min=floor)
        chi = ((data - mu) ** 2 / v).mean()
        if s.inflate:  # variance inflation: the reduced χ² when it exceeds 1 (see PinnSettings.inflate)
            chi = chi / max(1.0, float(chi.detach()))
        reg = tv_w * total_variation(o, eps)
        if inv_power is not None and spec is not None:
            reg = reg + s.spectral_prior * 0.5 * ((spec.real ** 2 + spec.imag ** 2) * inv_power).sum() / n_data
        return 0.5 * chi + 0.5 * torch.log(v).mean() + reg, chi + 2 * reg, mu, v

    def train_step(data: torch.Tensor, step: int) -> tuple[torch.Tensor, float, float]:
        o = obj()
        loss, crit, _, _ = physics(o, data)
        if not torch.isfinite(loss):
            raise nan_error(step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return o.detach(), float(loss.detach()), float(crit.detach())

    def finish(img: np.ndarray) -> np.ndarray:
        out = apo(img)[crop]
        return periodic_border(out, f * margin) if s.periodic_output else out

    def imprint_db(img: torch.Tensor) -> float:
        assert params is not None
        return float(pattern_imprint(finish(img.cpu().numpy()), fine_px, params).worst_db)

    losses: list[float] = []
    crits: list[float] = []
    with torch.no_grad():
        ema = obj().detach()
    # the notch costs detail at ±b·k, so unless told otherwise it comes in only when the fit paints
    # the pattern: the imprint of the running result rises notch_trigger_db (2 dB) over the start's (the
    # Wiener's) within the first PROBE_STEPS steps; the fit then restarts with the notch
    probe = notch is not None and not notch_on
    start_imprint = imprint_db(ema) if probe else 0.0
    show = lambda: finish(ema.cpu().numpy()) * scale  # noqa: E731
    stopped_early, step, restarted_at, haze_dropped_at = False, 0, 0, 0
    while step < max_steps:
        o, loss, crit = train_step(y, step + 1)
        step += 1
        ema.mul_(EMA_DECAY).add_(o, alpha=1.0 - EMA_DECAY)
        losses.append(loss)
        crits.append(crit)
        yield progress(step, total, loss, s.preview_every, show)
        if probe and step % PROBE_EVERY == 0:
            probe = step < PROBE_STEPS
            if imprint_db(ema) > start_imprint + (s.notch_trigger_db or 0.0):
                if notch_on:  # notched and still painting the pattern: the haze start goes (a start as without it)
                    haze_cam, haze_dropped_at = None, step
                    x, target, offset0, haze0, inv_power = begin(None)
                else:  # with a haze start the probe goes on (the notch may not be enough)
                    notch_on = True
                probe, restarted_at, crits = haze_cam is not None and step < PROBE_STEPS, step, []
                pmodel, nuis, net, u, opt, extra = new_fit()
                with torch.no_grad():
                    ema = obj().detach()
                continue
        if s.early_stopping and _plateau(crits):
            stopped_early = True
            break
    with torch.no_grad():
        _, _, mu, v = physics(ema, y)
        residual = torch.sqrt((((y - mu) ** 2) / v).mean(0)).cpu().numpy().astype(np.float32)
    image = (finish(ema.cpu().numpy()) * scale).astype(np.float32)
    sigma = None
    if n_unc:  # parametric bootstrap: short continuations on resampled data
        if refine and pmodel is not None:
            with torch.no_grad():
                frozen["p"] = pmodel()
        snapshot = Snapshot(net, opt, [u, *extra])
        spread, more = yield from bootstrap_sigma(train_step, snapshot, mu, v, n_unc, s.uncertainty_steps, step,
                                                  total, s.seed + 7919, lambda o: apo(o.cpu().numpy())[crop])
        losses += more
        sigma = (spread * scale).astype(np.float32)
    info = {"gain": g, "var0": v0, "fitted": s.camera_gain is None, "reliable": noise.reliable,
            "noise_inflation": inflation, "step_scale": step_scale, "notch": bool(notch_on),
            "notch_restart_step": restarted_at, "haze_start": haze_cam is not None,
            "haze_dropped_step": haze_dropped_at, "start_imprint_db": start_imprint if notch is not None else None,
            "scale": scale, **nuis.summary()}
    info["background"] = info.pop("offset") * scale
    return PinnResult(image=image, sigma=sigma, residual=residual, losses=losses, iterations=step,
                      seconds=0.0, device=str(dev), stopped_early=stopped_early, noise=info,
                      params=pmodel.fitted() if refine and pmodel is not None else None)


__all__ = ["noise_aware", "SOFTPLUS_BETA", "EMA_DECAY"]
