"""Is ``name`` a timm model? Answered without importing timm (and torch) once timm has been asked once.

Importing timm costs seconds (it imports torch and torchvision); validating a
recipe should not. timm's model list is written once per installed timm
version to ``<cache>/timm-models-<version>.json`` and read from there after.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import metadata

from .atomic import atomic_path
from .data.cache import default_cache_dir
from .errors import PldistillError


class UnknownModelError(PldistillError, ValueError):
    pass


@lru_cache(maxsize=1)
def timm_model_names() -> frozenset[str]:
    """Every architecture timm can build (``timm.list_models()``), cached per timm version."""
    path = default_cache_dir() / f"timm-models-{metadata.version('timm')}.json"
    try:
        return frozenset(json.loads(path.read_text()))
    except (OSError, ValueError):
        pass
    import timm

    names = sorted(timm.list_models())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(names))
    except OSError:
        pass  # a read-only cache only costs the next check the import
    return frozenset(names)


def check_model_name(name: str) -> None:
    """Raise with close matches when neither pldistill's vector models nor timm know ``name``.

    A pretrained tag (``name.tag``) is fine for timm's.
    """
    from .nets.registry import is_net, near_miss  # the vector models answer first

    if is_net(name):
        return
    names = timm_model_names()
    if name.split(".", 1)[0] in names:
        return
    if near_miss(name):
        raise UnknownModelError(near_miss(name))
    close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise UnknownModelError(f"timm has no model named {name!r}{hint}")
