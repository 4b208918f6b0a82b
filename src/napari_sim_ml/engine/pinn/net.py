"""The PINN's network and optimiser: a U-Net, a small Adam, and bf16 detection.

Imported only inside the fits of :mod:`napari_sim_ml.engine.pinn` (torch stays out of the
classical engine).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

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
        for w, n in zip(widths, enc, strict=False):
            self.down.append(self._block(ch, w, n))
            ch = w
        self.up = nn.ModuleList()
        for w, n in zip(reversed(widths[:-1]), dec, strict=False):
            self.up.append(self._block(ch + w, w, n))
            ch = w
        self.head = nn.Conv2d(ch, shuffle * shuffle, 1)
        self.shuffle = shuffle
        self.depth = len(widths) - 1
        for m in self.modules():  # Glorot-uniform weights, zero biases (the published init)
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @staticmethod
    def _block(cin: int, cout: int, n: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map x (N, C, H, W) to (N, shuffle·H, shuffle·W); H and W multiples of 2**depth."""
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
        """Drop the gradients of every parameter."""
        for g in self.groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Take one Adam step with the current gradients."""
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for g, ms, vs in zip(self.groups, self.m, self.v, strict=False):
            for p, m, v in zip(g["params"], ms, vs, strict=False):
                if p.grad is None:
                    continue
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-g["lr"] / c1)

    def scale_lr(self, factor: float) -> None:
        """Multiply every group's learning rate by ``factor``."""
        for g in self.groups:
            g["lr"] *= factor

    def state_dict(self) -> dict:
        """Copy the step count, moments and learning rates."""
        return {"t": self.t, "m": [[a.clone() for a in ms] for ms in self.m],
                "v": [[a.clone() for a in vs] for vs in self.v], "lr": [g["lr"] for g in self.groups]}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` in place."""
        self.t = state["t"]
        for ms, vs, sm, sv in zip(self.m, self.v, state["m"], state["v"], strict=False):
            for a, b in zip(ms + vs, sm + sv, strict=False):
                a.copy_(b)
        for g, lr in zip(self.groups, state["lr"], strict=False):
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


def seeded_generator(seed: int) -> torch.Generator:
    """Return a CPU random generator seeded with ``seed`` (network initialisation, bootstrap resamples)."""
    return torch.Generator().manual_seed(int(seed))


__all__ = ["UNet", "Adam", "native_bf16", "run_net", "seeded_generator", "FAITHFUL_NET", "SLIM_NET"]
