"""Deep separators for inference: mask estimation and k-means on deep-clustering embeddings.

Both run the model over the mixture magnitude in overlapping chunks of frames so that model
activations stay bounded for long signals (the STFT of a 10-minute signal is held in memory;
the model never sees more than ``chunk_frames`` frames at once). Outputs of consecutive chunks
are linearly cross-faded over the ``overlap_frames`` they share (complementary ramps that sum
to 1: :mod:`bootsep.separation.windowing`, the one overlap-add, which file mode uses too). The
model input features (dB re. max, per-example standardisation) are computed once on the whole
signal and sliced per chunk, so chunking does not change the normalisation; only the
recurrent context at chunk edges differs. Channels go through the batch dimension.

Inference always runs under ``torch.no_grad()`` with the model in ``eval()`` mode (the separator
puts it there on every call; a trainer sharing the model must call ``.train()`` afterwards).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..dsp import STFT, rank_percentile
from ..utils.errors import UserError
from .base import Analysis, Separator
from .windowing import OverlapAdd, window_bounds

_DEFAULT_TWO = ("accompaniment", "vocals")


def _default_labels(n: int) -> list:
    return list(_DEFAULT_TWO) if n == 2 else [f"source{i}" for i in range(n)]


class _ChunkedModelSeparator(Separator):
    """Shared plumbing: device placement, eval mode, chunked cross-faded model outputs."""

    def __init__(self, model: torch.nn.Module, sample_rate: int, stft: STFT | None,
                 source_labels: Sequence[str], device: str | None, chunk_frames: int,
                 overlap_frames: int):
        super().__init__(sample_rate=sample_rate, stft=stft, source_labels=source_labels,
                         device=device)
        chunk_frames, overlap_frames = int(chunk_frames), int(overlap_frames)
        if chunk_frames < 1 or overlap_frames < 0 or 2 * overlap_frames > chunk_frames:
            raise ValueError(f"need chunk_frames >= 1 and 0 <= 2 * overlap_frames <= chunk_frames,"
                             f" got chunk_frames={chunk_frames}, overlap_frames={overlap_frames}")
        self.chunk_frames, self.overlap_frames = chunk_frames, overlap_frames
        self.model = model.to(self.device).eval()
        self._accepts_features = ("features" in inspect.signature(model.forward).parameters
                                  and hasattr(model, "input_features"))

    # ------------------------------------------------------------------ chunking
    def chunk_bounds(self, num_frames: int) -> list:
        """``[(start, end), ...]`` frame ranges of the chunks covering ``num_frames`` frames
        (:func:`~bootsep.separation.windowing.window_bounds`)."""
        return window_bounds(num_frames, self.chunk_frames, self.overlap_frames)

    def _stream(self, mag: torch.Tensor, keys: Sequence[str]) -> Iterator[tuple]:
        """Yield ``(start, end, {key: output with time on dim 1})`` covering all frames in order.

        ``mag``: ``(batch, time, freq)``. Outputs: ``'embedding'`` ``(batch, t, freq, dim)``;
        ``'mask'`` is moved to ``(batch, t, n_src, freq)``. Segments are final (cross-faded by
        :class:`~bootsep.separation.windowing.OverlapAdd`).
        """
        self.model.eval()
        feats = self.model.input_features(mag) if self._accepts_features else None
        bounds = self.chunk_bounds(mag.shape[1])
        joins = {k: OverlapAdd(bounds, dim=1) for k in keys}
        done = 0
        for start, end in bounds:
            if feats is None:
                out = self.model(mag[:, start:end])
            else:
                out = self.model(mag[:, start:end], features=feats[:, start:end])
            seg = {k: joins[k].push(out[k].movedim(2, 1) if k == "mask" else out[k])
                   for k in keys}
            stop = joins[keys[0]].done
            yield done, stop, seg
            done = stop

    def _full(self, mag: torch.Tensor, key: str) -> torch.Tensor:
        parts = [seg[key] for _, _, seg in self._stream(mag, [key])]
        y = torch.cat(parts, dim=1)
        return y.movedim(1, 2) if key == "mask" else y

    # ------------------------------------------------------------------ interface
    @torch.no_grad()
    def analyze(self, mix_spec: torch.Tensor, source_specs: torch.Tensor | None = None,
                with_features: bool = False) -> Analysis:
        """As :meth:`Separator.analyze`; the model runs once per chunk even with
        ``with_features``. Computed on ``self.device``; returned on ``mix_spec``'s device."""
        out = self._analyze(mix_spec.to(self.device), bool(with_features))
        dev = mix_spec.device
        return Analysis(out.masks.to(dev), None if out.features is None else out.features.to(dev),
                        out.extra)

    def _analyze(self, mix_spec: torch.Tensor, with_features: bool) -> Analysis:
        raise NotImplementedError


