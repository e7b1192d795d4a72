"""skae: scikit-learn compatible autoencoders on PyTorch and skorch."""

from .anomaly import AnomalyDetector
from .autoencoder import AutoEncoder

__all__ = ["AnomalyDetector", "AutoEncoder"]
__version__ = "0.1.0"
