"""Options that trade accuracy for speed (issue 15) are off by default, and v2_fast.yaml differs from v2_full.yaml
only by the trades it names (so experiments/ablate.py's v2_fast row measures exactly what they cost)."""
import inspect
from pathlib import Path

import pytest

from shoerecon.data import DataConfig
from shoerecon.data.cache import build_cache
from shoerecon.losses import LossConfig
from shoerecon.losses.adversarial import AdversarialConfig
from shoerecon.losses.fid import FIDConfig
from shoerecon.train.config import config_to_dict, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


def _leaves(tree, prefix=()):
    """{dotted key: value} of a nested dict."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, (*prefix, k)))
        else:
            out[".".join((*prefix, k))] = v
    return out


def test_speed_trades_default_to_the_method():
    losses = LossConfig()
    assert losses.novel_every == 1 and losses.adversarial.critic_every == 1  # every step: the method as published
    assert AdversarialConfig().critic_every == 1
    assert FIDConfig().resize == 299  # Inception's own input size; 75 is a budget's choice, not a default
    assert DataConfig().cache == "auto"  # reads a cache only when present and up to date (exact for float32)
    assert inspect.signature(build_cache).parameters["dtype"].default == "float32"  # uint8 rounds: opt-in


def test_v2_full_is_the_method_and_v2_fast_names_its_trades():
    full = load_config(CONFIGS / "v2_full.yaml")
    fast = load_config(CONFIGS / "v2_fast.yaml")
    assert (full.losses.novel_every, full.losses.adversarial.critic_every) == (1, 1)
    a, b = _leaves(config_to_dict(full)), _leaves(config_to_dict(fast))
    assert a.keys() == b.keys()
    assert {k for k in a if a[k] != b[k]} == {"train.name", "losses.novel_every", "losses.adversarial.critic_every"}
    assert (fast.losses.novel_every, fast.losses.adversarial.critic_every) == (8, 2)


def test_cache_setting_typo_lists_the_valid_modes():
    with pytest.raises(ValueError, match="auto.*never.*require") as err:
        DataConfig(cache="off")
    assert "'off'" not in str(err.value).split("got")[0]  # 'off' only as the rejected value, not as a valid one
