#!/usr/bin/env python3
"""The primitive teacher across development domains: a cross-domain weight search, the adaptive
ensemble, and which confidence measure tracks the teacher's quality.

Domains (``--domain NAME=ROOT[:SEARCH_SPLITS:HELDOUT_SPLITS]``, MUSDB layout, downmixed to mono
at 16 kHz; splits are ``+``-joined, ``SPLIT`` of ROOT or ``OTHER_ROOT/SPLIT``; the defaults are
the three development domains). The held-out songs never share a tune with a search song:

* ``demo``: the procedural demo songs (``data/demo``; search on train + valid; held out: test
  plus the 168 procedural songs of another seed in ``data/demo_unlabelled``, which ``make demo``
  builds);
* ``chorales``: the dev chorales rendered with FluidR3 (search: ``data/chorales`` train and
  ``data/chorales_extra``; held out: ``data/chorales`` test and ``data/chorales_heldout``);
* ``chorales_timgm``: other dev-pool chorales rendered with the TimGM6mb soundfont, 100-130 bpm,
  voice or lead-instrument melodies (search: ``data/chorales_timgm`` train and
  ``data/chorales_timgm_extra``; held out: ``data/chorales_timgm`` test and
  ``data/chorales_timgm_pool``).

Built with ``../shared/devdata/make_chorales_musdb.py`` (``G`` below; ``--exclude`` takes a file
of chorale ids, one per line, and also drops their tune families; ``ids A B`` = the ids in
``data/A/manifest.json`` and ``data/B/manifest.json``)::

    G --out data/chorales --soundfont FluidR3_GM.sf2 --n-train 12 --n-test 6 --seed 1
    G --out data/chorales_extra --soundfont FluidR3_GM.sf2 --exclude <ids chorales + timgm> \
        --n-train 16 --n-test 0 --n-valid 2 --seed 11
    G --out data/chorales_heldout --soundfont FluidR3_GM.sf2 --exclude <ids chorales chorales_extra> \
        --n-train 30 --n-test 0 --n-valid 0 --seed 33
    T="--soundfont TimGM6mb.sf2 --bpm-min 100 --bpm-max 130 --vocal-programs voice+lead"
    G --out data/chorales_timgm $T --n-train 8 --n-test 6 --seed 2
    G --out data/chorales_timgm_extra $T --exclude <ids chorales + timgm> --n-train 16 --n-test 0 \
        --n-valid 2 --seed 12
    G --out data/chorales_timgm_pool $T --exclude <ids chorales_timgm chorales_timgm_extra> \
        --n-train 30 --n-test 0 --n-valid 0 --seed 32

The first held-out figures (session 3) used only each domain's test split (8 demo songs, 6 and 6
chorales): too few to resolve the 0.1 dB differences between the candidate weightings, so the
held-out splits were enlarged with songs no search has seen.

Every song is cut into non-overlapping ``--segment`` second segments (default 12 s, the demo's
``separate.segment_length``; a song shorter than that is one segment). Each primitive member's
foreground mask is computed once per segment and cached (``--cache``), so the search only re-runs
the clustering.

1. **Search** (search splits only): members ``MEMBERS``, integer weights 0..6, ``beta`` and the
   time smoothing of the masks (``SMOOTHINGS``, EnsembleClustering.smoothing), by coordinate
   ascent from the old default, the paper weights and uniform weights (unsmoothed), with fixed
   zeros/ones centres; then k-means / GMM clustering with the best weights. Objective
   (``--objective``): ``worst_gain`` (default) = the worst domain's gain in mean vocals SI-SDR
   over the paper weights, so the winner must help everywhere; ``worst`` or ``mean`` = the
   worst / mean domain's vocals SI-SDR.
2. **Adaptive** (:class:`bootsep.primitives.AdaptiveEnsemble`): the cue (agreement with the other
   members / decisiveness) and its exponent ``gamma`` are chosen on the search splits, on the
   searched weights.
3. **Held-out figures**: the systems of the committed configs, built with gin and run through
   their real classes on each domain's held-out split: ``old_default``
   (``primitive_clustering_demo.gin``), ``paper`` (``primitive_clustering_reference.gin``),
   ``default`` (``primitive_clustering.gin``), ``adaptive`` (``primitive_clustering_adaptive.gin``).
   Mean vocals SI-SDR (dB) over the held-out segments.
4. **Confidence**: per segment, each candidate measure of ``CONFIDENCE_CANDIDATES`` (measure and
   loud-bin threshold, in ``separate``'s format) on the default teacher's features vs its vocals
   SI-SDR; Spearman rho per domain, on the search splits (from the cache, the searched teacher)
   and the held-out splits (the committed default). The candidate with the best worst-domain rho
   on the search splits replaces organize's default (``CURRENT_CONFIDENCE``) only if it beats
   it by more than ``RHO_MARGIN``.

Prints figures, then one JSON line ``{domain: {system: vocals_SI-SDR}}``. The search result, the
rho figures and the per-segment values go to ``--out`` (``search.json``, ``results.json``) with a
plot (``ensemble_domains.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bootsep.bootstrap.separate import DEFAULT_CONFIDENCE

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

SR = 16000
N_FFT, HOP = 512, 128
PRIM = ROOT / "musdb" / "exp" / "primitives"
ENV = [ROOT / "musdb" / "demo" / "env.gin", ROOT / "musdb" / "demo" / "data.gin"]
SYSTEMS = {
    "old_default": PRIM / "primitive_clustering_demo.gin",
    "paper": PRIM / "primitive_clustering_reference.gin",
    "default": PRIM / "primitive_clustering.gin",
    "adaptive": PRIM / "primitive_clustering_adaptive.gin",
}
DEFAULT_DOMAINS = [
    "demo=data/demo:train+valid:test+data/demo_unlabelled/train",
    "chorales=data/chorales:train+data/chorales_extra/train:test+data/chorales_heldout/train",
    "chorales_timgm=data/chorales_timgm:train+data/chorales_timgm_extra/train"
    ":test+data/chorales_timgm_pool/train",
]
#: candidate members: (name, returned mask index)
MEMBERS = ["ft2d_r", "ft2d_m", "repet", "repet_sim", "pitch", "hpss"]
# starting points, weights over MEMBERS
OLD_DEFAULT = {"weights": [1, 1, 2, 0, 3, 1], "beta": 2.5}
PAPER = {"weights": [3, 1, 0, 0, 2, 1], "beta": 2.5}
BETAS = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0]
#: EnsembleClustering.smoothing candidates (seconds of a running mean of the masks over time;
#: 1, 3, 5, 7, 9 frames at 16 kHz, hop 128)
SMOOTHINGS = [0.0, 0.024, 0.04, 0.056, 0.072]
MAX_WEIGHT = 6
#: organize's default measure, and the worst-domain rho gain a candidate needs to replace it
CURRENT_CONFIDENCE = "combined"
RHO_MARGIN = 0.05
#: confidence candidates, in the format of bootsep.bootstrap.separate.DEFAULT_CONFIDENCE: what
#: `separate` records by default, plus more thresholds
CONFIDENCE_CANDIDATES = {
    **DEFAULT_CONFIDENCE,
    "combined_top10": {"measure": "combined", "threshold_percentile": 90.0},
    "combined_above250": {"measure": "combined", "min_frequency_hz": 250.0},
    "fixed_posterior_top10": {"measure": "fixed_posterior", "threshold_percentile": 90.0},
    "fixed_posterior_top10_above250": {"measure": "fixed_posterior", "threshold_percentile": 90.0,
                                       "min_frequency_hz": 250.0},
    "fixed_posterior_top1": {"measure": "fixed_posterior"},
    "fixed_posterior_top25": {"measure": "fixed_posterior", "threshold_percentile": 75.0},
    "combined_top25": {"measure": "combined", "threshold_percentile": 75.0},
}


# ----------------------------------------------------------------------------- members
def member_separators():
    from bootsep.dsp import STFT
    from bootsep.primitives import FT2D, HPSS, PitchContinuity, Repet, RepetSim

    stft = STFT(N_FFT, HOP)
    c = dict(sample_rate=SR, stft=stft, device="cpu")
    ft = dict(neighborhood_size=(1, 35), high_pass_cutoff=250.0)
    return stft, {
        "ft2d_r": (FT2D(use_bg_2dft=True, **ft, **c), 1),
        "ft2d_m": (FT2D(use_bg_2dft=False, **ft, **c), 1),
        "repet": (Repet(**c), 1),
        "repet_sim": (RepetSim(**c), 1),
        "pitch": (PitchContinuity(**c), 1),
        "hpss": (HPSS(kernel_size=31, **c), 0),
    }


def parse_domain(spec: str) -> dict:
    name, _, rest = spec.partition("=")
    parts = rest.split(":")
    root = parts[0]
    search = parts[1].split("+") if len(parts) > 1 else ["train"]
    heldout = parts[2].split("+") if len(parts) > 2 else ["test"]
    return {"name": name, "root": root, "search": search, "heldout": heldout}


def segments_of(domain: dict, split: str, seconds: float, max_songs: int | None):
    """Yields ``(key, mix (1, S), vocals (S,))`` per segment of a split (``SPLIT`` of the
    domain's root, or ``OTHER_ROOT/SPLIT``)."""
    from bootsep.data.folder import StemFolderDataset

    root, prefix = domain["root"], split
    if "/" in split:
        root, split = split.rsplit("/", 1)
        prefix = f"{Path(root).name}_{split}"
    ds = StemFolderDataset(root, split, sources=("accompaniment", "vocals"),
                           sample_rate=SR, mono=True)
    n = int(round(seconds * SR))
    count = len(ds) if max_songs is None else min(len(ds), max_songs)
    for i in range(count):
        item = ds[i]
        mix, voc = item["mix"], item["sources"][1, 0]
        length = mix.shape[-1]
        starts = [0] if length < n else list(range(0, length - n + 1, n))
        for s in starts:
            e = min(length, s + n)
            yield f"{prefix}/{item['name']}/{s // SR:04d}", mix[:, s:e].clone(), voc[s:e].clone()


def build_cache(domains, seconds, max_songs, cache_dir: Path) -> dict:
    """``{domain: {'search': [seg...], 'heldout': [seg...]}}``; seg = dict(key, mix, vocals,
    cols (T, F, M) float16; search segments only: the held-out ones are run through the committed
    configs' real classes, never through the cache)."""
    from tqdm import tqdm

    from bootsep.utils.io import atomic_torch_save, safe_torch_load

    stft, members = member_separators()
    out = {}
    for d in domains:
        out[d["name"]] = {}
        for part, splits in (("search", d["search"]), ("heldout", d["heldout"])):
            segs = []
            for split in splits:
                gen = segments_of(d, split, seconds, max_songs)
                for key, mix, voc in tqdm(gen, desc=f"{d['name']}/{split} members",
                                          leave=False, disable=None):
                    path = cache_dir / d["name"] / (key.replace("/", "__") + f"_{seconds:g}s.pt")
                    if part == "heldout":
                        segs.append({"key": key, "mix": mix, "vocals": voc})
                        continue
                    if path.is_file():
                        cols = safe_torch_load(path)
                    else:
                        with torch.no_grad():
                            X = stft(mix)
                            ms = [members[m][0].masks(X)[0, members[m][1]] for m in MEMBERS]
                        cols = torch.stack(ms, dim=-1).to(torch.float16)
                        atomic_torch_save(cols, path)
                    segs.append({"key": key, "mix": mix, "vocals": voc, "cols": cols})
            out[d["name"]][part] = segs
    return out


# ----------------------------------------------------------------------------- evaluation
class Evaluator:
    """Vocals SI-SDR of a clustering of cached member masks, per segment."""

    def __init__(self, segs):
        from bootsep.dsp import STFT

        self.stft = STFT(N_FFT, HOP)
        self.segs = segs
        with torch.no_grad():
            self.X = [self.stft(s["mix"])[0] for s in segs]
            self.mag = [x.abs() for x in self.X]
            # d0² = f² · w and d1² = (1 - f)² · w for every weight vector: one matmul each
            self.sq = [torch.stack([s["cols"].float().square(), (1 - s["cols"].float()).square()])
                       for s in segs]

    def vocals_sdr(self, masks: list[torch.Tensor], smoothing: float = 0.0) -> np.ndarray:
        """Vocals SI-SDR per segment of ``(time, freq)`` vocals masks, smoothed over time by
        ``smoothing`` seconds first (as EnsembleClustering.smoothing does)."""
        from bootsep.metrics.bsseval import si_sdr
        from bootsep.primitives.ensemble import smooth_over_time, smoothing_frames

        frames = smoothing_frames(smoothing, SR, HOP)
        out = []
        with torch.no_grad():
            for m, X, s in zip(masks, self.X, self.segs):
                m = smooth_over_time(m, frames)
                est = self.stft.inverse(m * X, length=s["mix"].shape[-1])
                out.append(float(si_sdr(est[None].double(), s["vocals"][None].double())))
        return np.asarray(out)

    def fixed(self, weights, beta, smoothing: float = 0.0) -> np.ndarray:
        from bootsep.primitives.ensemble import weighted_fixed_assign

        w = torch.tensor(weights, dtype=torch.float32)
        masks = []
        for sq in self.sq:  # = weighted_fixed_assign(cols, w, beta)[1], from the cached squares
            d = (sq @ w).clamp_min(0).sqrt()
            masks.append(torch.softmax(-float(beta) * d, dim=0)[1])
        if masks:  # the shortcut is the ensemble's formula
            ref = weighted_fixed_assign(self.segs[0]["cols"].float(), w, beta)[1]
            torch.testing.assert_close(masks[0], ref, atol=1e-4, rtol=0)
        return self.vocals_sdr(masks, smoothing)

    def adaptive(self, weights, beta, cue, gamma, percentile=90.0,
                 smoothing: float = 0.0) -> tuple[np.ndarray, list]:
        from bootsep.primitives.ensemble import (
            adaptive_weights,
            member_cues,
            weighted_fixed_assign,
        )

        base = torch.tensor(weights, dtype=torch.float64)
        masks, used = [], []
        for s, mag in zip(self.segs, self.mag):
            cols = s["cols"].float()
            cues = member_cues(cols, mag, base, percentile)
            w = adaptive_weights(base, cues[cue], gamma)
            used.append(w.tolist())
            masks.append(weighted_fixed_assign(cols, w.float(), beta)[1])
        return self.vocals_sdr(masks, smoothing), used

    def blended(self, weights_per_segment, beta, smoothing: float = 0.0) -> np.ndarray:
        """Vocals SI-SDR with real-valued weights chosen per segment (``(n_segs, M)``)."""
        from bootsep.primitives.ensemble import weighted_fixed_assign

        return self.vocals_sdr([
            weighted_fixed_assign(s["cols"].float(), torch.as_tensor(w, dtype=torch.float32),
                                  beta)[1] for s, w in zip(self.segs, weights_per_segment)],
            smoothing)

    def predictor_features(self) -> np.ndarray:
        """``(n_segs, 2 M)`` inputs of AdaptiveEnsemble's predictor (agreement, decisiveness)."""
        from bootsep.primitives.ensemble import member_cues

        out = []
        for s, mag in zip(self.segs, self.mag):
            c = member_cues(s["cols"].float(), mag, torch.ones(len(MEMBERS)), 90.0)
            out.append(torch.cat([c["agreement"], c["decisiveness"]]).numpy())
        return np.asarray(out)

    def fitted(self, weights, beta, clustering, smoothing: float = 0.0) -> np.ndarray:
        from bootsep.primitives import EnsembleClustering
        from bootsep.separation.base import Separator

        class _Dummy(Separator):
            def masks(self, mix_spec, source_specs=None):  # never called
                raise RuntimeError

        keep = [i for i, w in enumerate(weights) if w > 0]
        dummy = _Dummy(SR, self.stft, ("a", "b"), "cpu")
        ens = EnsembleClustering([dummy] * len(keep), [[0]] * len(keep),
                                 [weights[i] for i in keep], clustering=clustering, beta=beta,
                                 sample_rate=SR, stft=self.stft)
        masks = []
        for s, mag in zip(self.segs, self.mag):
            feats = repeated_features(s["cols"].float(), weights)
            masks.append(ens._cluster_one(feats, mag)[1])
        return self.vocals_sdr(masks, smoothing)


def repeated_features(cols: torch.Tensor, weights) -> torch.Tensor:
    """Member columns repeated by integer weights, as EnsembleClustering.features stacks them."""
    idx = [i for i, w in enumerate(weights) for _ in range(int(w))]
    return cols[..., idx]


# ----------------------------------------------------------------------------- search
def objective(scores: dict, paper: dict, kind: str) -> float:
    if kind == "worst_gain":
        return min(scores[d] - paper[d] for d in scores)
    if kind == "worst":
        return min(scores.values())
    return float(np.mean(list(scores.values())))


def search(evals: dict, kind: str, log, starts=None, pairs: bool = False) -> dict:
    """Coordinate ascent over integer weights, beta and the time smoothing (fixed centres) on
    the search splits. A setting is ``(weights, beta, smoothing)``; a move changes one weight
    by one, or beta / smoothing to the next value of ``BETAS`` / ``SMOOTHINGS``."""
    cache: dict = {}

    def score(weights, beta, smoothing):
        key = (tuple(weights), beta, smoothing)
        if key not in cache:
            if sum(weights) == 0:
                cache[key] = None
            else:
                cache[key] = {d: float(ev.fixed(weights, beta, smoothing).mean())
                              for d, ev in evals.items()}
        return cache[key]

    paper = score(PAPER["weights"], PAPER["beta"], 0.0)

    def moves_from(w, b, sm):
        out = []
        for j in range(len(MEMBERS)):
            for dw in (-1, 1):
                if 0 <= w[j] + dw <= MAX_WEIGHT:
                    nw = list(w)
                    nw[j] += dw
                    out.append(((nw, b, sm), ("w", j)))
        for values, i, make, tag in ((BETAS, 1, lambda v: (list(w), v, sm), "beta"),
                                     (SMOOTHINGS, 2, lambda v: (list(w), b, v), "smoothing")):
            k = values.index((w, b, sm)[i])
            for dk in (-1, 1):
                if 0 <= k + dk < len(values):
                    out.append((make(values[k + dk]), (tag, None)))
        return out

    def ascend(setting, pairs):
        cur = objective(score(*setting), paper, kind)
        improved = True
        while improved:
            improved = False
            moves = moves_from(*setting)
            for new, _ in moves:
                sc = score(*new)
                if sc is not None and objective(sc, paper, kind) > cur + 1e-4:
                    setting, cur, improved = new, objective(sc, paper, kind), True
            if not improved and pairs:  # no single step helps: try pairs of steps
                w, b, sm = setting
                for i, (m1, c1) in enumerate(moves):
                    for m2, c2 in moves[i + 1:]:
                        if c1 == c2 or (c1[0] == c2[0] != "w"):
                            continue  # the same coordinate twice
                        new = ([x1 + x2 - x for x1, x2, x in zip(m1[0], m2[0], w)],
                               m2[1] if m1[1] == b else m1[1], m2[2] if m1[2] == sm else m1[2])
                        sc = score(*new)
                        if sc is not None and objective(sc, paper, kind) > cur + 1e-4:
                            setting, cur, improved = new, objective(sc, paper, kind), True
                            break
                    if improved:
                        break
            log(f"    {setting[0]} beta {setting[1]} smoothing {setting[2]:g} s objective "
                f"{cur:+.3f} ({len(cache)} settings so far)")
        return setting, cur

    best = None
    starts = starts or [OLD_DEFAULT, PAPER, {"weights": [1] * len(MEMBERS), "beta": 2.5}]
    for start in starts:
        sm = start.get("smoothing", 0.0)
        log(f"  coordinate ascent from {start['weights']} beta {start['beta']} smoothing {sm:g}")
        setting, cur = ascend((list(start["weights"]), start["beta"], sm), pairs=False)
        if best is None or cur > best[1]:
            best = (setting, cur)
    if pairs:
        log("  pairs of steps from the best")
        best = ascend(best[0], pairs=True)
    (w, b, sm), cur = best
    return {"weights": w, "beta": b, "smoothing": sm, "objective": cur,
            "scores": score(w, b, sm), "paper": paper,
            "old_default": score(OLD_DEFAULT["weights"], OLD_DEFAULT["beta"], 0.0),
            "evaluated": len(cache)}


# ----------------------------------------------------------------------------- predictor
def train_predictor(evals: dict, res: dict, kind: str, log) -> dict:
    """Logistic regression (search splits only) that tells, per segment and from reference-free
    cues, whether the alternative weights ``OLD_DEFAULT`` (REPET-heavy) beat the searched
    default there; sample weights = |SI-SDR difference|, so segments where the choice matters
    count most. Its probability blends the two weight vectors. The logit's sharpness and bias
    (how readily it leaves the default) are then chosen for the search objective on 5-fold
    out-of-fold probabilities (each segment scored by a model that did not see it)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    cand = [list(map(float, res["weights"])), list(map(float, OLD_DEFAULT["weights"]))]
    beta, sm = res["beta"], res["smoothing"]
    feats, labels, sw, per_domain = [], [], [], {}
    for d, ev in evals.items():
        a, b = ev.fixed(cand[0], beta, sm), ev.fixed(cand[1], beta, sm)
        f = ev.predictor_features()
        feats.append(f)
        labels.append((b > a).astype(int))
        sw.append(np.abs(b - a) + 1e-3)
        per_domain[d] = (f, a, b)
    X, y, w = np.concatenate(feats), np.concatenate(labels), np.concatenate(sw)
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    Z = (X - mean) / scale

    def fit(idx):
        clf = LogisticRegressionCV(Cs=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0], cv=4, max_iter=2000)
        return clf.fit(Z[idx], y[idx], sample_weight=w[idx])

    logit_oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(Z, y):
        logit_oof[te] = fit(tr).decision_function(Z[te])
    bounds = np.cumsum([0] + [len(v[0]) for v in per_domain.values()])

    def blend_scores(logits, sharp, bias):
        out = {}
        for i, d in enumerate(per_domain):
            p = 1 / (1 + np.exp(-(sharp * logits[bounds[i]:bounds[i + 1]] + bias)))
            wts = [(1 - pi) * np.asarray(cand[0]) + pi * np.asarray(cand[1]) for pi in p]
            out[d] = float(evals[d].blended(wts, beta, sm).mean())
        return out

    best = None
    for sharp in (1.0, 3.0):
        for bias in (-4.0, -2.0, -1.0, 0.0, 1.0):
            sc = blend_scores(logit_oof, sharp, bias)
            o = objective(sc, res["paper"], kind)
            log(f"  predictor out-of-fold, sharpness {sharp:g} bias {bias:+g}: " + "  ".join(
                f"{d} {v:6.2f}" for d, v in sc.items()) + f"  objective {o:+.3f}")
            if best is None or o > best[0] + 1e-4:
                best = (o, sharp, bias, sc)
    o, sharp, bias, sc_oof = best
    clf = fit(np.arange(len(y)))
    coef = [[0.0] * X.shape[1], [float(sharp * c) for c in clf.coef_[0]]]
    intercept = [0.0, float(sharp * clf.intercept_[0] + bias)]
    log(f"  predictor: C {clf.C_[0]:g}, sharpness {sharp:g}, bias {bias:+g}; out-of-fold "
        f"objective {o:+.3f}")
    return {"candidates": cand, "coef": coef, "intercept": intercept,
            "feature_mean": [float(x) for x in mean], "feature_scale": [float(x) for x in scale],
            "C": float(clf.C_[0]), "sharpness": sharp, "bias": bias, "scores_oof": sc_oof,
            "objective_oof": o}


GIN_MEMBERS = {"ft2d_r": ("@r/FT2D()", 1), "ft2d_m": ("@m/FT2D()", 1), "repet": ("@Repet()", 1),
               "repet_sim": ("@RepetSim()", 1), "pitch": ("@PitchContinuity()", 1),
               "hpss": ("@HPSS()", 0)}
GIN_MEMBER_SETTINGS = """
FT2D.sample_rate = %SAMPLE_RATE
FT2D.stft = @STFT()
FT2D.neighborhood_size = (1, 35)
FT2D.high_pass_cutoff = 250.0
r/FT2D.use_bg_2dft = True
m/FT2D.use_bg_2dft = False
Repet.sample_rate = %SAMPLE_RATE
Repet.stft = @STFT()
RepetSim.sample_rate = %SAMPLE_RATE
RepetSim.stft = @STFT()
PitchContinuity.sample_rate = %SAMPLE_RATE
PitchContinuity.stft = @STFT()
HPSS.sample_rate = %SAMPLE_RATE
HPSS.stft = @STFT()
HPSS.kernel_size = 31
"""


def default_gin(res: dict, header: str) -> str:
    """The searched weights as an EnsembleClustering config (members with weight > 0)."""
    keep = [i for i, w in enumerate(res["weights"]) if w > 0]
    seps = ", ".join(GIN_MEMBERS[MEMBERS[i]][0] for i in keep)
    rets = ", ".join(f"[{GIN_MEMBERS[MEMBERS[i]][1]}]" for i in keep)
    wts = ", ".join(str(int(res["weights"][i])) for i in keep)
    return (header + "evaluate.separator = @EnsembleClustering()\n"
            f"EnsembleClustering.separators = [{seps}]\n"
            f"EnsembleClustering.returns = [{rets}]\n"
            f"EnsembleClustering.weights = [{wts}]\n"
            "EnsembleClustering.clustering = 'fixed'\n"
            f"EnsembleClustering.beta = {res['beta']:g}\n"
            f"EnsembleClustering.smoothing = {res['smoothing']:g}\n"
            "EnsembleClustering.sample_rate = %SAMPLE_RATE\n"
            "EnsembleClustering.stft = @STFT()\n" + GIN_MEMBER_SETTINGS)


def adaptive_gin(weights, beta, smoothing, pred: dict) -> str:
    def fmt(x):
        if isinstance(x, list):
            return "[" + ", ".join(fmt(v) for v in x) + "]"
        return f"{x:.6g}"

    w = ", ".join(str(int(v)) for v in weights)
    return f"""# The adaptive primitive teacher (AdaptiveEnsemble, cue 'predictor'): per mixture, a logistic
# regression on reference-free cues (each member's agreement with the others and decisiveness on
# the loudest 10 % of bins) blends two weight vectors: the cross-domain default
# (primitive_clustering.gin) and the REPET-heavy weights tuned on the demo songs
# (primitive_clustering_demo.gin). Written by bench/ensemble_domains.py; the coefficients were
# fitted on the search splits of its development domains only (C = {pred['C']:g}; sharpness
# {pred['sharpness']:g} and bias {pred['bias']:+g} of the logit chosen on out-of-fold predictions).
# Members (one returned column each): {", ".join(MEMBERS)}.
evaluate.separator = @AdaptiveEnsemble()
AdaptiveEnsemble.separators = [@r/FT2D(), @m/FT2D(), @Repet(), @RepetSim(), @PitchContinuity(), @HPSS()]
AdaptiveEnsemble.returns = [[1], [1], [1], [1], [1], [0]]
AdaptiveEnsemble.weights = [{w}]
AdaptiveEnsemble.beta = {beta:g}
AdaptiveEnsemble.smoothing = {smoothing:g}
AdaptiveEnsemble.cue = 'predictor'
AdaptiveEnsemble.cue_percentile = 90.0
AdaptiveEnsemble.candidates = {fmt(pred['candidates'])}
AdaptiveEnsemble.coef = {fmt(pred['coef'])}
AdaptiveEnsemble.intercept = {fmt(pred['intercept'])}
AdaptiveEnsemble.feature_mean = {fmt(pred['feature_mean'])}
AdaptiveEnsemble.feature_scale = {fmt(pred['feature_scale'])}
AdaptiveEnsemble.sample_rate = %SAMPLE_RATE
AdaptiveEnsemble.stft = @STFT()
""" + GIN_MEMBER_SETTINGS


# ----------------------------------------------------------------------------- gin systems
def gin_system(path: Path):
    import gin

    from bootsep.cli.main import parse_configs
    from bootsep.config.separate import resolve_separator

    gin.clear_config()
    parse_configs([str(p) for p in ENV] + [str(path)], [])
    sep = resolve_separator()
    gin.clear_config()
    return sep


def run_system(sep, segs) -> tuple[np.ndarray, list]:
    """Vocals SI-SDR per segment (bss_eval_scale) and the features for confidence."""
    from bootsep.metrics.bsseval import bss_eval_scale

    sdr, feats = [], []
    labels = list(sep.source_labels)
    vi = labels.index("vocals")
    for s in segs:
        with torch.no_grad():
            res = sep.separate(s["mix"], with_features=True)
        acc = s["mix"][0] - s["vocals"]
        refs = torch.stack([acc, s["vocals"]])[:, None]  # (2, 1, S)
        est = res.estimates[[1 - vi, vi]] if len(labels) == 2 else res.estimates
        m, _ = bss_eval_scale(est.transpose(0, 1), refs.transpose(0, 1), s["mix"])
        sdr.append(float(m["SI-SDR"][0, 1]))
        feats.append((res.features[0].to(torch.float32), res.mix_magnitude[0]))
    return np.asarray(sdr), feats


def confidence_row(features, mag, beta) -> dict:
    """Every candidate measure on one segment's teacher features (zeros/ones centres), the way
    ``separate`` records them."""
    from bootsep.bootstrap.separate import ConfidencePlan

    plan = ConfidencePlan(CONFIDENCE_CANDIDATES, SR, N_FFT, 99.0, 2, centers=None, beta=beta)
    return plan.compute(plan.select(features, mag))


def confidences(sep, feats) -> dict:
    rows = [confidence_row(f, mag, getattr(sep, "beta", None)) for f, mag in feats]
    return {name: np.asarray([r[name] for r in rows], float) for name in rows[0]}


def spearman(a, b):
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0:
        return None
    return round(float(spearmanr(a[ok], b[ok]).statistic), 3)


def plot(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    domains = list(results)
    systems = list(SYSTEMS)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(systems)
    for i, s in enumerate(systems):
        ax.bar([d + i * width for d in range(len(domains))],
               [results[d].get(s, float("nan")) for d in domains], width, label=s)
    ax.set_xticks([d + 0.4 - width / 2 for d in range(len(domains))])
    ax.set_xticklabels(domains)
    ax.set_ylabel("vocals SI-SDR (dB), held out")
    ax.set_title("Primitive teachers per development domain")
    ax.legend(fontsize=8)
    fig.tight_layout()
    from bootsep.utils.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--domain", action="append", default=None,
                   help="NAME=ROOT[:SEARCH_SPLITS:HELDOUT_SPLITS] (repeatable; default the three "
                        "development domains)")
    p.add_argument("--segment", type=float, default=12.0, help="segment seconds (default 12)")
    p.add_argument("--max-songs", type=int, default=None, help="songs per split (default all)")
    p.add_argument("--objective", choices=("worst_gain", "worst", "mean"), default="worst_gain")
    p.add_argument("--cache", default="runs/ensemble_domains/cache")
    p.add_argument("--out", default="runs/ensemble_domains")
    p.add_argument("--start", action="append", default=None, metavar="W1,...,W6:BETA[:SMOOTHING]",
                   help="a starting point of the search (repeatable; default the old default, "
                        "the paper weights and uniform weights, beta 2.5)")
    p.add_argument("--pairs", action="store_true",
                   help="when no single step improves, also try pairs of steps (slower)")
    p.add_argument("--no-search", action="store_true",
                   help="only evaluate the committed configs (held out) and the confidence (the "
                        "search-split rho comes from --out's search.json when there)")
    p.add_argument("--no-heldout", action="store_true",
                   help="stop after the search (review and copy its configs to "
                        "musdb/exp/primitives/, then rerun with --no-search for the held-out "
                        "figures)")
    args = p.parse_args()
    if args.no_search and args.no_heldout:
        raise SystemExit("error: --no-search with --no-heldout leaves nothing to do; drop one")
    torch.set_num_threads(1)
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:6.0f}s] {msg}", flush=True)

    from bootsep.utils.errors import UserError
    from bootsep.utils.io import atomic_write_json, atomic_write_text

    domains = [parse_domain(s) for s in (args.domain or DEFAULT_DOMAINS)]
    for d in domains:
        if not Path(d["root"]).is_dir():
            raise UserError(f"domain {d['name']}: {d['root']} is not a folder (build it, see "
                            "bench/ensemble_domains.py's docstring, or pass --domain)")
    data = build_cache(domains, args.segment, args.max_songs, Path(args.cache))
    for d in domains:
        log(f"{d['name']}: {len(data[d['name']]['search'])} search / "
            f"{len(data[d['name']]['heldout'])} held-out segments of {args.segment:g} s")
    out_dir = Path(args.out)
    summary: dict = {"segment_seconds": args.segment, "members": MEMBERS,
                     "domains": domains, "objective": args.objective}

    if not args.no_search:
        evals = {d: Evaluator(v["search"]) for d, v in data.items()}
        for m, name in enumerate(MEMBERS):
            w = [0] * len(MEMBERS)
            w[m] = 1
            log(f"single member {name:10s} " + "  ".join(
                f"{d} {evals[d].fixed(w, 2.5).mean():6.2f}" for d in evals))
        starts = None
        if args.start:
            starts = []
            for spec in args.start:
                w, _, rest = spec.partition(":")
                b, _, sm = rest.partition(":")
                try:
                    w = [int(x) for x in w.split(",")]
                    b, sm = float(b or 2.5), float(sm or 0.0)
                except ValueError:
                    w = []
                if len(w) != len(MEMBERS) or b not in BETAS or sm not in SMOOTHINGS:
                    raise UserError(f"--start {spec}: give {len(MEMBERS)} integer weights "
                                    f"({', '.join(MEMBERS)}), a beta from {BETAS} and a "
                                    f"smoothing from {SMOOTHINGS}")
                starts.append({"weights": w, "beta": b, "smoothing": sm})
        res = search(evals, args.objective, log, starts, args.pairs)
        log(f"search ({res['evaluated']} settings): weights {dict(zip(MEMBERS, res['weights']))} "
            f"beta {res['beta']}, smoothing {res['smoothing']:g} s, objective "
            f"{res['objective']:+.3f}")
        for k in ("old_default", "paper", "scores"):
            log(f"  search split {k:12s} " + "  ".join(f"{d} {v:6.2f}" for d, v in res[k].items()))
        header = ("# bootsep's default primitive teacher, chosen by bench/ensemble_domains.py across "
                  "development\n# domains (objective "
                  f"{args.objective}, search splits only): weights over {', '.join(MEMBERS)} = "
                  f"{res['weights']}, beta {res['beta']:g}, smoothing {res['smoothing']:g} s.\n")
        atomic_write_text(out_dir / "primitive_clustering.gin", default_gin(res, header))
        res["predictor"] = train_predictor(evals, res, args.objective, log)
        atomic_write_text(out_dir / "primitive_clustering_adaptive.gin",
                          adaptive_gin(res["weights"], res["beta"], res["smoothing"],
                                       res["predictor"]))
        log(f"wrote {out_dir / 'primitive_clustering_adaptive.gin'} (copy it to {PRIM} to "
            "make it the adaptive system)")
        log(f"search-split objective: fixed default {res['objective']:+.3f}, adaptive predictor "
            f"(out of fold) {res['predictor']['objective_oof']:+.3f}")
        summary["search"] = res
        atomic_write_json(out_dir / "search.json", summary)
        adaptive = {}
        for cue in ("agreement", "decisiveness"):
            for gamma in (0.5, 2.0):
                sc = {d: float(ev.adaptive(res["weights"], res["beta"], cue, gamma,
                                           smoothing=res["smoothing"])[0].mean())
                      for d, ev in evals.items()}
                o = objective(sc, res["paper"], args.objective)
                adaptive[f"{cue}/{gamma:g}"] = {"scores": sc, "objective": o}
                log(f"  adaptive {cue:12s} gamma {gamma:<4g}" + "  ".join(
                    f"{d} {v:6.2f}" for d, v in sc.items()) + f"  objective {o:+.3f}")
        res["adaptive"] = adaptive
        fitted = {}
        for clustering in ("kmeans", "gmm"):
            sc = {d: float(ev.fitted(res["weights"], res["beta"], clustering,
                                     res["smoothing"]).mean())
                  for d, ev in evals.items()}
            fitted[clustering] = {"scores": sc,
                                  "objective": objective(sc, res["paper"], args.objective)}
            log(f"  {clustering:6s} clustering  " + "  ".join(f"{d} {v:6.2f}" for d, v in sc.items())
                + f"  objective {fitted[clustering]['objective']:+.3f}")
        res["fitted"] = fitted
        rho_search = {}
        for d, ev in evals.items():
            rows = [confidence_row(repeated_features(s["cols"].float(), res["weights"]), mag,
                                   res["beta"]) for s, mag in zip(ev.segs, ev.mag)]
            sdr = ev.fixed(res["weights"], res["beta"], res["smoothing"])
            rho_search[d] = {m: spearman([r[m] for r in rows], sdr) for m in rows[0]}
        res["rho_search"] = rho_search
        summary["search"] = res
        atomic_write_json(out_dir / "search.json", summary)
        if args.no_heldout:
            log(f"search written to {out_dir}; --no-heldout: stop here")
            return

    elif (out_dir / "search.json").is_file():  # the last search's rho on the search splits
        summary["search"] = json.loads((out_dir / "search.json").read_text()).get("search", {})
        if "rho_search" not in summary["search"]:
            del summary["search"]

    # held-out figures of the committed configs, through their real classes
    results: dict = {d["name"]: {} for d in domains}
    rho: dict = {}
    per_segment: dict = {}
    for system, path in SYSTEMS.items():
        if not path.is_file():
            log(f"{system}: {path} missing, skipped")
            continue
        sep = gin_system(path)
        for d in domains:
            name = d["name"]
            sdr, feats = run_system(sep, data[name]["heldout"])
            results[name][system] = round(float(sdr.mean()), 2)
            per_segment.setdefault(name, {})[system] = [round(float(x), 3) for x in sdr]
            if system == "default":
                rho.setdefault(name, {})
                if "search" in summary:  # the searched teacher, from the cache
                    rho[name]["search"] = summary["search"]["rho_search"][name]
                conf = confidences(sep, feats)
                rho[name]["heldout"] = {m: spearman(v, sdr) for m, v in conf.items()}
            del feats
        log(f"{system:12s} held out " + "  ".join(f"{d} {results[d][system]:6.2f}"
                                                  for d in results))

    print("\nvocals SI-SDR (dB), mean over each domain's held-out segments:")
    print(f"{'domain':16s}" + "".join(f"{s:>13s}" for s in SYSTEMS))
    for d, r in results.items():
        print(f"{d:16s}" + "".join(f"{r.get(s, float('nan')):13.2f}" for s in SYSTEMS))
    if all(len(r) == len(SYSTEMS) for r in results.values()):
        mean = {s: float(np.mean([results[d][s] for d in results])) for s in SYSTEMS}
        print(f"{'mean':16s}" + "".join(f"{mean[s]:13.2f}" for s in SYSTEMS))
    if rho:
        names = list(next(iter(rho.values()))["heldout"])
        for part in [p for p in ("search", "heldout") if all(p in rho[d] for d in rho)]:
            print(f"\nSpearman rho, confidence vs the default teacher's vocals SI-SDR per "
                  f"segment ({part} split):")
            print(f"{'measure':32s}" + "".join(f"{d:>16s}" for d in rho) + f"{'worst':>8s}")
            for m in names:
                vals = [rho[d][part][m] for d in rho]
                worst = min((v for v in vals if v is not None), default=float("nan"))
                print(f"{m:32s}" + "".join(f"{(v if v is not None else float('nan')):16.3f}"
                                           for v in vals) + f"{worst:8.3f}")
        part = "search" if all("search" in rho[d] for d in rho) else "heldout"
        worst = {m: min((rho[d][part][m] for d in rho if rho[d][part][m] is not None),
                        default=-1.0) for m in names}
        best = max(worst, key=worst.get)
        # change organize's default only for a clear gain: rho over ~30-80 segments has a
        # standard error of ~0.1, so a candidate must beat the current default by RHO_MARGIN
        choice = best if worst[best] > worst[CURRENT_CONFIDENCE] + RHO_MARGIN else CURRENT_CONFIDENCE
        print(f"best worst-domain rho on the {part} splits: {best} ({worst[best]:.3f}); the "
              f"current default {CURRENT_CONFIDENCE}: {worst[CURRENT_CONFIDENCE]:.3f}; "
              f"choice (margin {RHO_MARGIN}): {choice}; held out: "
              + ", ".join(f"{d} {rho[d]['heldout'][choice]}" for d in rho))
        summary["confidence_choice"] = choice
        print("rho JSON: " + json.dumps(rho))
    summary.update({"heldout_vocals_si_sdr": results, "confidence_spearman": rho,
                    "per_segment": per_segment, "seconds": round(time.time() - t0)})
    atomic_write_json(out_dir / "results.json", summary)
    plot(results, out_dir / "ensemble_domains.png")
    print(json.dumps(results))


if __name__ == "__main__":
    from bootsep.utils.errors import run_main

    sys.exit(run_main(main))  # a user mistake: one error line, exit 2
