"""The request API (engine/pipeline.py): the same results as the engine's own calls."""

from dataclasses import replace

import numpy as np
import pytest

from napari_sim_ml.engine import pipeline as P
from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.estimate import estimate_pattern
from napari_sim_ml.engine.filters import auto_wiener
from napari_sim_ml.engine.io import FrameLayout
from napari_sim_ml.engine.otf import ideal_otf
from napari_sim_ml.engine.parameters import FilterSettings
from napari_sim_ml.engine.simulate import simulate_acquisition
from napari_sim_ml.engine.wiener import prepare_reconstruction, wiener_filter


@pytest.fixture(scope="module")
def sim():
    return simulate_acquisition("filaments", size=96, photons=500.0, seed=4)


def request_for(sim, frames=None, **kw):
    frames = sim.raw.reshape(-1, *sim.raw.shape[-2:]) if frames is None else frames
    return P.ReconstructionRequest(frames, FrameLayout(3, 3, 1, "PAZ"), sim.optics, background=sim.offset, **kw)


def test_run_equals_the_engine_calls_bit_for_bit(sim):
    req = request_for(sim, params=sim.params, method=P.MethodSettings.from_flags(),
                      outputs=P.Outputs(widefield=True, spectra=True))
    res = P.run(req)
    otf = ideal_otf(sim.optics)
    prepared = prepare_reconstruction(sim.raw, sim.optics, sim.params, otf, sim.offset)
    settings = replace(FilterSettings(), wiener=auto_wiener(prepared, FilterSettings()))
    expected = wiener_filter(prepared, settings)
    assert res.images.shape == (1, 192, 192)
    assert np.array_equal(res.images[0], expected)
    assert np.array_equal(res.stacked("widefield")[0], prepared.widefield)
    assert res.stacked("sigma") is None and res.stacked("spectrum").shape == (1, 192, 192)
    assert res.planes[0].settings.wiener == settings.wiener
    meta = res.metadata.to_dict()
    assert meta["optics"]["pixel_size_um"] == sim.optics.pixel_size_um / 2
    assert meta["raw_pixel_size_um"] == sim.optics.pixel_size_um
    assert meta["filter"]["wiener"] == settings.wiener and meta["filter"]["auto"] is True
    assert meta["background"] == sim.offset and meta["estimated_on"] == "parameters file"
    assert meta["layout"] == {"n_angles": 3, "n_phases": 3, "n_z": 1, "order": "PAZ"}


def test_estimation_on_a_time_point_and_the_mean(sim):
    flat = sim.raw.reshape(-1, *sim.raw.shape[-2:])
    two = np.concatenate([flat, flat])
    req = request_for(sim, frames=two)
    est = P.estimate(req)
    direct = estimate_pattern(sim.raw, sim.optics, otf=ideal_otf(sim.optics), background=sim.offset)
    assert est.estimated_on == "time point 0" and est.params == direct.params
    mean = P.estimate(replace(req, estimation=P.EstimationSettings(time="mean")))
    assert mean.estimated_on == "mean of all time points"
    assert np.allclose(mean.params.angles[0].k_cycles_per_um, direct.params.angles[0].k_cycles_per_um, atol=1e-6)
    calls: list = []
    per = P.estimate(replace(req, estimation=P.EstimationSettings(per_time_point=True)), chunk=1,
                     progress=lambda done, total: calls.append((done, total)))
    assert isinstance(per.params, tuple) and len(per.params) == 2 and calls == [(1, 2), (2, 2)]
    images = [r.image for r in P.iter_planes(req, per.params)]
    assert len(images) == 2 and np.array_equal(images[0], images[1])  # the same frames twice


def test_shape_check_names_both_layouts(sim):
    req = request_for(sim)
    mesh = simulate_acquisition("mesh", size=64, n_phases=5, seed=1)
    with pytest.raises(SimInputError, match=r"3 angles × 5 phases but the stack has 3 × 3"):
        next(P.iter_planes(req, mesh.params))
    with pytest.raises(SimInputError, match="3 × 3"):
        P.estimate(replace(req, params=mesh.params))


def test_a_bad_plane_is_named_before_any_is_computed(sim):
    flat = sim.raw.reshape(-1, *sim.raw.shape[-2:]).astype(np.float32)
    bad = np.concatenate([flat, flat])
    bad[12, 5, 5] = np.nan
    with pytest.raises(SimInputError, match="time point 1, z plane 0: .*NaN"):
        next(P.iter_planes(request_for(sim, frames=bad), sim.params))


