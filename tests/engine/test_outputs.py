"""engine/outputs.py: unique temporary names, no-clobber commit, all-or-nothing sets, stale
temporary files, output checks, and the settings record (issue 11, items 1-5)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from napari_sim_ml.engine.errors import SimInputError
from napari_sim_ml.engine.io import read_raw, save_tiff, write_json, write_tiff
from napari_sim_ml.engine.outputs import (
    OutputExistsError,
    OutputSet,
    _host,
    check_outputs,
    part_path,
    record_differences,
    remove_stale_parts,
    settings_record,
)


def test_temporary_names_are_unique_and_hidden(tmp_path):
    final = tmp_path / "sr.tif"
    names = {part_path(final).name for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.startswith(".sr.tif.") and name.endswith(".part") and f".{os.getpid()}." in name


def test_commit_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    final = tmp_path / "out.tif"
    with OutputSet(overwrite=False) as outs:
        tmp = outs.stage(final)
        tmp.write_bytes(b"mine")
        final.write_bytes(b"theirs")  # another run finished first
        with pytest.raises(OutputExistsError):
            outs.commit()
    assert final.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]  # our temporary file is gone


def test_output_set_is_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    with pytest.raises(RuntimeError):
        with OutputSet() as outs:
            save_tiff(outs.stage(a), np.zeros((8, 8), np.float32), 0.1)
            raise RuntimeError("the second output failed")
    assert list(tmp_path.iterdir()) == []
    with OutputSet() as outs:
        save_tiff(outs.stage(a), np.zeros((8, 8), np.float32), 0.1)
        save_tiff(outs.stage(b), np.ones((8, 8), np.float32), 0.1)
        outs.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_a_full_disk_is_one_sentence_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import tifffile

    calls = []

    def full(target, *a, **k):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(target, *a, **k)

    real = tifffile.imwrite
    monkeypatch.setattr(tifffile, "imwrite", full)
    with pytest.raises(SimInputError, match="No space left on device"):
        with OutputSet() as outs:
            save_tiff(outs.stage(tmp_path / "raw.tif"), np.zeros((8, 8), np.uint16), 0.1)
            save_tiff(outs.stage(tmp_path / "raw_truth.tif"), np.zeros((8, 8), np.float32), 0.1)
            outs.commit()
    assert list(tmp_path.iterdir()) == []


def test_stale_parts_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    final = tmp_path / "x_sim.ome.tif"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    host = _host()
    stale = tmp_path / f".{final.name}.{host}.{dead}.abcd1234.part"
    live = tmp_path / f".{final.name}.{host}.{os.getpid()}.abcd1234.part"
    legacy = tmp_path / f".{final.name}.part"
    for p in (stale, live, legacy):
        p.write_bytes(b"x" * 100)
    old = legacy.stat().st_mtime - 7200
    os.utime(legacy, (old, old))
    removed = remove_stale_parts(final)
    assert set(removed) == {stale, legacy} and live.exists()


def test_write_json_and_tiff_refuse_existing_files(tmp_path):
    path = tmp_path / "p.json"
    write_json(path, {"a": 1})
    with pytest.raises(SimInputError, match="exists"):
        write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    write_json(path, {"a": 2}, overwrite=True)
    assert json.loads(path.read_text()) == {"a": 2}
    img = tmp_path / "i.tif"
    write_tiff(img, np.zeros((8, 8), np.float32), 0.1)
    with pytest.raises(SimInputError, match="exists"):
        write_tiff(img, np.ones((8, 8), np.float32), 0.1)
    assert read_raw(img, require_frames=False).frames.max() == 0
    assert oct(img.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("outputs, inputs, overwrite, message", [
    ([("in.tif", "tiff")], ["in.tif"], True, "is an input"),
    ([("a.tif", "tiff"), ("a.tif", "tiff")], [], True, "two outputs"),
    ([("x.png", "tiff")], [], False, "ending in .tif"),
    ([("nodir/x.tif", "tiff")], [], False, "does not exist"),
    ([("sub", "json")], [], True, "is a folder"),
    ([("old.tif", "tiff")], [], False, "exists; use --overwrite"),
])
def test_check_outputs_refusals(tmp_path, monkeypatch, outputs, inputs, overwrite, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.tif").write_bytes(b"raw")
    (tmp_path / "old.tif").write_bytes(b"old")
    (tmp_path / "sub").mkdir()
    with pytest.raises(SimInputError, match=message):
        check_outputs(outputs, inputs, overwrite)
    assert (tmp_path / "in.tif").read_bytes() == b"raw"


def test_check_outputs_sees_an_input_through_a_link(tmp_path):
    raw = tmp_path / "raw.tif"
    raw.write_bytes(b"raw")
    (tmp_path / "link.tif").symlink_to(raw)
    with pytest.raises(SimInputError, match="is an input"):
        check_outputs([(tmp_path / "link.tif", "tiff")], [raw], overwrite=True)


def test_unwritable_folder_is_refused_before_writing():
    with pytest.raises(SimInputError, match="cannot write into /proc"):
        check_outputs([("/proc/out.tif", "tiff")])


def test_settings_record_hashes_files_and_names_differences(tmp_path):
    params = tmp_path / "p.json"
    params.write_text('{"angles": []}')
    a = settings_record({"wiener": 0.05, "params": str(params), "overwrite": False, "inputs": ["x"]})
    assert "overwrite" not in a and "inputs" not in a and "sha256" in a["params"]
    params.write_text('{"angles": [1]}')
    b = settings_record({"wiener": 0.1, "params": str(params)})
    assert record_differences(a, b) == ["params", "wiener"]
    assert record_differences(a, json.loads(json.dumps(a))) == []


def test_files_are_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    import napari_sim_ml.engine.outputs as outputs

    synced, renamed = [], []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else fd)
        return real_fsync(fd)

    def link(src, dst):
        renamed.append((len(synced), str(dst)))
        return real_link(src, dst)

    monkeypatch.setattr(outputs.os, "fsync", fsync)
    monkeypatch.setattr(outputs.os, "link", link)
    write_tiff(tmp_path / "a.tif", np.zeros((8, 8), np.float32), 0.1)
    assert renamed and renamed[0][0] >= 1  # the temporary file was fsynced before it got its final name
    assert any(str(s).endswith(".part") for s in synced[: renamed[0][0]])
