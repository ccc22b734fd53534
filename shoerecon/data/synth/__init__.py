"""The procedural sneaker generator (issue 10): realistic multi-part shoes and photo-like renders.

Modules (one concept each):
    parts      the vocabulary shared by shape and appearance: part names and the texel G-buffer
    shape      the multi-part shoe family: parameters, sampling, one closed surface per part
               (sole, upper, tongue, collar, counter, tabs, laces, overlays)
    mesher     closed genus-0 meshes of sphere-like parametric surfaces (near-equilateral triangles)
    atlas      the per-part UV atlas and its rasterised texel G-buffer
    shoe       one whole shoe: parts meshed, normalised and packed, its texture painted
    materials  procedural materials painted per texel from a ``TexelGBuffer``
    lighting   product-photo lighting (ambient, key, fill, specular, contact shadow) and framing
"""
