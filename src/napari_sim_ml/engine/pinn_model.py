"""Torch pieces of the PINN: the U-Net, the SIM forward model, SSIM and TV.

Imported only by :mod:`napari_sim_ml.engine.pinn` inside its functions, so that the
classical engine never imports torch.

Grids: the object lives on a fine grid with ``factor`` × the camera sampling
(2 for our reconstructions, 4 for the paper's demo sets); fine pixel (s·i, s·j)
sits on raw pixel (i, j), as in :mod:`napari_sim_ml.engine.simulate`.
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

from .errors import SimInputError
from .otf import RadialOTF
from .parameters import FilterSettings, Optics, PatternParameters

SOFTPLUS_BETA = 20.0  # sharpness of the positivity (object units: robust data scale = 1)
EMA_DECAY = 0.9
SIGMA_SMOOTH_PX = 2.0  # Gaussian smoothing of the bootstrap variance (fine pixels): more degrees of freedom
FAITHFUL_NET = dict(widths=(32, 64, 128, 256), enc=(3, 2, 2, 2), dec=(2, 2, 3))
SLIM_NET = dict(widths=(8, 16, 32, 64), enc=(2, 2, 2, 2), dec=(2, 2, 2))


class UNet(nn.Module):
    """U-Net with 3×3 conv + ReLU blocks, max-pool down, nearest ×2 up with skip concatenation.

    shuffle: the last 1×1 conv gives shuffle² channels that are rearranged (pixel shuffle) into
    one channel on a shuffle× finer grid, so the network itself can run at camera resolution.
    """

    def __init__(self, in_ch: int, widths=(32, 64, 128, 256), enc=(3, 2, 2, 2), dec=(2, 2, 3),
                 shuffle: int = 1, generator: torch.Generator | None = None):
        super().__init__()
        self.down = nn.ModuleList()
        ch = in_ch
        for w, n in zip(widths, enc):
            self.down.append(self._block(ch, w, n))
            ch = w
        self.up = nn.ModuleList()
        for w, n in zip(reversed(widths[:-1]), dec):
            self.up.append(self._block(ch + w, w, n))
            ch = w
        self.head = nn.Conv2d(ch, shuffle * shuffle, 1)
        self.shuffle = shuffle
        self.depth = len(widths) - 1
        for m in self.modules():  # Glorot-uniform weights, zero biases (the published init)
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _block(cin: int, cout: int, n: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for block in self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(torch.cat([x, skips.pop()], dim=1))
        x = self.head(x)
        if self.shuffle > 1:
            x = F.pixel_shuffle(x, self.shuffle)
        return x[:, 0]


class Adam:
    """Adam (Kingma & Ba) on parameter groups; ``state_dict`` / ``load_state_dict`` copy tensors.

    A few lines instead of torch.optim.Adam, whose first use imports torch._dynamo (seconds).
    """

    def __init__(self, groups: list[dict], lr: float, betas=(0.9, 0.999), eps: float = 1e-7):
        self.groups = [dict(params=list(g["params"]), lr=g.get("lr", lr)) for g in groups]
        self.betas, self.eps, self.t = betas, eps, 0
        self.m = [[torch.zeros_like(p) for p in g["params"]] for g in self.groups]
        self.v = [[torch.zeros_like(p) for p in g["params"]] for g in self.groups]

    def zero_grad(self) -> None:
        for g in self.groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for g, ms, vs in zip(self.groups, self.m, self.v):
            for p, m, v in zip(g["params"], ms, vs):
                if p.grad is None:
                    continue
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-g["lr"] / c1)

    def scale_lr(self, factor: float) -> None:
        for g in self.groups:
            g["lr"] *= factor

    def state_dict(self) -> dict:
        return {"t": self.t, "m": [[a.clone() for a in ms] for ms in self.m],
                "v": [[a.clone() for a in vs] for vs in self.v], "lr": [g["lr"] for g in self.groups]}

    def load_state_dict(self, state: dict) -> None:
        self.t = state["t"]
        for ms, vs, sm, sv in zip(self.m, self.v, state["m"], state["v"]):
            for a, b in zip(ms + vs, sm + sv):
                a.copy_(b)
        for g, lr in zip(self.groups, state["lr"]):
            g["lr"] = lr


def native_bf16(device: torch.device) -> bool:
    """bf16 autocast pays off on CPUs with native bf16 (AVX512-BF16 / AMX); not used on GPUs here."""
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read(200_000)
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def run_net(net: UNet, x: torch.Tensor, multiple: int, bf16: bool = False) -> torch.Tensor:
    """net(x) with x (C, H, W) reflect-padded to a multiple of ``multiple`` and the output cropped."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x[None], (0, pw, 0, ph), mode="reflect")[0]
    if bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x[None])[0]
        out = out.float()
    else:
        out = net(x[None])[0]
    s = out.shape[-1] // x.shape[-1]
    return out[: h * s, : w * s]


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
    """rfft transfer function of a PSF image on the fine grid (centred, normalised to sum 1),
    zero-padded to ``shape`` [× camera-pixel sinc]; complex64."""
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

    def __init__(self, patterns: torch.Tensor, transfer: torch.Tensor, factor: int, margin: int,
                 field: tuple[int, int], sample: bool = True):
        self.patterns, self.transfer = patterns, transfer
        self.factor, self.margin, self.field, self.sample = factor, margin, field, sample
        h, w = patterns.shape[-2:]
        self.small = None
        if sample and factor > 1 and h % (2 * factor) == 0 and w % (2 * factor) == 0:
            hr, wr = h // factor, w // factor
            rows = torch.cat([torch.arange(hr // 2), torch.arange(h - hr // 2, h)]).to(transfer.device)
            outside = transfer.abs().clone()
            outside[rows, : wr // 2] = 0
            if float(outside.max()) < 1e-6 * float(transfer.abs().max()):
                self.small = (rows, hr, wr)
                self.transfer_small = transfer[rows, : wr // 2 + 1] / factor**2

    def __call__(self, obj: torch.Tensor) -> torch.Tensor:
        h, w = obj.shape[-2:]
        m, (ny, nx), s = self.margin, self.field, self.factor
        spec = torch.fft.rfft2(obj * self.patterns)
        if self.small is not None:
            rows, hr, wr = self.small
            low = torch.fft.irfft2(spec[:, rows, : wr // 2 + 1] * self.transfer_small, s=(hr, wr))
            return low[:, m:m + ny, m:m + nx]
        blurred = torch.fft.irfft2(spec * self.transfer, s=(h, w))
        if not self.sample:
            return blurred[:, s * m: s * (m + ny), s * m: s * (m + nx)]
        return blurred[:, ::s, ::s][:, m:m + ny, m:m + nx]


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
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




# ---------------------------------------------------------------------------------------------- fits
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
    from .pinn import PinnProgress

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
    from .pinn_noise import NoiseModel, estimate_noise

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
    the estimate beyond the SIM passband is not determined by the data (as the Wiener's apodization)."""
    from .otf import ideal_profile

    fy = np.fft.fftfreq(shape[0], fine_px)[:, None]
    fx = np.fft.rfftfreq(shape[1], fine_px)[None, :]
    transfer = ideal_profile(np.hypot(fy, fx) / cutoff)
    return lambda img: np.fft.irfft2(np.fft.rfft2(img) * transfer, s=shape)


def noise_aware(ctx: Context):
    """Noise-aware fit (generator): yields progress, returns the result tuple."""
    from .pinn import SIGMA_CALIBRATION
    from .pinn_noise import robust_scale
    from .wiener import prepare_reconstruction, wiener_filter

    s, dev, f, optics = ctx.settings, ctx.device, ctx.factor, ctx.optics
    n_a, n_p, ny, nx = ctx.plane.shape
    nf = n_a * n_p
    y_np = (ctx.plane - ctx.background).reshape(nf, ny, nx)
    noise = noise_model_for(y_np, ctx)
    scale = robust_scale(y_np)
    depth_mult = 2 ** (len(SLIM_NET["widths"]) - 1)
    if ctx.patterns is None:
        margin = 8
        raw_h, raw_w = _ceil_to(ny + 2 * margin, depth_mult), _ceil_to(nx + 2 * margin, depth_mult)
    else:
        margin, raw_h, raw_w = 0, ny, nx
    shape = (f * raw_h, f * raw_w)
    fine_px = optics.pixel_size_um / f
    if ctx.patterns is None:
        pats = render_patterns(ctx.params, shape, fine_px, f * margin, dev)
    else:
        pats = torch.from_numpy(ctx.patterns).to(dev)
    fm = ForwardModel(pats, _transfer(ctx, shape, fine_px, optics.pixel_size_um), f, margin, (ny, nx))
    # warm start: the Wiener reconstruction (or the upsampled widefield without parameters)
    if ctx.params is not None and ctx.patterns is None:
        prepared = prepare_reconstruction(ctx.plane, optics, ctx.params, ctx.otf, ctx.background)
        wien, wide = wiener_filter(prepared, FilterSettings()), prepared.widefield
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
    target = torch.from_numpy((start * gain_start / scale).astype(np.float32)).to(dev)

    net = UNet(x.shape[0], **SLIM_NET, shuffle=f, generator=_generator(s.seed)).to(dev)
    nn.init.zeros_(net.head.weight)  # the network starts as a zero correction
    t = torch.clamp(target, min=1e-3)
    u = (t + torch.log(-torch.expm1(-SOFTPLUS_BETA * t)) / SOFTPLUS_BETA).requires_grad_(True)
    theta = torch.zeros(nf, 1, 1, device=dev, requires_grad=True)
    beta = torch.tensor(float(lsq[1]) / scale if lsq[0] > 0 else 0.0, device=dev, requires_grad=True)
    opt = Adam([{"params": net.parameters()}, {"params": [theta, beta]},
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

    def physics(o: torch.Tensor, data: torch.Tensor):
        mu = scale * (torch.exp(theta) * fm(o) + beta)
        v = torch.clamp(g * mu + v0, min=floor)
        chi = ((data - mu) ** 2 / v).mean()
        tv = total_variation(o, eps)
        return 0.5 * chi + 0.5 * torch.log(v).mean() + tv_w * tv, chi + 2 * tv_w * tv, mu, v

    def train_step(data: torch.Tensor, step: int):
        o = obj()
        loss, crit, _, _ = physics(o, data)
        if not torch.isfinite(loss):
            raise _nan(step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return o.detach(), float(loss.detach()), float(crit.detach())

    losses: list[float] = []
    crits: list[float] = []
    ema = obj().detach()
    show = lambda: apo(ema.cpu().numpy())[crop] * scale  # noqa: E731
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
    image = (apo(ema.cpu().numpy())[crop] * scale).astype(np.float32)
    sigma = None
    if n_unc:  # parametric bootstrap: short continuations on resampled data
        state = copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict())
        fixed = [p.detach().clone() for p in (u, theta, beta)]
        gen = _generator(s.seed + 7919)
        outs = []
        for _ in range(n_unc):
            net.load_state_dict(state[0])
            opt.load_state_dict(state[1])
            with torch.no_grad():
                for p, p0 in zip((u, theta, beta), fixed):
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
            "scale": scale, "frame_factors": torch.exp(theta).detach().cpu().numpy().ravel().tolist(),
            "background": float(beta.detach()) * scale}
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
    lo, hi = float(raw.min()), float(raw.max())
    norm = torch.from_numpy(((raw - lo) / max(hi - lo, 1e-12)).astype(np.float32))
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


__all__ = ["UNet", "run_net", "render_patterns", "transfer_function", "ForwardModel", "ssim",
           "total_variation", "FAITHFUL_NET", "SLIM_NET", "Context", "noise_aware", "faithful"]
