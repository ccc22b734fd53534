import warnings
from pathlib import Path

import pytest
import yaml

from shoerecon.train.config import (
    ConfigError, ExperimentConfig, TrainConfig, config_from_dict, config_to_dict, load_config, save_config,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_file():
    cfg = load_config(None)
    assert cfg == ExperimentConfig()


def test_base_inheritance_is_relative_to_file_and_deep_merges(tmp_path):
    write(tmp_path / "configs/base/root.yaml", "train:\n  lr: 0.5\n  batch_size: 3\n  name: root\n")
    write(tmp_path / "configs/mid.yaml", "base: base/root.yaml\ntrain:\n  batch_size: 5\n")
    leaf = write(tmp_path / "configs/leaf/leaf.yaml", "base: ../mid.yaml\ntrain:\n  name: leaf\n")
    cfg = load_config(leaf)
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.name) == (0.5, 5, "leaf")
    # untouched keys keep the dataclass defaults
    assert cfg.train.seed == TrainConfig().seed


def test_overrides_win_and_parse_yaml(tmp_path):
    f = write(tmp_path / "a.yaml", "train:\n  lr: 0.5\n")
    cfg = load_config(f, ["train.lr=1e-3", "train.betas=[0.5, 0.99]", "train.max_steps=7", "train.grad_clip=null"])
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.betas == (0.5, 0.99)
    assert cfg.train.max_steps == 7 and cfg.train.grad_clip is None


def test_yaml_scientific_notation_string_becomes_float(tmp_path):
    # PyYAML reads "1e-4" (no dot) as a string
    assert yaml.safe_load("lr: 1e-4")["lr"] == "1e-4"
    cfg = load_config(write(tmp_path / "a.yaml", "train:\n  lr: 1e-4\n"))
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)


def test_unknown_key_names_file_key_path_and_valid_keys(tmp_path):
    write(tmp_path / "base.yaml", "train:\n  lr: 0.1\n")
    f = write(tmp_path / "bad.yaml", "base: base.yaml\ntrain:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    msg = str(info.value)
    assert str(f.resolve()) in msg
    assert "train.lrr" in msg
    assert "did you mean 'lr'" in msg
    for valid in ("lr", "batch_size", "template", "mixed_precision"):
        assert valid in msg


def test_unknown_key_in_base_names_the_base_file(tmp_path):
    base = write(tmp_path / "sub/base.yaml", "nosuchsection:\n  a: 1\n")
    f = write(tmp_path / "leaf.yaml", "base: sub/base.yaml\n")
    with pytest.raises(ConfigError, match="unknown key 'nosuchsection'") as info:
        load_config(f)
    assert str(base.resolve()) in str(info.value)
    assert "train" in str(info.value) and "losses" in str(info.value)


def test_unknown_override_key_is_an_error():
    with pytest.raises(ConfigError, match=r"override 'train.nope=1'.*unknown key 'train.nope'"):
        load_config(None, ["train.nope=1"])


@pytest.mark.parametrize("override, fragment", [
    ("train.batch_size=2.5", "train.batch_size"),
    ("train.batch_size=true", "train.batch_size"),
    ("train.lr=fast", "train.lr"),
    ("uv.mode=cylinder", "expected one of ['islands', 'spherical']"),
    ("train.betas=[0.9]", "train.betas"),
    ("train.name=[1]", "train.name"),
])
def test_type_errors_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert fragment in str(info.value)


def test_circular_base_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "a.yaml")


def test_missing_base_file_names_the_referrer(tmp_path):
    f = write(tmp_path / "a.yaml", "base: gone.yaml\n")
    with pytest.raises(ConfigError, match="gone.yaml.*named as base by"):
        load_config(f)


def test_section_must_be_mapping(tmp_path):
    with pytest.raises(ConfigError, match="'train': expected TrainConfig, got 3"):
        load_config(write(tmp_path / "a.yaml", "train: 3\n"))


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["train.lr=0.003", "train.betas=[0.1, 0.2]", "train.val_views=[0, 9]", "train.name=x"])
    save_config(cfg, tmp_path / "run/config.yaml")
    again = load_config(tmp_path / "run/config.yaml")
    assert config_to_dict(again) == config_to_dict(cfg)
    assert again.train == cfg.train and again.data == cfg.data and again.model == cfg.model


@pytest.mark.parametrize("name", ["base.yaml", "v1_report.yaml", "quickstart.yaml"])
def test_shipped_configs_load(name):
    path = Path(__file__).parents[2] / "experiments/configs" / name
    cfg = load_config(path)
    assert cfg.render.image_size == cfg.data.image_size


