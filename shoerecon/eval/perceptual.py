"""The report's perceptual measures: the LPIPS and FID networks built for a mode (auto | pretrained | random |
off, with a note when one is skipped or random), and FID features gathered over many shoes for one FID at the
end. The FID maths and the Inception features are ``losses.fid``'s, LPIPS is ``losses.perceptual``'s: one
place each for the loss and the report.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor

from shoerecon.losses.fid import FIDConfig, InceptionPoolFeatures, default_weights_path, frechet_distance
from shoerecon.losses.perceptual import build_lpips, default_alexnet_path

LPIPS_MODES = ("auto", "pretrained", "random", "off")
FID_MODES = ("auto", "pretrained", "random", "off")


def build_lpips_metric(mode: str, weights: Optional[str], notes: list[str]):
    """The LPIPS module for ``mode`` (one of ``LPIPS_MODES``; ``weights``: the AlexNet file, None: the torch hub
    cache), or None (with a note saying why)."""
    if mode == "off":
        return None

    if mode == "random":
        notes.append("LPIPS uses a RANDOM backbone (lpips=random): values are not comparable to published LPIPS")
        with torch.random.fork_rng(devices=[]):  # the same random network in every run: rows stay comparable
            torch.manual_seed(0)
            return build_lpips(pretrained=False)
    path = weights or default_alexnet_path()
    if mode == "auto" and not Path(path).is_file():
        notes.append(f"LPIPS skipped: AlexNet weights not found at {path}")
        return None
    return build_lpips(pretrained=str(path) if weights else True)


def build_fid_features(mode: str, weights: Optional[str], resize: int, notes: list[str]):
    """The frozen Inception-v3 feature extractor for ``mode`` (one of ``FID_MODES``; ``weights``: its file, None:
    the torch hub cache; ``resize``: Inception input side), or None (with a note saying why)."""
    if mode == "off":
        return None

    if mode == "random":
        notes.append("FID uses a RANDOM Inception backbone (fid=random): values are not comparable to published FID")
        with torch.random.fork_rng(devices=[]):  # the same random network every time: comparable across runs
            torch.manual_seed(0)
            return InceptionPoolFeatures(FIDConfig(pretrained=False, resize=resize))
    path = weights or default_weights_path()
    if mode == "auto" and not Path(path).is_file():
        notes.append(f"FID skipped: Inception-v3 weights not found at {path}")
        return None
    if resize != 299:
        notes.append(f"FID on {resize} px Inception inputs (not 299): not comparable to standard FID")
    return InceptionPoolFeatures(FIDConfig(pretrained=True, weights=weights, resize=resize))


def on_white(rgb: Tensor, alpha: Tensor, background: Sequence[float] = (1.0, 1.0, 1.0)) -> Tensor:
    """Move images composited on ``background`` onto white: rgb + (1 - alpha) (1 - bg), exact for
    alpha compositing. rgb (B, 3, H, W), alpha (B, 1, H, W) -> (B, 3, H, W) in [0, 1]."""
    bg = rgb.new_tensor(background).view(1, 3, 1, 1)
    return (rgb + (1 - alpha.to(rgb)) * (1 - bg)).clamp(0, 1)


class FIDAccumulator:
    """Inception features of fake and real images gathered over many shoes; one FID at the end.

    Images go through the network ``batch_size`` at a time (bounded memory); only the (n, 2048) features
    are kept, on the CPU (8 KiB per image).

    >>> acc = FIDAccumulator(lambda x: x.flatten(1)[:, :4])        # any (B, 3, H, W) -> (B, d) extractor
    >>> x = torch.rand(6, 3, 2, 2)
    >>> acc.add(x, x); abs(acc.value()) < 1e-9
    True
    """
    def __init__(self, features, batch_size: int = 32, device: torch.device | str | None = None):
        self.features, self.batch_size, self.device = features, batch_size, device
        self.fake: list[Tensor] = []
        self.real: list[Tensor] = []

    @torch.no_grad()
    def _extract(self, images: Tensor) -> Tensor:
        return torch.cat([self.features(b.to(self.device or b.device).float()).double().cpu()
                          for b in images.split(self.batch_size)])

    def add(self, fake: Tensor, real: Tensor) -> None:
        """fake (B, 3, H, W), real (B', 3, H', W') in [0, 1], on white."""
        if fake.shape[0]:
            self.fake.append(self._extract(fake))
        if real.shape[0]:
            self.real.append(self._extract(real))

    @property
    def counts(self) -> tuple[int, int]:
        return sum(f.shape[0] for f in self.fake), sum(f.shape[0] for f in self.real)

    def value(self) -> Optional[float]:
        """The FID, or None with fewer than 2 images on a side."""
        if min(self.counts) < 2:
            return None
        return float(frechet_distance(torch.cat(self.fake), torch.cat(self.real)))


__all__ = ["LPIPS_MODES", "FID_MODES", "build_lpips_metric", "build_fid_features", "on_white", "FIDAccumulator"]
