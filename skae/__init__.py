"""skae: scikit-learn compatible autoencoders on PyTorch and skorch."""

from .autoencoder import AutoEncoder

__all__ = ["AutoEncoder"]
__version__ = "0.1.0"
