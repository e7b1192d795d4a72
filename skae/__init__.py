"""skae: scikit-learn compatible autoencoders on PyTorch and skorch."""

from .autoencoder import AutoEncoder
from .variational import VariationalAutoEncoder

__all__ = ["AutoEncoder", "VariationalAutoEncoder"]
__version__ = "0.1.0"
