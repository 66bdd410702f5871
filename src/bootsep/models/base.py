"""Base class, registry and (de)serialisation for every separation model.

A model maps a mixture magnitude ``(batch, time, freq)`` to a dict whose keys are among

* ``'embedding'``: ``(batch, time, freq, dim)`` per-bin embedding (deep clustering);
* ``'mask'``: ``(batch, n_src, time, freq)`` masks;
* ``'estimates'``: ``(batch, n_src, time, freq)`` = ``mask * mix_magnitude``.

Models are self-describing: every concrete class records its constructor arguments with
:meth:`SeparationModel._record_args`, so :meth:`SeparationModel.serialize` gives a dict
``{'class', 'args', 'state_dict'}`` from which :func:`load_model` rebuilds the exact model.
Constructor arguments are checked against the constructor's annotations before it runs
(``hidden_size='big'`` raises :class:`bootsep.utils.argtypes.ArgumentTypeError` naming
``Chimera.hidden_size``), and :func:`load_model` reads files with ``weights_only=True`` only.

Example:
    >>> m = build_model('MaskInference', {'num_features': 9, 'hidden_size': 4, 'num_layers': 1})
    >>> m2 = load_model(m.serialize())
    >>> type(m2).__name__, m2.num_sources
    ('MaskInference', 2)
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import json
import os

import torch

from ..dsp.features import log_magnitude_features
from ..utils.argtypes import check_arg_types
from ..utils.registry import Registry

#: Only classes inside this package can be rebuilt from a serialized dict.
ALLOWED_PACKAGE = "bootsep.models"

#: Short name -> model class (a :class:`~bootsep.utils.registry.Registry` of dotted paths,
#: imported on first use): the one table of models, for checkpoints (:func:`load_model`) and
#: gin (``@Chimera``, registered by ``bootsep.config.registry``). Other modules of
#: ``bootsep.models`` may add entries (see :func:`register_model`).
MODELS = Registry("model class", {
    "DeepClustering": "bootsep.models.recurrent.DeepClustering",
    "MaskInference": "bootsep.models.recurrent.MaskInference",
    "Chimera": "bootsep.models.recurrent.Chimera",
    "DualPathChimera": "bootsep.models.dualpath.DualPathChimera",
    "OpenUnmix": "bootsep.models.openunmix.OpenUnmix",
    "MelMaskBLSTM": "bootsep.models.mel_baseline.MelMaskBLSTM",
    "ConditionalCentroids": "bootsep.models.centroids.ConditionalCentroids",
})


def _jsonable(value, name: str):
    """Tuples become lists (recursively); anything json cannot hold raises TypeError."""
    if isinstance(value, tuple | list):
        return [_jsonable(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, name) for k, v in value.items()}
    try:
        json.dumps(value)
    except TypeError as err:
        raise TypeError(f"constructor argument {name!r}={value!r} is not JSON-serialisable; "
                        "model arguments must be plain numbers/strings/lists/dicts") from err
    return value


class SeparationModel(torch.nn.Module):
    """Base for every model: argument recording, serialisation, feature contract.

    Subclasses must

    1. call ``self._record_args(locals())`` at the end of their ``__init__`` (after
       ``super().__init__``; a subclass of a concrete model calls it again, and the last call
       wins), so that the recorded names are exactly the constructor's parameters;
    2. set ``output_keys`` (tuple of the keys ``forward`` returns) and ``num_sources``
       (int, or ``None`` for models that do not fix it, e.g. deep clustering);
    3. implement ``forward(mix_magnitude, features=None) -> dict``.

    ``features`` contract (for chunked inference): when given, it is
    ``self.input_features(longer_magnitude)`` sliced to the same frames as ``mix_magnitude``,
    so per-example normalisation uses the statistics of the whole signal rather than of the
    chunk. Models whose input is not :meth:`input_features` may ignore it.
    """

    output_keys: tuple = ()
    num_sources: int | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not hasattr(init, "__wrapped__"):
            cls.__init__ = _type_checked_init(init)

    def __init__(self):
        super().__init__()
        self._init_args: dict | None = None

    # ----------------------------------------------------------------- arguments
    def _record_args(self, local_vars: dict) -> None:
        """Record constructor arguments from ``locals()`` (drops ``self``/``__class__``)."""
        args = {k: v for k, v in local_vars.items() if k not in ("self", "__class__")}
        self._init_args = {k: _jsonable(v, k) for k, v in args.items()}

    @property
    def init_args(self) -> dict:
        """A copy of the recorded constructor arguments (json-able)."""
        self._check_recorded()
        return copy.deepcopy(self._init_args)

    def _check_recorded(self) -> None:
        cls = type(self)
        params = inspect.signature(cls.__init__).parameters
        expected = {n for n, p in params.items() if n != "self"
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if self._init_args is None or set(self._init_args) != expected:
            raise TypeError(f"{cls.__name__} did not record its constructor arguments: call "
                            "self._record_args(locals()) at the end of its __init__")

    # ----------------------------------------------------------------- serialisation
    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    def serialize(self) -> dict:
        """``{'class': dotted path, 'args': json-able dict, 'state_dict': CPU tensors}``."""
        self._check_recorded()
        state = {k: v.detach().to("cpu", copy=True) for k, v in self.state_dict().items()}
        return {"class": self.class_path(), "args": self.init_args, "state_dict": state}

    # ----------------------------------------------------------------- features
    def input_features(self, mix_magnitude: torch.Tensor) -> torch.Tensor:
        """Default model input: dB re. each example's max, per-example standardised.

        ``(batch, time, freq)`` -> ``(batch, time, freq)``; see
        :func:`bootsep.dsp.features.log_magnitude_features`.
        """
        return log_magnitude_features(mix_magnitude)

    def _check_input(self, mix_magnitude: torch.Tensor, num_features: int) -> None:
        if mix_magnitude.dim() != 3 or mix_magnitude.shape[-1] != num_features:
            raise ValueError(f"{type(self).__name__} expects a magnitude (batch, time, "
                             f"{num_features}), got shape {tuple(mix_magnitude.shape)}")

    def extra_repr(self) -> str:
        return f"output_keys={self.output_keys}, num_sources={self.num_sources}"


def _type_checked_init(init):
    """Wrap a model ``__init__`` so that the outermost constructor call checks its arguments'
    types (named ``<Class>.<argument>``, as gin binds them) before building anything."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if type(self).__init__ is __init__:  # not a super().__init__ call from a subclass
            try:
                bound = signature.bind(self, *args, **kwargs).arguments
            except TypeError:
                bound = {}  # wrong argument names: the constructor itself says so
            check_arg_types(init, {k: v for k, v in bound.items() if k != "self"},
                            type(self).__name__)
        init(self, *args, **kwargs)

    return __init__


