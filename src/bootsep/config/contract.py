"""The signal contract: one place that checks sample rate, source labels and STFT agree.

A config binds the same facts in several places, often in different ``.gin`` files: the
datasets' ``sample_rate`` and ``sources``, ``train.sample_rate``, each separator's
``sample_rate`` and ``stft``, a model's ``num_features`` (which must be the STFT's bin count)
and, for a trained model, what its checkpoint recorded. Nothing compared them, so a 16 kHz
model was scored on 44.1 kHz audio without a word. Here what can be derived is derived, and
the rest is checked at the start of ``train``, ``evaluate`` and ``separate``; a mismatch is a
:class:`~bootsep.utils.errors.UserError` (one ``error:`` line, exit 2) naming both values and
where each came from.

Derived (so a config need not bind it, and cannot get it wrong):

- ``train.sample_rate``: the training dataset's ``sample_rate`` when unbound;
- a model's ``num_features``: ``STFT.window_length // 2 + 1`` when unbound;
- a mel model's ``sample_rate`` (``n_mels`` set): ``train.sample_rate`` when unbound;
- a trained separator's rate, STFT and labels: its checkpoint (``deep_separator``).

Checked: ``train.sample_rate`` against the training and validation datasets; the model's
``num_features`` (and a mel model's rate) against the STFT and the rate; the training labels
against the datasets' ``sources``; a separator's rate against the evaluated dataset's; its
labels against the dataset's (another order is aligned by name; another set is refused unless
the separator is a clustering one or ``evaluate.compute_permutation = True`` asks for the best
assignment); and every separator whose ``stft`` was left unbound (so it fell back to the
default ``STFT()``) against the config's ``STFT`` bindings. A training set whose probed items
are all silent is refused too (:func:`check_audible`).
"""

from __future__ import annotations

import inspect
import math

import gin
import numpy as np

from ..utils.errors import UserError


# ---------------------------------------------------------------------------- helpers
def base_dataset(ds):
    """The dataset that holds the settings (unwraps ``Subset``, ``RepeatItem``, ...)."""
    seen = 0
    while ds is not None and not hasattr(ds, "sample_rate") and hasattr(ds, "dataset") \
            and seen < 8:
        ds, seen = ds.dataset, seen + 1
    return ds


def dataset_rate(ds) -> int | None:
    """A dataset's output rate in Hz (None: it keeps each file's rate or has none)."""
    rate = getattr(base_dataset(ds), "sample_rate", None)
    return None if rate is None else int(rate)


def dataset_sources(ds) -> list[str] | None:
    """A dataset's source labels in output order (None or empty: it has no references)."""
    src = getattr(ds, "sources", None)
    if src is None:
        src = getattr(base_dataset(ds), "sources", None)
    return list(src) if src else None


def _ds_where(ds, scope: str, attr: str = "sample_rate") -> str:
    return f"the {scope} dataset's {type(base_dataset(ds)).__name__}.{attr}"


def _bound(name: str | None, param: str):
    """``(True, value)`` when ``name.param`` is bound in gin, else ``(False, None)``."""
    if not name:
        return False, None
    try:
        return True, gin.query_parameter(f"{name}.{param}")
    except (ValueError, KeyError):
        return False, None


def _sep_where(sep) -> str:
    path = getattr(sep, "checkpoint_path", None)
    if path:
        return f"the model {path} (trained at train.sample_rate)"
    return f"{type(sep).__name__}.sample_rate"


def _stft_text(stft) -> str:
    p = stft.params
    return f"{p.window_length}/{p.hop_length} {p.window_type}"


