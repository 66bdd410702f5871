"""Registers the plain building blocks with gin, under short names used in ``.gin`` files.

Nothing outside ``config/`` and ``cli/`` imports gin: models, losses, primitives and datasets
stay plain classes. :func:`register_all` runs once per process, before any config is parsed.

The names come from one mechanism, :class:`bootsep.utils.registry.Registry`, one table per
kind, next to what it names: :data:`bootsep.models.base.MODELS` (models),
:data:`bootsep.engine.handlers.HANDLERS` (training handlers; ``train.handlers`` names them) and
:data:`BLOCKS` below (the STFT, datasets, separators, primitives). :func:`register_all`
registers every entry of :func:`tables` under its class or function name (``@Chimera``,
``Chimera.hidden_size``, ``AutoClip.clip_percentile``, ``STFT.window_length``).

This module imports the command modules (experiment, separate, ...) so that their
``@gin.configurable`` decorators run; none of them imports it back: a command gets the
configured version of a plain class from gin itself (``gin.get_configurable(STFT)``).
"""

from __future__ import annotations

import gin

from ..utils.registry import Registry, UnknownNameError

#: The configurables without a table of their own (a config builds them; nothing else looks
#: them up by name): name (= the class/function name) -> dotted path, imported on registration.
BLOCKS = Registry("configurable", {
    "STFT": "bootsep.dsp.stft.STFT",
    # data
    "StemFolderDataset": "bootsep.data.folder.StemFolderDataset",
    "Remixer": "bootsep.data.mixing.Remixer",
    "AudioCache": "bootsep.data.cache.AudioCache",
    "generate_demo_dataset": "bootsep.data.demo.generate_demo_dataset",
    "prepare_musdb": "bootsep.data.musdb.prepare_musdb",
    "MUSDBDataset": "bootsep.data.musdb.MUSDBDataset",
    "WHAMDataset": "bootsep.data.wham.WHAMDataset",
    "spatialize_wham": "bootsep.data.spatialize.spatialize_wham",
    "MixtureFolderDataset": "bootsep.data.user.MixtureFolderDataset",
    "BootstrappedDataset": "bootsep.data.bootstrapped.BootstrappedDataset",
    "MixtureOfMixtures": "bootsep.data.mixture_of_mixtures.MixtureOfMixtures",
    # separators
    "DeepMaskSeparator": "bootsep.separation.deep.DeepMaskSeparator",
    "DeepClusteringSeparator": "bootsep.separation.deep.DeepClusteringSeparator",
    "GroupedSeparator": "bootsep.separation.grouped.GroupedSeparator",
    "Repet": "bootsep.primitives.repet.Repet",
    "RepetSim": "bootsep.primitives.repet_sim.RepetSim",
    "FT2D": "bootsep.primitives.ft2d.FT2D",
    "HPSS": "bootsep.primitives.hpss.HPSS",
    "PitchContinuity": "bootsep.primitives.pitch.PitchContinuity",
    "TimbreClustering": "bootsep.primitives.timbre.TimbreClustering",
    "SpatialClustering": "bootsep.primitives.spatial.SpatialClustering",
    "IdealBinaryMask": "bootsep.primitives.oracle.IdealBinaryMask",
    "IdealRatioMask": "bootsep.primitives.oracle.IdealRatioMask",
    "WienerFilter": "bootsep.primitives.oracle.WienerFilter",
    "MixAsEstimate": "bootsep.primitives.oracle.MixAsEstimate",
    "HighLowPassFilter": "bootsep.primitives.oracle.HighLowPassFilter",
    "EnsembleClustering": "bootsep.primitives.ensemble.EnsembleClustering",
    "AdaptiveEnsemble": "bootsep.primitives.ensemble.AdaptiveEnsemble",
    "primitive_clustering": "bootsep.primitives.ensemble.primitive_clustering",
})


def tables() -> tuple[Registry, ...]:
    """The tables :func:`register_all` registers with gin, each entry under its object's name
    (imported here, not at module import: this module needs no torch until then)."""
    from ..engine.handlers import HANDLERS
    from ..models.base import MODELS

    return BLOCKS, MODELS, HANDLERS

_CONFIGURED: dict = {}


def register_all() -> None:
    """Register every external configurable once; also gin's torch optimizers/schedulers."""
    if _CONFIGURED:
        return
    import warnings

    with warnings.catch_warnings():  # gin registers deprecated torch losses (NLLLoss2d)
        warnings.simplefilter("ignore", FutureWarning)
        from gin.torch import external_configurables  # noqa: F401  (torch.optim.*, lr_scheduler.*)

    from . import bootstrap, experiment, organize, paths, separate, sweep  # noqa: F401  (@gin.configurable)

    for table in tables():
        for key in table:
            obj = table[key]
            _CONFIGURED[obj.__name__] = gin.external_configurable(obj, name=obj.__name__,
                                                                  module="bootsep")


def configured(name: str):
    """The gin-wrapped callable registered as ``name`` (its bindings apply when called)."""
    register_all()
    if name not in _CONFIGURED:
        raise UnknownNameError(f"unknown configurable {name!r}; known: {sorted(_CONFIGURED)}")
    return _CONFIGURED[name]


def known_names() -> list[str]:
    """Every name a config can write for bootsep (the tables' entries and the commands), sorted."""
    from gin import config as gin_config

    register_all()
    return sorted({c.name for _, c in gin_config._REGISTRY.items()  # noqa: SLF001 (no public API)
                   if str(c.module).startswith("bootsep")})


def unknown_name_hint(name: str) -> str:
    """What to append to gin's ``No configurable matching 'name'``: the closest known names and
    all of them (torch's optimizers and schedulers are ``torch.optim.*``)."""
    import difflib

    known = known_names()
    close = difflib.get_close_matches(name.rpartition(".")[2].rpartition("/")[2], known, n=3)
    guess = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return f"{guess}; known: {known} and torch.optim.*"
