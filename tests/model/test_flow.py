"""Texture flow: sampling conventions, the flow head's initial state, UV rasterisation against a naive loop."""
import pytest
import torch

from shoerecon.model import TextureFlowHead, rasterize_uv, sample_texture, texel_grid, texel_uv, uv_coverage_mask


def test_texel_grid_reproduces_the_image():
    image = torch.rand(2, 3, 16, 12)
    flow = texel_grid(16, 12).expand(2, -1, -1, -1)
    torch.testing.assert_close(sample_texture(image, flow), image)


def test_known_flow_samples_known_pixels():
    image = torch.rand(1, 3, 8, 8)
    flow = torch.zeros(1, 2, 3, 2)
    # pixel (row 1, col 6) has its centre at x = (2*6 + 1)/8 - 1, y = (2*1 + 1)/8 - 1
    flow[0, 0, 0] = torch.tensor([13 / 8 - 1, 3 / 8 - 1])
    flow[0, 1, 2] = torch.tensor([1 / 8 - 1, 15 / 8 - 1])  # pixel (row 7, col 0)
    tex = sample_texture(image, flow)
    torch.testing.assert_close(tex[0, :, 0, 0], image[0, :, 1, 6])
    torch.testing.assert_close(tex[0, :, 1, 2], image[0, :, 7, 0])
    mirrored = texel_grid(8, 8).clone()
    mirrored[..., 0] = -mirrored[..., 0]
    torch.testing.assert_close(sample_texture(image, mirrored[None]), image.flip(-1))


def test_texel_uv_is_v_up():
    uv = texel_uv(4, 4)
    assert uv[0, 0].tolist() == [0.125, 0.875]  # row 0 is the top: v near 1
    assert uv[3, 3].tolist() == [0.875, 0.125]


def test_flow_head_initial_flow_is_the_scaled_grid():
    features = torch.randn(2, 8, 16, 16)
    latent = torch.randn(2, 5)
    for scale in (0.0, 0.5, 1.0):
        head = TextureFlowHead(8, texture_size=16, hidden=4, latent_dim=5, init_scale=scale)
        flow = head(features, latent)
        assert flow.shape == (2, 16, 16, 2)
        torch.testing.assert_close(flow, scale * texel_grid(16, 16).expand(2, -1, -1, -1), atol=1e-5, rtol=0)
    image = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(sample_texture(image, flow), image, atol=1e-4, rtol=0)  # scale 1: identity


def test_flow_head_output_in_range_and_trainable():
    head = TextureFlowHead(4, texture_size=8, hidden=4, init_scale=0.9)
    torch.nn.init.normal_(head.conv2.weight, std=0.5)
    features = torch.randn(1, 4, 8, 8, requires_grad=True)
    flow = head(features)
    assert flow.abs().max() < 1 and flow.std() > 0.1
    flow.sum().backward()
    assert head.conv1.weight.grad.abs().sum() > 0 and features.grad.abs().sum() > 0


def naive_rasterize_uv(uvs, uv_faces, size):
    face_index = torch.full((size, size), -1, dtype=torch.long)
    for i in range(size):
        for j in range(size):
            p = torch.tensor([(j + 0.5) / size, 1 - (i + 0.5) / size], dtype=torch.float64)
            for f, (a, b, c) in enumerate(uvs[uv_faces].double()):
                d = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
                l1 = ((p[0] - a[0]) * (c[1] - a[1]) - (p[1] - a[1]) * (c[0] - a[0])) / d
                l2 = ((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])) / d
                if l1 >= 0 and l2 >= 0 and l1 + l2 <= 1:
                    face_index[i, j] = f
                    break
    return face_index


def test_rasterize_uv_matches_naive_loop_and_barycentrics_rebuild_uv():
    g = torch.Generator().manual_seed(3)
    corners = torch.tensor([[0.05, 0.05], [0.6, 0.1], [0.2, 0.7], [0.9, 0.2], [0.95, 0.95], [0.4, 0.8]])
    uvs = torch.cat([corners, corners[:3] + 0.2]) + 0.01 * torch.rand(9, 2, generator=g)
    # the second is clockwise (orientation must not matter), the third overlaps the first (lowest index wins)
    uv_faces = torch.tensor([[0, 1, 2], [3, 5, 4], [6, 7, 8]])
    face_index, bary = rasterize_uv(uvs, uv_faces, 12, budget=50)  # several chunks
    assert torch.equal(face_index, naive_rasterize_uv(uvs, uv_faces, 12))
    hit = face_index >= 0
    assert hit.sum() > 40 and set(face_index.unique().tolist()) == {-1, 0, 1, 2}
    rebuilt = (bary[..., None] * uvs[uv_faces[face_index.clamp_min(0)]]).sum(-2)
    torch.testing.assert_close(rebuilt[hit], texel_uv(12, 12)[hit], atol=1e-5, rtol=0)
    torch.testing.assert_close(bary[hit].sum(-1), torch.ones(int(hit.sum())), atol=1e-5, rtol=0)


def test_uv_coverage_mask_lower_left_half_and_dilation():
    uvs = torch.tensor([[0.0, 0.0], [1.01, 0.0], [0.0, 1.01]])
    faces = torch.tensor([[0, 1, 2]])
    mask = uv_coverage_mask(uvs, faces, 8, dilate=0)
    # texel (i, j) centre: u = (j + .5) / 8, v = 1 - (i + .5) / 8; u + v <= 1.01 iff j <= i (v up: row 7 is v ~ 0)
    assert torch.equal(mask, torch.tril(torch.ones(8, 8)))
    grown = uv_coverage_mask(uvs, faces, 8, dilate=1)
    assert grown.sum() > mask.sum() and (grown >= mask).all()


@pytest.mark.parametrize("scale", [1.5, -0.1])
def test_flow_head_rejects_bad_init_scale(scale):
    with pytest.raises(ValueError, match="init_scale"):
        TextureFlowHead(4, init_scale=scale)


def test_rasterize_uv_many_small_faces_match_naive_loop():
    n = 4  # a jittered 4x4-cell triangulated grid inside [0.1, 0.9]^2: 32 small faces with shared edges
    g = torch.Generator().manual_seed(0)
    ys, xs = torch.meshgrid(torch.linspace(0.1, 0.9, n + 1), torch.linspace(0.1, 0.9, n + 1), indexing="ij")
    uvs = torch.stack([xs, ys], -1).reshape(-1, 2) + 0.03 * torch.rand((n + 1) ** 2, 2, generator=g)
    faces = []
    for i in range(n):
        for j in range(n):
            a, b, c, d = i * (n + 1) + j, i * (n + 1) + j + 1, (i + 1) * (n + 1) + j, (i + 1) * (n + 1) + j + 1
            faces += [[a, b, d], [a, d, c]]
    faces = torch.tensor(faces)
    face_index, _ = rasterize_uv(uvs, faces, 16, budget=64)
    assert torch.equal(face_index, naive_rasterize_uv(uvs, faces, 16))
