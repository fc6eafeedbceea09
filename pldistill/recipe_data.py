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
    stack: dict[str, list[str]] = Field(
        default_factory=dict,
        description="new modalities made of others' channels, e.g. {rgbd: [rgb, depth]}; privileged if a part is",
    )

    # Real files have their own sizes; they are resized to image_size (the embedded set renders at it).
    needs_resize: ClassVar[bool] = True

    _layout_cache: tuple | None = PrivateAttr(None)

    def layout(self) -> tuple[dict, list[str]]:
        """(modalities, classes), read once: real kinds open files or scan folders for it."""
        if self._layout_cache is None:
            modalities, classes = self._layout()
            self._layout_cache = ({**modalities, **self._stacked(modalities)}, classes)
        return self._layout_cache

    def _stacked(self, modalities: dict) -> dict:
        from .data.protocol import Modality

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


def _keyed(key: str, read):
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
        from .data.archives import data_folder, find_root

        def read():
            found = data_folder(self.root, self.title, SHARED_HINT.format(self._archive_name()))
            marker = self._marker()
            return find_root(found, marker, f"{self.title} ({self.kind})") if marker else found

        return _keyed("root", read)

    def _marker(self) -> str | None:
        return self.marker

    def _archive_name(self) -> str:
        """The archive to suggest: the one ``root`` is named after (recipes use data/<archive name>)."""
        from .data.archives import ARCHIVE_SUFFIXES

        name = Path(self.root).name
        return name if name.lower().endswith(ARCHIVE_SUFFIXES) else f"{name}.tar.gz" if name else self.archive


class ImageClassesData(RealFilesData):
    """Class-folder images, root/<split>/<class>/<file> (CIFAR-10 JPEG, MNIST PNG; data/image_classes.py)."""

    kind: Literal["image_classes"]
    modality: str = "rgb"
    grayscale: bool = Field(False, description="read as one channel (MNIST)")
    labels: Literal["folders", "csv"] = Field("folders", description="csv: root/<split>.csv, filepath,label")
    train_split: str = "train"
    test_split: str = "test"
    limit_per_class: int | None = Field(None, gt=0, description="seeded subset of the training split per class")
    test_limit_per_class: int | None = Field(None, gt=0, description="seeded subset of the test split per class")
    subset_seed: int = 0

    title: ClassVar[str] = "a class-folder image set"
    archive: ClassVar[str] = "cifar10-jpeg.tar.gz or mnist-png.tar.gz"

    def _marker(self) -> str | None:
        return self.train_split

    def _split(self, split: str, limit: int | None, classes=None):
        from .data.image_classes import ImageClasses

        folder = self.folder()
        return _keyed("root", lambda: ImageClasses(folder, split, self.modality, self.grayscale, self.labels,
                                                   classes, limit, self.subset_seed))

    def build(self):
        train = self._split(self.train_split, self.limit_per_class)
        return train, self._split(self.test_split, self.test_limit_per_class, train.classes)

    def _layout(self):
        train = self._split(self.train_split, self.limit_per_class)
        return train.modalities, train.classes


class DTDData(RealFilesData):
    """DTD, images/<class>/<class>_NNNN.jpg with a seeded 40/40/40 split per class (data/dtd.py)."""

    kind: Literal["dtd"]
    modality: str = "rgb"
    split_seed: int = Field(0, description="seed of the 40/40/40 split; the split is written to data_split.json")
    train_on: Literal["train", "trainval"] = Field("trainval", description="DTD trains on train+val (80/class)")

    title: ClassVar[str] = "DTD"
    archive: ClassVar[str] = "dtd10-images.tar.gz"
    marker: ClassVar[str | None] = "images"

    def build(self):
        from .data.dtd import DTDTextures

        folder = self.folder()
        return tuple(_keyed("root", lambda s=s: DTDTextures(folder, s, self.split_seed, self.modality))
                     for s in (self.train_on, "test"))

    def _layout(self):
        train = self.build()[0]
        return train.modalities, train.classes


class SpeechDigitsData(RealFilesData):
    """FSDD spoken digits, recordings/{digit}_{speaker}_{index}.wav as log-mel spectrograms (data/speech.py)."""

    kind: Literal["speech_digits"]
    modality: str = "speech"
    size: int = Field(64, ge=16, le=256, description="mel bands = frames: the spectrogram is size × size")
    duration: float = Field(1.024, gt=0, description="seconds of audio per spectrogram (centred; pad or crop)")
    n_fft: int = Field(512, ge=32)
    fmax: float = Field(4000.0, gt=0, description="top of the mel band (Hz); FSDD is sampled at 8 kHz")

    title: ClassVar[str] = "the Free Spoken Digit Dataset"
    archive: ClassVar[str] = "fsdd-recordings.tar.gz"
    marker: ClassVar[str | None] = "recordings"
    needs_resize: ClassVar[bool] = False  # spectrograms come at their input size

    def input_size(self, modality: str) -> int:
        return self.size if modality == self.modality else self.image_size

    def _split(self, split: str, classes=None):
        from .data.speech import SpokenDigits

        folder = self.folder() / "recordings"
        return _keyed("root", lambda: SpokenDigits(folder, split, self.modality, self.size, self.duration,
                                                   self.n_fft, self.fmax, classes))

    def build(self):
        train = self._split("train")
        return train, self._split("test", train.classes)

    def _layout(self):
        train = self._split("train")
        return train.modalities, train.classes


