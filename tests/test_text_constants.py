"""The numbers that README and the command-line help quote are the engine's constants (issue 12
item 5): each test reads the text and compares it with the one source, so a changed threshold or
default fails here until the text follows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from napari_sim_ml import cli, cli_options
from napari_sim_ml.engine.estimate import MIN_QUALITY, QUALITY_GRADES
from napari_sim_ml.engine.metrics import CROSS_WARN_DB, IMPRINT_WARN_DB
from napari_sim_ml.engine.trust import IMPRINT_CLEAN_DB

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def help_text(capsys, *command: str) -> str:
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    return flat(capsys.readouterr().out)


def test_readme_grade_thresholds_are_the_estimators():
    grades = r"Grades: < ([\d.]+) inadequate.*?([\d.]+)–([\d.]+) low, ([\d.]+)–([\d.]+) good, > ([\d.]+) excellent"
    m = re.search(grades, flat(README))
    assert m, "README no longer states the grades as 'Grades: < a inadequate … b–c low, c–d good, > d excellent'"
    a, b1, b2, c1, c2, d = (float(v) for v in m.groups())
    (low, _), (good, _), (excellent, _) = QUALITY_GRADES
    assert (a, b1, b2, c1, c2, d) == (low, low, good, good, excellent, excellent)
    assert a == MIN_QUALITY  # README: below it "the estimator refuses"


def test_readme_trust_figures_are_the_warning_thresholds():
    text = flat(README)
    m = re.search(r"when the imprint exceeds ([\d.]+) dB or the cross ([\d.]+) dB", text)
    assert m and (float(m[1]), float(m[2])) == (IMPRINT_WARN_DB, CROSS_WARN_DB)
    m = re.search(r"over the median of its ring, dB; clean ≲ ([\d.]+)\)"
                  r".*?over their neighbours, dB; clean ≲ ([\d.]+)\)", text)
    assert m and (float(m[1]), float(m[2])) == (IMPRINT_CLEAN_DB, CROSS_WARN_DB)


def test_reconstruct_help_quotes_the_defaults_it_applies(capsys):
    from napari_sim_ml.engine.io import IMMERSION_INDEX, FrameLayout
    from napari_sim_ml.engine.pinn import PinnSettings

    text = help_text(capsys, "reconstruct")
    lo, hi = (int(v) for v in re.search(r"--angles \S+ number of pattern angles \((\d)-(\d)\)", text).groups())
    for n in (lo, hi):
        FrameLayout(n, 3, 1, "PAZ")  # accepted
    for n in (lo - 1, hi + 1):
        with pytest.raises(ValueError):
            FrameLayout(n, 3, 1, "PAZ")
    assert float(re.search(r"else oil ([\d.]+)\)", text)[1]) == IMMERSION_INDEX["oil"] == cli_options.OIL_INDEX
    defaults = PinnSettings()
    assert re.search(r"PINN mode \(default ([\w-]+)\)", text)[1] == defaults.mode
    assert int(re.search(r"PINN seed \(default (\d+)\)", text)[1]) == defaults.seed
    samples = int(re.search(r"bootstrap samples for the σ map \(default (\d+)\)", text)[1])
    assert samples == cli_options.UNCERTAINTY_SAMPLES


def test_train_denoiser_help_quotes_the_training_defaults(capsys):
    import inspect

    from napari_sim_ml.engine.denoise.data import simulated_set
    from napari_sim_ml.engine.denoise.train import CPU_DEFAULT, GPU_DEFAULT

    text = help_text(capsys, "train-denoiser")
    width = re.search(r"network width \(default: (\d+) on CPU, (\d+) on a GPU\)", text)
    depth = re.search(r"network levels \(default: (\d+) on CPU, (\d+) on a GPU\)", text)
    assert (int(width[1]), int(width[2])) == (CPU_DEFAULT["width"], GPU_DEFAULT["width"])
    assert (int(depth[1]), int(depth[2])) == (CPU_DEFAULT["depth"], GPU_DEFAULT["depth"])
    signature = inspect.signature(simulated_set).parameters
    low, high = (float(v) for v in re.search(r"range LOW HIGH \(default ([\d.]+) ([\d.]+)\)", text).groups())
    assert (low, high) == tuple(signature["photons"].default)
    assert float(re.search(r"simulation default ([\d.]+),", text)[1]) == signature["read_noise"].default


def test_simulate_defaults_are_the_simulators():
    from napari_sim_ml.engine.simulate import DEFAULT_OPTICS

    args = cli.build_parser().parse_args(["simulate", "-o", "raw.tif"])
    assert (args.na, args.wavelength_nm, args.pixel_size_um) == (
        DEFAULT_OPTICS.na, DEFAULT_OPTICS.wavelength_nm, DEFAULT_OPTICS.pixel_size_um)
