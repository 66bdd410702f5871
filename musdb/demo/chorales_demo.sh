#!/bin/sh
# The paper in miniature on real-instrument music: musdb/demo/paper_demo.sh's pipeline (the
# tiny recipe's primitive teacher, `separate`, `organize`, the BLSTM student, the supervised
# reference with the same model and budget, one comparison table) on the development Bach
# chorales (../shared/devdata, rendered stem by stem with FluidSynth; see `make demo-chorales`).
#
#   labelled (built here as links, nothing copied): $ROOT/train = the dev chorales' training
#   songs less the two validation songs of their setup.yaml, $ROOT/valid = those two,
#   $ROOT/test = the 6 test songs (scored only, never separated for training);
#   unlabelled: the training songs' mixtures plus every song of each folder in
#   $BOOTSEP_CHORALES_POOLS (dev-pool chorales whose tunes are not in the test set).
#
# Usage: PY=.venv/bin/python sh musdb/demo/chorales_demo.sh
#   BOOTSEP_CHORALES (default data/chorales), BOOTSEP_CHORALES_POOLS (default
#   data/chorales_pool/train; space-separated folders), BOOTSEP_DEMO_RUNS (default
#   runs/demo_chorales), BOOTSEP_DEMO_EXTRA_CONFIG as in paper_demo.sh.
# The last line printed is the path of the comparison table.
set -eu

CHORALES=${BOOTSEP_CHORALES:-data/chorales}
POOLS=${BOOTSEP_CHORALES_POOLS:-data/chorales_pool/train}
export BOOTSEP_DEMO_RUNS="${BOOTSEP_DEMO_RUNS:-runs/demo_chorales}"
ROOT="$BOOTSEP_DEMO_RUNS/songs"

for d in "$CHORALES/train" "$CHORALES/test" $POOLS; do
    if [ ! -d "$d" ]; then
        echo "error: $d is missing; build the development chorales first (make demo-chorales" \
             "does, see ../shared/devdata/README.md)" >&2
        exit 2
    fi
done

# the labelled layout: links to the song folders (made once; never replaces anything)
VALID=$(sed -n '/^validation_tracks:/,$ s/^- //p' "$CHORALES/setup.yaml")
mkdir -p "$ROOT/train" "$ROOT/valid" "$ROOT/test"
ABS=$(cd "$CHORALES" && pwd)
for song in "$CHORALES"/train/*/; do
    name=$(basename "$song")
    split=train
    if printf '%s\n' "$VALID" | grep -qxF "$name"; then split=valid; fi
    [ -e "$ROOT/$split/$name" ] || ln -s "$ABS/train/$name" "$ROOT/$split/$name"
done
for song in "$CHORALES"/test/*/; do
    name=$(basename "$song")
    [ -e "$ROOT/test/$name" ] || ln -s "$ABS/test/$name" "$ROOT/test/$name"
done

ARGS="train=$ROOT/train"
i=0
for d in $POOLS; do
    i=$((i + 1))
    ARGS="$ARGS pool$i=$d"
done

BOOTSEP_DEMO_ROOT="$ROOT" BOOTSEP_DEMO_PREPARE=0 BOOTSEP_DEMO_UNLABELLED_ARGS="$ARGS" \
BOOTSEP_DEMO_TITLE="The paper in miniature on the dev chorales: test songs" \
    sh musdb/demo/paper_demo.sh
