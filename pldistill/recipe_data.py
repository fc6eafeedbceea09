"""The recipe's ``data`` section: one typed section per dataset kind, chosen by ``kind``.

Every kind answers the same questions at recipe load — which modalities,
which classes, how many channels — by reading at most a file's header, so a
wrong path or modality fails before training; ``build()`` makes the splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Augment(Section):
    """Joint augmentation: one geometry for all modalities, colour jitter on images only."""

    hflip: bool = True
    shift: float = Field(0.0, ge=0, le=0.5, description="max translation, fraction of size")
    scale: float = Field(0.0, ge=0, lt=1)
    rotate: float = Field(0.0, ge=0, le=180, description="degrees")
    color_jitter: float = Field(0.0, ge=0, le=1)


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

    # Real files have their own sizes; they are resized to image_size (the embedded set renders at it).
    needs_resize: ClassVar[bool] = True

    _layout_cache: tuple | None = PrivateAttr(None)

    def layout(self) -> tuple[dict, list[str]]:
        """(modalities, classes), read once: real kinds open files or scan folders for it."""
        if self._layout_cache is None:
            self._layout_cache = self._layout()
        return self._layout_cache

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


class SyntheticShapesData(DataSection):
    """The embedded paired RGB-D set (see datasets/synthetic_shapes.md)."""

    kind: Literal["synthetic_shapes"] = "synthetic_shapes"
    num_train: int = Field(4000, gt=0)
    num_test: int = Field(1000, gt=0)
    noise: float = Field(0.04, ge=0, description="std of RGB pixel noise (0-1 scale)")
    camouflage: float = Field(0.5, ge=0, le=1, description="P(object wears the wall's colours)")
    ambient: float = Field(0.4, ge=0, le=1, description="unshaded share of light in RGB")
    contrast: float = Field(0.3, ge=0, le=1, description="stripe contrast of the textures")
    seed: int = 0
    cache_dir: str | None = None

    needs_resize: ClassVar[bool] = False

    def _layout(self):
        from .data.synthetic_shapes import MODALITIES, SyntheticShapes

        return MODALITIES, SyntheticShapes.classes

    def build(self):
        from .data.synthetic_shapes import SyntheticShapes

        common = dict(image_size=self.image_size, seed=self.seed, noise=self.noise, camouflage=self.camouflage,
                      ambient=self.ambient, contrast=self.contrast,
                      cache_dir=Path(self.cache_dir) if self.cache_dir else None)
        return SyntheticShapes("train", self.num_train, **common), SyntheticShapes("test", self.num_test, **common)


class NYUData(DataSection):
    """NYU Depth v2 labeled set (``nyu_depth_v2_labeled.mat``), scene classification."""

    kind: Literal["nyu_depth_v2"]
    path: str = Field(description="local nyu_depth_v2_labeled.mat; never downloaded")
    split_file: str | None = Field(None, description="splits.mat with trainNdxs/testNdxs")
    train_split: str | None = Field(None, description="text file of 1-based train frame indices")
    test_split: str | None = Field(None, description="text file of 1-based test frame indices")
    classes_protocol: Literal["gupta10", "all"] | list[str] = Field(
        "gupta10", alias="classes", description="gupta10: 9 frequent scene types + other"
    )
    image_size: int = Field(64, ge=16, le=512)

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_split_source(self) -> "NYUData":
        texts = (self.train_split, self.test_split)
        if not ((self.split_file and not any(texts)) or (not self.split_file and all(texts))):
            raise ValueError("give either split_file (splits.mat) or both train_split and test_split (text files)")
        return self

    def _split(self, name: str):
        return (self.split_file, name) if self.split_file else (getattr(self, f"{name}_split"), name)

    def build(self):
        from .data.nyu import NYUDepthV2

        return tuple(NYUDepthV2(self.path, split, split_file, self.classes_protocol)
                     for split_file, split in (self._split("train"), self._split("test")))

    def _layout(self):
        from .data.nyu import MODALITIES, NYUDepthV2

        split_file, split = self._split("train")  # reads the header and scene names: checks file and split
        return MODALITIES, NYUDepthV2(self.path, split, split_file, self.classes_protocol).classes


class FoldersData(DataSection):
    """Paired image folders: root/<split>/<modality>/<class>/<sample>.<ext> (see pldistill/data/folders.py)."""

    kind: Literal["folders"]
    root: str
    modalities_: dict[str, Literal["image", "depth"]] = Field(alias="modalities")
    labels: Literal["folders", "csv"] = "folders"
    depth_scale: float = Field(1.0, gt=0, description="depth file units → metres, e.g. 0.001 for millimetres")
    train_split: str = "train"
    test_split: str = "test"

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    def build(self):
        from .data.folders import PairedFolders

        kw = dict(modalities=self.modalities_, labels=self.labels, depth_scale=self.depth_scale)
        train = PairedFolders(self.root, split=self.train_split, **kw)
        return train, PairedFolders(self.root, split=self.test_split, classes=train.classes, **kw)

    def _layout(self):
        from .data.folders import PairedFolders, default_modality

        train = PairedFolders(self.root, self.modalities_, split=self.train_split, labels=self.labels,
                              depth_scale=self.depth_scale)
        return {n: default_modality(n, k) for n, k in self.modalities_.items()}, train.classes


class PackedData(DataSection):
    """Splits packed by ``pldistill pack`` (one HDF5 file each; see pldistill/data/packed.py)."""

    kind: Literal["packed"]
    train: str = Field(description="packed train split (.h5)")
    test: str = Field(description="packed test split (.h5)")

    def build(self):
        from .data.packed import PackedDataset

        train, test = PackedDataset(self.train), PackedDataset(self.test)
        if test.classes != train.classes:
            raise ValueError(f"data.test: classes {test.classes} differ from data.train's {train.classes}")
        return train, test

    def _layout(self):
        from .data.packed import PackedDataset

        train = PackedDataset(self.train)
        return train.modalities, train.classes


SourceData = Annotated[Union[SyntheticShapesData, NYUData, FoldersData, PackedData], Field(discriminator="kind")]


class ResolutionPairsData(DataSection):
    """Any image dataset as a resolution pair: ``<modality>_hires`` privileged, ``<modality>`` low-res."""

    kind: Literal["resolution_pairs"]
    source: SourceData
    modality: str = "rgb"
    factor: int = Field(4, ge=2, le=16, description="student resolution = image_size / factor")
    blur: float = Field(0.0, ge=0, description="Gaussian sigma (high-res pixels) before downsampling")
    noise: float = Field(0.0, ge=0, description="pixel noise std (0-255) after downsampling")

    @model_validator(mode="before")
    @classmethod
    def _hires_is_privileged(cls, raw):
        if isinstance(raw, dict) and "privileged" not in raw:
            raw = {**raw, "privileged": [f"{raw.get('modality', 'rgb')}_hires"]}
        return raw

    @property
    def needs_resize(self) -> bool:  # type: ignore[override]
        return self.source.needs_resize

    def _source(self):
        return self.source.model_copy(update={"image_size": self.image_size})

    def build(self):
        from .data.resolution import ResolutionPairs

        return tuple(ResolutionPairs(ds, self.modality, self.factor, self.blur, self.noise)
                     for ds in self._source().build())

    def _layout(self):
        from .data.protocol import Modality

        modalities, classes = self._source().layout()
        if self.modality not in modalities:
            raise ValueError(f"data.modality: {self.modality!r} is not a modality of the source ({list(modalities)})")
        base = modalities[self.modality]
        hires = f"{self.modality}_hires"
        return {**modalities, hires: Modality(hires, "image", base.channels, base.mean, base.std)}, classes

    def input_size(self, modality: str) -> int:
        return self.image_size // self.factor if modality == self.modality else self.image_size


DATA_KINDS = {"synthetic_shapes": SyntheticShapesData, "nyu_depth_v2": NYUData, "folders": FoldersData,
              "packed": PackedData, "resolution_pairs": ResolutionPairsData}
