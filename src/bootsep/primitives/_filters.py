"""Private helpers shared by the primitive separators: sliding-window filters and mask algebra.

All functions are batched, pure torch, and run on the device of their input. Shapes follow the
project convention (magnitudes ``(batch, time, freq)``, masks ``(batch, n_src, time, freq)``).
"""

from __future__ import annotations

import functools
import math

import torch

from ..dsp import STFT

EPS = 1e-8

#: elements a sliding-window view may materialise at once (median filters, gathers)
CHUNK_ELEMENTS = 1 << 23

PAD_MODES = ("reflect", "wrap", "edge")


def check_spec(mix_spec: torch.Tensor) -> torch.Tensor:
    """Validate a complex mixture spectrogram ``(batch, time, freq)``; return it unchanged."""
    if not torch.is_tensor(mix_spec) or mix_spec.dim() != 3:
        shape = tuple(mix_spec.shape) if torch.is_tensor(mix_spec) else type(mix_spec).__name__
        raise ValueError(f"mix_spec must be a (batch, time, freq) tensor, got {shape}")
    return mix_spec


def magnitude(mix_spec: torch.Tensor) -> torch.Tensor:
    """``|X|`` as a real tensor (float32 for complex64 / real float32 input)."""
    check_spec(mix_spec)
    return mix_spec.abs() if torch.is_complex(mix_spec) else mix_spec.float().abs()