# ---------------------------------------------------------------------------- train
def check_train(sample_rate: int | None, train_dataset, val_dataset=None,
                source_labels=None) -> tuple[int, list[str]]:
    """Rate and labels of a training run, derived from the train dataset and checked.

    Args:
        sample_rate: ``train.sample_rate`` (None = unbound: the train dataset's).
        train_dataset, val_dataset: the datasets (``val_dataset`` may be None).
        source_labels: ``train.source_labels`` (None = the train dataset's ``sources``).

    Returns:
        ``(sample_rate, labels)`` to train with and record in the checkpoint.
    """
    tr = dataset_rate(train_dataset)
    if sample_rate is None:
        if tr is None:
            raise UserError(f"train.sample_rate is not bound and {_ds_where(train_dataset, 'train')}"
                            f" is not set: bind train.sample_rate = RATE (Hz)")
        sample_rate = tr
    sample_rate = int(sample_rate)
    if tr is not None and tr != sample_rate:
        raise UserError(f"train.sample_rate = {sample_rate} but {_ds_where(train_dataset, 'train')}"
                        f" = {tr}; bind one rate for both (e.g. SAMPLE_RATE = {tr}, "
                        f"train.sample_rate = %SAMPLE_RATE) or leave train.sample_rate unbound "
                        f"(it is the train dataset's)")
    vr = dataset_rate(val_dataset) if val_dataset is not None else None
    if vr is not None and vr != sample_rate:
        raise UserError(f"{_ds_where(val_dataset, 'val')} = {vr} but the model trains at "
                        f"{sample_rate} Hz (train.sample_rate / the train dataset); bind the same "
                        f"sample_rate for the val dataset")
    ds_labels = dataset_sources(train_dataset)
    if source_labels is not None:
        labels = list(source_labels)
        if ds_labels and labels != ds_labels:
            raise UserError(f"train.source_labels = {labels} but "
                            f"{_ds_where(train_dataset, 'train', 'sources')} = {ds_labels} (the "
                            f"order of its targets); leave train.source_labels unbound (it is the "
                            f"dataset's) or make them equal")
    else:
        labels = ds_labels or ["s0", "s1"]
    val_labels = dataset_sources(val_dataset) if val_dataset is not None else None
    # a train set with unnamed targets (MixIT's mixtures of mixtures) names no outputs to compare
    if val_labels and ds_labels and val_labels != labels:
        raise UserError(f"{_ds_where(val_dataset, 'val', 'sources')} = {val_labels} but the model "
                        f"trains on {labels} ({_ds_where(train_dataset, 'train', 'sources')}); "
                        f"validate on the same sources in the same order")
    return sample_rate, labels


def build_model(model, stft, sample_rate: int):
    """Build ``train.model`` with what the STFT and rate determine, then check it.

    ``model`` is a (gin-configured) class or an instance. An unbound ``num_features`` is the
    STFT's bin count; an unbound ``sample_rate`` of a mel model (``n_mels`` not None) is the
    training rate. A bound value that disagrees is a :class:`UserError`.
    """
    import torch

    n_bins = int(stft.window_length) // 2 + 1
    if isinstance(model, torch.nn.Module) or not callable(model):
        net, name = model, type(model).__name__
    else:
        name = getattr(model, "__name__", None)
        try:
            params = inspect.signature(model.__init__ if inspect.isclass(model) else model)\
                .parameters
        except (TypeError, ValueError):
            params = {}
        kwargs = {}
        if "num_features" in params and not _bound(name, "num_features")[0]:
            kwargs["num_features"] = n_bins
        if "sample_rate" in params and not _bound(name, "sample_rate")[0]:
            has, n_mels = _bound(name, "n_mels")
            if not has and "n_mels" in params:
                n_mels = params["n_mels"].default
                n_mels = None if n_mels is inspect.Parameter.empty else n_mels
            if n_mels is not None and "n_mels" in params:
                kwargs["sample_rate"] = int(sample_rate)
        net = model(**kwargs)
        name = name or type(net).__name__
    args = getattr(net, "init_args", None)
    args = args if isinstance(args, dict) else {}
    nf = args.get("num_features")
    if nf is not None and int(nf) != n_bins:
        raise UserError(f"{name}.num_features = {nf} but the STFT (STFT.window_length = "
                        f"{stft.window_length}) has {n_bins} frequency bins; leave "
                        f"{name}.num_features unbound (it is derived from the STFT) or bind "
                        f"STFT.window_length = {2 * (int(nf) - 1)}")
    if args.get("n_mels") and args.get("sample_rate") is not None \
            and int(args["sample_rate"]) != int(sample_rate):
        raise UserError(f"{name}.sample_rate = {args['sample_rate']} (its mel filterbank) but the "
                        f"model trains at {sample_rate} Hz (train.sample_rate / the train "
                        f"dataset); bind {name}.sample_rate = %SAMPLE_RATE or leave it unbound")
    return net


