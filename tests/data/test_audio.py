import numpy as np
import pytest

from bootsep.data.audio import audio_info, load_audio, save_audio
from bootsep.utils.errors import UserError


def _stereo(sr, seconds, seed=0):
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((2, int(sr * seconds)))).astype(np.float32)


def test_roundtrip_mono_and_info(tmp_path):
    x = _stereo(8000, 0.5)
    p = tmp_path / "a.wav"
    save_audio(p, x, 8000)
    assert audio_info(p) == (8000, 4000, 2)
    y = load_audio(p)
    assert y.dtype == np.float32 and y.shape == (2, 4000)
    np.testing.assert_array_equal(y, x)
    m = load_audio(p, mono=True)
    assert m.shape == (1, 4000)
    np.testing.assert_allclose(m[0], x.mean(0), atol=1e-7)


def test_partial_read_is_exact_slice(tmp_path):
    x = _stereo(8000, 1.0)
    p = tmp_path / "a.wav"
    save_audio(p, x, 8000)
    y = load_audio(p, offset=0.25, duration=0.5)
    np.testing.assert_array_equal(y, x[:, 2000:6000])
    # past the end: shorter, never padded
    z = load_audio(p, offset=0.9, duration=0.5)
    np.testing.assert_array_equal(z, x[:, 7200:])
    assert load_audio(p, offset=2.0, duration=0.5).shape == (2, 0)


def test_resample_44k_to_16k_length_frequency_and_excerpt(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    x = (0.4 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    p = tmp_path / "tone.wav"
    save_audio(p, x, sr)
    y = load_audio(p, sample_rate=16000)
    assert y.shape == (1, 16000)
    spec = np.abs(np.fft.rfft(y[0] * np.hanning(16000)))  # 1 Hz bins
    low, high = int(np.argmax(spec[:2000])), 2000 + int(np.argmax(spec[2000:]))
    assert (low, high) == (1000, 3000)
    assert spec[:900].max() < 1e-3 * spec[1000] and spec[3100:].max() < 1e-3 * spec[3000]
    assert spec[1000] / spec[3000] == pytest.approx(2.0, rel=0.05)
    # a resampled excerpt is the same span of the fully resampled file
    e = load_audio(p, sample_rate=16000, offset=0.3, duration=0.25)
    assert e.shape == (1, 4000)
    np.testing.assert_allclose(e, y[:, 4800:8800], atol=1e-5)


def test_missing_file_is_user_error(tmp_path):
    p = tmp_path / "nope" / "mixture.wav"
    with pytest.raises(UserError, match="not found: .*nope/mixture.wav"):
        load_audio(p)
    with pytest.raises(UserError, match="not found"):
        audio_info(p)


def test_unreadable_file_is_user_error(tmp_path):
    p = tmp_path / "broken.wav"
    p.write_bytes(b"RIFF....this is not audio" * 10)
    with pytest.raises(UserError, match=r"cannot read audio file .*broken.wav.*convert"):
        load_audio(p)
    with pytest.raises(UserError, match="folder"):
        load_audio(tmp_path)
