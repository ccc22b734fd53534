"""evaluate() and `shoerecon eval` end to end on a tiny synthetic dataset: an oracle model that returns the
ground-truth mesh scores (near) perfectly, the bare template scores worse, and the CLI writes its three files."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from shoerecon.data.dataset import DataConfig, TurntableDataset
from shoerecon.data.synthetic import SynthConfig, generate_dataset
from shoerecon.eval.metrics import MetricsConfig
from shoerecon.eval.report import EvalConfig, evaluate, grid_view_indices, markdown_report, summarize
from shoerecon.geometry.io.glb import load_glb
from shoerecon.geometry.template import load_template

SIZE = 32


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(edge_length=0.06, texture_size=64, val_fraction=0.34, test_fraction=0.34, look="flat")
    generate_dataset(root, 3, num_views=6, image_size=SIZE, seed=0, workers=0, cfg=cfg, progress=False)
    return root


class FixedMeshModel(nn.Module):
    """Stand-in network that ignores its input and returns one textured mesh."""

    def __init__(self, mesh):
        super().__init__()
        for name in ("faces", "uvs", "uv_faces"):
            self.register_buffer(name, getattr(mesh, name))
        self.register_buffer("verts", mesh.verts)
        self.register_buffer("texture", mesh.texture if mesh.texture is not None else torch.full((3, 8, 8), 0.5))

    def forward(self, image):
        b = image.shape[0]
        return SimpleNamespace(verts=self.verts.expand(b, -1, -1), texture=self.texture.expand(b, -1, -1, -1))


def small_eval(**kw):
    return EvalConfig(lpips="off", metrics=MetricsConfig(num_points=4000), grid_shoes=1, **kw)


def test_oracle_model_scores_near_perfect_and_template_worse(dataset_root, tmp_path):
    ds = TurntableDataset(DataConfig(root=str(dataset_root), image_size=SIZE), split="test")
    shoe = ds.load_shoe(ds.shoe_ids[0])
    oracle = FixedMeshModel(load_glb(shoe["mesh_path"]))
    res = evaluate(oracle, None, ds, small_eval(), out_dir=tmp_path, progress=False)["summary"]
    assert res["3d/voxel_iou"] == 1.0  # identical meshes voxelise identically
    # Thin parts (laces, tabs, tongue) of the multi-part ground truth: a sample's nearest neighbour may
    # lie on a part's other side, so the oracle's normal consistency is ~0.93, not ~1.
    assert res["3d/chamfer_l2"] < 2e-3 and res["3d/normal_consistency"] > 0.9
    assert res["input/silhouette_iou"] > 0.9 and res["novel/silhouette_iou"] > 0.9
    assert res["novel/psnr"] > 20 and res["novel/ssim"] > 0.8
    assert all(res[k] == 0.0 for k in res if k.startswith("invariance/"))  # ignores its input
    # (no self-intersection check: the ground truth is multi-part, its closed parts overlap by design)
    template = load_template(uv_mode="file")
    bad = evaluate(FixedMeshModel(template), None, ds, small_eval(), progress=False)["summary"]
    assert bad["3d/chamfer_l2"] > 2 * res["3d/chamfer_l2"]
    assert bad["novel/silhouette_iou"] < res["novel/silhouette_iou"]
    assert bad["3d/voxel_iou"] < 0.95
    assert {p.name for p in tmp_path.iterdir()} == {"metrics.json", "metrics.md", "grid.png"}


def test_summary_means_and_counts():
    recs = [{"shoe_id": "a", "x": 1.0, "y": 2.0, "z": None}, {"shoe_id": "b", "x": 3.0}]
    s = summarize(recs)
    assert s["x"] == 2.0 and s["y"] == 2.0 and s["count/y"] == 1 and "z" not in s
    assert grid_view_indices(36, 6) == [0, 6, 12, 18, 24, 30] and grid_view_indices(3, 6) == [0, 1, 2]
    md = markdown_report({"summary": {"input/psnr": 20.0, "novel/psnr": 15.0, "3d/chamfer_l2": 1e-3},
                          "num_shoes": 2, "split": "test", "notes": ["n1"]})
    assert "| psnr | 20 | 15 |" in md and "chamfer_l2" in md and "- n1" in md


def test_eval_cli_end_to_end(dataset_root, tmp_path):
    from shoerecon.cli import main
    from shoerecon.model import ModelConfig, ShoeReconNet
    from shoerecon.train.checkpoint import build_checkpoint, save_checkpoint
    from shoerecon.train.config import ExperimentConfig, config_to_dict

    cfg = ExperimentConfig()
    cfg.data = DataConfig(root="elsewhere", image_size=SIZE)
    cfg.model = ModelConfig(unet_depth=2, unet_width=4, latent_dim=16, latent_pool=2, shape_hidden=16,
                            shape_layers=2, texture_size=16, flow_hidden=4)
    model = ShoeReconNet(cfg.model, load_template(uv_mode="file"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    save_checkpoint(ckpt, build_checkpoint(model, config_to_dict(cfg), step=0, epoch=0))
    rc = main(["eval", "--checkpoint", str(ckpt), "--data", str(dataset_root), "--split", "all", "--lpips", "random",
               "--num-points", "2000", "--quiet", "--max-shoes", "2", "--fid", "random", "--fid-resize", "75", "--no-seams"])
    assert rc == 0
    out = tmp_path / "run" / "eval_all"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_shoes"] == 2 and len(metrics["per_shoe"]) == 2
    s = metrics["summary"]
    for key in ("input/silhouette_iou", "novel/psnr", "novel/ssim", "novel/lpips", "3d/chamfer_l2", "3d/fscore@0.01",
                "3d/fscore@0.02", "3d/voxel_iou", "invariance/scale_0.8", "invariance/shift_x+0.08",
                "quality/self_intersection_fraction", "quality/min_angle_deg", "novel/fid"):
        assert key in s and s[key] == s[key], key
    assert not any("seam" in k for k in s) and metrics["eval_config"]["fid_resize"] == 75
    assert 0 <= s["input/silhouette_iou"] <= 1 and "random" in " ".join(metrics["notes"]).lower()
    assert (out / "grid.png").is_file() and "| metric | input view | novel views |" in (out / "metrics.md").read_text()


def test_eval_cli_clear_errors(tmp_path):
    from shoerecon.cli import main

    with pytest.raises(SystemExit, match="not found"):
        main(["eval", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(tmp_path)])


def test_3d_metrics_only_where_mesh_glb_exists(dataset_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(dataset_root, root)
    ds = TurntableDataset(DataConfig(root=str(root), image_size=SIZE), split="all")
    (root / ds.shoe_ids[0] / "mesh.glb").unlink()  # a real-photo shoe: no ground-truth mesh
    template = load_template(uv_mode="file")
    res = evaluate(FixedMeshModel(template), None, ds, small_eval(max_shoes=2, invariance=False), progress=False)
    assert "3d/chamfer_l2" not in res["per_shoe"][0] and "3d/chamfer_l2" in res["per_shoe"][1]
    assert res["summary"]["count/3d/chamfer_l2"] == 1 and res["summary"]["3d/chamfer_l2"] == res["per_shoe"][1]["3d/chamfer_l2"]
    assert "over 1 shoes with ground truth" in markdown_report(res)


def test_broken_shoe_is_skipped_with_a_note_or_raises(dataset_root, tmp_path):
    import shutil

    from shoerecon.data.layout import DataError

    root = tmp_path / "copy"
    shutil.copytree(dataset_root, root)
    ids = TurntableDataset(DataConfig(root=str(root), image_size=SIZE), split="all").shoe_ids
    (root / ids[0] / "views" / "003.png").write_bytes(b"garbage")  # found only when the views are read
    model = FixedMeshModel(load_template(uv_mode="file"))
    ds = TurntableDataset(DataConfig(root=str(root), image_size=SIZE, on_error="skip"), split="all")
    res = evaluate(model, None, ds, small_eval(three_d=False, invariance=False), progress=False)
    assert res["num_shoes"] == len(ids) - 1 and any(ids[0] in n and "003.png" in n for n in res["notes"])
    strict = TurntableDataset(DataConfig(root=str(root), image_size=SIZE), split="all")
    with pytest.raises(DataError, match="003.png"):
        evaluate(model, None, strict, small_eval(three_d=False, invariance=False), progress=False)


# ------------------------------------------------------------------------------------------------ seams and FID
def test_report_has_seam_error_and_random_fid(dataset_root, tmp_path):
    ds = TurntableDataset(DataConfig(root=str(dataset_root), image_size=SIZE), split="all")
    oracle = FixedMeshModel(load_glb(ds.load_shoe(ds.shoe_ids[0])["mesh_path"]))
    cfg = small_eval(three_d=False, invariance=False, quality=False, fid="random", fid_resize=75, fid_batch_size=4)
    res = evaluate(oracle, None, ds, cfg, out_dir=tmp_path, progress=False)
    s = res["summary"]
    assert res["fid_images"] == [res["num_shoes"] * 5] * 2  # 6 views per shoe, one of them the input
    assert s["novel/fid"] == s["novel/fid"] and s["novel/fid"] > -1e-6 and "input/fid" not in s
    assert "fid" in " ".join(res["notes"]).lower() and "random" in " ".join(res["notes"]).lower()
    for key in ("novel/seam_error", "novel/seam_baseline", "novel/seam_excess", "novel/seam_fraction"):
        assert key in s and s[key] == s[key], key
    assert s["novel/seam_excess"] == pytest.approx(s["novel/seam_error"] - s["novel/seam_baseline"], abs=1e-9) or \
        "count/novel/seam_error" in s  # shoes without seams in sight average separately
    assert "| fid | – |" in (tmp_path / "metrics.md").read_text()
    off = evaluate(oracle, None, ds, small_eval(three_d=False, invariance=False, quality=False, seams=False, fid="off"),
                   progress=False)["summary"]
    assert not any("fid" in k or "seam" in k for k in off)


def test_fid_auto_skips_and_pretrained_errors_without_weights(dataset_root, tmp_path):
    ds = TurntableDataset(DataConfig(root=str(dataset_root), image_size=SIZE), split="test")
    model = FixedMeshModel(load_template(uv_mode="file"))
    missing = str(tmp_path / "nope.pth")
    cfg = dict(three_d=False, invariance=False, quality=False, seams=False, fid_weights=missing)
    res = evaluate(model, None, ds, small_eval(fid="auto", **cfg), progress=False)
    assert "novel/fid" not in res["summary"] and any("FID skipped" in n and missing in n for n in res["notes"])
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        evaluate(model, None, ds, small_eval(fid="pretrained", **cfg), progress=False)
    with pytest.raises(ValueError, match="fid"):
        EvalConfig(fid="yes")
    with pytest.raises(ValueError, match="75"):
        EvalConfig(fid_resize=64)


def test_fid_accumulator_identical_sets_zero_shifted_positive():
    from shoerecon.eval.perceptual import FIDAccumulator, build_fid_features

    torch.manual_seed(0)
    net = build_fid_features("random", None, 75, [])
    images = torch.rand(6, 3, 24, 24) * 0.6 + 0.2
    same = FIDAccumulator(net, batch_size=4)
    same.add(images[:4], images[:4])
    same.add(images[4:], images[4:])  # accumulated over two "shoes"
    assert same.counts == (6, 6) and abs(same.value()) < 1e-6
    shifted, shifted_one_batch = FIDAccumulator(net, batch_size=4), FIDAccumulator(net, batch_size=64)
    for acc in (shifted, shifted_one_batch):
        acc.add(images, (images + 0.2).clamp(0, 1))
    assert shifted.value() > 1e-3 and shifted.value() == pytest.approx(shifted_one_batch.value(), rel=1e-4)
    further = FIDAccumulator(net, batch_size=4)
    further.add(images, (images + 0.4).clamp(0, 1))
    assert further.value() > shifted.value()
    one = FIDAccumulator(net)
    one.add(images[:1], images)
    assert one.value() is None  # a covariance needs two samples


@pytest.mark.parametrize("n1,n2,d", [(5, 7, 12), (20, 15, 6)])  # Gram form (n <= d) and the d x d form
def test_frechet_distance_matches_scipy(n1, n2, d):
    import numpy as np
    import scipy.linalg

    from shoerecon.losses.fid import frechet_distance

    g = torch.Generator().manual_seed(n1 + d)
    f1 = torch.randn(n1, d, generator=g, dtype=torch.float64)
    f2 = torch.randn(n2, d, generator=g, dtype=torch.float64) * 1.5 + 0.3
    a, b = f1.numpy(), f2.numpy()
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    assert float(frechet_distance(f1, f2)) == pytest.approx(ref, rel=1e-6, abs=1e-6)


def test_on_white_undoes_compositing():
    from shoerecon.eval.perceptual import on_white

    colour, alpha = torch.rand(2, 3, 4, 4), torch.rand(2, 1, 4, 4)
    grey = (0.5, 0.6, 0.7)
    on_grey = colour * alpha + torch.tensor(grey).view(1, 3, 1, 1) * (1 - alpha)
    assert torch.allclose(on_white(on_grey, alpha, grey), colour * alpha + (1 - alpha), atol=1e-6)
    assert torch.equal(on_white(colour, alpha), colour)  # already on white


def test_random_backbones_are_the_same_network_whatever_the_global_rng():
    """Rows of one ablation table are evaluated after different training runs: random metrics must not drift."""
    from shoerecon.eval.perceptual import build_lpips_metric

    nets = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        nets.append(build_lpips_metric("random", None, []))
    a, b = (dict(n.state_dict()) for n in nets)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def direct_validation(net, renderer, dataset, views, template_only, chunk):
    """The oracle of the quick preset: training validation's former own loop (one shoe per forward, the
    unclamped texture, the views rendered ``chunk`` at a time, IoU and PSNR averaged over every view)."""
    from shoerecon.eval.metrics import psnr, silhouette_iou
    from shoerecon.render import Cameras

    rows = []
    for sid in dataset.shoe_ids:
        shoe = dataset.load_shoe(sid, views)
        with torch.no_grad():
            out = net(shoe["input"][None])
            verts = net.template_verts[None] if template_only else out.verts
            renders = torch.cat([renderer(verts, net.faces, Cameras.from_tensor(shoe["target_cameras"][None, s:s + chunk]),
                                          out.texture, net.uvs, net.uv_faces)[0]
                                 for s in range(0, len(shoe["target_views"]), chunk)])
        rows.append((silhouette_iou(renders[:, 3:], shoe["target_masks"]).mean().item(),
                     psnr(renders[:, :3], shoe["targets"]).mean().item()))
    return {"iou": float(np.mean([r[0] for r in rows])), "psnr": float(np.mean([r[1] for r in rows]))}


@pytest.mark.parametrize("blend", ["hard", "soft"])
def test_quick_preset_is_the_training_validation(dataset_root, tiny_model, blend):
    """Training validation (``train.validation.validate``) is evaluate() with EvalConfig.quick: the same numbers
    as the direct loop, bit for bit, with the training's renderer; 14 views in chunks of 12 (soft renders
    differ in the last bit with the chunking), the bare template apart."""
    from shoerecon.render import Renderer, RendererConfig
    from shoerecon.train.validation import validate

    ds = TurntableDataset(DataConfig(root=str(dataset_root), image_size=SIZE), split="test")
    renderer = Renderer(RendererConfig(image_size=SIZE, blend=blend))
    views = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 1, 4]
    for template_only in (False, True):
        got = validate(tiny_model, renderer, ds, None, views, template_only)
        want = direct_validation(tiny_model, renderer, ds, views, template_only, 12)
        assert got == want  # bit for bit
    summary = evaluate(tiny_model, None, ds, EvalConfig.quick(views=views), progress=False, renderer=renderer)
    assert set(summary["summary"]) == {"all/silhouette_iou", "all/psnr"}  # nothing else is measured


def test_eval_config_rejects_unknown_metrics_and_groups():
    with pytest.raises(ValueError, match="image_metrics.*'iou'.*valid: silhouette_iou"):
        EvalConfig(image_metrics=["iou"])
    with pytest.raises(ValueError, match="view_groups.*'every'"):
        EvalConfig(view_groups=["every"])
    assert EvalConfig().view_groups == ["input", "novel"]  # the report's default: no all/ keys