def register_model(name: str, class_path: str) -> None:
    """Add a short name to :data:`MODELS` (the class must live in ``bootsep.models``)."""
    _check_path(class_path)
    MODELS.add(name, class_path)


def _check_path(class_path: str) -> None:
    if not (class_path == ALLOWED_PACKAGE or class_path.startswith(ALLOWED_PACKAGE + ".")):
        raise ValueError(f"refusing to load model class {class_path!r}: only classes inside "
                         f"{ALLOWED_PACKAGE!r} can be loaded (known: {sorted(MODELS)})")


def resolve_model_class(class_path_or_name: str) -> type:
    """Short name (key of :data:`MODELS`) or dotted path inside ``bootsep.models`` -> class."""
    if "." not in class_path_or_name:  # a short name: the table's entry, or an error naming them
        MODELS.lookup(class_path_or_name)
    path = MODELS.path(class_path_or_name) if class_path_or_name in MODELS else class_path_or_name
    _check_path(path)
    module_name, _, attr = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"unknown model class {class_path_or_name!r}; short names: "
                         f"{sorted(MODELS)}") from err
    if not (isinstance(cls, type) and issubclass(cls, SeparationModel)):
        raise ValueError(f"{path!r} is not a SeparationModel subclass")
    return cls


def build_model(class_path_or_name: str, args: dict | None = None) -> SeparationModel:
    """Construct a model from a short name (``'Chimera'``) or dotted path, with ``args``."""
    return resolve_model_class(class_path_or_name)(**(args or {}))


def load_model(serialized: dict | str | os.PathLike,
               device: str | torch.device = "cpu") -> SeparationModel:
    """Rebuild a model from :meth:`SeparationModel.serialize` output.

    ``serialized`` may also be a path to a ``torch.save``d file holding that dict or a whole
    checkpoint (its ``'model'`` entry is used); the file is read with ``weights_only=True``
    (plain data, never code; a file needing pickles raises
    :class:`bootsep.utils.io.PickledFileError`, a UserError). The state dict is loaded strictly; the model
    is moved to ``device`` and returned in ``eval()`` mode (call ``.train()`` to resume training).
    """
    if isinstance(serialized, str | os.PathLike):
        from ..utils.io import safe_torch_load

        serialized = safe_torch_load(serialized)
        if isinstance(serialized, dict) and isinstance(serialized.get("model"), dict):
            serialized = serialized["model"]
    if not isinstance(serialized, dict):
        raise TypeError(f"expected a serialized model dict, got {type(serialized).__name__}")
    for key in ("class", "args", "state_dict"):
        if key not in serialized:
            raise KeyError(f"serialized model lacks key {key!r} (has {sorted(serialized)})")
    model = build_model(serialized["class"], serialized["args"])
    model.load_state_dict(serialized["state_dict"], strict=True)
    return model.to(device).eval()
