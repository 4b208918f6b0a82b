"""The PINN's uncertainty map (torch).

Short continuations of a converged fit on parametric-bootstrap resamples of the data.

Each continuation restarts from the converged weights, optimiser state and fitted
nuisances, replaces the data by a fresh draw y* = μ + √v·ε from the fitted noise model, and
runs a few steps; σ = ``SIGMA_CALIBRATION`` × the spread of the continuations' results,
its variance smoothed over ``SIGMA_SMOOTH_PX`` fine pixels (more degrees of freedom).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .net import Adam, seeded_generator
from .types import SIGMA_CALIBRATION, PinnProgress, progress

SIGMA_SMOOTH_PX = 2.0  # Gaussian smoothing of the bootstrap variance (fine pixels)

TrainStep = Callable[[torch.Tensor, int], tuple[torch.Tensor, float, float]]


class Snapshot:
    """The network weights, the optimiser state and other fitted tensors, to restart from."""

    def __init__(self, net: torch.nn.Module, opt: Adam, tensors: Sequence[torch.Tensor]):
        self.net, self.opt, self.tensors = net, opt, list(tensors)
        self.weights = copy.deepcopy(net.state_dict())
        self.state = opt.state_dict()
        self.values = [t.detach().clone() for t in self.tensors]

    def restore(self) -> None:
        """Put every saved value back in place."""
        self.net.load_state_dict(self.weights)
        self.opt.load_state_dict(self.state)
        with torch.no_grad():
            for t, v in zip(self.tensors, self.values, strict=True):
                t.copy_(v)


def bootstrap_sigma(train_step: TrainStep, snapshot: Snapshot, mu: torch.Tensor, var: torch.Tensor,
                    samples: int, steps: int, first_step: int, total: int, seed: int,
                    to_image: Callable[[torch.Tensor], np.ndarray],
                    ) -> Generator[PinnProgress, None, tuple[np.ndarray, list[float]]]:
    """Run the continuations (generator): yields progress, returns (spread map × calibration, losses).

    train_step(data, step) → (object, loss, criterion) takes one optimiser step on ``data``;
    mu, var: (F, Y, X) fitted model frames and their variance; to_image: the object tensor
    to the output grid (apodized, cropped) in the units of the result divided by the data scale.
    """
    gen = seeded_generator(seed)
    outs, losses, step = [], [], first_step
    for _ in range(samples):
        snapshot.restore()
        data = mu + torch.sqrt(var) * torch.randn(mu.shape, generator=gen).to(mu.device)
        o = None
        for _ in range(steps):
            o, loss, _ = train_step(data, step + 1)
            step += 1
            losses.append(loss)
            yield progress(step, total, loss, 0, None)
        assert o is not None
        outs.append(to_image(o))
    spread = np.sqrt(gaussian_filter(np.var(np.stack(outs), axis=0, ddof=1), SIGMA_SMOOTH_PX))
    return SIGMA_CALIBRATION * spread, losses


__all__ = ["Snapshot", "bootstrap_sigma", "SIGMA_SMOOTH_PX"]
