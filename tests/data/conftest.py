"""A tiny synthetic turntable dataset shared by the data tests (3 shoes x 6 views at 32 px)."""
import shutil

import pytest

from tiny_spec import NUM_SHOES, NUM_VIEWS, SIZE


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    pytest.importorskip("shoerecon.render.renderer")
    from shoerecon.data.synthetic import SynthConfig, generate_dataset

    root = tmp_path_factory.mktemp("synth") / "ds"
    # The flat look (soles never white): several data tests strip alpha and read the RGB through the
    # threshold-mask path, which cannot segment white-on-white soles (issue 13 owns real-photo masks).
    cfg = SynthConfig(edge_length=0.05, texture_size=64, supersample=1, look="flat")
    generate_dataset(root, NUM_SHOES, NUM_VIEWS, SIZE, seed=3, workers=1, cfg=cfg, progress=False)
    return root


@pytest.fixture
def dataset_copy(tiny_dataset, tmp_path):
    """A private copy the test may break."""
    dst = tmp_path / "ds"
    shutil.copytree(tiny_dataset, dst)
    return dst
