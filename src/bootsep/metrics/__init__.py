"""Evaluation metrics: the scale-aware BSS-Eval family (SI-SDR, SI-SIR, SI-SAR, SD-SDR, SNR, SRR)
and BSS-Eval v4 (museval's SDR, ISR, SIR, SAR per frame, the MUSDB18 yardstick).

Plain functions on ``(batch, n_src, ...)`` (numpy or torch), no gin; the base layer.
May import: nothing else from bootsep.
"""

from .bsseval import (
    METRIC_NAMES,
    best_permutation,
    bss_eval_scale,
    pairwise_bss_eval_scale,
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

__all__ = ["BSSEVAL_V4_METRICS", "METRIC_NAMES", "best_permutation", "bss_eval_scale",
           "bss_eval_v4", "bss_eval_v4_targets", "frame_medians", "museval_groups",
           "museval_track_json", "pairwise_bss_eval_scale", "si_sdr"]
