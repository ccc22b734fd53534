"""The loss registry: every training loss is a *term* = a function plus a config dataclass (weight + options).

A term lives in one file of ``shoerecon/losses/``::

    @dataclass
    class MyLossConfig(TermConfig):
        weight: float = 0.0          # 0: off, never computed
        power: float = 2.0           # the term's own options sit next to its weight

    @register_loss("my_loss", MyLossConfig)
    def my_loss(ctx: LossContext, cfg: MyLossConfig) -> Tensor:
        return (ctx.out.offsets.abs() ** cfg.power).mean()

and is then a config section ``losses.my_loss: {weight: ..., power: ...}``, computed by ``compute_losses``
when its weight is > 0. Terms that need a module (LPIPS, a critic, Inception) give ``build=``: a function
``cfg -> nn.Module`` called once (``build_loss_modules``) when the weight is > 0; the term finds it in
``ctx.modules[name]``. Registration order is summation order (the built-in terms register in
``shoerecon/losses/__init__.py``'s order; any other module of this package is imported after them).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from torch import Tensor, nn

from shoerecon.geometry.topology import Template


@dataclass
class TermConfig:
    """Base of every term's config: ``weight`` (>= 0; 0 means the term is not computed)."""

    weight: float = 0.0

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"{type(self).__name__}.weight must be >= 0, got {self.weight}")


def check_choice(cfg: Any, name: str, valid: tuple[str, ...]) -> None:
    """ValueError naming the option and the valid values when ``cfg.<name>`` is not one of ``valid``."""
    if getattr(cfg, name) not in valid:
        raise ValueError(f"{type(cfg).__name__}.{name}={getattr(cfg, name)!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class LossTerm:
    """A registered term: ``fn(ctx, cfg) -> () Tensor`` (unweighted), its config class, optional module builder."""

    name: str
    config: type
    fn: Callable[["LossContext", Any], Tensor]
    build: Optional[Callable[[Any], Optional[nn.Module]]] = None


LOSSES: dict[str, LossTerm] = {}


def register_loss(name: str, config: type, build: Optional[Callable[[Any], Optional[nn.Module]]] = None):
    """Decorator registering ``fn`` as the term ``name`` with config dataclass ``config`` (a TermConfig)."""
    if not (isinstance(config, type) and issubclass(config, TermConfig)):
        raise TypeError(f"loss {name!r}: its config must be a TermConfig dataclass, got {config!r}")

    def decorate(fn: Callable) -> Callable:
        if name in LOSSES and LOSSES[name].fn is not fn:
            raise ValueError(f"loss {name!r} is registered twice ({LOSSES[name].fn.__module__}, {fn.__module__})")
        LOSSES[name] = LossTerm(name, config, fn, build)
        return fn

    return decorate


def at_least_fp32(x: Tensor) -> Tensor:
    """Half-precision floats as float32 (losses sum over images); anything else unchanged."""
    return x.float() if x.is_floating_point() and x.element_size() < 4 else x


@dataclass
class LossContext:
    """Everything a term may read. Built once per step by the training system; terms take what they need.

    Attributes:
        out: the network output (``ReconOutput``: verts, offsets (B, N, 3), flow (B, Ht, Wt, 2), texture,
            uv_mask (Ht, Wt) or None).
        renders: (B, V, 4, H, W) RGBA renders of ``out.verts`` from the target cameras.
        batch: the training batch (``shoerecon.data.batch.TrainBatch`` or a dict with its keys: "targets"
            (B, V, 3, H, W), "target_masks" (B, V, 1, H, W), "input" (B, 3, H', W'), "input_mask" (B, 1, H', W'),
            ...); terms read it by key.
        template: the network's current ``geometry.Template`` (faces, UV layout and their cached derived data:
            edges, Laplacian operands, UV chart labels, ...); ``faces``, ``uvs``, ``uv_faces`` and
            ``chart_labels`` below read it.
        input_cameras: cameras of the input views, batch shape (B,) (align).
        input_transform: (B, 2, 3) map from the input camera's image grid to the network input's (align).
        modules: the built modules of the terms that have one (``build_loss_modules``), by term name.
        novel: renders from random azimuths and the batch's real views (``fake`` (M, 4, H, W), ``real``
            (N, 4, H, W), ``generator``, ``accelerator``, ``train_critic``) for the novel-view terms.
        stats: extra scalars a term wants logged (e.g. the critic's), name -> float.
    """
    out: Any
    renders: Tensor
    batch: Mapping[str, Any]
    template: Template
    input_cameras: Optional[Any] = None
    input_transform: Optional[Tensor] = None
    modules: Mapping[str, nn.Module] = field(default_factory=dict)
    novel: Optional[Any] = None
    stats: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.renders = at_least_fp32(self.renders)  # mixed precision: losses (sums over images) in float32

    @property
    def faces(self) -> Tensor:
        """(F, 3) long faces of the template."""
        return self.template.faces

    @property
    def uvs(self) -> Optional[Tensor]:
        """(T, 2) UV vertices of the template's layout; None without one."""
        return self.template.uvs

    @property
    def uv_faces(self) -> Optional[Tensor]:
        """(F, 3) long UV faces of the template's layout; None without one."""
        return self.template.uv_faces

    @property
    def chart_labels(self) -> Optional[Tensor]:
        """(Ht, Wt) long UV chart per texel, -1 unused (flow_smooth), computed once per template."""
        return self.template.chart_labels

    @functools.cached_property
    def targets(self) -> tuple[Tensor, Tensor]:
        """(targets (B, V, 3, H, W), target masks (B, V, 1, H, W)) in float32; checked against the renders."""
        targets, masks = at_least_fp32(self.batch["targets"]), at_least_fp32(self.batch["target_masks"])
        if targets.shape != self.renders[:, :, :3].shape or masks.shape != self.renders[:, :, 3:4].shape:
            raise ValueError(f"renders {tuple(self.renders.shape)} do not match targets {tuple(targets.shape)} / "
                             f"target_masks {tuple(masks.shape)}")
        return targets, masks

    def module(self, name: str) -> nn.Module:
        """The built module of term ``name``; a clear error when the caller did not build it."""
        if name not in self.modules or self.modules[name] is None:
            raise ValueError(f"losses.{name}.weight > 0 needs its module: pass "
                             f"modules=build_loss_modules(cfg) to the LossContext")
        return self.modules[name]


def enabled_terms(cfg: Any) -> list[LossTerm]:
    """The registered terms whose weight in ``cfg`` (a LossConfig) is > 0, in registration order."""
    return [term for name, term in LOSSES.items() if getattr(cfg, name).weight]


def build_loss_modules(cfg: Any) -> nn.ModuleDict:
    """The modules of the enabled terms that need one (LPIPS, the critic, Inception), by term name."""
    modules = nn.ModuleDict()
    for term in enabled_terms(cfg):
        if term.build is not None:
            module = term.build(getattr(cfg, term.name))
            if module is not None:
                modules[term.name] = module
    return modules


def compute_losses(cfg: Any, ctx: LossContext) -> dict[str, Tensor]:
    """Every enabled term (unweighted, for logging) and their weighted sum ``"total"``.

    Args:
        cfg: a LossConfig (one TermConfig per registered term). ctx: the step's LossContext.
    Returns:
        {name: () tensor} for every term with a non-zero weight, plus "total" (sum in registration order).
    """
    terms = {term.name: term.fn(ctx, getattr(cfg, term.name)) for term in enabled_terms(cfg)}
    terms["total"] = sum((getattr(cfg, name).weight * value for name, value in terms.items()),
                         ctx.renders.new_zeros(()))
    return terms