class SUNRGBDData(RealFilesData):
    """SUN RGB-D frames in their original layout: image/*.jpg, 16-bit depth PNG, scene.txt (data/sunrgbd.py)."""

    kind: Literal["sunrgbd"]
    depth: Literal["bfx", "raw"] = Field("bfx", description="bfx: depth_bfx/ (holes filled); raw: depth/")
    classes_protocol: Literal["all"] | list[str] = Field("all", alias="classes",
                                                         description="all, or a list (others → 'other')")
    test_list: str | None = Field(None, description="text file of test frame folders (relative to root)")
    test_fraction: float = Field(0.5, gt=0, lt=1, description="without test_list: seeded hold-out share")
    split_seed: int = 0
    max_depth: float | None = Field(8.0, gt=0, description="metres; the toolbox clips at 8 m")
    image_size: int = Field(64, ge=16, le=512)
    privileged: list[str] = Field(default_factory=lambda: ["depth"])

    title: ClassVar[str] = "SUN RGB-D"
    archive: ClassVar[str] = "sunrgbd-toy.tar.gz"
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    def build(self):
        from .data.sunrgbd import SUNRGBDFrames

        folder = self.folder()
        return tuple(_keyed("root", lambda s=s: SUNRGBDFrames(
            folder, s, self.depth, self.classes_protocol, self.test_list, self.test_fraction, self.split_seed,
            self.max_depth)) for s in ("train", "test"))

    def _layout(self):
        from .data.sunrgbd import MODALITIES

        train, test = self.build()
        return MODALITIES, train.classes


PairableData = Annotated[Union[ImageClassesData, SpeechDigitsData, DTDData], Field(discriminator="kind")]


class ClassPairedData(DataSection):
    """Two one-modality sets paired by class, as AV-MNIST pairs digits with speech (data/paired.py)."""

    kind: Literal["class_paired"]
    primary: PairableData = Field(description="one sample per primary sample; its labels and classes")
    partner: PairableData = Field(description="each primary sample gets a seeded same-class sample of this")
    pairing_seed: int = 0
    privileged: list[str] = Field(default_factory=list)

    def _parts(self):
        return [p.model_copy(update={"image_size": self.image_size}) for p in (self.primary, self.partner)]

    def build(self):
        from .data.paired import ClassPaired

        (p_train, p_test), (q_train, q_test) = (p.build() for p in self._parts())
        return (ClassPaired(p_train, q_train, self.pairing_seed, "train"),
                ClassPaired(p_test, q_test, self.pairing_seed, "test"))

    def _layout(self):
        (mods_p, classes_p), (mods_q, classes_q) = (
            _keyed(name, p.layout) for name, p in zip(("primary", "partner"), self._parts()))
        clash = sorted(set(mods_p) & set(mods_q))
        if clash:
            raise ValueError(f"partner.modality: {clash} is also the primary's modality; name them apart")
        missing = [c for c in classes_p if c not in classes_q]
        if missing:
            raise ValueError(f"partner: has no samples of the primary's classes {missing} (it has {classes_q})")
        return {**mods_p, **mods_q}, classes_p

    def input_size(self, modality: str) -> int:
        part = next((p for p in self._parts() if p.modality == modality), None)
        return part.input_size(modality) if part is not None else self.image_size


SourceData = Annotated[Union[SyntheticShapesData, NYUData, FoldersData, PackedData, ImageClassesData, DTDData,
                         SUNRGBDData], Field(discriminator="kind")]


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

        modalities, classes = _keyed("source", self._source().layout)
        if self.modality not in modalities:
            raise ValueError(f"data.modality: {self.modality!r} is not a modality of the source ({list(modalities)})")
        base = modalities[self.modality]
        hires = f"{self.modality}_hires"
        return {**modalities, hires: Modality(hires, "image", base.channels, base.mean, base.std)}, classes

    def input_size(self, modality: str) -> int:
        return self.image_size // self.factor if modality == self.modality else self.image_size


DATA_KINDS = {"synthetic_shapes": SyntheticShapesData, "nyu_depth_v2": NYUData, "folders": FoldersData,
              "packed": PackedData, "resolution_pairs": ResolutionPairsData, "image_classes": ImageClassesData,
              "dtd": DTDData, "speech_digits": SpeechDigitsData, "class_paired": ClassPairedData,
              "sunrgbd": SUNRGBDData}