class DeepMaskSeparator(_ChunkedModelSeparator):
    """Masks from a mask-inference or chimera model.

    Args:
        model: a model whose output has ``'mask'`` ``(batch, n_src, time, freq)``.
        sample_rate: Hz (default 16000).
        stft: the STFT the model was trained with (default 512/128 sqrt-Hann).
        source_labels: names in the model's mask order (default ``['accompaniment',
            'vocals']`` for 2 sources, else ``source0..``).
        device: ``None`` = CUDA when available, else CPU. The model is moved there.
        chunk_frames: frames per model call (default 2000 = 16 s at hop 128 / 16 kHz).
        overlap_frames: frames shared by consecutive chunks, cross-faded (default 100).

    Features (:meth:`analyze` with ``with_features``): the model's embedding ``(batch, time,
    freq, dim)`` when the model has one (chimera), else None.
    """

    def __init__(self, model: torch.nn.Module, sample_rate: int = 16000, stft: STFT | None = None,
                 source_labels: Sequence[str] | None = None, device: str | None = None,
                 chunk_frames: int = 2000, overlap_frames: int = 100):
        keys = tuple(getattr(model, "output_keys", ()))
        if "mask" not in keys:
            raise ValueError(f"{type(model).__name__} outputs {keys}: DeepMaskSeparator needs "
                             "'mask' (use DeepClusteringSeparator for embedding-only models)")
        n = int(model.num_sources)
        labels = _default_labels(n) if source_labels is None else list(source_labels)
        if len(labels) != n:
            raise ValueError(f"source_labels {labels} has {len(labels)} names but the model "
                             f"produces {n} masks")
        super().__init__(model, sample_rate, stft, labels, device, chunk_frames, overlap_frames)
        self.has_embedding = "embedding" in keys

    def _analyze(self, mix_spec: torch.Tensor, with_features: bool) -> Analysis:
        mag = mix_spec.abs()
        if not (with_features and self.has_embedding):
            return Analysis(self._full(mag, "mask"))
        masks, embs = [], []
        for _, _, seg in self._stream(mag, ["mask", "embedding"]):
            masks.append(seg["mask"])
            embs.append(seg["embedding"])
        return Analysis(torch.cat(masks, dim=1).movedim(1, 2), torch.cat(embs, dim=1))


