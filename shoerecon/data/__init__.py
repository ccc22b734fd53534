"""Multi-view turntable data: the folder reader and Dataset, masks, input framing, procedural shoes."""
from shoerecon.data.dataset import DataConfig, TurntableDataset, load_view
from shoerecon.data.layout import DataError, Rig, read_image, read_rig
from shoerecon.data.preprocess import prepare_input

__all__ = ["DataConfig", "TurntableDataset", "load_view", "DataError", "Rig", "read_image", "read_rig", "prepare_input"]
