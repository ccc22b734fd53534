import os

import pytest
import torch

# Tests run two xdist workers on two cores: one torch thread each avoids oversubscription.
torch.set_num_threads(int(os.environ.get("SHOERECON_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
