"""Frame layout found from the frames: every order, 3×3 / 3×5 / 5×3 / 5×5, with planes and time points."""


import numpy as np
import pytest
import tifffile

from napari_sim_ml.engine.io import FrameLayout, arrange_frames
from napari_sim_ml.engine.layout import check_layout, detect_layout
from napari_sim_ml.engine.simulate import simulate_acquisition

from ..conftest import cli_subprocess


def to_file_order(planes, layout):
    """(T, Z, A, P, Y, X) planes → (F, Y, X) frames as a file in ``layout`` stores them."""
    n = int(np.prod(planes.shape[:4]))
    idx = arrange_frames(np.arange(n)[:, None, None], layout)[..., 0, 0]
    out = np.empty((n, *planes.shape[-2:]), np.float32)
    out[idx.ravel()] = planes.reshape(-1, *planes.shape[-2:])
    return out


def same_reading(a, b, n):
    first = lambda lay: arrange_frames(np.arange(n)[:, None, None], lay)[0, 0].ravel().tolist()  # noqa: E731
    return (a.n_angles, a.n_phases) == (b.n_angles, b.n_phases) and first(a) == first(b)


@pytest.fixture(scope="module", params=[(3, 3), (3, 5), (5, 3), (5, 5)], ids=lambda s: f"{s[0]}x{s[1]}")
def stacks(request):
    """Four planes of one pattern (a z-stack or time-lapse of one field), 128² px, 300 photons."""
    a, p = request.param
    first = simulate_acquisition("filaments", 128, n_angles=a, n_phases=p, photons=300, seed=0)
    more = [simulate_acquisition("filaments", 128, n_angles=a, n_phases=p, photons=300, seed=s,
                                 params=first.params) for s in (1, 2, 3)]
    return a, p, np.stack([first.raw] + [m.raw for m in more]), first.optics


@pytest.mark.slow
@pytest.mark.parametrize("order", ["PAZ", "APZ", "PZA", "ZAP"])
@pytest.mark.parametrize("planes, times", [(1, 1), (4, 1), (1, 4)], ids=["one", "z4", "t4"])
def test_the_layout_is_found_without_flags(stacks, order, planes, times):
    a, p, raw, optics = stacks
    layout = FrameLayout(a, p, planes, order)
    frames = to_file_order(raw[:times * planes].reshape(times, planes, *raw.shape[1:]), layout)
    choice = detect_layout(frames, optics, background=100.0)
    assert same_reading(choice.layout, layout, len(frames)), (choice.describe(), layout)
    if planes > 1 and order in ("PZA", "ZAP"):
        assert choice.layout.n_z == planes


@pytest.mark.slow
def test_a_wrong_explicit_order_is_reported(stacks):
    a, p, raw, optics = stacks
    frames = to_file_order(raw[:1][None], FrameLayout(a, p, 1, "PAZ"))
    message = check_layout(frames, optics, FrameLayout(a, p, 1, "APZ"), background=100.0)
    assert message and "order PAZ" in message and "clearly better" in message
    assert check_layout(frames, optics, FrameLayout(a, p, 1, "PAZ"), background=100.0) is None


@pytest.mark.slow
def test_cli_finds_a_phase_major_layout_and_warns_on_a_wrong_order(tmp_path):
    sim = simulate_acquisition("filaments", 128, photons=300, seed=4)
    frames = to_file_order(sim.raw[None, None], FrameLayout(3, 3, 1, "APZ"))
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.clip(np.rint(frames), 0, 65535).astype(np.uint16))
    base = ["estimate", path, "--na", "1.4", "--wavelength-nm", "525", "--pixel-size-um", "0.08", "--background", "100"]
    found = cli_subprocess(*base)
    assert found.returncode == 0, found.stderr
    assert "3 angles × 3 phases, order APZ found from the frames" in found.stderr
    wrong = cli_subprocess(*base, "--angles", "3", "--phases", "3", "--order", "PAZ")
    assert "warning: the frames fit 3 angles × 3 phases, order APZ clearly better" in wrong.stderr
