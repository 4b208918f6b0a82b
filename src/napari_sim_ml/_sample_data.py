"""npe2 sample data: simulated raw SIM stacks with their ground truth (generated in code)."""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from typing import Any

import numpy as np

from .engine.io import FrameLayout
from .engine.metadata import METADATA_KEY, ImageOptics, SimMetadata

SIZE = 256
SEED = 7


@lru_cache(maxsize=4)
def _simulate(n_phases: int, size: int, seed: int):
    from .engine.simulate import simulate_acquisition

    return simulate_acquisition("filaments", size=size, n_phases=n_phases, photons=1000.0, seed=seed)


def make_sample(n_phases: int = 3, size: int = SIZE, seed: int = SEED) -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """Raw stack (A·P, Y, X) uint16 in angle-major order (PAZ) and the truth on the 2× grid."""
    sim = _simulate(n_phases, size, seed)
    optics = sim.optics
    px = optics.pixel_size_um
    n_angles = sim.raw.shape[0]
    layout = FrameLayout(n_angles, n_phases, 1, "PAZ")
    frames = np.clip(np.rint(sim.raw), 0, 65535).astype(np.uint16).reshape(-1, size, size)
    kind = "3-beam" if n_phases >= 5 else "2-beam"
    meta = SimMetadata(kind="raw", optics=ImageOptics.from_optics(optics), layout=asdict(layout),
                       background=sim.offset, params=sim.params.to_dict(optics),
                       simulation={"structure": "filaments", "photons": sim.photons, "seed": seed,
                                   "beams": kind}).to_dict()
    raw_kwargs = {
        "name": f"SIM raw {n_angles}x{n_phases}",
        "scale": (1.0, px, px),
        "units": ("pixel", "um", "um"),
        "metadata": {METADATA_KEY: meta},
    }
    truth_kwargs = {
        "name": f"SIM truth {n_angles}x{n_phases}",
        "scale": (px / 2, px / 2),
        "translate": (0.0, 0.0),
        "units": ("um", "um"),
        "visible": False,
        "metadata": {METADATA_KEY: SimMetadata(kind="truth",
                                               optics=ImageOptics.from_optics(optics, px / 2)).to_dict()},
    }
    return [(frames, raw_kwargs, "image"), (sim.truth.copy(), truth_kwargs, "image")]


def sample_2beam() -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """3 angles × 3 phases, 2-beam, 256² px, with ground truth."""
    return make_sample(3)


def sample_3beam() -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """3 angles × 5 phases, 3-beam, 256² px, with ground truth."""
    return make_sample(5)
