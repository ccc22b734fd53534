"""The contract between the shoe's shape and its appearance.

The shape modules build a multi-part shoe and rasterise its UV layout into texture space, giving
for every texel the 3D point it maps to (a ``TexelGBuffer``); the material modules paint each
texel from that alone. Neither side needs to know how the other works.

Frame (DESIGN): +Y up, the length along X with the toe at +X, the lateral side of a right shoe
at +Z; the shoe is normalised to a centred bounding box with longest extent 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Part ids index this tuple. A part is one closed surface of the ground-truth shoe.
PARTS: tuple[str, ...] = (
    "sole",          # outsole + midsole: local height 0 = ground, 1 = top of the midsole
    "upper",         # toe box, vamp, quarters
    "tongue",
    "collar",        # padded collar around the opening
    "heel_counter",
    "pull_tab",
    "laces",         # lace strips / eyelet rows
    "overlay",       # optional overlays (toe cap, eyestay, side panels)
    "lining",        # visible inside of the opening
)
PART_ID: dict[str, int] = {name: i for i, name in enumerate(PARTS)}


@dataclass
class TexelGBuffer:
    """What the texture painter knows about every texel of a (T, T) texture (row 0 = v = 1).

    Attributes:
        position: (T, T, 3) float32, the 3D point (normalised shoe frame) the texel centre maps to.
        normal: (T, T, 3) float32, unit outward surface normal there.
        part: (T, T) int16, index into ``PARTS``; -1 where no face covers the texel.
        local: (T, T, 2) float32 in [0, 1], part-local coordinates: (along the length, heel 0 -> toe 1;
            up the part, its bottom 0 -> its top 1). For the sole the second one is the height in the sole.
    """

    position: np.ndarray
    normal: np.ndarray
    part: np.ndarray
    local: np.ndarray

    def __post_init__(self) -> None:
        t = self.part.shape
        if len(t) != 2 or self.position.shape != t + (3,) or self.normal.shape != t + (3,) or self.local.shape != t + (2,):
            raise ValueError(
                f"TexelGBuffer: shapes must be position/normal (T,T,3), part (T,T), local (T,T,2); got "
                f"{self.position.shape}, {self.normal.shape}, {self.part.shape}, {self.local.shape}"
            )

    @property
    def size(self) -> int:
        return int(self.part.shape[0])

    def mask(self, name: str) -> np.ndarray:
        """(T, T) bool: the texels of part ``name``."""
        return self.part == PART_ID[name]
