"""Evaluation metrics: the scale-aware BSS-Eval family (SI-SDR, SI-SIR, SI-SAR, SD-SDR, SNR, SRR)."""

from .bsseval import (
    METRIC_NAMES,
    best_permutation,
    bss_eval_scale,
    pairwise_bss_eval_scale,
    si_sdr,
)

__all__ = ["METRIC_NAMES", "best_permutation", "bss_eval_scale", "pairwise_bss_eval_scale",
           "si_sdr"]
