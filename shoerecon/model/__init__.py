"""The network: UNet encoder-decoder, shape decoder (template offsets) and texture-flow head."""
from shoerecon.model.flow import TextureFlowHead, rasterize_uv, sample_texture, texel_grid, texel_uv, uv_coverage_mask
from shoerecon.model.network import ModelConfig, ReconOutput, ShoeReconNet
from shoerecon.model.shape import LatentHead, ShapeDecoder, positional_encoding
from shoerecon.model.unet import UNet

__all__ = [
    "ModelConfig", "ReconOutput", "ShoeReconNet", "UNet", "ShapeDecoder", "LatentHead", "TextureFlowHead",
    "positional_encoding", "sample_texture", "texel_grid", "texel_uv", "rasterize_uv", "uv_coverage_mask",
]
