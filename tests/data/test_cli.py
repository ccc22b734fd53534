import numpy as np
import pytest
from PIL import Image

from shoerecon.cli import main


def test_show_data_writes_a_contact_sheet(tiny_dataset, tmp_path):
    out = tmp_path / "sheet.png"
    assert main(["show-data", str(tiny_dataset), "--out", str(out), "--shoes", "2", "--views", "3", "--cell", "40"]) == 0
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (16 + 2 * 40, 90 + 3 * 40, 3)
    cell = sheet[16:56, 90:130]
    assert (cell < 200).any(axis=-1).mean() > 0.05, "the first cell shows a shoe"


def test_synth_cli_and_workers_give_identical_files(tmp_path):
    pytest.importorskip("shoerecon.render.renderer")
    args = ["--shoes", "2", "--views", "2", "--size", "16", "--seed", "4", "--supersample", "1"]
    assert main(["synth", "--out", str(tmp_path / "a"), "--workers", "1", *args]) == 0
    assert main(["synth", "--out", str(tmp_path / "b"), "--workers", "2", *args]) == 0
    for rel in ["rig.json", "splits.json", "shoe_00001/views/001.png", "shoe_00000/params.json"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_synth_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    pytest.importorskip("shoerecon.render.renderer")
    args = ["--shoes", "2", "--views", "1", "--size", "8", "--supersample", "1", "--workers", "1", "--out", str(tmp_path / "d")]
    assert main(["synth", *args]) == 0
    with pytest.raises(FileExistsError, match="not empty"):
        main(["synth", *args])
    args[1] = "1"
    assert main(["synth", *args, "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["rig.json", "shoe_00000", "splits.json"]
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a dataset folder"):
        main(["synth", *args, "--overwrite"])
