import os

import pytest
import torch

# Tests run two xdist workers on two cores: one torch thread each avoids oversubscription.
torch.set_num_threads(int(os.environ.get("SHOERECON_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def tiny_model():
    """A small random ShoeReconNet on the packaged template (eval mode), for predict/refine tests."""
    from shoerecon.geometry.template import load_template
    from shoerecon.model import ModelConfig, ShoeReconNet

    cfg = ModelConfig(unet_depth=2, unet_width=4, latent_dim=16, latent_pool=2, shape_hidden=16, shape_layers=2,
                      texture_size=16, flow_hidden=4)
    return ShoeReconNet(cfg, load_template(uv_mode="file")).eval()
