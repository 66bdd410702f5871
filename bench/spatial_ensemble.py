#!/usr/bin/env python3
"""The spatial primitive as an extra member of the primitive ensemble, on stereo music (issue 17).

On the dev chorales (``--root``, MUSDB-HQ layout, default ``data/chorales``; test split, whole
tracks, STEREO, resampled to 16 kHz; references accompaniment = drums + bass + other, vocals) it
separates every track with

* ``ensemble``: bootsep's primitive ensemble (``bench/primitives.py``: 2DFT-R, 2DFT-M, REPET,
  pitch x3, HPSS-harmonic; fixed zeros/ones centres, beta 2.5), channels separated one by one;
* ``ensemble+spatial``: the same plus :class:`~bootsep.primitives.spatial.SpatialClustering`'s
  most central cluster (``order='center'``) as ``--spatial-weight`` more feature columns;
* ``spatial``: the spatial primitive alone (its central cluster = vocals);

and scores vocals and accompaniment SI-SDR / SI-SDRi per channel (mean of the two channels, then
over tracks). Prints a table and, last, one JSON line ``{system: {"vocals_si_sdr", ...}}``.

    nice -n 5 .venv/bin/python bench/spatial_ensemble.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

SR = 16000


def systems(spatial_weight: int, clusters: int, use_ipd: bool = True):
    from bootsep.dsp import STFT
    from bootsep.primitives import (
        FT2D,
        HPSS,
        EnsembleClustering,
        PitchContinuity,
        Repet,
    )
    from bootsep.primitives.spatial import SpatialClustering

    stft = STFT(512, 128)
    c = dict(sample_rate=SR, stft=stft, device="cpu")
    members = [FT2D(use_bg_2dft=True, **c), FT2D(use_bg_2dft=False, **c), Repet(**c),
               PitchContinuity(**c), HPSS(kernel_size=31, **c)]
    returns, weights = [[1], [1], [1], [1], [0]], [1, 1, 2, 3, 1]
    spatial = SpatialClustering(num_sources=clusters, order="center", use_ipd=use_ipd, **c)
    alone = SpatialClustering(num_sources=2, order="center", use_ipd=use_ipd, **c)
    return {
        "ensemble": EnsembleClustering(members, returns, weights, beta=2.5, **c),
        "ensemble+spatial": EnsembleClustering(members + [spatial], returns + [[clusters - 1]],
                                               weights + [spatial_weight], beta=2.5, **c),
        "spatial": alone,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default="data/chorales")
    ap.add_argument("--split", default="test")
    ap.add_argument("--spatial-weight", type=int, default=2)
    ap.add_argument("--clusters", type=int, default=3,
                    help="spatial clusters in the ensemble member (its most central one is used)")
    ap.add_argument("--ild-only", action="store_true",
                    help="level differences only (the stems are amplitude-panned)")
    args = ap.parse_args()

    from bootsep.data.folder import StemFolderDataset
    from bootsep.metrics.bsseval import bss_eval_scale

    ds = StemFolderDataset(args.root, args.split, sources=("accompaniment", "vocals"),
                           sample_rate=SR, mono=False)
    seps = systems(args.spatial_weight, args.clusters, not args.ild_only)
    scores = {k: {"vocals": [], "accompaniment": [], "vocals_i": [], "accompaniment_i": []}
              for k in seps}
    for i in range(len(ds)):
        item = ds[i]
        mix, refs = item["mix"], item["sources"]  # (C, S), (2, C, S)
        for name, sep in seps.items():
            est = sep.separate(mix).estimates  # (2, C, S): [accompaniment, vocals]
            m, _ = bss_eval_scale(est.transpose(0, 1), refs.transpose(0, 1), mix)
            for j, label in enumerate(("accompaniment", "vocals")):
                scores[name][label].append(float(m["SI-SDR"][:, j].mean()))
                scores[name][label + "_i"].append(float(m["SI-SDRi"][:, j].mean()))
        print(item["name"], {k: round(v["vocals"][-1], 2) for k, v in scores.items()}, flush=True)
    out = {}
    print(f"{'system':>18} | voc SI-SDR | voc SI-SDRi | acc SI-SDR | acc SI-SDRi")
    for name, s in scores.items():
        out[name] = {"vocals_si_sdr": round(float(np.mean(s["vocals"])), 2),
                     "vocals_si_sdri": round(float(np.mean(s["vocals_i"])), 2),
                     "accompaniment_si_sdr": round(float(np.mean(s["accompaniment"])), 2),
                     "accompaniment_si_sdri": round(float(np.mean(s["accompaniment_i"])), 2)}
        o = out[name]
        print(f"{name:>18} | {o['vocals_si_sdr']:10.2f} | {o['vocals_si_sdri']:11.2f} | "
              f"{o['accompaniment_si_sdr']:10.2f} | {o['accompaniment_si_sdri']:11.2f}")
    out["tracks"] = len(ds)
    out["settings"] = {"spatial_weight": args.spatial_weight, "clusters": args.clusters,
                       "ild_only": args.ild_only,
                       "root": args.root, "split": args.split}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
