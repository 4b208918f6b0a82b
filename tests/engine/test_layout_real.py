"""Layout detection on the real 3-beam low-light set (../shared/data/3beam-microtubules-x2, NOTES.md: 3 angles ×
5 phases, angle-major; 2× upsampled) and on frames too faint to tell layouts apart."""

import glob
import time

import numpy as np
import pytest
import tifffile

from napari_sim_ml.engine.io import FrameLayout
from napari_sim_ml.engine.layout import check_layout, detect_layout
from napari_sim_ml.engine.parameters import Optics

TRUE = FrameLayout(3, 5, 1, "PAZ")


@pytest.mark.parametrize("level", ["high", "low"])
def test_real_three_beam_layout_is_the_true_one(data_dir, level):
    files = sorted(glob.glob(str(data_dir / f"3beam-microtubules-x2/{level}/{level[0].upper()}E_*.tif")))[:15]
    frames = np.stack([tifffile.imread(f) for f in files]).astype(np.float32)
    binned = frames.reshape(15, 128, 2, 128, 2).mean(axis=(2, 4))
    for stack, pixel in ((frames, 0.03), (binned, 0.06)):  # as the CLI reads the files, and on the native grid
        optics = Optics(1.49, 525.0, pixel)
        t0 = time.perf_counter()
        choice = detect_layout(stack, optics, background=90.0)
        seconds = time.perf_counter() - t0
        assert choice.layout == TRUE and choice.confidence == "clear", choice.describe()  # was 5 × 3 APZ, 'clear'
        assert check_layout(stack, optics, TRUE, background=90.0) is None  # no false warning on the true layout
        assert seconds < 3.0  # measured 0.1-0.5 s (the low-light upsampled set is scored twice)


def test_frames_too_faint_are_uncertain_and_draw_no_warning():
    rng = np.random.default_rng(1)
    noise = rng.poisson(20, (15, 128, 128)).astype(np.float32)
    optics = Optics(1.4, 525.0, 0.08)
    choice = detect_layout(noise, optics)
    assert choice.confidence == "uncertain" and "too faint" in choice.describe()
    for given in (FrameLayout(3, 5, 1, "PAZ"), FrameLayout(5, 3, 1, "APZ")):
        assert check_layout(noise, optics, given) is None
