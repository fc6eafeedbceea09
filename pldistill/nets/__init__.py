"""The product's own models for vector modalities (feature vectors, no spatial axes), built by name beside timm."""

from .registry import build_net, is_net, net_names

__all__ = ["build_net", "is_net", "net_names"]
