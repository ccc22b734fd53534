"""``Template``: the live template mesh of a network (positions, topology, UV layout) and everything derived from it.

pytorch3d's ``Meshes`` is the model: the object holds the primary tensors and computes derived data (edges,
Laplacian operands, interior-edge quads, the UV coverage mask and chart labels of its texture) lazily, once,
on first use. A Template is never changed in place: remeshing makes a new one (``Template.replace``), so a
cache can never outlive the topology it was computed from and nobody refreshes one by hand. Device and dtype
moves (``apply`` / ``to``) give a new Template whose already-computed caches move with it.

Only the network (``model/network.py``) keeps one; the renderer, the loss terms (``LossContext.template``),
the remesh hook and exports read it from there.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from torch import Tensor

from shoerecon.geometry.laplacian import EdgeQuads, _laplacian_operands, edge_quads
from shoerecon.geometry.mesh import Mesh, check_uv_layout, unique_edges
from shoerecon.geometry.sole import sole_bend_projector, sole_vertices
from shoerecon.geometry.texels import texel_chart_labels, uv_coverage_mask

CACHED = ("edges", "edge_quads", "laplacian_operands", "uv_mask", "chart_labels", "sole_operands")


class Template:
    """A template mesh with lazily cached derived data. Treat its tensors as read-only.

    Args:
        verts: (N, 3) float positions.
        faces: (F, 3) long, counter-clockwise seen from outside.
        uvs: (T, 2) float in [0, 1], v up; None: no UV layout (then ``uv_mask`` and ``chart_labels`` are None).
        uv_faces: (F, 3) long into ``uvs``; None with ``uvs``.
        texture_size: Ht = Wt of the UV texture the texel caches are made for.
        uv_mask_dilate: texels the UV coverage mask grows by (``geometry.texels.uv_coverage_mask``).
        cache: precomputed values of derived data by name (one of ``CACHED``), e.g. a ``uv_mask`` loaded from a
            checkpoint; the caller vouches that they belong to these tensors.

    Derived data (each computed on first access, on the tensors' device, then kept):
        edges (E, 2) long unique undirected edges; edge_quads (``EdgeQuads``: interior edges, their two faces
        and opposite vertices); laplacian_operands (src (2E,), dst (2E,), 1/degree (M,), has-neighbour (M,));
        uv_mask (Ht, Wt) float {0, 1}; chart_labels (Ht, Wt) long UV chart per texel, -1 unused;
        sole_operands (the ground face's vertex indices (S,) and its bend projector (S, S), ``geometry.sole``).
    """

    def __init__(self, verts: Tensor, faces: Tensor, uvs: Optional[Tensor] = None, uv_faces: Optional[Tensor] = None,
                 texture_size: int = 128, uv_mask_dilate: int = 1, cache: Optional[dict[str, Any]] = None):
        if verts.ndim != 2 or verts.shape[-1] != 3:
            raise ValueError(f"Template: verts must be (N, 3), got {tuple(verts.shape)}")
        if faces.ndim != 2 or faces.shape[-1] != 3:
            raise ValueError(f"Template: faces must be (F, 3), got {tuple(faces.shape)}")
        if faces.numel() and (faces.min() < 0 or faces.max() >= verts.shape[0]):
            raise ValueError(f"Template: faces index outside [0, {verts.shape[0]})")
        check_uv_layout(faces, uvs, uv_faces, owner="Template")
        unknown = set(cache or {}) - set(CACHED)
        if unknown:
            raise ValueError(f"Template: unknown cache entries {sorted(unknown)}; valid: {', '.join(CACHED)}")
        self.verts, self.faces, self.uvs, self.uv_faces = verts, faces, uvs, uv_faces
        self.texture_size, self.uv_mask_dilate = int(texture_size), int(uv_mask_dilate)
        self._cache: dict[str, Any] = dict(cache or {})

    @classmethod
    def from_mesh(cls, mesh: Mesh, texture_size: int = 128, uv_mask_dilate: int = 1) -> "Template":
        """The template of ``mesh`` (its texture, if any, is not part of a template): copies as float verts and
        uvs, long faces (later in-place changes of ``mesh`` do not reach the template)."""
        uvs = None if mesh.uvs is None else mesh.uvs.float().clone()
        uv_faces = None if mesh.uv_faces is None else mesh.uv_faces.long().clone()
        return cls(mesh.verts.float().clone(), mesh.faces.long().clone(), uvs, uv_faces, texture_size, uv_mask_dilate)

    # ------------------------------------------------------------------ basic
    @property
    def num_verts(self) -> int:
        return self.verts.shape[0]

    @property
    def num_faces(self) -> int:
        return self.faces.shape[0]

    @property
    def device(self):
        return self.verts.device

    def mesh(self, texture: Optional[Tensor] = None) -> Mesh:
        """The template as a Mesh (copies of the tensors), optionally with a texture (3, Ht, Wt)."""
        clone = lambda t: None if t is None else t.clone()  # noqa: E731
        return Mesh(self.verts.clone(), self.faces.clone(), clone(self.uvs), clone(self.uv_faces), texture)

    def replace(self, mesh: Mesh) -> "Template":
        """A new template with ``mesh``'s positions, topology and UV layout (remeshing), on this one's device and
        dtype, with the same texel settings and empty caches."""
        new = Template.from_mesh(mesh, self.texture_size, self.uv_mask_dilate)
        return new.apply(lambda t: t.to(device=self.device, dtype=self.verts.dtype if t.is_floating_point() else None))

    def apply(self, fn: Callable[[Tensor], Tensor]) -> "Template":
        """A new Template with ``fn`` applied to every tensor, the computed caches included (``nn.Module._apply``
        semantics: ``fn`` decides what happens to integer tensors)."""
        def move(x):
            if x is None or isinstance(x, Tensor):
                return None if x is None else fn(x)
            items = [move(item) for item in x]  # a tuple of tensors (EdgeQuads is a NamedTuple)
            return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)

        return Template(move(self.verts), move(self.faces), move(self.uvs), move(self.uv_faces), self.texture_size,
                        self.uv_mask_dilate, {k: move(v) for k, v in self._cache.items()})

    def to(self, device=None, dtype=None) -> "Template":
        """Moved to ``device``; float tensors cast to ``dtype`` (integer ones keep theirs)."""
        return self.apply(lambda t: t.to(device=device, dtype=dtype if t.is_floating_point() else None))

    def __repr__(self) -> str:
        uv = "no UV" if self.uvs is None else f"{self.uvs.shape[0]} UV vertices"
        return (f"Template({self.num_verts} verts, {self.num_faces} faces, {uv}, texture {self.texture_size}, "
                f"cached: {', '.join(sorted(self._cache)) or 'nothing'})")

    # ------------------------------------------------------------------ derived, lazily cached
    def _cached(self, name: str, compute: Callable[[], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    def is_cached(self, name: str) -> bool:
        """Whether derived data ``name`` (one of ``CACHED``) has been computed (tests, debugging)."""
        return name in self._cache

    @property
    def edges(self) -> Tensor:
        """(E, 2) long unique undirected edges, smaller index first, sorted."""
        return self._cached("edges", lambda: unique_edges(self.faces))

    @property
    def edge_quads(self) -> EdgeQuads:
        """Interior edges with their two faces and opposite vertices (``geometry.laplacian.edge_quads``)."""
        return self._cached("edge_quads", lambda: edge_quads.uncached(self.faces))

    @property
    def laplacian_operands(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """What ``geometry.laplacian.uniform_laplacian`` needs of the topology: (src, dst, 1/degree, has-nb)."""
        return self._cached("laplacian_operands", lambda: _laplacian_operands.uncached(self.faces))

    @property
    def uv_mask(self) -> Optional[Tensor]:
        """(Ht, Wt) float {0, 1}: texels the UV layout uses, grown by ``uv_mask_dilate``; None without UVs."""
        if self.uvs is None:
            return None
        return self._cached("uv_mask", lambda: uv_coverage_mask(self.uvs, self.uv_faces, self.texture_size,
                                                                 self.uv_mask_dilate))

    @property
    def chart_labels(self) -> Optional[Tensor]:
        """(Ht, Wt) long UV chart of every texel, -1 where unused; None without UVs."""
        if self.uvs is None:
            return None
        return self._cached("chart_labels", lambda: texel_chart_labels(self.uvs, self.uv_faces, self.texture_size)[0])

    @property
    def sole_operands(self) -> tuple[Tensor, Tensor]:
        """The sole's ground face: vertex indices (S,) long and the (S, S) projector onto their heights' bend
        (``geometry.sole``; S may be 0 for a mesh without a downward face)."""
        def compute() -> tuple[Tensor, Tensor]:
            index = sole_vertices(self.verts, self.faces)
            return index, sole_bend_projector(self.verts[index])
        return self._cached("sole_operands", compute)


__all__ = ["Template", "CACHED"]
