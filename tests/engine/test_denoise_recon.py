"""The reconstruction-domain loss, the camera-grid options of the network and old checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.parameters import Optics
from napari_sim_ml.engine.simulate import random_parameters, simulate_acquisition

OPTICS = Optics(1.4, 525.0, 0.08)
PARAMS = random_parameters(OPTICS, 3, 3, 1, rng=np.random.default_rng(3))


def test_recon_weights_vanish_beyond_the_otf_and_white_noise_scores_one():
    import torch

    from napari_sim_ml.engine.denoise.recon_loss import MSE_SHARE, recon_loss, recon_weights

    rw = recon_weights(OPTICS, PARAMS, 32)
    f = np.fft.fftfreq(32, OPTICS.pixel_size_um)
    rho = np.hypot(f[:, None], f[None, :])
    assert rw.weight.shape == (3, 3, 32, 32)
    assert np.all(rw.weight[..., rho > OPTICS.cutoff_cycles_per_um] == 0)
    assert rw.weight[..., rho < 0.8 * OPTICS.cutoff_cycles_per_um].min() > 0
    torch.manual_seed(0)
    clean = torch.zeros(32, 9, 32, 32)
    noise = 3.0 * torch.randn(32, 9, 32, 32)
    assert abs(float(recon_loss(clean + noise, clean, rw, 9.0)) - 1.0) < 0.03
    # an error beyond the OTF support costs only the MSE share
    mask = torch.from_numpy((rho > 1.05 * OPTICS.cutoff_cycles_per_um).astype(np.float32))
    outside = torch.fft.ifft2(torch.fft.fft2(noise) * mask).real
    value = float(recon_loss(clean + outside, clean, rw, 9.0))
    share = float(torch.mean(outside**2)) / 9.0
    assert value == pytest.approx(MSE_SHARE * share, rel=0.02)
    # each example in units of its own noise: a tensor of variances
    per = torch.tensor([9.0] * 16 + [36.0] * 16)
    mixed = torch.cat([noise[:16], 2 * noise[16:]])
    assert abs(float(recon_loss(clean + mixed, clean, rw, per)) - 1.0) < 0.05


def test_old_checkpoints_build_the_old_network_and_unknown_ones_are_refused():
    from napari_sim_ml.engine.denoise.model import DenoiseNet, NetConfig, n_parameters, net_config

    old = net_config({"n_frames": 9, "width": 24, "depth": 3})  # a checkpoint written before full/full_convs
    assert old == NetConfig(9, 24, 3, None, 2)
    assert n_parameters(DenoiseNet(old)) == 70361  # the network those checkpoints hold
    assert old.to_dict() == {"n_frames": 9, "width": 24, "depth": 3}
    lite = NetConfig(9, 32, 3, full_convs=1)
    assert net_config(lite.to_dict()) == lite
    keys = set(DenoiseNet(lite).state_dict())
    assert "down.0.c1.weight" in keys and "down.0.c2.weight" not in keys and "down.1.c2.weight" in keys
    with pytest.raises(SimInputError, match="is not one this version can build"):
        net_config({"n_frames": 9, "width": 24, "depth": 3, "heads": 4})


def test_channels_last_inference_matches_the_plain_network():
    import torch

    from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_frames
    from napari_sim_ml.engine.denoise.checkpoint import DenoiserMeta
    from napari_sim_ml.engine.denoise.model import DenoiseNet, NetConfig

    cfg = NetConfig(9, 16, 3, full_convs=1)
    torch.manual_seed(1)
    net = DenoiseNet(cfg)
    for p in net.parameters():
        p.data.normal_(0.0, 0.05)
    meta = DenoiserMeta(OPTICS, PARAMS, 1.0, 1.0, 20.0, cfg.to_dict())
    den = Denoiser.from_weights(meta, net.state_dict(), "cpu")
    x = np.random.default_rng(0).poisson(20.0, (1, 9, 64, 64)).astype(np.float32)
    got = denoise_frames(x, den, threads=1)
    with torch.no_grad():
        want = net.eval()(torch.from_numpy(x / 20.0)).numpy() * 20.0
    assert np.abs(got - want).max() < 1e-3 * np.abs(want).max()


def test_a_tiny_model_with_the_default_loss_improves_the_reconstruction():
    from napari_sim_ml.engine.denoise.apply import Denoiser, denoise_plane
    from napari_sim_ml.engine.denoise.data import simulated_set
    from napari_sim_ml.engine.denoise.train import TrainSettings, train_denoiser
    from napari_sim_ml.engine.metrics import compare_to_truth, sim_passband_truth
    from napari_sim_ml.engine.parameters import FilterSettings
    from napari_sim_ml.engine.wiener import wiener_reconstruct

    ts = simulated_set(OPTICS, PARAMS, 12, 48, (60.0, 60.0), ("filaments", "rings"), seed=1)
    settings = TrainSettings(epochs=3, width=8, depth=2, patch=32, batch=8, steps_per_epoch=40, threads=1,
                             validation=8)
    assert settings.loss == "recon"
    res = train_denoiser(ts, OPTICS, PARAMS, settings)
    assert res.val_losses[-1] < 0.8 * res.val_losses[0]
    den = Denoiser.from_weights(res.meta, res.weights, "cpu")
    gains = []
    for seed, structure in ((11, "mesh"), (12, "filaments")):  # held out: other seeds and a new structure
        sim = simulate_acquisition(structure, 64, OPTICS, params=PARAMS, photons=60, seed=seed)
        ref = sim_passband_truth(sim.truth, OPTICS, PARAMS)
        out = denoise_plane(sim.raw, den, OPTICS, PARAMS, background=sim.offset)
        fs = FilterSettings(wiener=0.05)
        plain = compare_to_truth(wiener_reconstruct(sim.raw, OPTICS, PARAMS, fs, background=sim.offset), ref)[0]
        denoised = compare_to_truth(wiener_reconstruct(out, OPTICS, PARAMS, fs, background=sim.offset), ref)[0]
        gains.append(denoised - plain)
    assert np.mean(gains) > 0.25  # measured +0.38 dB (mesh +0.07, filaments +0.69) after 4 s of training


def test_a_version_1_file_loads_and_a_newer_one_is_refused(tmp_path):
    import torch

    from napari_sim_ml.engine.denoise.apply import Denoiser
    from napari_sim_ml.engine.denoise.checkpoint import DenoiserMeta, save_checkpoint
    from napari_sim_ml.engine.denoise.model import DenoiseNet, NetConfig

    old = NetConfig(9, 8, 2)  # the version-1 network: two convolutions at the camera grid
    meta = DenoiserMeta(OPTICS, PARAMS, 1.0, 1.0, 20.0, old.to_dict())
    path = save_checkpoint(tmp_path / "v1.pt", meta, DenoiseNet(old).state_dict())
    blob = torch.load(path, weights_only=True)
    torch.save({**blob, "version": 1}, path)
    den = Denoiser.load(path, "cpu")
    assert den.net.cfg == old and hasattr(den.net.down[0], "c2")
    torch.save({**blob, "version": 99}, path)
    with pytest.raises(SimInputError, match="newer version"):
        Denoiser.load(path, "cpu")


def test_augmented_weights_do_not_depend_on_the_rotation_of_the_pattern():
    from napari_sim_ml.engine.denoise.recon_loss import _dihedral_k, recon_weights

    plain = recon_weights(OPTICS, PARAMS, 32)
    turned = recon_weights(OPTICS, _dihedral_k(PARAMS, 1), 32)
    assert not np.allclose(plain.weight, turned.weight, atol=1e-3 * plain.weight.max())  # the directions count
    a = recon_weights(OPTICS, PARAMS, 32, augmented=True)
    b = recon_weights(OPTICS, _dihedral_k(PARAMS, 5), 32, augmented=True)
    assert np.allclose(a.weight, b.weight, atol=1e-4 * a.weight.max())
    assert a.noise_norm == pytest.approx(b.noise_norm, rel=1e-4)