def test_otf_spec_choices(sim):
    ideal = P.OtfSpec().make(sim.optics)
    att = P.OtfSpec.from_choice("attenuated", 0.5).make(sim.optics)
    assert np.array_equal(ideal.values, ideal_otf(sim.optics).values)
    assert np.array_equal(att.values, ideal_otf(sim.optics, attenuation=0.5).values)
    assert P.OtfSpec.from_choice("ideal", 0.5) == P.OtfSpec()
    with pytest.raises(SimInputError, match="choose an OTF"):
        P.OtfSpec.from_choice("from file", path="")


def test_method_settings_and_pinn_settings():
    m = P.MethodSettings.from_flags(wiener=0.1, apo_cutoff=1.5)
    assert m.filter == replace(FilterSettings(), wiener=0.1, apo_cutoff=1.5) and not m.auto_wiener
    assert P.MethodSettings("pinn").pinn == {"mode": "noise-aware", "seed": 0, "iterations": None,
                                             "uncertainty_samples": 0}
    with pytest.raises(SimInputError, match="unknown method"):
        P.MethodSettings("fourier")
    with pytest.raises(SimInputError, match="unknown filter"):
        P.MethodSettings(form="lucy")
    with pytest.raises(SimInputError, match="'mean'"):
        P.EstimationSettings(time="last")


def test_hifi_form_uses_its_default_w(sim):
    from napari_sim_ml.engine.filters import HIFI_W2, hifi_filter

    req = request_for(sim, params=sim.params, method=P.MethodSettings.from_flags(form="hifi"))
    res = next(P.iter_planes(req, sim.params))
    prepared = prepare_reconstruction(sim.raw, sim.optics, sim.params, ideal_otf(sim.optics), sim.offset)
    assert res.settings.wiener == HIFI_W2
    assert np.array_equal(res.image, hifi_filter(prepared, replace(FilterSettings(), wiener=HIFI_W2)))


def test_batch_job_gives_the_same_plane(sim):
    req = request_for(sim, params=sim.params, method=P.MethodSettings.from_flags())
    job = P.plane_job(req, sim.params)
    direct = next(P.iter_planes(req, sim.params)).image
    assert np.array_equal(job.reconstruct(sim.raw.astype(np.float64)), direct)


def test_denoised_planes_take_their_automatic_w_from_the_measured_frames(sim):
    """Denoised frames hide their noise from auto_wiener: the w comes from the measured frames."""
    import dask.array as da

    from napari_sim_ml.engine.lazy import make_job, reconstruct_lazy

    raw = sim.raw.astype(np.float32)
    bright = simulate_acquisition("filaments", size=96, photons=50000.0, seed=4)  # 1/100 of the noise variance:
    smooth = ((bright.raw - bright.offset) / 100 + sim.offset).astype(np.float32)  # a stand-in for denoised frames
    req = request_for(sim, params=sim.params, method=P.MethodSettings.from_flags())
    otf = ideal_otf(sim.optics)
    w_raw = auto_wiener(prepare_reconstruction(raw, sim.optics, sim.params, otf, sim.offset))
    w_smooth = auto_wiener(prepare_reconstruction(smooth, sim.optics, sim.params, otf, sim.offset))
    assert w_smooth < 0.5 * w_raw  # the failure this guards against
    (res,) = P.iter_planes(req, sim.params, otf, planes=smooth[None], noise_planes=raw[None])
    assert res.settings.wiener == pytest.approx(w_raw)
    expected = wiener_filter(prepare_reconstruction(smooth, sim.optics, sim.params, otf, sim.offset),
                             replace(FilterSettings(), wiener=w_raw))
    np.testing.assert_allclose(res.image, expected, rtol=1e-5, atol=1e-5)
    job = make_job(sim.optics, sim.params, otf, FilterSettings(), sim.offset, auto_wiener=True)
    lazy = reconstruct_lazy(da.from_array(smooth[None, None]), job, 0, da.from_array(raw[None, None]))
    np.testing.assert_allclose(lazy.compute()[0, 0], expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def test_measured_planes_of_another_shape_are_refused(sim):
    req = request_for(sim, params=sim.params, method=P.MethodSettings.from_flags())
    raw = sim.raw.astype(np.float32)[None]
    with pytest.raises(SimInputError, match="do not match"):
        next(P.iter_planes(req, sim.params, planes=raw, noise_planes=raw[..., :-8, :]))
