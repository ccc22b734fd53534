"""Training: the experiment config schema, atomic self-contained checkpoints and the accelerate trainer.

``load_config(path, overrides)`` -> ``ExperimentConfig``; ``load_for_inference(checkpoint)`` ->
``(ShoeReconNet, ExperimentConfig)``; ``shoerecon.train.trainer.Trainer(cfg).fit()`` trains
(``experiments/run.py`` is the command-line entry point).
"""
from shoerecon.train.checkpoint import load_checkpoint, load_for_inference, save_checkpoint
from shoerecon.train.config import ConfigError, ExperimentConfig, TrainConfig, load_config, save_config

__all__ = [
    "ExperimentConfig", "TrainConfig", "ConfigError", "load_config", "save_config",
    "save_checkpoint", "load_checkpoint", "load_for_inference",
]
