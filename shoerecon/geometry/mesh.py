"""The triangle mesh shared by every module: geometry, UV layout and an optional texture image.

Conventions (DESIGN.md): faces are counter-clockwise seen from outside (outward normals), UV in
[0, 1] with v up, so texture row 0 is v = 1.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch import Tensor


def check_uv_layout(faces: Tensor, uvs: Optional[Tensor], uv_faces: Optional[Tensor], owner: str = "") -> None:
    """ValueError (prefixed ``owner: ``) unless uvs and uv_faces come together and uv_faces (F, 3) matches faces.

    The one check of a UV layout against its faces, shared by ``Mesh``, ``Meshes`` and ``geometry.Template``.
    """
    prefix = f"{owner}: " if owner else ""
    if (uvs is None) != (uv_faces is None):
        raise ValueError(f"{prefix}uvs and uv_faces come together")
    if uv_faces is not None and uv_faces.shape != faces.shape:
        raise ValueError(f"{prefix}uv_faces {tuple(uv_faces.shape)} must match faces {tuple(faces.shape)}")


@dataclass
class Mesh:
    """One triangle mesh.

    Attributes:
        verts: (N, 3) float positions.
        faces: (F, 3) long vertex indices, counter-clockwise seen from outside.
        uvs: (T, 2) float texture coordinates in [0, 1], v up; None if the mesh has no UV layout.
        uv_faces: (F, 3) long indices into ``uvs`` (UV seams split UV vertices, not positions).
        texture: (3, Ht, Wt) float in [0, 1], row 0 is v = 1; None if untextured.
    """
    verts: Tensor
    faces: Tensor
    uvs: Optional[Tensor] = None
    uv_faces: Optional[Tensor] = None
    texture: Optional[Tensor] = None

    def __post_init__(self) -> None:
        if self.verts.ndim != 2 or self.verts.shape[-1] != 3:
            raise ValueError(f"verts must be (N, 3), got {tuple(self.verts.shape)}")
        if self.faces.ndim != 2 or self.faces.shape[-1] != 3:
            raise ValueError(f"faces must be (F, 3), got {tuple(self.faces.shape)}")
        check_uv_layout(self.faces, self.uvs, self.uv_faces)

    @property
    def num_verts(self) -> int:
        return self.verts.shape[0]

    @property
    def num_faces(self) -> int:
        return self.faces.shape[0]

    def to(self, device=None, dtype=None) -> "Mesh":
        move = lambda t, floating: None if t is None else t.to(device=device, dtype=dtype if floating else None)  # noqa: E731
        return Mesh(move(self.verts, True), move(self.faces, False), move(self.uvs, True), move(self.uv_faces, False), move(self.texture, True))

    def with_verts(self, verts: Tensor) -> "Mesh":
        """The same topology, UV layout and texture on new positions (N, 3)."""
        return replace(self, verts=verts)

    def face_normals(self) -> Tensor:
        """(F, 3) unit face normals."""
        return face_normals(self.verts, self.faces)

    def vertex_normals(self) -> Tensor:
        """(N, 3) unit vertex normals, area-weighted mean of the adjacent face normals."""
        return vertex_normals(self.verts, self.faces)

    def edges(self) -> Tensor:
        """(E, 2) unique undirected edges, smaller index first."""
        return unique_edges(self.faces)


def face_areas_normals(verts: Tensor, faces: Tensor) -> Tensor:
    """Unnormalised face normals, length = 2 * area. verts (..., N, 3), faces (F, 3) -> (..., F, 3)."""
    v0, v1, v2 = (verts[..., faces[:, i], :] for i in range(3))
    return torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)


def face_normals(verts: Tensor, faces: Tensor) -> Tensor:
    """Unit face normals. verts (..., N, 3), faces (F, 3) -> (..., F, 3)."""
    return torch.nn.functional.normalize(face_areas_normals(verts, faces), dim=-1, eps=1e-12)


def vertex_normals(verts: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted unit vertex normals. verts (..., N, 3), faces (F, 3) -> (..., N, 3)."""
    fn = face_areas_normals(verts, faces)
    normals = torch.zeros_like(verts)
    for i in range(3):
        normals = normals.index_add(-2, faces[:, i], fn)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def unique_edges(faces: Tensor) -> Tensor:
    """(E, 2) unique undirected edges of a face list (F, 3), smaller index first, sorted lexicographically.

    Uses a 1D key ``v0 * N + v1`` (much faster than ``torch.unique(dim=0)``); ``geometry.laplacian.mesh_edges``
    is this function cached per faces tensor.

    >>> unique_edges(torch.tensor([[0, 1, 2], [2, 1, 3]])).tolist()
    [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    """
    ends = torch.sort(torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), dim=1).values
    n = int(faces.max()) + 1 if faces.numel() else 1
    key = torch.unique(ends[:, 0] * n + ends[:, 1])
    return torch.stack([key // n, key % n], dim=-1)


def normalize_verts(verts: Tensor, extent: float = 1.0) -> Tensor:
    """Centre the bounding box at the origin and scale its longest side to ``extent``. (N, 3) -> (N, 3)."""
    lo, hi = verts.min(dim=0).values, verts.max(dim=0).values
    return (verts - (lo + hi) / 2) * (extent / (hi - lo).max().clamp_min(1e-12))


@dataclass
class Meshes:
    """B meshes that share one topology and UV layout, each with its own positions and texture: what the
    ``render.Renderer`` draws (pytorch3d's ``Meshes`` with ``TexturesUV``, for a single topology: every
    prediction of a network is its template on new positions wearing a new texture).

    Attributes:
        verts: (B, N, 3) float positions.
        faces: (F, 3) long vertex indices, shared by the B meshes.
        uvs: (T, 2) float UV vertices in [0, 1]; uv_faces: (F, 3) long into ``uvs``; None for both: no layout.
        texture: (B, C, Ht, Wt) float, one UV texture per mesh (row 0 is v = 1); None: untextured (white).

    >>> import torch
    >>> m = Meshes.from_mesh(Mesh(torch.rand(4, 3), torch.tensor([[0, 1, 2], [0, 2, 3]])))
    >>> len(m), m.textured
    (1, False)
    """
    verts: Tensor
    faces: Tensor
    uvs: Optional[Tensor] = None
    uv_faces: Optional[Tensor] = None
    texture: Optional[Tensor] = None

    def __post_init__(self) -> None:
        if self.verts.ndim != 3 or self.verts.shape[-1] != 3:
            raise ValueError(f"Meshes: verts must be (B, N, 3), got {tuple(self.verts.shape)}")
        if self.faces.ndim != 2 or self.faces.shape[-1] != 3 or self.faces.dtype != torch.long:
            raise ValueError(f"Meshes: faces must be (F, 3) long, got {tuple(self.faces.shape)} {self.faces.dtype}")
        check_uv_layout(self.faces, self.uvs, self.uv_faces, owner="Meshes")
        if self.texture is not None:
            if self.uvs is None:
                raise ValueError("Meshes: a texture needs uvs and uv_faces")
            if self.texture.ndim != 4 or self.texture.shape[0] != self.verts.shape[0]:
                raise ValueError(f"Meshes: texture must be (B={self.verts.shape[0]}, C, Ht, Wt), "
                                 f"got {tuple(self.texture.shape)}")

    @classmethod
    def from_mesh(cls, mesh: Mesh) -> "Meshes":
        """A batch of one: ``mesh`` with its texture (untextured without a texture or UV layout)."""
        textured = mesh.texture is not None and mesh.uvs is not None
        return cls(mesh.verts[None], mesh.faces, mesh.uvs if textured else None,
                   mesh.uv_faces if textured else None, mesh.texture[None] if textured else None)

    @classmethod
    def from_topology(cls, topology, verts: Tensor, texture: Optional[Tensor] = None) -> "Meshes":
        """B meshes on the faces and UV layout of ``topology`` (a ``Template`` or ``Mesh``): verts (B, N, 3),
        texture (B, C, Ht, Wt) or None."""
        textured = texture is not None
        return cls(verts, topology.faces, topology.uvs if textured else None,
                   topology.uv_faces if textured else None, texture)

    def __len__(self) -> int:
        return self.verts.shape[0]

    @property
    def textured(self) -> bool:
        return self.texture is not None

    def apply(self, fn) -> "Meshes":
        """The batch with ``fn`` applied to its float tensors (verts, uvs, texture), e.g. an upcast."""
        return replace(self, verts=fn(self.verts), uvs=None if self.uvs is None else fn(self.uvs),
                       texture=None if self.texture is None else fn(self.texture))
