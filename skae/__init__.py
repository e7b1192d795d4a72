"""skae: scikit-learn compatible autoencoders on PyTorch and skorch."""

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
    "DenoisingAutoEncoder",
    "RecurrentAutoEncoder",
    "SparseAutoEncoder",
    "VariationalAutoEncoder",
]
__version__ = "0.1.0"
