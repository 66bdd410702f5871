"""Registers the plain building blocks with gin, under short names used in ``.gin`` files.

Nothing outside ``config/`` and ``cli/`` imports gin: models, losses, primitives and datasets
stay plain classes. :func:`register_all` runs once per process, before any config is parsed.
"""

from __future__ import annotations

import importlib

import gin

# (module, attribute, gin name). The gin name is what configs use: `@Chimera`, `Chimera.hidden_size`.
EXTERNALS = [
    ("bootsep.dsp.stft", "STFT", "STFT"),
    # data
    ("bootsep.data.folder", "StemFolderDataset", "StemFolderDataset"),
    ("bootsep.data.mixing", "Remixer", "Remixer"),
    ("bootsep.data.cache", "AudioCache", "AudioCache"),
    ("bootsep.data.demo", "generate_demo_dataset", "generate_demo_dataset"),
    ("bootsep.data.musdb", "prepare_musdb", "prepare_musdb"),
    ("bootsep.data.musdb", "MUSDBDataset", "MUSDBDataset"),
    ("bootsep.data.wham", "WHAMDataset", "WHAMDataset"),
    ("bootsep.data.spatialize", "spatialize_wham", "spatialize_wham"),
    ("bootsep.data.user", "MixtureFolderDataset", "MixtureFolderDataset"),
    ("bootsep.data.bootstrapped", "BootstrappedDataset", "BootstrappedDataset"),
    ("bootsep.data.mixture_of_mixtures", "MixtureOfMixtures", "MixtureOfMixtures"),
    # models
    ("bootsep.models.recurrent", "DeepClustering", "DeepClustering"),
    ("bootsep.models.recurrent", "MaskInference", "MaskInference"),
    ("bootsep.models.recurrent", "Chimera", "Chimera"),
    ("bootsep.models.dualpath", "DualPathChimera", "DualPathChimera"),
    ("bootsep.models.openunmix", "OpenUnmix", "OpenUnmix"),
    ("bootsep.models.mel_baseline", "MelMaskBLSTM", "MelMaskBLSTM"),
    ("bootsep.models.centroids", "ConditionalCentroids", "ConditionalCentroids"),
    # separators
    ("bootsep.separation.deep", "DeepMaskSeparator", "DeepMaskSeparator"),
    ("bootsep.separation.deep", "DeepClusteringSeparator", "DeepClusteringSeparator"),
    ("bootsep.separation.grouped", "GroupedSeparator", "GroupedSeparator"),
    ("bootsep.primitives.repet", "Repet", "Repet"),
    ("bootsep.primitives.repet_sim", "RepetSim", "RepetSim"),
    ("bootsep.primitives.ft2d", "FT2D", "FT2D"),
    ("bootsep.primitives.hpss", "HPSS", "HPSS"),
    ("bootsep.primitives.pitch", "PitchContinuity", "PitchContinuity"),
    ("bootsep.primitives.timbre", "TimbreClustering", "TimbreClustering"),
    ("bootsep.primitives.spatial", "SpatialClustering", "SpatialClustering"),
    ("bootsep.primitives.oracle", "IdealBinaryMask", "IdealBinaryMask"),
    ("bootsep.primitives.oracle", "IdealRatioMask", "IdealRatioMask"),
    ("bootsep.primitives.oracle", "WienerFilter", "WienerFilter"),
    ("bootsep.primitives.oracle", "MixAsEstimate", "MixAsEstimate"),
    ("bootsep.primitives.oracle", "HighLowPassFilter", "HighLowPassFilter"),
    ("bootsep.primitives.ensemble", "EnsembleClustering", "EnsembleClustering"),
    ("bootsep.primitives.ensemble", "AdaptiveEnsemble", "AdaptiveEnsemble"),
    ("bootsep.primitives.ensemble", "primitive_clustering", "primitive_clustering"),
    # training handlers
    ("bootsep.engine.handlers", "AutoClip", "AutoClip"),
    ("bootsep.engine.handlers", "ClipGradient", "ClipGradient"),
    ("bootsep.engine.handlers", "AutoBalanceLoss", "AutoBalanceLoss"),
    ("bootsep.engine.handlers", "EarlyStopping", "EarlyStopping"),
    ("bootsep.engine.handlers", "LRScheduler", "LRScheduler"),
    ("bootsep.engine.curriculum", "Curriculum", "Curriculum"),
    ("bootsep.engine.remixit", "RemixIT", "RemixIT"),
]

HANDLER_NAMES = {
    "autoclip": "AutoClip",
    "clip": "ClipGradient",
    "auto_balance": "AutoBalanceLoss",
    "early_stopping": "EarlyStopping",
    "lr_scheduler": "LRScheduler",
    "curriculum": "Curriculum",
    "remixit": "RemixIT",
}

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

    for module, attr, name in EXTERNALS:
        obj = getattr(importlib.import_module(module), attr)
        _CONFIGURED[name] = gin.external_configurable(obj, name=name, module="bootsep")


def configured(name: str):
    """The gin-wrapped callable registered as ``name`` (its bindings apply when called)."""
    register_all()
    return _CONFIGURED[name]


def build_handler(name: str):
    if name not in HANDLER_NAMES:
        from ..utils.errors import UserError

        raise UserError(f"unknown training handler {name!r} in train.handlers; "
                        f"choose from {sorted(HANDLER_NAMES)}")
    return configured(HANDLER_NAMES[name])()
