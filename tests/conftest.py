import os

# Set before anything imports wandb/timm/albumentations: offline, no update checks.
os.environ["WANDB_MODE"] = "offline"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session renders into its own cache, never the user's."""
    cache = tmp_path_factory.getbasetemp() / "pldistill-cache"
    monkeypatch.setenv("PLDISTILL_CACHE", str(cache))
    return cache
