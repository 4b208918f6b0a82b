import numpy as np
import pytest

from napari_sim_ml.engine.otf import ideal_otf, otf_from_file, otf_from_psf
from napari_sim_ml.engine.parameters import AnglePattern, Optics, PatternParameters
from napari_sim_ml.engine.simulate import STRUCTURES, make_object, simulate_acquisition

OPTICS = Optics(1.4, 525.0, 0.08)


def test_ideal_otf_is_one_at_zero_and_vanishes_at_the_cutoff():
    otf = ideal_otf(OPTICS)
    kc = OPTICS.cutoff_cycles_per_um
    assert kc == pytest.approx(2 * 1.4 / 0.525)
    assert otf(np.array([0.0]))[0] == pytest.approx(1.0)
    assert otf(np.array([kc * 1.001]))[0] == 0.0
    # analytic value at half the cutoff: (2/π)(acos(0.5) − 0.5·sqrt(0.75))
    assert otf(np.array([kc / 2]))[0] == pytest.approx(0.3910, abs=1e-3)
    assert ideal_otf(OPTICS, attenuation=0.3)(np.array([kc / 2]))[0] == pytest.approx(0.3910 * 0.3**0.5, abs=1e-3)


def test_otf_of_a_simulated_psf_matches_the_ideal_otf():
    kc = OPTICS.cutoff_cycles_per_um
    n, px = 128, 0.04
    f = np.hypot(np.fft.fftfreq(n, px)[:, None], np.fft.fftfreq(n, px)[None, :])
    psf = np.fft.fftshift(np.real(np.fft.ifft2(ideal_otf(OPTICS)(f))))
    measured = otf_from_psf(psf, px)
    probe = np.array([0.25, 0.5, 0.75]) * kc
    np.testing.assert_allclose(measured(probe), ideal_otf(OPTICS)(probe), atol=0.03)


def test_measured_radial_otf_file(data_dir):
    otf = otf_from_file(data_dir / "tirf-sim-microtubules-lowsnr/otf/TIRF488_cam1_0_z30_OTF2d.mrc", 0.0626)
    assert otf.freqs[1] == pytest.approx(0.0312, rel=1e-3)
    assert otf(np.array([0.0]))[0] == pytest.approx(1.0)
    # the notes: |OTF| falls below 0.5 % at 5.18 cycles/µm for 488 nm
    assert otf(np.array([5.6]))[0] < 0.005 < otf(np.array([4.5]))[0]


@pytest.mark.parametrize("structure", STRUCTURES)
def test_objects_are_normalised_and_not_empty(structure):
    obj = make_object(structure, (128, 128), 0.04, np.random.default_rng(0))
    assert obj.max() == pytest.approx(1.0) and obj.min() >= 0 and (obj > 0.1).mean() > 0.005


def test_simulated_frames_follow_the_phase_convention():
    """A uniform object shows the pattern itself: the frame's DFT at k has phase φ."""
    params = PatternParameters((AnglePattern((3.1, 1.7), (0.3, 2.4, -2.0), (0.8,)),
                                AnglePattern((-1.0, 3.3), (1.0, 3.0, -1.5), (0.8,))))
    sim = simulate_acquisition(size=64, params=params, truth=np.ones((128, 128), np.float32), noise=False,
                               offset=0.0)
    y, x = np.indices((64, 64)) * OPTICS.pixel_size_um
    for frames, pattern in zip(sim.raw, params.angles, strict=False):
        kx, ky = pattern.k_cycles_per_um
        ramp = np.exp(-2j * np.pi * (kx * x + ky * y))
        for frame, phi in zip(frames, pattern.phases_rad, strict=False):
            measured = np.angle(np.sum((frame - frame.mean()) * ramp))
            assert abs(np.angle(np.exp(1j * (measured - phi)))) < 0.02


def test_photon_scaling_offset_and_noise():
    sim = simulate_acquisition(size=64, photons=500, offset=100.0, read_noise=2.0, seed=3)
    clean = simulate_acquisition(size=64, photons=500, offset=100.0, seed=3, noise=False)
    assert clean.raw.max() == pytest.approx(600.0, rel=1e-4)
    residual = sim.raw - clean.raw
    # Poisson + read noise: variance ≈ (signal − offset) + σ_r²
    ratio = residual.var() / ((clean.raw - 100).mean() + 4.0)
    assert 0.9 < ratio < 1.1
    assert sim.truth.shape == (128, 128)