class DeepClusteringSeparator(_ChunkedModelSeparator):
    """K-means on deep-clustering embeddings (deep clustering or chimera models).

    The cluster order is arbitrary (``arbitrary_order = True``), so evaluation searches the
    best permutation.

    Two passes over chunks: (1) embeddings of a seeded random subsample of the loud bins of
    the whole signal (all channels) are collected and k-means is fitted on them; (2) every
    bin is assigned to a cluster, chunk by chunk (when the full embedding is small, under
    ``cache_bytes``, or asked for with ``with_features``, pass 1 keeps it and pass 2 reuses it).

    Loud bins: a bin is used for fitting when its mixture level is within ``loud_db`` dB of
    the loudest bin of the whole signal (all channels; default 40 dB, the deep-clustering
    silence threshold) and, if ``loud_percentile`` is set, at or above that percentile of all
    bins' dB. With fewer loud bins than clusters, all bins are used. The subsample is drawn
    (without replacement, ``seed``) from the loud-bin indices alone, so it does not depend on
    ``chunk_frames``.

    **Source order is arbitrary**: cluster ``i`` becomes source ``i`` in k-means' order, so
    ``source_labels`` are placeholders and evaluation must use a permutation search.

    Args:
        model: output has ``'embedding'`` ``(batch, time, freq, dim)``.
        num_sources: clusters (default 2).
        sample_rate, stft, device, chunk_frames, overlap_frames: as :class:`DeepMaskSeparator`.
        source_labels: default ``['accompaniment', 'vocals']`` for 2 sources, else ``source0..``.
        loud_db: dB below the max kept for fitting (default 40.0; ``None`` = no level limit).
        loud_percentile: percentile 0-100 of the mixture dB to keep (default None = off).
        max_fit_points: most embeddings k-means is fitted on (default 20000).
        seed: seeds the subsample and sklearn's k-means (default 0).
        kmeans_init: ``'k-means++'`` (default) or ``'random'``.
        n_init: k-means restarts (default 3).
        mask_type: ``'binary'`` (default; nearest centre) or ``'soft'``: softmax over
            clusters of ``-soft_beta * squared distance`` to each centre.
        soft_beta: inverse temperature for soft masks (default 10.0; unit-norm embeddings have
            squared distances in [0, 4]).
        cache_bytes: keep the whole embedding between passes when it is at most this many
            bytes (default 256 MiB).

    Features (:meth:`analyze` with ``with_features``): the embedding ``(batch, time, freq,
    dim)``. The centres fitted in a call are in its ``Analysis.extra['cluster_centers']``
    ``(num_sources, dim)`` (CPU), and so in ``Separation.extra``.
    """

    arbitrary_order = True

    def __init__(self, model: torch.nn.Module, num_sources: int = 2, sample_rate: int = 16000,
                 stft: STFT | None = None, source_labels: Sequence[str] | None = None,
                 device: str | None = None, chunk_frames: int = 2000, overlap_frames: int = 100,
                 loud_db: float | None = 40.0, loud_percentile: float | None = None,
                 max_fit_points: int = 20000, seed: int = 0, kmeans_init: str = "k-means++",
                 n_init: int = 3, mask_type: str = "binary", soft_beta: float = 10.0,
                 cache_bytes: int = 256 * 2**20):
        keys = tuple(getattr(model, "output_keys", ()))
        if "embedding" not in keys:
            raise ValueError(f"{type(model).__name__} outputs {keys}: DeepClusteringSeparator "
                             "needs 'embedding'")
        num_sources = int(num_sources)
        if num_sources < 1:
            raise ValueError("num_sources must be >= 1")
        labels = _default_labels(num_sources) if source_labels is None else list(source_labels)
        if len(labels) != num_sources:
            raise ValueError(f"source_labels {labels} has {len(labels)} names, "
                             f"num_sources={num_sources}")
        if mask_type not in ("binary", "soft"):
            raise ValueError(f"mask_type {mask_type!r} not in ('binary', 'soft')")
        if kmeans_init not in ("k-means++", "random"):
            raise ValueError(f"kmeans_init {kmeans_init!r} not in ('k-means++', 'random')")
        if loud_percentile is not None and not 0.0 <= loud_percentile <= 100.0:
            raise ValueError(f"loud_percentile {loud_percentile} not in [0, 100]")
        if max_fit_points < num_sources:
            raise ValueError(f"max_fit_points {max_fit_points} < num_sources {num_sources}")
        super().__init__(model, sample_rate, stft, labels, device, chunk_frames, overlap_frames)
        self.loud_db = None if loud_db is None else float(loud_db)
        self.loud_percentile = None if loud_percentile is None else float(loud_percentile)
        self.max_fit_points, self.seed = int(max_fit_points), int(seed)
        self.kmeans_init, self.n_init = kmeans_init, int(n_init)
        self.mask_type, self.soft_beta = mask_type, float(soft_beta)
        self.cache_bytes = int(cache_bytes)

    # ------------------------------------------------------------------ helpers
    def loud_bins(self, mag: torch.Tensor) -> torch.Tensor:
        """Boolean ``(batch, time, freq)``: bins used to fit k-means (see class docstring)."""
        db = 20.0 * torch.log10(mag.clamp_min(1e-8))
        loud = torch.ones_like(db, dtype=torch.bool)
        if self.loud_db is not None:
            loud &= db >= db.max() - self.loud_db
        if self.loud_percentile is not None:
            loud &= db >= rank_percentile(db, self.loud_percentile)
        if int(loud.sum()) < self.num_sources:
            loud = torch.ones_like(loud)
        return loud

    def _fit(self, samples: torch.Tensor) -> torch.Tensor:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=self.num_sources, init=self.kmeans_init, n_init=self.n_init,
                    random_state=self.seed)
        km.fit(samples.double().cpu().numpy())
        return torch.as_tensor(km.cluster_centers_, dtype=samples.dtype, device=samples.device)

    def assign(self, embedding: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """Embedding ``(batch, time, freq, dim)`` + centres ``(n_src, dim)`` -> masks
        ``(batch, n_src, time, freq)`` (binary or soft, per ``mask_type``)."""
        d2 = ((embedding ** 2).sum(-1, keepdim=True) - 2.0 * embedding @ centers.t()
              + (centers ** 2).sum(-1))
        if self.mask_type == "binary":
            m = torch.nn.functional.one_hot(d2.argmin(-1), self.num_sources).to(embedding.dtype)
        else:
            m = torch.softmax(-self.soft_beta * d2, dim=-1)
        return m.movedim(-1, 1)

    # ------------------------------------------------------------------ interface
    def _analyze(self, mix_spec: torch.Tensor, with_features: bool) -> Analysis:
        mag = mix_spec.abs()
        batch, num_frames, num_freq = mag.shape
        loud = self.loud_bins(mag)
        # rank order of loud bins: time-major (time, batch, freq), so a frame range is a
        # contiguous range of ranks whatever the chunking
        per_frame = loud.transpose(0, 1).reshape(num_frames, -1).sum(1)
        cum = torch.cumsum(per_frame, 0).cpu()
        total = int(cum[-1])
        k = min(self.max_fit_points, total)
        rng = np.random.default_rng(self.seed)
        ranks = torch.from_numpy(np.sort(rng.choice(total, size=k, replace=False)))
        keep = None
        samples, kept = [], []
        for start, end, seg in self._stream(mag, ["embedding"]):
            emb = seg["embedding"]
            dim = emb.shape[-1]
            if keep is None:  # keep the whole embedding if asked for or small
                nbytes = batch * num_frames * num_freq * dim * emb.element_size()
                keep = with_features or nbytes <= self.cache_bytes
            lo = int(cum[start - 1]) if start > 0 else 0
            hi = int(cum[end - 1])
            a, b = torch.searchsorted(ranks, torch.tensor([lo, hi])).tolist()
            if b > a:
                local = (ranks[a:b] - lo).to(emb.device)
                pos = loud[:, start:end].transpose(0, 1).reshape(-1).nonzero().squeeze(1)[local]
                samples.append(emb.transpose(0, 1).reshape(-1, dim)[pos])
            if keep:
                kept.append(emb)
        centers = self._fit(torch.cat(samples, dim=0))
        extra = {"cluster_centers": centers.cpu()}
        if keep:
            embedding = torch.cat(kept, dim=1)
            return Analysis(self.assign(embedding, centers),
                            embedding if with_features else None, extra)
        out = mag.new_empty(batch, self.num_sources, num_frames, num_freq)
        for start, end, seg in self._stream(mag, ["embedding"]):
            out[:, :, start:end] = self.assign(seg["embedding"], centers)
        return Analysis(out, None, extra)


def load_separator(checkpoint: str | os.PathLike | dict, kind: str = "auto",
                   device: str | None = None, **kwargs) -> Separator:
    """Build a deep separator from a checkpoint.

    Args:
        checkpoint: dict, or path to a ``torch.save``d dict, with keys ``'model'``
            (:meth:`SeparationModel.serialize` output), and optionally ``'stft'``
            (``window_length``/``hop_length``/``window_type``), ``'sample_rate'`` (Hz; required
            unless ``sample_rate`` is passed, and a passed one must agree), ``'source_labels'``.
        kind: ``'auto'`` (mask separator if the model outputs ``'mask'``, else clustering),
            ``'mask'`` or ``'clustering'``.
        device: ``None`` = CUDA when available, else CPU.
        **kwargs: passed to the separator's constructor (they override the checkpoint's).
    Raises:
        UserError: missing/unreadable file, missing keys, wrong kind for the model.
    """
    from ..models.base import load_model

    where = "checkpoint dict"
    if isinstance(checkpoint, str | os.PathLike):
        where = os.fspath(checkpoint)
        if not os.path.isfile(where):
            raise UserError(f"checkpoint {where!r} does not exist; pass the path of a "
                            "*.model.pth file written by training")
        from ..engine.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(where)  # weights_only: plain data, never code
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise UserError(f"{where}: not a model checkpoint (needs key 'model', has {keys})")
    try:
        model = load_model(checkpoint["model"], device="cpu")
    except (KeyError, ValueError, TypeError, RuntimeError) as err:
        raise UserError(f"{where}: cannot rebuild the model: {err}") from err
    if kind not in ("auto", "mask", "clustering"):
        raise UserError(f"separator kind {kind!r} not in ('auto', 'mask', 'clustering')")
    keys = tuple(model.output_keys)
    if kind == "auto":
        kind = "mask" if "mask" in keys else "clustering"
    needed = "mask" if kind == "mask" else "embedding"
    if needed not in keys:
        raise UserError(f"{where}: kind={kind!r} needs a model with {needed!r} output; "
                        f"{type(model).__name__} outputs {keys}")
    if "stft" in checkpoint and checkpoint["stft"] is not None:
        kwargs.setdefault("stft", STFT.from_params(dict(checkpoint["stft"])))
    rate = checkpoint.get("sample_rate")  # the model's rate is the checkpoint's, not a guess
    if rate is None and "sample_rate" not in kwargs:
        raise UserError(f"{where} records no sample_rate; pass the rate the model was trained "
                        f"at (deep_separator.sample_rate = RATE)")
    if rate is not None and "sample_rate" in kwargs and int(kwargs["sample_rate"]) != int(rate):
        raise UserError(f"deep_separator.sample_rate = {kwargs['sample_rate']} but the model "
                        f"{where} was trained at {int(rate)} Hz; remove the binding (the rate "
                        f"comes from the checkpoint)")
    kwargs.setdefault("sample_rate", int(rate) if rate is not None else None)
    labels = checkpoint.get("source_labels")
    if kind == "mask":
        kwargs.setdefault("source_labels", labels)
        cls = DeepMaskSeparator
    else:
        if "num_sources" not in kwargs:
            kwargs["num_sources"] = len(labels) if labels else (model.num_sources or 2)
        if labels and len(labels) == kwargs["num_sources"]:
            kwargs.setdefault("source_labels", labels)
        cls = DeepClusteringSeparator
    try:
        return cls(model, device=device, **kwargs)
    except ValueError as err:
        raise UserError(f"{where}: {err}") from err


__all__ = ["DeepClusteringSeparator", "DeepMaskSeparator", "load_separator"]
