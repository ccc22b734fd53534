"""The procedural sneaker generator (issue 10): realistic multi-part shoes and photo-like renders.

Modules (one concept each):
    parts      the vocabulary shared by shape and appearance: part names and the texel G-buffer
    shape      the multi-part shoe geometry (sole, upper, tongue, collar, counter, tab, laces, ...)
    materials  procedural materials painted per texel from a ``TexelGBuffer``
    lighting   product-photo lighting (ambient, key, fill, specular, contact shadow) and framing
"""
