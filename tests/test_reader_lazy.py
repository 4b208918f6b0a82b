"""The napari reader decides from the header and opens lazily (issue 12): bytes read, per kind of file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sim_ml._reader import napari_get_reader

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/io")


def _read_bytes() -> int:
    line = [x for x in Path("/proc/self/io").read_text().splitlines() if x.startswith("rchar")][0]
    return int(line.split()[1])


def _decide(path):
    napari_get_reader(str(path))  # warm: imports done before measuring
    before = _read_bytes()
    reader = napari_get_reader(str(path))
    return reader, _read_bytes() - before


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("reader")
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 4000, (36, 384, 384), dtype=np.uint16)  # 10.6 MB
    out = {"imagej": d / "no_axes.tif", "channels": d / "two.ome.tif", "otf": d / "otf.tif", "rgb": d / "rgb.tif"}
    tifffile.imwrite(out["imagej"], stack, imagej=True)  # tifffile calls these 36 frames channels
    tifffile.imwrite(out["channels"], stack.reshape(2, 18, 384, 384), metadata={"axes": "CZYX"}, ome=True)
    tifffile.imwrite(out["otf"], (rng.random((36, 384, 193)) + 0j).astype(np.complex64))
    tifffile.imwrite(out["rgb"], rng.integers(0, 255, (36, 384, 384, 3), dtype=np.uint8), photometric="rgb")
    return out, stack


@pytest.mark.parametrize("kind", ["imagej", "channels"])
def test_stacks_are_accepted_from_the_header_and_open_lazily(files, kind):
    paths, stack = files
    reader, read = _decide(paths[kind])
    assert reader is not None and read < 0.05 * paths[kind].stat().st_size  # headers only, no pixels
    data, kwargs, _ = reader(str(paths[kind]))[0]
    assert not isinstance(data, np.ndarray) and data.shape == (36, 384, 384)  # lazy, channels as frames
    before = _read_bytes()
    np.testing.assert_array_equal(np.asarray(data[20]), stack[20])  # one frame read on demand
    assert _read_bytes() - before < 0.2 * paths[kind].stat().st_size


@pytest.mark.parametrize("kind", ["otf", "rgb"])
def test_otf_and_rgb_files_are_refused_without_reading_them(files, kind):
    paths, _ = files
    reader, read = _decide(paths[kind])
    assert reader is None and read < 0.05 * paths[kind].stat().st_size