def check_audible(dataset, scope: str = "train", probes: int = 8) -> None:
    """Refuse a dataset whose first ``probes`` items are all silent.

    Each item already redraws near-silent excerpts (``max_retries``) and keeps the loudest,
    so ``probes`` silent items mean the data itself is silent (e.g. empty exports): training
    would fit zeros. The probe stops at the first audible item (usually the first).
    Silence is the dataset's ``silence_db`` (dBFS of the mixture RMS; default -60).
    """
    n = min(int(probes), len(dataset))
    base = base_dataset(dataset)
    threshold = float(getattr(base, "silence_db", -60.0))
    for i in range(n):
        mix = dataset[i]["mix"]
        x = mix.numpy() if hasattr(mix, "numpy") else np.asarray(mix)
        level = 10 * math.log10(float(np.mean(np.square(x, dtype=np.float64))) + 1e-20)
        if level >= threshold:
            return
    if n:
        root = getattr(base, "root", None)
        where = f" ({root})" if root is not None else ""
        raise UserError(f"the {scope} dataset {type(base).__name__}{where} is silent: its first "
                        f"{n} items all have a mixture below {threshold:g} dBFS (after "
                        f"{getattr(base, 'max_retries', 0)} redraws each); check the audio files "
                        f"(empty or mis-scaled exports?) or the dataset's root and split")


# ---------------------------------------------------------------------------- separators
def _members(sep, depth: int = 0):
    yield sep
    if depth < 4:
        for s in getattr(sep, "separators", None) or []:
            yield from _members(s, depth + 1)


def check_stft(separator, config_stft) -> None:
    """Refuse a separator (or ensemble member) whose ``stft`` was left unbound while the
    config binds another STFT: it would silently run on the default ``STFT()``."""
    if config_stft is None:
        return
    for s in _members(separator):
        if getattr(s, "_stft_defaulted", False) and s.stft.params != config_stft.params:
            n = type(s).__name__
            raise UserError(f"{n}.stft is not bound, so {n} falls back to the default STFT "
                            f"({_stft_text(s.stft)}), but the config's STFT is "
                            f"{_stft_text(config_stft)}; bind {n}.stft = @STFT()")


def check_labels(separator, reference_labels, where: str,
                 compute_permutation: bool | None = None, fix: str | None = None) -> None:
    """The separator's labels must be the references' (any order: aligned by name), unless
    the separator's order is arbitrary (clustering) or a permutation search is asked for."""
    if not reference_labels:
        return
    mine, refs = list(separator.source_labels), list(reference_labels)
    if len(mine) < len(refs):
        raise UserError(f"the separator {type(separator).__name__} has {len(mine)} sources "
                        f"{mine} but {where} {refs} ({len(refs)}); separate into at least as "
                        f"many sources as the references")
    if sorted(mine) == sorted(refs) or compute_permutation \
            or getattr(separator, "arbitrary_order", False):
        return
    fix = fix or ("evaluate against data with the same sources, or bind "
                  "evaluate.compute_permutation = True to score the best assignment of outputs "
                  "to references")
    raise UserError(f"the separator's sources {mine} are not {where} {refs}; {fix}")


def check_evaluate(separator, dataset, compute_permutation: bool | None = None,
                   config_stft=None, scope: str = "test") -> None:
    """Rate, labels and STFT of ``evaluate``'s separator against its dataset."""
    sr, dr = int(separator.sample_rate), dataset_rate(dataset)
    if dr is not None and dr != sr:
        fix = (f"evaluate at the model's rate: bind {type(base_dataset(dataset)).__name__}"
               f".sample_rate = {sr} for the {scope} dataset"
               if getattr(separator, "checkpoint_path", None)
               else "bind one rate for both (e.g. SAMPLE_RATE and %SAMPLE_RATE)")
        raise UserError(f"{_sep_where(separator)} = {sr} but {_ds_where(dataset, scope)} = {dr}; "
                        f"{fix}")
    check_labels(separator, dataset_sources(dataset),
                 f"{_ds_where(dataset, scope, 'sources')} =", compute_permutation)
    check_stft(separator, config_stft)


def config_stft():
    """The STFT the config's ``STFT.*`` bindings describe (gin's configured
    :class:`~bootsep.dsp.STFT`; ``bootsep.config.registry.register_all`` registered it). When
    nothing registered it (``evaluate``/``train`` called from Python, not through the CLI), no
    ``STFT.*`` binding can exist either, so the config's STFT is the default one."""
    from ..dsp import STFT

    try:
        configured = gin.get_configurable(STFT)
    except ValueError:  # not registered with gin
        return STFT()
    return configured()
