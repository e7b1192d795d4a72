"""skae: scikit-learn compatible autoencoders on PyTorch and skorch."""

from .autoencoder import AutoEncoder
from .recurrent import RecurrentAutoEncoder

__all__ = ["AutoEncoder", "RecurrentAutoEncoder"]
__version__ = "0.1.0"
