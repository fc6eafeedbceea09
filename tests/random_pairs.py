"""Random paired RGB/depth tensors with labels: a dataset for loop-level tests that need no rendering."""

import torch


class RandomPairs(torch.utils.data.Dataset):
    def __init__(self, n: int = 32, size: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.rgb = torch.randn(n, 3, size, size, generator=g)
        self.depth = torch.randn(n, 1, size, size, generator=g)
        self.label = torch.randint(0, 3, (n,), generator=g)

    def __len__(self):
        return len(self.label)

    def __getitem__(self, i):
        return {"rgb": self.rgb[i], "depth": self.depth[i], "label": self.label[i]}
