"""pldistill: privileged-learning and cross-modal knowledge distillation."""
__version__ = "0.1.0"
