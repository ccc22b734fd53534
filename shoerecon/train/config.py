"""The one experiment config: a dataclass tree loaded from YAML files with ``base:`` inheritance.

Each module owns its config dataclass (``DataConfig``, ``ModelConfig``, ...); ``ExperimentConfig``
composes them under one section each, next to ``TrainConfig`` (owned here). A YAML file holds any
subset of the sections; ``base: other.yaml`` (relative to the file) names a file it overrides,
recursively. Dicts merge deeply; any other value replaces. Command-line overrides are dotted
paths, ``train.lr=1e-3``, parsed as YAML. Unknown keys and ill-typed values are errors naming the
file, the key path and the valid keys. The v2 features are sections of their own (uv, augment, remesh,
variance) or loss terms (losses.align, losses.flow_smooth, losses.adversarial, losses.fid), each off by default,
so a config without them is v1. Keys of earlier versions (``MOVED_KEYS``, flat loss weights) are read from
their new place with a warning, so old files and checkpoints still load.

>>> cfg = config_from_dict({"train": {"lr": "1e-3", "name": "demo"}})
>>> cfg.train.lr, cfg.train.name
(0.001, 'demo')
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, Union

import yaml

from shoerecon.data import DataConfig
from shoerecon.data.augment import AugmentConfig
from shoerecon.data.generate import SyntheticDataConfig
from shoerecon.data.synthetic import SynthConfig
from shoerecon.eval.report import EvalConfig
from shoerecon.fit.refine import RefineConfig
from shoerecon.geometry.remesh import RemeshConfig
from shoerecon.geometry.uv import UVConfig
from shoerecon.losses import LOSSES, LossConfig
from shoerecon.model import ModelConfig
from shoerecon.model.variance import VarianceConfig
from shoerecon.render import RendererConfig


class ConfigError(ValueError):
    """A config file or override that does not fit the schema; the message names where and why."""


@dataclass
class TrainConfig:
    """Optimisation, schedule, logging and run-folder settings.

    Steps count optimizer steps (each process sees ``batch_size`` shoes per step). ``max_steps``
    (when set) ends training before ``epochs`` do and fixes the schedule length.
    """
    name: str = "default"
    out_dir: str = "runs"
    seed: int = 0
    epochs: int = 100
    max_steps: int | None = None
    max_minutes: float | None = None    # wall-clock budget: stop (checkpoint, final eval) once exceeded
    batch_size: int = 8
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_schedule: Literal["constant", "cosine", "step", "linear"] = "constant"
    warmup_steps: int = 0
    lr_min_factor: float = 0.0          # cosine/linear: final lr = lr * lr_min_factor
    lr_step_every: int = 10000          # step schedule: multiply by lr_gamma every this many steps
    lr_gamma: float = 0.5
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"   # GPU only; CPU runs in fp32
    grad_clip: float | None = 1.0       # max global grad norm; None: no clipping
    log_every: int = 10
    sample_every: int = 200
    val_every: int = 500                # steps; 0: only at the end
    checkpoint_every: int = 1000        # periodic step_XXXXXXX.pt besides last.pt; 0: last.pt only
    keep_checkpoints: int = 3           # periodic checkpoints kept (oldest removed); 0: keep all
    num_workers: int = 0
    val_shoes: int | None = None        # None: every held-out shoe
    val_views: list[int] | None = None  # None: every view of each held-out shoe
    val_blend: Literal["hard", "soft"] = "hard"   # hard: exact coverage silhouettes (like the data) for IoU
    sample_shoes: int = 4               # rows in the sample grids
    export_shoes: int = 4               # validation shoes exported at the end (0: none)
    export_formats: list[str] = field(default_factory=lambda: ["obj", "glb"])
    final_eval_shoes: int | None = 8    # shoes of the full end-of-run report (eval/); 0: skip, None: all
    template: str | None = None         # None: the packaged template (its UV layout: the uv: section)
    device: str = "auto"                # auto | cpu | cuda (accelerate picks within the choice)
    cpu_threads: int | None = None      # torch CPU threads per process; None: torch's default (all cores)
    max_skipped_steps: int = 20         # stop (error) after this many consecutive non-finite steps; 0: never
    divergence_factor: float | None = 100.0  # stop when a loss exceeds this x the recent median; None: never

    def __post_init__(self) -> None:
        from shoerecon.train.guards import check_train_values

        check_train_values(self)


@dataclass
class ExperimentConfig:
    """Everything one run needs.

    v1 sections: train, data, synthetic, synth, model, losses (every term's weight and options), render,
    eval (the report written at the end of training). v2 sections, all off by default: uv (layout mode),
    augment (input view), remesh (every_epochs > 0), variance (mode != none); the v2 losses are terms of
    ``losses`` (align, flow_smooth, adversarial, fid) with weight 0. refine: predict-time fitting to
    the photo (``shoerecon.fit``; steps 0 = off).
    """
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    render: RendererConfig = field(default_factory=RendererConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    uv: UVConfig = field(default_factory=UVConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    remesh: RemeshConfig = field(default_factory=RemeshConfig)
    variance: VarianceConfig = field(default_factory=VarianceConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)  # predict/eval --refine: fit to the photo


# Keys that moved: old path -> new path (files and checkpoints of earlier runs still load, with a warning).
MOVED_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("train", "uv_mode"): ("uv", "mode"),
    # loss options that sat next to the weights, and the v2 loss sections, now live in their term's section
    ("losses", "image_masked"): ("losses", "image", "masked"),
    ("losses", "lpips_weights"): ("losses", "perceptual", "weights"),
    ("losses", "lpips_pretrained"): ("losses", "perceptual", "pretrained"),
    ("losses", "laplacian_on"): ("losses", "laplacian", "smooth"),
    ("losses", "laplacian_reduction"): ("losses", "laplacian", "reduction"),
    ("losses", "flatten_reduction"): ("losses", "flatten", "reduction"),
    ("losses", "edge_length_mode"): ("losses", "edge_length", "mode"),
    ("align",): ("losses", "align"),
    ("flow_smooth",): ("losses", "flow_smooth"),
    ("gan",): ("losses", "adversarial"),
    ("fid",): ("losses", "fid"),
}


def _plain_copy(tree: Mapping) -> dict:
    return {k: _plain_copy(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def migrate_moved_keys(tree: Mapping, source: str = "config") -> dict:
    """A copy of ``tree`` in the current layout (one warning per old key).

    ``losses.<term>: w`` (a bare weight) becomes ``losses.<term>.weight: w``; keys of ``MOVED_KEYS`` move to
    their new path (merged into what is there; the new place wins where both are set).

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     migrate_moved_keys({"train": {"uv_mode": "spherical", "lr": 1.0}, "losses": {"align": 0.1},
    ...                         "align": {"penalty": "l1"}})
    {'train': {'lr': 1.0}, 'losses': {'align': {'penalty': 'l1', 'weight': 0.1}}, 'uv': {'mode': 'spherical'}}
    """
    tree = _plain_copy(tree)
    losses = tree.get("losses")
    if isinstance(losses, dict):
        for name in LOSSES:
            value = losses.get(name)
            if value is not None and not isinstance(value, Mapping):
                warnings.warn(f"{source}: 'losses.{name}: {value}' is the old form of 'losses.{name}.weight: "
                              f"{value}'; reading it as that")
                losses[name] = {"weight": value}
    for old, new in MOVED_KEYS.items():
        parent = tree
        for key in old[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or old[-1] not in parent:
            continue
        value = parent.pop(old[-1])
        warnings.warn(f"{source}: '{'.'.join(old)}' moved to '{'.'.join(new)}'; reading it from there")
        node = tree
        for key in new[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            here = node.get(new[-1])
            if isinstance(value, Mapping) and isinstance(here, Mapping):
                node[new[-1]] = deep_merge(value, here)
            elif here is None:
                node[new[-1]] = value
    return tree


# ------------------------------------------------------------------------------------------ files
def read_yaml_mapping(path: str | Path, what: str = "config") -> dict:
    """The top-level mapping of a YAML file; ConfigError naming the file if it is missing, invalid or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    return raw


def read_yaml_tree(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML file merged over its ``base:`` chain (paths relative to each file). Each file is
    checked against the schema on its own, so errors name the file that has the bad key."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"{path}: circular 'base:' chain: {chain}")
    if not path.is_file():
        where = f" (named as base by {_seen[-1]})" if _seen else ""
        raise ConfigError(f"config file not found: {path}{where}")
    raw = read_yaml_mapping(path)
    base = raw.pop("base", None)
    raw = migrate_moved_keys(raw, str(path))
    check_tree(raw, ExperimentConfig, source=str(path))
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be a file path, got {base!r}")
    return deep_merge(read_yaml_tree(path.parent / base, (*_seen, path)), raw)


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Dicts merge key by key (recursively); any other override value replaces the base value.

    >>> deep_merge({"a": {"x": 1, "y": 2}, "b": [1]}, {"a": {"y": 3}, "b": [2]})
    {'a': {'x': 1, 'y': 3}, 'b': [2]}
    """
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> dict:
    """``"train.lr=1e-3"`` -> ``{"train": {"lr": "1e-3" parsed as YAML}}``.

    >>> parse_override("train.betas=[0.5, 0.9]")
    {'train': {'betas': [0.5, 0.9]}}
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. train.lr=1e-3")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: empty key in {key!r}")
    try:
        node: Any = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {err}") from err
    for part in reversed(parts):
        node = {part: node}
    return node


def load_config(path: str | Path | None = None, overrides: Sequence[str] | None = None) -> ExperimentConfig:
    """Load a YAML file (with its ``base:`` chain), apply dotted overrides, type-check, build the tree."""
    tree = read_yaml_tree(path) if path is not None else {}
    source = str(path) if path is not None else "config"
    steps = []  # (override text, tree with the overrides up to it)
    merged = tree
    for text in overrides or ():
        override = migrate_moved_keys(parse_override(text), f"override {text!r}")
        check_tree(override, ExperimentConfig, source=f"override {text!r}")
        merged = deep_merge(merged, override)
        steps.append((text, merged))
    try:
        return config_from_dict(merged, source=source)
    except ConfigError:
        if steps:
            blame_override(tree, steps, source)
        raise


def blame_override(tree: Mapping, steps: Sequence[tuple[str, Mapping]], source: str) -> None:
    """Raise the ConfigError of the first ``--set`` that breaks a config the file alone builds, naming that
    override instead of the file (a wrong type or value on the command line is not the YAML's fault)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moved-key notices were shown once already
        try:
            config_from_dict(tree, source=source)
        except ConfigError:
            return  # the file itself is broken: its own error stands
        for text, partial in steps:
            config_from_dict(partial, source=f"override {text!r}")


def config_to_dict(cfg: Any) -> dict:
    """Plain dict/list/scalar tree (tuples become lists) ready for YAML."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(cfg)


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config; ``load_config(path)`` gives back an equal config."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def config_from_dict(tree: Mapping, source: str = "config", cls: type = ExperimentConfig) -> Any:
    """Build (and type-check) a config dataclass from a nested dict; missing keys keep defaults."""
    if cls is ExperimentConfig:
        tree = migrate_moved_keys(tree, source)
    check_tree(tree, cls, source)
    return _build(cls, tree, source, ())


# ------------------------------------------------------------------------------------------ schema
def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def check_tree(tree: Mapping, cls: type, source: str, prefix: tuple[str, ...] = ()) -> None:
    """Raise ConfigError for keys that ``cls`` (recursively) does not have, listing the valid ones."""
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{source}: '{'.'.join(prefix) or '<top>'}' must be a mapping, got {tree!r}")
    fields = _fields(cls)
    for key, value in tree.items():
        path = (*prefix, str(key))
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"in section '{'.'.join(prefix)}'" if prefix else "at the top level"
            raise ConfigError(
                f"{source}: unknown key '{'.'.join(path)}'{hint}; valid keys {where}: {', '.join(fields)}"
            )
        sub = _dataclass_in(fields[key])
        if sub is not None and isinstance(value, Mapping):
            check_tree(value, sub, source, path)


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp) if _is_union(tp) else ():
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _build(cls: type, tree: Mapping, source: str, prefix: tuple[str, ...]) -> Any:
    fields = _fields(cls)
    default = cls()
    kwargs = {}
    for key, value in tree.items():
        path = (*prefix, key)
        tp = fields[key]
        sub = _dataclass_in(tp)
        if sub is not None and isinstance(value, Mapping):
            current = getattr(default, key)
            base = config_to_dict(current) if dataclasses.is_dataclass(current) else {}
            kwargs[key] = _build(sub, deep_merge(base, value), source, path)
        else:
            kwargs[key] = coerce(value, tp, f"{source}: '{'.'.join(path)}'")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: section '{'.'.join(prefix) or '<top>'}': {err}") from err


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and numeric strings
    (PyYAML reads ``1e-4`` as a string) to floats. Raise ConfigError naming ``where`` otherwise.

    >>> coerce([1, 2], tuple[float, float], "x")
    (1.0, 2.0)
    >>> coerce("fast", Literal["a", "b"], "train.mode")
    Traceback (most recent call last):
    ...
    shoerecon.train.config.ConfigError: train.mode: expected one of ['a', 'b'], got 'fast'
    """
    if tp is Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err).split(": ", 1)[-1])
        raise ConfigError(f"{where}: {value!r} fits none of {_type_name(tp)} ({'; '.join(errors)})")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (tuple, list) or tp in (tuple, list):
        if isinstance(value, (list, tuple)):
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(value) != len(args):
                    raise ConfigError(f"{where}: expected {len(args)} values ({_type_name(tp)}), got {list(value)!r}")
                items = [coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
            else:
                item_tp = args[0] if args else Any
                items = [coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if (origin or tp) is tuple else items
    elif origin is dict or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:  # an annotation we do not model: accept as is
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")
