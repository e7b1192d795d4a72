"""skae: scikit-learn compatible autoencoders on PyTorch and skorch."""

from . import architectures as architectures  # the networks: skae.architectures
from . import distributed as distributed  # Dask/Ray searches, DDP: skae.distributed
from ._card import model_card
from ._chunked import ChunkedData
from ._onnx import to_onnx
from ._skl2onnx import register_skl2onnx_converters
from .anomaly import AnomalyDetector
from .autoencoder import AutoEncoder
from .denoising import DenoisingAutoEncoder
from .ensemble import AutoEncoderEnsemble
from .recurrent import RecurrentAutoEncoder
from .sparse import SparseAutoEncoder
from .variational import VariationalAutoEncoder

__all__ = [
    "AnomalyDetector",
    "AutoEncoder",
    "AutoEncoderEnsemble",
    "ChunkedData",
    "DenoisingAutoEncoder",
    "RecurrentAutoEncoder",
    "SparseAutoEncoder",
    "VariationalAutoEncoder",
    "model_card",
    "register_skl2onnx_converters",
    "to_onnx",
]
__version__ = "0.1.0"
