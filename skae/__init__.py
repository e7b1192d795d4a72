"""skae: scikit-learn compatible autoencoders on PyTorch and skorch."""

from .autoencoder import AutoEncoder
from .denoising import DenoisingAutoEncoder
from .sparse import SparseAutoEncoder

__all__ = ["AutoEncoder", "DenoisingAutoEncoder", "SparseAutoEncoder"]
__version__ = "0.1.0"
