"""Evaluation metrics: the scale-aware BSS-Eval family (SI-SDR, SI-SIR, SI-SAR, SD-SDR, SNR, SRR)
and BSS-Eval v4 (museval's SDR, ISR, SIR, SAR per frame, the MUSDB18 yardstick), plus the one
permutation search and label alignment that pair estimates with references
(:mod:`~bootsep.metrics.permutation`, used by losses, engine and bootstrap too).

Plain functions on ``(batch, n_src, ...)`` (numpy or torch), no gin; the base layer.
May import: nothing else from bootsep.
"""

from .bsseval import (
    METRIC_NAMES,
    bss_eval_scale,
    pairwise_bss_eval_scale,
    pairwise_si_sdr,
    si_sdr,
)
from .bsseval_v4 import (
    BSSEVAL_V4_METRICS,
    bss_eval_v4,
    bss_eval_v4_targets,
    frame_medians,
    museval_groups,
    museval_track_json,
)
from .permutation import BRUTE_FORCE_MAX_SOURCES, align_labels, best_permutation

__all__ = ["BRUTE_FORCE_MAX_SOURCES", "BSSEVAL_V4_METRICS", "METRIC_NAMES", "align_labels",
           "best_permutation", "bss_eval_scale", "bss_eval_v4", "bss_eval_v4_targets",
           "frame_medians", "museval_groups", "museval_track_json", "pairwise_bss_eval_scale",
           "pairwise_si_sdr", "si_sdr"]
