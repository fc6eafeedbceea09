"""The data kinds: a recipe's ``data.kind`` → its section class, filled by the modules that define them.

A new data kind is one file, ``pldistill/data/<name>.py``, holding

* the adapter: a ``PairedDataset`` (``protocol.py``) that reads the files and
  names them (``source(index, modality)``, ``source_files()``) for the data
  check's messages and its cache (``check.py``);
* its recipe section: a ``DataSection`` (``section.py``; ``RealFilesData`` for a
  folder or an archive) with ``kind: Literal["<name>"]``, ``_layout()`` and
  ``build()``, decorated with ``@register_data_kind``. Capability flags
  (``class_pairable``, ``resolution_source``, declared on ``DataSection``) say
  which other kinds may nest it;

plus its tests, ``tests/test_<name>.py``. Nothing else lists it: ``data_kinds()``
imports every module of this package (``pkgutil``), so the recipe's ``data``
union, the nested unions and the error messages pick the new kind up.

Nested unions: a section that holds another data section (class pairs,
resolution pairs) annotates that field with a name that is unbound in its
module, e.g. ``primary: ClassPairableData``, and maps the name to a capability,
``nested_kinds = {"ClassPairableData": "class_pairable"}``. Its module cannot
know every kind when the class is defined, so pydantic leaves the class
incomplete; once the scan has registered every kind, ``data_kinds()`` rebuilds
it with each name bound to the union of the kinds that have the capability.
(So a kind that nests others cannot itself be nested; none needs to be.)
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any, Union, get_args

from pydantic import Field

from .section import DataSection

_KINDS: dict[str, type[DataSection]] = {}
_scanned = False


def kind_name(cls: type[DataSection]) -> str:
    """The one name in the class's ``kind: Literal["<name>"]`` field."""
    field = cls.model_fields.get("kind")
    names = get_args(field.annotation) if field is not None else ()
    if len(names) != 1 or not isinstance(names[0], str):
        raise TypeError(f"{cls.__name__}: a data kind declares its name as kind: Literal['<name>']")
    return names[0]


def register_data_kind(cls: type[DataSection]) -> type[DataSection]:
    """Class decorator: make ``cls`` the section of ``data.kind: <its kind name>``."""
    if not (isinstance(cls, type) and issubclass(cls, DataSection)):
        raise TypeError(f"{cls!r}: a data kind's section is a DataSection subclass")
    name = kind_name(cls)
    if _KINDS.get(name, cls) is not cls:
        raise TypeError(f"data kind {name!r} is defined twice: by {_KINDS[name].__qualname__} in "
                        f"{_KINDS[name].__module__} and by {cls.__qualname__} in {cls.__module__}")
    _KINDS[name] = cls
    if _scanned:  # defined after the scan (outside the package): bind its nested unions now
        _bind_nested_kinds(cls)
    return cls


def data_kinds() -> dict[str, type[DataSection]]:
    """Every data kind by name (sorted), after importing every module of ``pldistill.data`` once."""
    global _scanned
    if not _scanned:
        package = importlib.import_module(__package__)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{__package__}.{module.name}")
        for cls in list(_KINDS.values()):
            _bind_nested_kinds(cls)
        _scanned = True
    return dict(sorted(_KINDS.items()))


def kinds_with(capability: str) -> dict[str, type[DataSection]]:
    """The data kinds whose section sets the ``ClassVar`` flag ``capability``, e.g. ``resolution_source``."""
    return {name: cls for name, cls in data_kinds().items() if _has(cls, capability)}


def data_union(capability: str | None = None) -> Any:
    """A pydantic discriminated union (on ``kind``) of every data kind, or of those with ``capability``."""
    return _union(data_kinds() if capability is None else kinds_with(capability), capability)


def _has(cls: type[DataSection], capability: str) -> bool:
    if capability not in DataSection.__class_vars__:
        flags = sorted(v for v in DataSection.__class_vars__ if isinstance(getattr(DataSection, v), bool))
        raise KeyError(f"{capability!r} is not a data-kind capability; DataSection declares {flags}")
    return getattr(cls, capability) is True


def _union(kinds: dict[str, type[DataSection]], capability: str | None) -> Any:
    if not kinds:
        raise LookupError(f"no data kind has the capability {capability!r}")
    members = tuple(kinds.values())
    if len(members) == 1:  # pydantic discriminates unions only
        return members[0]
    return Annotated[Union[members], Field(discriminator="kind")]


def _bind_nested_kinds(cls: type[DataSection]) -> None:
    """Rebuild a section whose fields name nested unions (``nested_kinds``) with those names bound."""
    nested: dict[str, str] = getattr(cls, "nested_kinds", {})
    if nested:
        unions = {name: _union({k: c for k, c in sorted(_KINDS.items()) if _has(c, cap)}, cap)
                  for name, cap in nested.items()}
        cls.model_rebuild(force=True, _types_namespace=unions)
