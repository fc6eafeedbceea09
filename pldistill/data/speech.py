"""Spoken digits as log-mel spectrograms: the Free Spoken Digit Dataset (FSDD) layout.

Layout: ``recordings/{digit}_{speaker}_{index}.wav`` (mono 16-bit PCM, 8 kHz
in FSDD). Split, as FSDD's README states it: recordings with index 0–4 of
every speaker and digit are the test set, 5–49 the training set (10%/90%;
every speaker is in both, so this measures new utterances of known speakers).

Features, computed here with NumPy/SciPy (``scipy.io.wavfile`` reads the WAV;
no torchaudio, librosa or soundfile: none is installed, and scipy comes with
albumentations). Each clip becomes a ``size × size`` float32 array — ``size``
mel bands (rows, low frequencies first) × ``size`` frames (columns, time):

- the waveform is scaled to [-1, 1], centred in a window of ``duration``
  seconds (1.024 s by default: longer than 99% of FSDD's clips, whose median
  is 0.42 s) by zero-padding both sides or cropping both ends;
- a short-time Fourier transform with a periodic Hann window of ``n_fft``
  samples (512 = 64 ms at 8 kHz) and hop ``duration·rate / size`` (128
  samples = 16 ms at the defaults), frames centred on their hop (``n_fft/2``
  of zeros at either end), gives power spectra;
- ``size`` triangular filters equally spaced on the HTK mel scale
  (2595·log10(1 + f/700)) from ``fmin`` to ``fmax`` (0–4000 Hz: FSDD's whole
  band), each normalised to unit area (Slaney's normalisation), give mel
  power;
- 10·log10 of it relative to the clip's maximum, floored at −``top_db`` (80 dB):
  values in [−80, 0], loudness-normalised per clip; padded silence is −80.

A spectrogram is a ``spectrogram`` modality: it is never put through the
joint image augmentation (a horizontal flip would reverse time, a rotation
would mix time and frequency; see ``transforms.py``) and is already at its
model input size. The spectrograms of a split are computed once (~1 ms each)
and cached as one ``.npy`` under the cache folder, keyed by the parameters
and the files' names, sizes and modification times.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field

from ..atomic import atomic_path
from .cache import default_cache_dir
from .image_classes import interleave, sort_classes
from .protocol import Modality, only_modality, PairedDataset
from .registry import register_data_kind
from .section import RealFilesData, keyed

FSDD_NAME = re.compile(r"^(\d+)_([^_/]+)_(\d+)\.wav$", re.IGNORECASE)
FSDD_TEST_INDICES = range(5)  # FSDD README: "Recordings numbered 0-4 (inclusive) are in the test"
# Mean and std of the log-mel values (dB) over FSDD's training split at the default settings (53% of
# the values are the -80 dB floor: padding of the short clips); they standardise the model's input.
SPECTROGRAM_STATS = ((-62.5,), (22.1,))
FEATURE_VERSION = 1  # bump when the spectrogram computation changes


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_edges(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """The n_mels + 2 filter edge frequencies (Hz): filter k rises from edge k to k+1 and falls to k+2."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


