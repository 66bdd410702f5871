"""Small deterministic separators and audio for the bootstrap tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bootsep.separation.base import Analysis, Separator


class SoftBandSeparator(Separator):
    """'vocals' = a soft high-pass mask (logistic around ``cutoff_hz``), 'accompaniment' = the
    rest; features = the vocals mask and its square (2-D), so confidences are defined.

    Counts calls in ``calls`` (one per ``separate``); ``fail_on`` raises on that call number.
    """

    def __init__(self, sample_rate=16000, cutoff_hz=1000.0, fail_on=None, **kw):
        super().__init__(sample_rate=sample_rate, device="cpu", **kw)
        self.cutoff_hz = float(cutoff_hz)
        # test bookkeeping, private so that it is not part of the separator's fingerprint
        self._calls = 0
        self._batches = []
        self._fail_on = fail_on

    @property
    def calls(self):
        return self._calls

    @property
    def batches(self):
        return self._batches

    def _vocal(self, mix_spec):
        f = self.stft.bin_frequencies(self.sample_rate).to(mix_spec.real.dtype)
        m = torch.sigmoid((f - self.cutoff_hz) / 200.0)
        return m.expand(mix_spec.shape).clone()

    def analyze(self, mix_spec, source_specs=None, with_features=False):
        v = self._vocal(mix_spec)
        return Analysis(torch.stack([1 - v, v], dim=1),
                        torch.stack([v, v * v], dim=-1) if with_features else None)

    def separate(self, mix, sources=None, with_features=False):
        self._calls += 1
        self._batches.append(int(torch.as_tensor(mix).shape[0]))
        if self._fail_on is not None and self._calls == self._fail_on:
            raise RuntimeError("simulated crash")
        return super().separate(mix, sources, with_features)


def tone_song(n, sr, f_voc=2000.0, f_acc=200.0, seed=0, channels=1):
    """``(vocals, accompaniment)`` float32 ``(channels, n)``: a high tone and a low tone plus
    a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    voc = np.stack([0.2 * np.sin(2 * np.pi * f_voc * (1 + 0.01 * c) * t) for c in range(channels)])
    acc = np.stack([0.2 * np.sin(2 * np.pi * f_acc * (1 + 0.01 * c) * t) for c in range(channels)])
    voc = voc + 0.01 * rng.standard_normal(voc.shape)
    acc = acc + 0.01 * rng.standard_normal(acc.shape)
    return voc.astype(np.float32), acc.astype(np.float32)


def write_wav(path, x, sr, subtype="FLOAT"):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(x, dtype=np.float32).T, sr, subtype=subtype)
    return path


def make_song_folder(root, n_songs=3, seconds=2.0, sr=16000, channels=1, quiet=()):
    """MUSDB-like song layout ``root/<song>/{mixture,vocals,accompaniment}.wav``; songs whose
    index is in ``quiet`` are 60 dB down."""
    n = int(seconds * sr)
    for i in range(n_songs):
        voc, acc = tone_song(n, sr, f_voc=1500.0 + 300 * i, seed=i, channels=channels)
        if i in quiet:
            voc, acc = voc * 1e-3, acc * 1e-3
        d = Path(root) / f"song{i}"
        write_wav(d / "vocals.wav", voc, sr)
        write_wav(d / "accompaniment.wav", acc, sr)
        write_wav(d / "mixture.wav", voc + acc, sr)
    return Path(root)


def register_for_tests() -> None:
    """Make gin know ``separate``, ``organize`` and ``BootstrappedDataset`` even before
    ``bootsep.config.registry`` lists them (a no-op once it does)."""
    import gin

    from bootsep.config import organize, registry, separate  # noqa: F401  (gin configurables)

    registry.register_all()
    if "BootstrappedDataset" not in registry._CONFIGURED:
        from bootsep.data.bootstrapped import BootstrappedDataset

        registry._CONFIGURED["BootstrappedDataset"] = gin.external_configurable(
            BootstrappedDataset, name="BootstrappedDataset", module="bootsep")


def run_cli(args, capsys) -> tuple[int, str, str]:
    """``main.py ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    import gin

    from bootsep.cli.main import main

    register_for_tests()
    capsys.readouterr()
    gin.clear_config()
    try:
        rc = main([str(a) for a in args])
    finally:
        gin.clear_config()
    out, err = capsys.readouterr()
    return rc, out, err


def tree(root: Path) -> dict:
    """Every path under ``root`` -> (kind, content or link target, mtime): a snapshot to show
    that nothing under ``root`` changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                out[str(p)] = ("file", p.read_bytes(), p.stat().st_mtime_ns)
            else:
                out[str(p)] = ("dir",)
    return out
