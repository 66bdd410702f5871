#!/bin/sh
# The paper in miniature, on the procedural demo songs (run from the repository root): the
# `bootstrap` command with the tiny recipe (musdb/recipes/tiny.gin), plus a supervised reference.
#
#   1-4. `main.py bootstrap` (stages in $RUNS/<stage>/): the primitive ensemble (the teacher)
#      separates the training mixtures and 168 more unlabelled mixtures (whole 12 s songs; the
#      unlabelled ones are procedural songs of another seed, the reference's "YouTube"
#      collections in miniature), recording each one's confidence (separate/; stems only score
#      the segments for the confidence-vs-quality plot: nothing trains or selects on them);
#      `organize` keeps the top 80 % of the segments by confidence (organize/data); a small
#      Open-Unmix-style BLSTM mask model (the student) trains on those estimates alone
#      (student/); teacher and student are scored on the TEST songs (teacher/, student/);
#   5. the same model, same budget, trains on the ground-truth stems (the upper bound);
#   6. `bootstrap --stages compare`: one table compares mixture / ensemble / bootstrapped /
#      supervised on the test songs.
#
# Usage: PY=.venv/bin/python sh musdb/demo/paper_demo.sh
# Everything lands in $BOOTSEP_DEMO_RUNS (default runs/demo); rerunning resumes or skips what is
# done. The supervised model trains in the background while steps 1-4 run, each process on one
# BLAS thread (OMP_NUM_THREADS=1 unless set), so the two trainings share two cores.
# The last line printed is the path of the comparison table, runs/demo/comparison.md.
# BOOTSEP_DEMO_EXTRA_CONFIG=FILE.gin is parsed after the configs of every step (e.g. to shrink
# the whole experiment for a smoke test). Other data (musdb/demo/chorales_demo.sh uses these):
# BOOTSEP_DEMO_ROOT (labelled train/valid/test folders), BOOTSEP_DEMO_PREPARE=0 (do not build the
# procedural songs), BOOTSEP_DEMO_UNLABELLED_ARGS ("name=folder ..." for --unlabelled; no spaces
# inside a folder name), BOOTSEP_DEMO_TITLE (the comparison's title).
set -eu

PY=${PY:-.venv/bin/python}
RUNS=${BOOTSEP_DEMO_RUNS:-runs/demo}
export BOOTSEP_DEMO_RUNS="$RUNS"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PYTHONUNBUFFERED=1
D=musdb/demo
B=musdb/demo/bootstrap
DATA="$D/env.gin $D/data.gin"
DEMO_ROOT=${BOOTSEP_DEMO_ROOT:-data/demo}
UNLABELLED=${BOOTSEP_DEMO_UNLABELLED:-data/demo_unlabelled}
# The teacher: the tiny recipe's, bootsep's primitive ensemble
# (musdb/exp/primitives/primitive_clustering.gin; weights chosen across three development
# domains by bench/ensemble_domains.py, never on the demo's test songs). Others:
# ENSEMBLE=musdb/exp/primitives/primitive_clustering_reference.gin (the paper's weights) or
# ENSEMBLE=musdb/exp/primitives/primitive_clustering_demo.gin (tuned on the demo: stronger here,
# weaker on real instruments); see the README. Use another -o (BOOTSEP_DEMO_RUNS) for each.
TEACHER=${ENSEMBLE:+--teacher $ENSEMBLE}
X=${BOOTSEP_DEMO_EXTRA_CONFIG:-}
UNLABELLED_ARGS=${BOOTSEP_DEMO_UNLABELLED_ARGS:-"train=$DEMO_ROOT/train unlabelled=$UNLABELLED/train"}
TITLE=${BOOTSEP_DEMO_TITLE:-"The paper in miniature: demo test songs"}

if [ "${BOOTSEP_DEMO_PREPARE:-1}" = 1 ]; then
    "$PY" main.py prepare -c $D/env.gin $D/prepare.gin $X
    "$PY" main.py prepare -c $B/paths.gin $B/unlabelled.gin $X
fi

mkdir -p "$RUNS/supervised"
echo "training the supervised model in the background (log: $RUNS/supervised/train.out)"
"$PY" main.py train -c $DATA $B/model.gin $B/supervised.gin $X -o "$RUNS/supervised" \
    > "$RUNS/supervised/train.out" 2>&1 &
SUPERVISED=$!
trap 'kill $SUPERVISED 2>/dev/null || true' EXIT INT TERM

echo "== 1-4. bootstrap (musdb/recipes/tiny.gin): the ensemble separates the training and"
echo "        unlabelled mixtures, organize keeps the top 80 %, the student trains on them;"
echo "        teacher and student are scored on the test songs"
"$PY" main.py bootstrap -c musdb/recipes/tiny.gin $X $TEACHER -o "$RUNS" \
    --unlabelled $UNLABELLED_ARGS \
    --test "$DEMO_ROOT/test" --valid "$DEMO_ROOT/valid" \
    --stages separate organize train evaluate

echo "== 5. the supervised model (same model and budget, ground-truth stems)"
if ! wait $SUPERVISED; then
    echo "error: supervised training failed; see $RUNS/supervised/train.out" >&2
    exit 1
fi
trap - EXIT INT TERM
"$PY" main.py evaluate -c $DATA $B/model.gin $B/supervised.gin $X -o "$RUNS/supervised"

echo "== 6. comparison"
"$PY" main.py bootstrap -c musdb/recipes/tiny.gin $X $TEACHER -o "$RUNS" \
    --unlabelled $UNLABELLED_ARGS \
    --test "$DEMO_ROOT/test" --valid "$DEMO_ROOT/valid" --stages compare \
    -b "bootstrap.teacher_name = 'ensemble'" -b "bootstrap.student_name = 'bootstrapped'" \
    -b "bootstrap.extra_systems = {'supervised': '$RUNS/supervised'}" \
    -b "bootstrap.title = '$TITLE'"
