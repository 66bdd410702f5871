"""Training losses, all on the ``(batch, n_src, ...)`` convention, plus targets and a loss dict.

Plain losses return ``(batch,)``; ``pairwise_*`` losses return ``(batch, n_est, n_ref)`` for
:class:`PITLossWrapper`; :class:`LossDict` combines named losses from a spec.

Plain functions and ``nn.Module`` losses, no gin. May import: dsp, metrics, utils.
"""

from .cluster import deep_clustering_loss, whitened_kmeans_loss
from .combine import (
    LOSS_CLASSES,
    DeepClusteringLoss,
    L1Loss,
    LossDict,
    LossSpecError,
    MixITLoss,
    MSELoss,
    SISDRLoss,
    WhitenedKMeansLoss,
)
from .mixit import mixit_assignments, mixit_l1, mixit_loss, mixit_mse
from .pit import PITLossWrapper, reorder
from .sisdr import neg_si_sdr_loss, pairwise_neg_si_sdr_loss
from .spectral import l1_loss, mse_loss, pairwise_l1_loss, pairwise_mse_loss
from .targets import ibm, msa_target, psa_target

__all__ = [
    "LOSS_CLASSES", "DeepClusteringLoss", "L1Loss", "LossDict", "LossSpecError", "MSELoss",
    "MixITLoss", "PITLossWrapper", "SISDRLoss", "WhitenedKMeansLoss",
    "deep_clustering_loss", "ibm", "l1_loss", "mixit_assignments", "mixit_l1", "mixit_loss",
    "mixit_mse", "msa_target", "mse_loss", "neg_si_sdr_loss",
    "pairwise_l1_loss", "pairwise_mse_loss", "pairwise_neg_si_sdr_loss", "psa_target", "reorder",
    "whitened_kmeans_loss",
]