def test_moved_key_is_read_from_its_new_place(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("train:\n  uv_mode: spherical\n")
    with pytest.warns(UserWarning, match="moved to 'uv.mode'"):
        cfg = load_config(path)
    assert cfg.uv.mode == "spherical"


def test_v2_sections_are_off_by_default():
    cfg = ExperimentConfig()
    assert (cfg.uv.mode, cfg.augment.enabled, cfg.remesh.every_epochs, cfg.variance.mode) == (
        "islands", False, 0, "none")
    c = cfg.losses
    assert c.align.weight == c.flow_smooth.weight == c.adversarial.weight == c.fid.weight == 0


def test_v2_section_keys_are_checked():
    with pytest.raises(ConfigError, match="unknown key 'losses.adversarial.critic.widht'.*"
                                          "valid keys in section 'losses.adversarial.critic'"):
        load_config(None, ["losses.adversarial.critic.widht=3"])
    cfg = load_config(None, ["losses.adversarial.critic.base_channels=8", "variance.mode=multiply",
                             "remesh.every_epochs=2"])
    assert (cfg.losses.adversarial.critic.base_channels, cfg.variance.mode, cfg.remesh.every_epochs) == (
        8, "multiply", 2)


def test_loss_options_sit_with_their_weight(tmp_path):
    path = tmp_path / "new.yaml"
    path.write_text("losses:\n  align: {weight: 0.2, penalty: huber}\n  laplacian: {smooth: verts}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current layout loads without a warning
        cfg = load_config(path, ["losses.fid.weight=0.5", "losses.fid.resize=75"])
    assert (cfg.losses.align.weight, cfg.losses.align.penalty) == (0.2, "huber")
    assert (cfg.losses.laplacian.weight, cfg.losses.laplacian.smooth) == (0.1, "verts")  # default weight kept
    assert (cfg.losses.fid.weight, cfg.losses.fid.resize) == (0.5, 75)
    with pytest.raises(ConfigError, match="unknown key 'losses.align.penalti'.*did you mean 'penalty'"):
        load_config(None, ["losses.align.penalti=l1"])


def test_old_loss_keys_migrate_with_a_warning(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("losses:\n  align: 0.1\n  fid: 0.001\n  image_masked: true\n  lpips_pretrained: false\n"
                    "  laplacian_on: verts\n  flatten: 0.002\n"
                    "align:\n  penalty: l1\ngan:\n  critic:\n    base_channels: 4\nfid:\n  resize: 75\n")
    with pytest.warns(UserWarning) as record:
        cfg = load_config(path, ["losses.adversarial=0.01", "gan.lr=0.001"])
    messages = " ".join(str(w.message) for w in record)
    assert "'losses.align: 0.1' is the old form of 'losses.align.weight: 0.1'" in messages
    assert "'gan' moved to 'losses.adversarial'" in messages
    c = cfg.losses
    assert (c.align.weight, c.align.penalty, c.fid.weight, c.fid.resize) == (0.1, "l1", 0.001, 75)
    assert (c.image.masked, c.perceptual.pretrained, c.laplacian.smooth, c.flatten.weight) == (True, False, "verts", 0.002)
    assert (c.adversarial.weight, c.adversarial.lr, c.adversarial.critic.base_channels) == (0.01, 0.001, 4)


def test_old_checkpoint_config_still_builds():
    """A config dict as written by checkpoints before the loss registry (flat weights, v2 sections)."""
    old = {"losses": {"silhouette": 0.9, "image": 0.1, "image_masked": False, "perceptual": 0.0,
                      "lpips_weights": None, "lpips_pretrained": False, "flow": 0.1, "laplacian": 0.1,
                      "laplacian_on": "offsets", "laplacian_reduction": "sum", "flatten": 0.001,
                      "flatten_reduction": "sum", "normal_consistency": 0.0, "edge_length": 0.0,
                      "edge_length_mode": "template", "align": 0.0, "flow_smooth": 0.1, "adversarial": 0.0,
                      "fid": 0.0, "novel_views": 2},
           "align": {"penalty": "l2", "huber_delta": 0.05, "detach_target": True},
           "flow_smooth": {"order": 2, "penalty": "l1", "eps": 0.001},
           "gan": {"gp_lambda": 10.0, "critic": {"base_channels": 4}}, "fid": {"pretrained": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = config_from_dict(old)
    assert (cfg.losses.flow_smooth.weight, cfg.losses.flow_smooth.order, cfg.losses.perceptual.pretrained) == (
        0.1, 2, False)
    assert cfg.losses.adversarial.critic.base_channels == 4 and cfg.losses.fid.pretrained is False
