import os
import sys
from pathlib import Path

# Set before anything imports wandb/timm/albumentations: offline, no update checks.
os.environ["WANDB_MODE"] = "offline"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402

# experiments/ (research code beside the package, not installed) imports as `experiments.*` however
# pytest is started (`pytest tests`, `python -m pytest`, from another folder).
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session renders and caches teachers in its own folder, never the user's.

    Session-scoped so that module-scoped fixtures (the end-to-end run) see it too.
    """
    cache = tmp_path_factory.mktemp("pldistill-cache")
    previous = os.environ.get("PLDISTILL_CACHE")
    os.environ["PLDISTILL_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("PLDISTILL_CACHE", None)
    else:
        os.environ["PLDISTILL_CACHE"] = previous
