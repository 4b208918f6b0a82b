import math

import pytest

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.parameters import (
    AnglePattern,
    FilterSettings,
    Optics,
    PatternParameters,
    equidistant_phases,
    load_parameters_json,
    wrap_phase,
)


def test_json_round_trip_keeps_every_number(tmp_path):
    params = PatternParameters((
        AnglePattern((3.0, -1.0), (0.1, 2.2, -2.0), (0.8,)),
        AnglePattern((0.5, 3.1), (0.0, 2.1, 4.2), (0.7,)),
    ))
    optics = Optics(1.3, 600.0, 0.1)
    data = params.to_dict(optics)
    assert data["na"] == 1.3 and data["pixel_size_um"] == 0.1
    assert math.isclose(data["angles"][0]["period_um"], 1 / math.hypot(3.0, -1.0))
    path = tmp_path / "p.json"
    import json
    path.write_text(json.dumps(data))
    back, raw = load_parameters_json(path)
    assert back == params
    assert raw["wavelength_nm"] == 600.0


def test_canonical_flips_k_and_negates_phases():
    a = AnglePattern((-2.0, 1.0), (0.5, 1.0, -3.0), (0.9,))
    c = a.canonical()
    assert c.k_cycles_per_um == (2.0, -1.0)
    assert c.phases_rad == tuple(wrap_phase(-p) for p in a.phases_rad)
    assert math.isclose(c.angle_deg, a.angle_deg)


def test_angle_in_degrees_follows_x_right_y_down():
    assert math.isclose(AnglePattern((1.0, 1.0), equidistant_phases(3)).angle_deg, 45.0)
    assert math.isclose(AnglePattern((1.0, -1.0), equidistant_phases(3)).angle_deg, 135.0)


@pytest.mark.parametrize("kwargs", [dict(na=0.0), dict(wavelength_nm=10.0), dict(pixel_size_um=-1.0)])
def test_bad_optics_are_rejected(kwargs):
    with pytest.raises(SimInputError):
        Optics(**kwargs)


def test_too_few_phases_for_the_orders_is_an_input_error():
    with pytest.raises(SimInputError, match="cannot separate"):
        AnglePattern((1.0, 0.0), (0.0, 1.0, 2.0), (0.5, 0.5))


def test_filter_settings_are_range_checked():
    with pytest.raises(SimInputError, match="Wiener"):
        FilterSettings(wiener=0.0)
    with pytest.raises(SimInputError, match="attenuation strength"):
        FilterSettings(attenuation=1.5)


def test_missing_and_broken_parameter_files(tmp_path):
    with pytest.raises(SimInputError, match="not found"):
        load_parameters_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SimInputError, match="cannot read"):
        load_parameters_json(bad)
    bad.write_text('{"angles": [{"phases_rad": [0, 1, 2]}]}')
    with pytest.raises(SimInputError, match="lacks"):
        load_parameters_json(bad)
