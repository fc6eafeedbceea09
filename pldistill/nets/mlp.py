"""Multi-layer perceptrons for vector modalities, tapped per hidden layer.

``mlp_<width>x<depth>``: ``depth`` hidden blocks Linear → BatchNorm1d → ReLU
of ``width`` units, then a linear classifier. Each hidden block is a stage
(what a recipe's ``pairs`` index, as timm's stages are for an image model):
its output is a (batch, width) vector, so relational and logit losses (SP,
CC, RKD, DIST, KD, LS-KD) apply and spatial ones (AT, FitNets) are refused
at load. BatchNorm keeps training stable across the very
different scales of standardised feature sets; no dropout, so that a
comparison of losses is not also a comparison of regularisers.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from .registry import NetFamily, register_net


class MLP(nn.Module):
    """timm's model interface, for a vector input: ``forward_intermediates`` returns each hidden block's output."""

    def __init__(self, in_chans: int, num_classes: int, width: int, depth: int):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"an MLP needs width ≥ 1 and depth ≥ 1 (got {width}x{depth})")
        self.num_features = width
        self.num_classes = num_classes
        sizes = [in_chans] + [width] * depth
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(inplace=True)) for a, b in zip(sizes, sizes[1:])
        )
        self.head = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [{"num_chs": width, "reduction": 1, "module": f"blocks.{i}"} for i in range(depth)]
        # what models.checked_state reads of timm's config: the classifier (dropped for another label space)
        self.pretrained_cfg = {"classifier": "head", "first_conv": (), "fixed_input_size": False}

    def _check(self, x: Tensor) -> None:
        if x.dim() != 2:
            raise ValueError(f"an MLP takes (batch, features) vectors, got a tensor of shape {tuple(x.shape)}")

    def forward_intermediates(self, x: Tensor, indices: Sequence[int] | None = None) -> tuple[Tensor, list[Tensor]]:
        self._check(x)
        wanted = set(range(len(self.blocks)) if indices is None else indices)
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in wanted:
                features.append(x)
        return x, features

    def forward_features(self, x: Tensor) -> Tensor:
        self._check(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _mlp(in_chans: int, num_classes: int, width: int, depth: int) -> MLP:
    return MLP(in_chans, num_classes, width, depth)


register_net(NetFamily(prefix="mlp", pattern=r"mlp_(?P<width>\d+)x(?P<depth>\d+)", example="mlp_256x3",
                       build=_mlp, summary="mlp_<width>x<depth>: <depth> hidden Linear-BatchNorm-ReLU blocks"))
