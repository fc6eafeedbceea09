"""Spoken digits: log-mel spectrograms in NumPy, the FSDD layout and split, and spectrograms kept out of image augmentation."""

import numpy as np
import pytest
from scipy.io import wavfile

from pldistill.data.protocol import ModalityView
from pldistill.data.speech import SpokenDigits, fit_length, log_mel, mel_edges, mel_filterbank, read_wav
from pldistill.data.transforms import JointTransform
from real_layouts import extract_members, shared, sine, skip_reason, write_fsdd

FSDD = shared("fsdd-recordings.tar.gz")


@pytest.mark.parametrize("freq", [250.0, 700.0, 1500.0, 3100.0])
def test_a_sine_peaks_in_the_mel_band_centred_nearest_its_frequency(freq):
    spec = log_mel(sine(freq, seconds=0.5) / 32768.0, 8000, size=64)
    assert spec.shape == (64, 64) and spec.dtype == np.float32
    assert spec.max() == 0.0 and spec.min() >= -80.0  # dB relative to the clip's maximum, floored at -80
    centres = mel_edges(64, 0.0, 4000.0)[1:-1]
    assert spec[:, 32].argmax() == np.abs(centres - freq).argmin()  # a frame in the middle of the tone


def test_filterbank_has_no_empty_band_and_unit_area_triangles():
    bank = mel_filterbank(8000, 512, 64, 0.0, 4000.0)
    assert bank.shape == (64, 257) and (bank.sum(1) > 0).all()
    with pytest.raises(ValueError, match="too narrow"):
        mel_filterbank(8000, 64, 64, 0.0, 4000.0)


def test_clips_are_centred_padded_or_cropped():
    np.testing.assert_array_equal(fit_length(np.arange(3.0), 7), [0, 0, 0, 1, 2, 0, 0])
    np.testing.assert_array_equal(fit_length(np.arange(10.0), 4), [3, 4, 5, 6])
    quiet = log_mel(sine(500.0, seconds=0.2) / 32768.0, 8000, size=64)  # 0.2 s of 1.024 s: silence around it
    assert (quiet[:, :5] == -80).all() and (quiet[:, -5:] == -80).all() and quiet[:, 32].max() == 0


def test_wav_is_read_as_mono_float(tmp_path):
    stereo = np.stack([sine(440.0), sine(440.0)], axis=1)
    wavfile.write(tmp_path / "s.wav", 16000, stereo)
    wave, rate = read_wav(tmp_path / "s.wav")
    assert rate == 16000 and wave.ndim == 1 and wave.dtype == np.float32 and 0.45 < np.abs(wave).max() <= 0.5
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(ValueError, match="not a readable WAV"):
        read_wav(tmp_path / "bad.wav")


def test_fsdd_layout_split_by_recording_index_and_cached(tmp_path):
    write_fsdd(tmp_path)
    train = SpokenDigits(tmp_path / "recordings", "train", cache_dir=tmp_path / "cache")
    test = SpokenDigits(tmp_path / "recordings", "test", cache_dir=tmp_path / "cache")
    assert len(test) == 10 * 2 * 5 and len(train) == 10 * 2 * 3  # indices 0-4 are FSDD's test set
    assert all(int(f.rsplit("_", 1)[1][:-4]) < 5 for f in test.files)
    assert train.classes == [str(d) for d in range(10)] and train.modalities["speech"].kind == "spectrogram"
    x = test.load(0, ["speech"])["speech"]
    assert x.shape == (64, 64) and np.isfinite(x).all()
    digit = test.classes[test.label(0)]
    centres = mel_edges(64, 0.0, 4000.0)[1:-1]
    assert x[:, 32].argmax() == np.abs(centres - (300 + 300 * int(digit))).argmin()  # the digit's own pitch
    assert len(list((tmp_path / "cache" / "spectrograms").glob("*.npy"))) == 2
    again = SpokenDigits(tmp_path / "recordings", "test", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.load(0, ["speech"])["speech"], x)


def test_spectrograms_bypass_the_joint_image_augmentation(tmp_path):
    from pldistill.data.protocol import Modality

    modalities = {"speech": Modality("speech", "spectrogram", 1, (0.0,), (1.0,)),
                  "digit": Modality("digit", "image", 1, (0.0,), (1.0,))}
    spec = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    image = np.zeros((28, 28, 1), np.uint8)
    image[:, :5] = 255
    flip = JointTransform(modalities, hflip=True, seed=0)
    flip.compose.transforms[0].p = 1.0  # a flip that always happens
    out = flip({"speech": spec, "digit": image})
    np.testing.assert_array_equal(out["digit"], image[:, ::-1])  # the image is flipped ...
    np.testing.assert_array_equal(out["speech"], spec)  # ... the spectrogram is not: no time reversal
    moved = JointTransform(modalities, shift=0.2, scale=0.2, rotate=30, seed=0, size=32)
    out = moved({"speech": spec, "digit": image})
    assert out["digit"].shape == (32, 32, 1)  # resized and moved; the spectrogram keeps its size and values
    np.testing.assert_array_equal(out["speech"], spec)
    alone = JointTransform({"speech": modalities["speech"]}, hflip=True, seed=0, size=32)
    np.testing.assert_array_equal(alone({"speech": spec})["speech"], spec)


@pytest.mark.skipif(not FSDD.exists(), reason=skip_reason("fsdd-recordings.tar.gz"))
def test_real_fsdd_recordings(tmp_path):
    extract_members(FSDD, tmp_path, lambda n: n.split("/")[-1].split("_")[0] in ("3", "7")
                    and n.split("_")[1] == "jackson" and int(n.rsplit("_", 1)[1][:-4]) in (0, 1, 5, 6))
    wave, rate = read_wav(tmp_path / "recordings" / "3_jackson_0.wav")
    assert rate == 8000 and 0.1 < len(wave) / rate < 2.5 and np.abs(wave).max() > 0.05  # 8 kHz, trimmed speech
    test = SpokenDigits(tmp_path / "recordings", "test", cache_dir=tmp_path / "cache")
    train = SpokenDigits(tmp_path / "recordings", "train", cache_dir=tmp_path / "cache")
    assert (len(train), len(test)) == (4, 4) and test.classes == ["3", "7"]
    view = ModalityView(test, ["speech"])
    x = view[0]["speech"]
    assert tuple(x.shape) == (1, 64, 64) and abs(float(x.mean())) < 3  # standardised to the FSDD statistics
    spec = test.load(0, ["speech"])["speech"]
    speech = spec[:, spec.max(0) > -80]
    assert speech.shape[1] > 5 and speech[:32].mean() > speech[32:].mean()  # voice: energy at low frequencies
