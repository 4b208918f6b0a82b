"""The metadata schema: round trip, old keys, unknown keys, wrong types."""

import json

import pytest

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.metadata import (
    SCHEMA_VERSION,
    ImageOptics,
    SimMetadata,
    length_to_um,
    read_metadata,
    unit_to_um,
)


def full_record() -> SimMetadata:
    return SimMetadata(kind="reconstruction", method="wiener", source="/data/raw.tif", name="raw_sim.ome.tif",
                       optics=ImageOptics(1.4, 525.0, 0.04, 1.518), raw_pixel_size_um=0.08,
                       params={"angles": []}, layout={"n_angles": 3, "n_phases": 3, "n_z": 2, "order": "PZA"},
                       background=100.0, filter={"wiener": 0.05, "form": "wiener", "auto": True},
                       pinn=None, denoiser={"model": "m.pt", "consistency": "ok"}, estimated_on="time point 0",
                       z_step_um=0.125, channel=1, plane=3, request={"method": "wiener"},
                       extra={"sequence": {"files": 3}})


def test_round_trip_through_json_is_exact():
    rec = full_record()
    stored = json.loads(json.dumps(rec.to_dict()))
    assert stored["schema"] == SCHEMA_VERSION
    back = SimMetadata.from_dict(stored)
    assert back == rec
    assert back.problems == () and back.unknown_keys == ("sequence",)
    assert back.to_dict() == stored


def test_missing_keys_are_none_and_not_written():
    rec = SimMetadata.from_dict({"kind": "truth"})
    assert rec.kind == "truth" and rec.optics is None and rec.background is None and rec.params is None
    assert rec.schema == 0  # no version key: a file of an older version
    assert rec.to_dict() == {"schema": SCHEMA_VERSION, "kind": "truth"}
    assert SimMetadata.from_dict(None).to_dict() == {"schema": SCHEMA_VERSION}


def test_schema_0_camera_offset_reads_as_background():
    old = {"kind": "raw", "optics": {"na": 1.4, "wavelength_nm": 525, "pixel_size_um": 0.08}, "camera_offset": 100}
    rec = read_metadata(old)
    assert rec.background == 100.0 and isinstance(rec.background, float)
    assert "camera_offset" not in rec.extra
    assert rec.optics == ImageOptics(1.4, 525.0, 0.08, None)
    out = rec.to_dict()  # raw files keep the old name too, for older readers
    assert out["background"] == out["camera_offset"] == 100.0
    # an explicit background wins over the old name
    assert read_metadata({"camera_offset": 5.0, "background": 7.0}).background == 7.0
    # only raw files carry the old name
    assert "camera_offset" not in SimMetadata(kind="reconstruction", background=3.0).to_dict()


def test_schema_0_denoiser_string_and_pinn_iterations():
    rec = read_metadata({"kind": "reconstruction", "denoiser": "model.pt",
                         "pinn": {"mode": "noise-aware", "iterations": 42, "device": "cpu", "seconds": 1.0}})
    assert rec.denoiser == {"model": "model.pt"}
    assert rec.pinn is not None and rec.pinn["iterations_run"] == 42


def test_wrong_types_are_named_or_refused():
    bad = {"kind": "raw", "background": "a lot", "z_step_um": float("nan"), "optics": {"na": "high"},
           "channel": True}
    rec = read_metadata(bad)
    assert rec.background is None and rec.z_step_um is None and rec.channel is None
    assert rec.optics == ImageOptics()
    assert len(rec.problems) == 4 and any("background" in p for p in rec.problems)
    assert rec.extra["background"] == "a lot" and rec.to_dict()["background"] == "a lot"  # kept, not lost
    with pytest.raises(SimInputError, match="background"):
        SimMetadata.from_dict(bad, strict=True)
    assert read_metadata({"optics": [1, 2]}).problems


def test_newer_schema_is_read_and_noted():
    rec = read_metadata({"schema": SCHEMA_VERSION + 1, "kind": "raw", "new_key": 1})
    assert rec.kind == "raw" and rec.extra == {"new_key": 1}
    assert "newer" in rec.problems[0]
    assert read_metadata({"schema": "x"}).problems


def test_units_table():
    assert unit_to_um("µm") == unit_to_um("micrometer") == 1.0
    assert unit_to_um("nm") == 1e-3 and unit_to_um("pixel") is None and unit_to_um(None) is None
    assert length_to_um(80.0, "nm") == pytest.approx(0.08)
    assert length_to_um(0.08, None) == 0.08 and length_to_um(None, "um") is None
