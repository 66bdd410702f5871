#!/bin/sh
# The paper in miniature, on the procedural demo songs (run from the repository root):
#
#   1. the primitive ensemble (the teacher) separates the TEST songs and is scored;
#   2. `separate` separates the training mixtures and 168 more unlabelled mixtures (whole 12 s
#      songs; the unlabelled ones are procedural songs of another seed, the reference's
#      "YouTube" collections in miniature) with the ensemble, recording each one's confidence
#      (stems only score the segments for the confidence-vs-quality plot: nothing below trains
#      or selects on them);
#   3. `organize` keeps the top 80 % of the segments by confidence (above_q2);
#   4. a small Open-Unmix-style BLSTM mask model (the student) trains on those estimates alone;
#   5. the same model, same budget, trains on the ground-truth stems (the upper bound);
#   6. one table compares mixture / ensemble / bootstrapped / supervised on the test songs.
#
# Usage: PY=.venv/bin/python sh musdb/demo/paper_demo.sh
# Everything lands in $BOOTSEP_DEMO_RUNS (default runs/demo); rerunning resumes or skips what is
# done. The supervised model trains in the background while steps 1-4 run, each process on one
# BLAS thread (OMP_NUM_THREADS=1 unless set), so the two trainings share two cores.
# The last line printed is the path of the comparison table, runs/demo/comparison.md.
# BOOTSEP_DEMO_EXTRA_CONFIG=FILE.gin is parsed after the configs of every step (e.g. to shrink
# the whole experiment for a smoke test).
set -eu

PY=${PY:-.venv/bin/python}
RUNS=${BOOTSEP_DEMO_RUNS:-runs/demo}
export BOOTSEP_DEMO_RUNS="$RUNS"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PYTHONUNBUFFERED=1
D=musdb/demo
B=musdb/demo/bootstrap
DATA="$D/env.gin $D/data.gin"
# The teacher: bootsep's primitive ensemble (REPET x2, 2DFT-R/M x1, pitch x3, HPSS x1; weights
# chosen on the demo's valid songs + 8 training songs, never on the test songs). The paper's
# weights: ENSEMBLE=musdb/exp/primitives/primitive_clustering_reference.gin (a weaker teacher;
# its student still beats it, by less: see the README).
ENSEMBLE=${ENSEMBLE:-musdb/exp/primitives/primitive_clustering.gin}
X=${BOOTSEP_DEMO_EXTRA_CONFIG:-}

"$PY" main.py prepare -c $D/env.gin $D/prepare.gin $X
"$PY" main.py prepare -c $B/paths.gin $B/unlabelled.gin $X

mkdir -p "$RUNS/supervised"
echo "training the supervised model in the background (log: $RUNS/supervised/train.out)"
"$PY" main.py train -c $DATA $B/model.gin $B/supervised.gin $X -o "$RUNS/supervised" \
    > "$RUNS/supervised/train.out" 2>&1 &
SUPERVISED=$!
trap 'kill $SUPERVISED 2>/dev/null || true' EXIT INT TERM

echo "== 1. the primitive ensemble on the test songs"
"$PY" main.py evaluate -c $DATA $ENSEMBLE $X -o "$RUNS/ensemble" -b "evaluate.progress = False"

echo "== 2. separate the training and unlabelled mixtures with the ensemble"
"$PY" main.py separate -c $DATA $ENSEMBLE $B/paths.gin $B/separate.gin $X \
    --output "$RUNS/separated"

echo "== 3. organize: the top 80 % by confidence"
"$PY" main.py organize -c $B/paths.gin $B/organize.gin $X \
    --output "$RUNS/bootstrap_data/above_q2" --force

echo "== 4. train the student on the ensemble's confident separations, then evaluate it"
"$PY" main.py all -c $DATA $B/paths.gin $B/model.gin $B/bootstrapped.gin $X -o "$RUNS/bootstrapped"

echo "== 5. the supervised model (same model and budget, ground-truth stems)"
if ! wait $SUPERVISED; then
    echo "error: supervised training failed; see $RUNS/supervised/train.out" >&2
    exit 1
fi
trap - EXIT INT TERM
"$PY" main.py evaluate -c $DATA $B/model.gin $B/supervised.gin $X -o "$RUNS/supervised"

echo "== 6. comparison"
"$PY" -m bootsep.report.compare --output "$RUNS" --separated "$RUNS/separated" \
    --measure combined --cut-percentile 20 --title "The paper in miniature: demo test songs"
