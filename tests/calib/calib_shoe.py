"""The calibration tests' shared fixture (a module, not a conftest.py: under --doctest-modules a conftest.py in
tests/calib/ is imported as 'conftest' before tests/conftest.py and the two collide). Import ``shoe`` from it."""
import pytest
import torch


@pytest.fixture(scope="module")
def shoe():
    """Exact masks (12, 1, 48, 64) of a synthetic shoe on a turntable at elevation 12, fov 30 (framing distance),
    random crops (12, 3), and the cameras that made them."""
    from shoerecon.calib.turntable import framing_distance, turntable_cameras
    from shoerecon.data.synthetic import sample_shoe_params, shoe_mesh, shoe_rng
    from shoerecon.render.renderer import Renderer, RendererConfig

    mesh = shoe_mesh(sample_shoe_params(shoe_rng(0, 3)), textured=False)
    gen = torch.Generator().manual_seed(0)
    crops = torch.cat([0.05 * torch.randn(12, 2, generator=gen), 1 + 0.05 * torch.rand(12, 1, generator=gen)], 1)
    cams = turntable_cameras(12, 12.0, 30.0, framing_distance(30.0, 0.8), 1, crops)
    with torch.no_grad():
        masks = Renderer(RendererConfig(image_size=(48, 64)).hard())(mesh.verts[None], mesh.faces, cams.reshape(1, 12))
    return masks[0, :, 3:4], crops, cams
