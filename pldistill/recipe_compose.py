"""Recipe composition: ``base:`` inheritance and ``key=value`` overrides, on plain data.

Both act on the parsed YAML *before* validation, so a composed recipe is
checked exactly like a single file. Every leaf remembers where it was set
(a file, or the command line), so an error names the place to fix it:

    recipes/a.yaml        base: depth_to_rgb      schedule: {epochs: 4}
    command line          distill.losses.0.weight=1000

Merging: mappings merge key by key, anything else (scalars, lists) is
replaced whole. A mapping whose ``kind`` changes (e.g. ``data.kind``)
replaces the base's mapping instead of merging into it, because the keys of
one dataset kind mean nothing to another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import PldistillError

COMMAND_LINE = "command line"

class CompositionError(PldistillError, ValueError):
    """A ``base:`` chain or an override that cannot be applied; the message names where."""


class Sources:
    """Where each key of a composed recipe was set: longest matching key path wins."""

    def __init__(self, top: str):
        self.top = top
        self._by_path: dict[tuple, str] = {}

    def mark(self, path: tuple, source: str, value: Any) -> None:
        """Record ``source`` for ``path`` and every leaf below it (dropping older records below)."""
        self._by_path = {p: s for p, s in self._by_path.items() if p[: len(path)] != path}
        self._by_path[path] = source
        if isinstance(value, dict):
            for k, v in value.items():
                self.mark(path + (k,), source, v)

    def of(self, loc: tuple) -> str:
        for n in range(len(loc), 0, -1):
            if loc[:n] in self._by_path:
                return self._by_path[loc[:n]]
        return self.top


def _merge(base: dict, child: dict, path: tuple, source: str, sources: Sources) -> dict:
    out = dict(base)
    for key, value in child.items():
        here = path + (key,)
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and old.get("kind", value.get("kind")) == value.get(
            "kind", old.get("kind")
        ):
            out[key] = _merge(old, value, here, source, sources)
        else:
            out[key] = value
            sources.mark(here, source, value)
    return out


def _base_path(child: Path, base: Any) -> Path:
    if not isinstance(base, str) or not base:
        raise CompositionError(f"{child}: base: must name a recipe, e.g. base: depth_to_rgb (got {base!r})")
    name = base if base.endswith((".yaml", ".yml")) else f"{base}.yaml"
    path = (child.parent / name).resolve()
    if not path.is_file():
        raise CompositionError(
            f"{child}: base: no recipe {base!r} (looked for {child.parent / name}); "
            "name a recipe file beside this one, or give a path relative to it"
        )
    return path


def compose(path: Path, read: Callable[[Path], Any]) -> tuple[Any, Sources]:
    """The recipe at ``path`` with its ``base:`` chain merged in (base first), and who set what.

    ``read`` turns one file into plain data (``recipe.read_yaml``): passed in, so that this module never
    imports recipe.py, which imports it.
    """
    chain: list[tuple[Path, Any]] = []
    seen: list[Path] = []
    current = Path(path)
    while True:
        resolved = current.resolve()
        if resolved in seen:
            cycle = " → ".join(str(p) for p in [*seen, resolved])
            raise CompositionError(f"{path}: base: recipes inherit from each other in a cycle: {cycle}")
        seen.append(resolved)
        raw = read(current)
        chain.append((current, raw))
        if not isinstance(raw, dict) or "base" not in raw:
            break
        current = _base_path(current, raw["base"])
    sources = Sources(str(path))
    merged: Any = None
    for file, raw in reversed(chain):
        if not isinstance(raw, dict):
            if merged is not None:
                raise CompositionError(f"{file}: a recipe must be a mapping of keys, got {type(raw).__name__}")
            merged = raw
            continue
        body = {k: v for k, v in raw.items() if k != "base"}
        if merged is None:
            merged = {}
        merged = _merge(merged, body, (), str(file), sources)
    return merged, sources


DELETE = object()  # ``~a.b``: remove the key, so its default (or nothing) applies


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` → (["a", "b", "c"], value parsed as a YAML scalar, list or mapping); ``~a.b`` deletes."""
    if text.startswith("~") and "=" not in text and text[1:] and all(text[1:].split(".")):
        return text[1:].split("."), DELETE
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise CompositionError(
            f"{COMMAND_LINE}: {text!r}: an override is dotted.key=value, e.g. schedule.epochs=4 "
            "or distill.losses.0.weight=1000 (or ~dotted.key to remove a key)"
        )
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise CompositionError(f"{COMMAND_LINE}: {key}: value {value!r} is not plain YAML data ({exc})") from None
    return key.split("."), parsed


def _list_index(items: list, part: str, where: str) -> int:
    """A list entry by position (``0``, ``-1``) or, in a list of named mappings, by its ``name``."""
    try:
        index = int(part)
    except ValueError:
        named = [i for i, item in enumerate(items) if isinstance(item, dict) and item.get("name") == part]
        if len(named) != 1:
            names = [item.get("name") for item in items if isinstance(item, dict)]
            problem = "no entry" if not named else f"{len(named)} entries"
            raise CompositionError(
                f"{COMMAND_LINE}: {where}: {problem} named {part!r} in this list (names: {names}); "
                "use its position instead, e.g. .0."
            ) from None
        return named[0]
    if not -len(items) <= index < len(items):
        raise CompositionError(f"{COMMAND_LINE}: {where}: index {index} is out of range; the list has {len(items)} entries")
    return index % len(items)


def apply_override(raw: dict, keys: list[str], value: Any, sources: Sources) -> dict:
    """Set ``keys`` to ``value`` in a copy of ``raw``; missing mappings on the way are created."""
    if keys == ["distill", "loss"]:  # the shorthand: a whole losses list from presets
        keys, value = ["distill", "losses"], loss_presets(value)
    root = _copy(raw)
    node: Any = root
    path: tuple = ()
    for i, part in enumerate(keys):
        last = i == len(keys) - 1
        where = ".".join(keys[: i + 1])
        if isinstance(node, list):
            part = _list_index(node, part, where)
        path += (part,)
        if last and value is DELETE:
            if isinstance(node, list) or part not in node:
                raise CompositionError(f"{COMMAND_LINE}: ~{where}: there is no such key to remove")
            del node[part]
            return root
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
                sources.mark(path, COMMAND_LINE, {})  # a mapping the command line made up
            node = node[part]
            if not isinstance(node, (dict, list)):
                raise CompositionError(
                    f"{COMMAND_LINE}: {'.'.join(keys)}: {where} is a value ({node!r}), not a mapping or list"
                )
    sources.mark(path, COMMAND_LINE, value)
    return root


def loss_presets(value: Any) -> list[dict]:
    """``distill.loss=NAME[+NAME…]``: a whole losses list, each loss at its paper's defaults (its spec's preset)."""
    from .losses.registry import all_losses

    presets = {name: {"name": name, **spec.preset} for name, spec in all_losses().items()}
    names = str(value).split("+") if value is not None else []
    unknown = [n for n in names if n not in presets]
    if not names or unknown:
        example = "+".join(sorted(presets)[:2])
        raise CompositionError(
            f"{COMMAND_LINE}: distill.loss: {value!r} is not a loss preset; use one or more of "
            f"{sorted(presets)} joined by '+', e.g. distill.loss={example}"
        )
    return [_copy(presets[n]) for n in names]


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
