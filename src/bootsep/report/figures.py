"""Small matplotlib figures used in TensorBoard summaries (Agg backend, no display)."""

from __future__ import annotations


def mask_figure(mix_magnitude, masks, labels, sample_rate: int, hop_length: int):
    """Mixture dB spectrogram and one panel per source mask.

    Args:
        mix_magnitude: ``(time, freq)`` tensor/array.
        masks: ``(n_src, time, freq)`` or None.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    mag = np.asarray(mix_magnitude, dtype=np.float32)
    n = 1 + (0 if masks is None else len(masks))
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3), squeeze=False)
    t_end = mag.shape[0] * hop_length / sample_rate
    extent = (0, t_end, 0, sample_rate / 2000)
    db = 20 * np.log10(np.maximum(mag, 1e-8))
    axes[0, 0].imshow(db.T, origin="lower", aspect="auto", extent=extent, vmin=db.max() - 80,
                      cmap="magma")
    axes[0, 0].set_title("mixture (dB)")
    axes[0, 0].set_ylabel("kHz")
    if masks is not None:
        for i, m in enumerate(np.asarray(masks, dtype=np.float32)):
            ax = axes[0, i + 1]
            ax.imshow(m.T, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=1,
                      cmap="viridis")
            ax.set_title(f"mask: {labels[i] if i < len(labels) else i}")
    for ax in axes[0]:
        ax.set_xlabel("s")
    fig.tight_layout()
    return fig