def pad_indices(n: int, before: int, after: int, mode: str, device=None) -> torch.Tensor:
    """Source indices ``(n + before + after,)`` that extend an axis of length ``n``.

    ``reflect`` is half-sample symmetric (``d c b a | a b c d | d c b a``, scipy.ndimage's
    ``reflect``), ``wrap`` is periodic, ``edge`` repeats the border. Works for any pad width.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {mode!r}; choose one of {PAD_MODES}")
    j = torch.arange(-before, n + after, device=device)
    if mode == "wrap":
        return torch.remainder(j, n)
    if mode == "edge":
        return j.clamp(0, n - 1)
    m = torch.remainder(j, 2 * n)
    return torch.where(m >= n, 2 * n - 1 - m, m)


def _window_split(size: int) -> tuple[int, int]:
    """Samples before/after the centre for a window of ``size`` (scipy.ndimage centring)."""
    before = size // 2
    return before, size - 1 - before


def _to_rows(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, tuple]:
    moved = x.movedim(dim, -1)
    return moved.reshape(-1, moved.shape[-1]), moved.shape


def _from_rows(rows: torch.Tensor, moved_shape: tuple, dim: int) -> torch.Tensor:
    return rows.reshape(moved_shape).movedim(-1, dim)


@functools.lru_cache(maxsize=64)
def _odd_even_merge_network(n: int) -> tuple[tuple[int, int], ...]:
    """Batcher's odd-even merge sorting network for ``n`` (a power of two) wires.

    Compare-exchange pairs ``(i, j)``, ``i < j``: after each, wire ``i`` holds the minimum.
    """
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


@functools.lru_cache(maxsize=64)
def _selection_network(size: int) -> tuple[int, tuple[tuple[int, int, bool, bool], ...]]:
    """Steps of a sorting network pruned to the lower median of ``size`` inputs.

    Returns ``(rank, steps)``; each step ``(i, j, keep_min, keep_max)`` says which of its two
    outputs is read later. Missing inputs (``size`` < wires) are ``+inf``.
    """
    n = 1 << (size - 1).bit_length()
    rank = (size - 1) // 2
    needed = {rank}
    steps = []
    for i, j in reversed(_odd_even_merge_network(n)):
        if i in needed or j in needed:
            steps.append((i, j, i in needed, j in needed))
            needed.update((i, j))
    return rank, tuple(reversed(steps))


def _network_lower_median(wires: list) -> torch.Tensor:
    """Element-wise lower median of a list of equally shaped tensors (a selection network)."""
    size = len(wires)
    rank, steps = _selection_network(size)
    wires = list(wires) + [None] * ((1 << (size - 1).bit_length()) - size)  # None = +inf
    for i, j, keep_min, keep_max in steps:
        a, b = wires[i], wires[j]
        if b is None:  # min(a, inf) = a, max = inf
            continue
        if a is None:
            wires[i], wires[j] = b, None
            continue
        wires[i] = torch.minimum(a, b) if keep_min else False  # False: never read again
        wires[j] = torch.maximum(a, b) if keep_max else False
    return wires[rank]


def _network_median(padded: torch.Tensor, size: int) -> torch.Tensor:
    """Lower median of every ``size`` window of the last dim via a selection network."""
    n_out = padded.shape[-1] - size + 1
    if size == 1:
        return padded.clone()
    return _network_lower_median([padded[..., j:j + n_out] for j in range(size)])


def masked_lower_median(values: torch.Tensor, count: torch.Tensor, dim: int) -> torch.Tensor:
    """Lower median over ``dim`` of the first ``count`` entries along ``dim``.

    Args:
        values: ``(..., k, ...)``; along ``dim`` the valid entries come first.
        count: number of valid entries, shaped like ``values`` without ``dim`` (broadcastable
            after ``unsqueeze(dim)``); rows with ``count == 0`` give an undefined value.
    Returns:
        ``values`` reduced over ``dim``. The invalid tail is filled with ``-inf``/``+inf`` in
        the proportion that puts the lower median of the valid entries at the lower-median
        rank of all ``k``, then a selection network (``k <= 64``) or ``torch.median`` is used.
    """
    k = values.shape[dim]
    if k == 1:
        return values.select(dim, 0).clone()
    slot = torch.arange(k, device=values.device).view([-1] + [1] * (values.dim() - 1 - (dim % values.dim())))
    c = count.unsqueeze(dim)
    n_low = (k - 1) // 2 - torch.div(c - 1, 2, rounding_mode="floor")
    low = (slot >= c) & (slot < c + n_low)
    high = slot >= c + n_low
    inf = torch.tensor(float("inf"), dtype=values.dtype, device=values.device)
    filled = torch.where(low, -inf, torch.where(high, inf, values))
    if k <= NETWORK_MAX_SIZE:
        return _network_lower_median(list(filled.unbind(dim)))
    return filled.median(dim=dim).values


#: window sizes up to this use the selection network, longer ones torch.median on windows
NETWORK_MAX_SIZE = 64
#: output elements per network chunk on a CPU (about 256 KB per wire: stays in cache); on
#: accelerators the chunks are 64x larger so each element-wise kernel has enough work
NETWORK_CHUNK = 1 << 16


def median_filter_1d(x: torch.Tensor, size: int, dim: int = -1, mode: str = "reflect",
                     chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """Running median of ``size`` samples along ``dim`` (same shape as ``x``).

    Matches ``scipy.ndimage.median_filter`` with a 1-D footprint for odd ``size``; for even
    ``size`` the lower median is used. Windows of up to ``NETWORK_MAX_SIZE`` samples use a
    pruned Batcher sorting network (element-wise min/max on shifted views, exact, ~10x faster
    than ``torch.median`` on unfolded windows on a CPU); longer windows use ``torch.median``
    in row chunks of at most ``chunk_elements`` window samples.
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"median filter size must be >= 1, got {size}")
    if size == 1:
        return x.clone()
    rows, moved_shape = _to_rows(x, dim)
    n = rows.shape[-1]
    before, after = _window_split(size)
    idx = pad_indices(n, before, after, mode, device=x.device)
    out = torch.empty_like(rows)
    if size <= NETWORK_MAX_SIZE:
        chunk = NETWORK_CHUNK if x.device.type == "cpu" else NETWORK_CHUNK << 6
        step = max(1, chunk // n)
        for start in range(0, rows.shape[0], step):
            out[start:start + step] = _network_median(
                rows[start:start + step].index_select(-1, idx), size)
    else:
        step = max(1, chunk_elements // max(1, n * size))
        for start in range(0, rows.shape[0], step):
            padded = rows[start:start + step].index_select(-1, idx)
            out[start:start + step] = padded.unfold(-1, size, 1).median(dim=-1).values
    return _from_rows(out, moved_shape, dim)


def sliding_max(rows: torch.Tensor, size: int) -> torch.Tensor:
    """Maximum of every ``size``-long window of the last dim: ``(..., n)`` -> ``(..., n - size + 1)``.

    van Herk / Gil-Werman: block-wise prefix and suffix maxima (``cummax``), so the cost does
    not grow with ``size``.
    """
    n = rows.shape[-1]
    if size == 1:
        return rows.clone()
    if size > n:
        raise ValueError(f"window {size} longer than the axis ({n})")
    n_blocks = -(-n // size)
    pad = n_blocks * size - n
    if pad:
        fill = torch.full((*rows.shape[:-1], pad), float("-inf"), dtype=rows.dtype,
                          device=rows.device)
        rows = torch.cat([rows, fill], dim=-1)
    blocks = rows.reshape(*rows.shape[:-1], n_blocks, size)
    prefix = blocks.cummax(dim=-1).values.flatten(-2)
    suffix = blocks.flip(-1).cummax(dim=-1).values.flip(-1).flatten(-2)
    return torch.maximum(suffix[..., :n - size + 1], prefix[..., size - 1:n])


def _padded_rows(x: torch.Tensor, size: int, dim: int, mode: str) -> tuple[torch.Tensor, tuple]:
    """``dim`` of ``x`` moved last and flattened into rows ``(rows, n)``, padded for a centred
    window of ``size`` samples by ``mode`` (scipy.ndimage's origin 0): ``(rows, n + size - 1)``,
    and the moved shape :func:`_from_rows` needs."""
    rows, moved_shape = _to_rows(x, dim)
    before, after = _window_split(size)
    return rows.index_select(-1, pad_indices(rows.shape[-1], before, after, mode, x.device)), \
        moved_shape


def max_filter_1d(x: torch.Tensor, size: int, dim: int = -1, mode: str = "wrap") -> torch.Tensor:
    """Running maximum of ``size`` samples along ``dim`` (scipy.ndimage.maximum_filter1d)."""
    size = int(size)
    if size <= 1:
        return x.clone()
    padded, moved_shape = _padded_rows(x, size, dim, mode)
    return _from_rows(sliding_max(padded, size), moved_shape, dim)


def mean_filter_1d(x: torch.Tensor, size: int, dim: int = -1, mode: str = "wrap") -> torch.Tensor:
    """Running mean of ``size`` samples along ``dim`` (scipy.ndimage.uniform_filter1d)."""
    size = int(size)
    if size <= 1:
        return x.clone()
    padded, moved_shape = _padded_rows(x, size, dim, mode)
    out = torch.nn.functional.avg_pool1d(padded.unsqueeze(1), size, stride=1).squeeze(1)
    return _from_rows(out, moved_shape, dim)


def filter_2d(fn, x: torch.Tensor, size: tuple[int, int], mode: str = "wrap") -> torch.Tensor:
    """Apply a separable 1-D filter ``fn`` over the last two dims with window ``size``."""
    y = fn(x, size[0], dim=-2, mode=mode)
    return fn(y, size[1], dim=-1, mode=mode)


def high_pass_bins(stft: STFT, sample_rate: int, cutoff_hz: float) -> int:
    """Number of low-frequency bins whose centre frequency is below ``cutoff_hz``."""
    if cutoff_hz is None or cutoff_hz <= 0:
        return 0
    return int((stft.bin_frequencies(sample_rate) < float(cutoff_hz)).sum().item())


def ratio_mask(model: torch.Tensor, mix_mag: torch.Tensor, power: float = 1.0,
               eps: float = EPS) -> torch.Tensor:
    """Soft mask for a component whose magnitude model is ``model <= |X|``.

    ``power == 1`` gives ``(model + eps) / (|X| + eps)`` (REPET's mask; silent bins -> 1).
    Other powers compare the model with the residual ``|X| - model`` Wiener-style:
    ``r^p / (r^p + (1 - r)^p)`` with ``r`` the power-1 mask; ``inf`` gives a binary mask.
    """
    r = ((model + eps) / (mix_mag + eps)).clamp(0.0, 1.0)
    if power == 1.0:
        return r
    if math.isinf(power):
        return (r >= 0.5).to(r.dtype)
    a = r.pow(power)
    b = (1.0 - r).pow(power)
    return a / (a + b).clamp_min(torch.finfo(r.dtype).tiny)


def soft_ratio(x: torch.Tensor, x_ref: torch.Tensor, power: float = 2.0) -> torch.Tensor:
    """``x^p / (x^p + x_ref^p)`` computed stably (librosa's ``softmask``); 0/0 bins -> 0.5."""
    if math.isinf(power):
        return (x > x_ref).to(x.dtype) + 0.5 * (x == x_ref).to(x.dtype)
    z = torch.maximum(x, x_ref)
    bad = z < torch.finfo(x.dtype).tiny
    z = torch.where(bad, torch.ones_like(z), z)
    a = (x / z).pow(power)
    b = (x_ref / z).pow(power)
    m = a / (a + b).clamp_min(torch.finfo(x.dtype).tiny)
    return torch.where(bad, torch.full_like(m, 0.5), m)


def background_foreground(background: torch.Tensor, hp_bins: int = 0,
                          mask_type: str = "soft") -> torch.Tensor:
    """Stack a background mask ``(batch, time, freq)`` into ``(batch, 2, time, freq)``.

    Order ``[background, foreground]``; foreground ``= 1 - background``. The lowest ``hp_bins``
    frequency bins are forced to background; ``mask_type='binary'`` thresholds at 0.5.
    """
    if mask_type not in ("soft", "binary"):
        raise ValueError(f"mask_type must be 'soft' or 'binary', got {mask_type!r}")
    bg = background.clamp(0.0, 1.0)
    if mask_type == "binary":
        bg = (bg >= 0.5).to(bg.dtype)
    if hp_bins > 0:
        bg = bg.clone()
        bg[..., :hp_bins] = 1.0
    return torch.stack([bg, 1.0 - bg], dim=1)


def check_mask_type(mask_type: str) -> str:
    if mask_type not in ("soft", "binary"):
        raise ValueError(f"mask_type must be 'soft' or 'binary', got {mask_type!r}")
    return mask_type