@functools.lru_cache(maxsize=8)
def mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft//2 + 1) triangular filters on the HTK mel scale, each of unit area."""
    fmax = rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= rate / 2:
        raise ValueError(f"mel band {fmin}-{fmax} Hz must lie within 0-{rate / 2} Hz (half the sampling rate)")
    freqs = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges = mel_edges(n_mels, fmin, fmax)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - left) / (centre - left)
    falling = (right - freqs) / (right - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= 2.0 / (right - left)  # Slaney: equal area, so wide high-frequency bands do not dominate
    if (bank.sum(1) == 0).any():
        raise ValueError(f"{n_mels} mel bands are too narrow for n_fft={n_fft} at {rate} Hz: some hold no FFT bin; "
                         "use fewer bands or a larger n_fft")
    return bank.astype(np.float32)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Centre ``wave`` in ``length`` samples: zero-pad both sides, or crop both ends."""
    n = len(wave)
    if n >= length:
        start = (n - length) // 2
        return wave[start:start + length]
    before = (length - n) // 2
    return np.pad(wave, (before, length - n - before))


def log_mel(wave: np.ndarray, rate: int, size: int = 64, duration: float = 1.024, n_fft: int = 512,
            fmin: float = 0.0, fmax: float = 4000.0, top_db: float = 80.0) -> np.ndarray:
    """(size mel bands, size frames) float32 dB relative to the clip's maximum (module docstring)."""
    hop = int(round(duration * rate / size))
    if hop < 1:
        raise ValueError(f"duration {duration} s at {rate} Hz is too short for {size} frames")
    x = fit_length(np.asarray(wave, dtype=np.float32), hop * size)
    x = np.pad(x, (n_fft // 2, n_fft // 2))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:size]
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (size, n_fft//2 + 1)
    mel = mel_filterbank(rate, n_fft, size, fmin, min(fmax, rate / 2)) @ power.T  # (size, size)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return np.maximum(db - db.max(), -top_db).astype(np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(mono float32 in [-1, 1], sampling rate) from a PCM or float WAV."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable WAV file ({exc})") from None
    if data.dtype.kind == "i":
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    elif data.dtype.kind == "u":  # 8-bit WAV is unsigned, centred on 128
        data = (data.astype(np.float32) - 128.0) / 128.0
    data = data.astype(np.float32)
    return (data.mean(axis=1) if data.ndim == 2 else data), int(rate)


def scan_fsdd(folder: Path) -> list[tuple[str, str, int, str]]:
    """(digit, speaker, index, file name) of every ``{digit}_{speaker}_{index}.wav`` in ``folder``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such recordings folder")
    found = []
    for name in sorted(os.listdir(folder)):
        m = FSDD_NAME.match(name)
        if m:
            found.append((m.group(1), m.group(2), int(m.group(3)), name))
    if not found:
        raise ValueError(f"{folder}: no WAV files named {{digit}}_{{speaker}}_{{index}}.wav")
    return found


class SpokenDigits(PairedDataset):
    """One FSDD split as ``size × size`` log-mel spectrograms (module docstring)."""

    def __init__(self, recordings: str | Path, split: str = "train", modality: str = "speech", size: int = 64,
                 duration: float = 1.024, n_fft: int = 512, fmax: float = 4000.0,
                 classes: Sequence[str] | None = None, cache_dir: Path | None = None):
        if split not in ("train", "test"):
            raise ValueError(f"FSDD split must be 'train' or 'test', got {split!r}")
        self.folder, self.split, self.modality = Path(recordings), split, modality
        params = {"size": size, "duration": duration, "n_fft": n_fft, "fmax": fmax}
        found = [f for f in scan_fsdd(self.folder) if (f[2] in FSDD_TEST_INDICES) == (split == "test")]
        if not found:
            raise ValueError(f"{self.folder}: no recordings in the {split} split (index 0-4 is test, 5+ train)")
        self.classes = list(classes) if classes is not None else sort_classes(f[0] for f in found)
        by_class: dict[str, list] = {}
        for f in found:
            if f[0] not in self.classes:
                raise ValueError(f"{self.folder / f[3]}: digit {f[0]!r} is not among classes {self.classes}")
            by_class.setdefault(f[0], []).append(f)
        ordered = interleave(by_class, self.classes)
        self.files = [f[3] for f, _ in ordered]
        self.speakers = [f[1] for f, _ in ordered]
        self._labels = [self.classes.index(c) for _, c in ordered]
        self._spectrograms = self._compute(params, cache_dir)
        self.modalities = {modality: Modality(modality, "spectrogram", 1, *SPECTROGRAM_STATS)}

    def _compute(self, params: dict, cache_dir: Path | None) -> np.ndarray:
        stats = [(f, (self.folder / f).stat().st_size, (self.folder / f).stat().st_mtime_ns) for f in self.files]
        key = hashlib.sha256(json.dumps([FEATURE_VERSION, params, str(self.folder.resolve()), stats]).encode())
        path = Path(cache_dir or default_cache_dir()) / "spectrograms" / f"{self.split}-{key.hexdigest()[:16]}.npy"
        if path.exists():
            return np.load(path, allow_pickle=False)
        out = np.empty((len(self.files), params["size"], params["size"]), np.float32)
        for i, name in enumerate(self.files):
            wave, rate = read_wav(self.folder / name)
            out[i] = log_mel(wave, rate, **params)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a crash never leaves a half-written cache
            np.save(f, out)
        return out

    def __len__(self) -> int:
        return len(self.files)

    def label(self, index: int) -> int:
        return self._labels[index]

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        only_modality(names, self.modality)
        return {n: self._spectrograms[index] for n in names}

    def source(self, index: int, modality: str) -> str:
        return str(self.folder / self.files[index])

    def source_files(self) -> list[Path]:
        return [self.folder / f for f in self.files]


@register_data_kind
class SpeechDigitsData(RealFilesData):
    """FSDD spoken digits, recordings/{digit}_{speaker}_{index}.wav as log-mel spectrograms."""

    class_pairable: ClassVar[bool] = True

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
        folder = self.folder() / "recordings"
        return keyed("root", lambda: SpokenDigits(folder, split, self.modality, self.size, self.duration,
                                                   self.n_fft, self.fmax, classes))

    def build(self):
        train = self._split("train")
        return train, self._split("test", train.classes)

    def _layout(self):
        train = self._split("train")
        return train.modalities, train.classes
