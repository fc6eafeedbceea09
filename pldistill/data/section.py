"""What every data kind's recipe section shares: ``DataSection`` and the real-file base ``RealFilesData``.

Every kind answers the same questions at recipe load (which modalities,
which classes, how many channels) by reading at most a file's header, so a
wrong path or modality fails before training; ``build()`` makes the splits.
Each kind's section lives beside its adapter and registers itself
(``pldistill/data/registry.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, PrivateAttr

from ..section import Section
from .archives import ARCHIVE_SUFFIXES, data_folder, find_root
from .protocol import Modality


class Augment(Section):
    """Joint augmentation: one geometry for all modalities, colour jitter on images only."""

    hflip: bool = True
    shift: float = Field(0.0, ge=0, le=0.5, description="max translation, fraction of size")
    scale: float = Field(0.0, ge=0, lt=1)
    rotate: float = Field(0.0, ge=0, le=180, description="degrees")
    color_jitter: float = Field(0.0, ge=0, le=1)

    def active(self) -> list[str]:
        """The settings that make a sample differ between epochs (empty: augmentation is off)."""
        return [k for k, v in self.model_dump().items() if v]


class DataSection(Section):
    """What every kind shares: the input size, augmentation and privileged modalities."""

    image_size: int = Field(48, ge=16, le=512, description="models see image_size × image_size inputs")
    augment: Augment = Augment()
    privileged: list[str] = Field(
        default_factory=lambda: ["depth"],
        description="modalities that exist at training time only; the student may not take them as input",
    )

    depth_encoding: Literal["metric", "inverse", "colour"] = Field(
        "metric", description="metric: standardised metres; inverse: mean/d - 1; colour: jet, 3 channels"
    )
    size_mismatch: Literal["resize", "refuse"] = Field(
        "resize", description="modalities of one sample at different sizes: resize each to image_size "
                              "(depth nearest) before the shared geometry, or refuse them in the data check",
    )
    stack: dict[str, list[str]] = Field(
        default_factory=dict,
        description="new modalities made of others' channels, e.g. {rgbd: [rgb, depth]}; privileged if a part is",
    )

    # Real files have their own sizes; they are resized to image_size (the embedded set renders at it).
    needs_resize: ClassVar[bool] = True

    # Capabilities: which kinds other kinds may nest (the registry builds those unions from these flags).
    class_pairable: ClassVar[bool] = False  # a one-modality set (``modality``) to pair with another by class
    resolution_source: ClassVar[bool] = False  # image data to downsample into a resolution pair

    _layout_cache: tuple | None = PrivateAttr(None)

    def layout(self) -> tuple[dict, list[str]]:
        """(modalities, classes), read once: real kinds open files or scan folders for it."""
        if self._layout_cache is None:
            modalities, classes = self._layout()
            self._layout_cache = ({**modalities, **self._stacked(modalities)}, classes)
        return self._layout_cache

    def _stacked(self, modalities: dict) -> dict:
        out = {}
        for name, parts in self.stack.items():
            unknown = [p for p in parts if p not in modalities]
            if name in modalities or len(parts) < 2 or unknown or len(set(parts)) != len(parts):
                raise ValueError(
                    f"data.stack.{name}: a stack is a new name for two or more distinct modalities of the data "
                    f"({list(modalities)}), e.g. rgbd: [rgb, depth]"
                )
            kinds = [modalities[p].kind for p in parts]
            if any(k not in ("image", "depth") for k in kinds):
                raise ValueError(f"data.stack.{name}: only image and depth modalities stack pixel by pixel")
            channels = sum(3 if m.kind == "depth" and self.depth_encoding == "colour" else m.channels
                           for m in (modalities[p] for p in parts))
            out[name] = Modality(name, "stack", channels, (), ())
        return out

    @property
    def all_privileged(self) -> list[str]:
        """The privileged modalities plus every stack holding one of them."""
        return self.privileged + [n for n, parts in self.stack.items() if set(parts) & set(self.privileged)]

    @property
    def modalities(self) -> list[str]:
        return list(self.layout()[0])

    @property
    def classes(self) -> list[str]:
        return list(self.layout()[1])

    def input_size(self, modality: str) -> int:
        """Side of the square input a model taking ``modality`` sees."""
        return self.image_size

    def channels(self, modality: str) -> int:
        """Input channels a model taking ``modality`` needs (colourised depth has 3)."""
        m = self.layout()[0][modality]
        return 3 if m.kind == "depth" and self.depth_encoding == "colour" else m.channels

    def _layout(self):  # (modalities dict, classes)
        raise NotImplementedError


def keyed(key: str, read):
    """Run ``read()``; a missing or bad file names the recipe key that points at it (``source.root: …``)."""
    try:
        return read()
    except (OSError, ValueError, KeyError) as exc:
        inner = getattr(exc, "data_key", None)  # already keyed further down: extend the dotted key
        text = getattr(exc, "data_text", exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc))
        full = f"{key}.{inner}" if inner else key
        try:
            again = type(exc)(f"{full}: {text}")
        except TypeError:  # an exception type that takes other arguments
            again = ValueError(f"{full}: {text}")
        again.data_key, again.data_text = full, text
        raise again from None


SHARED_HINT = "e.g. ../shared/data/{}"


class RealFilesData(DataSection):
    """A data set read from a folder or an archive (``root``): unpacked once into the cache, never downloaded."""

    root: str = Field(description="folder, or .tar.gz unpacked once into the git-ignored cache")
    privileged: list[str] = Field(default_factory=list, description="one modality: nothing is privileged")

    title: ClassVar[str] = "the data set"  # for messages
    archive: ClassVar[str] = "the archive"  # what to pass when root is missing
    marker: ClassVar[str | None] = None  # what the data folder holds (archives may wrap it in one more folder)

    def folder(self) -> Path:
        """The data folder: ``root`` itself, or the archive's unpacked copy in the cache."""
        def read():
            found = data_folder(self.root, self.title, SHARED_HINT.format(self._archive_name()))
            marker = self._marker()
            return find_root(found, marker, f"{self.title} ({self.kind})") if marker else found

        return keyed("root", read)

    def _marker(self) -> str | None:
        return self.marker

    def _archive_name(self) -> str:
        """The archive to suggest: the one ``root`` is named after (recipes use data/<archive name>)."""
        name = Path(self.root).name
        return name if name.lower().endswith(ARCHIVE_SUFFIXES) else f"{name}.tar.gz" if name else self.archive
