#!/bin/bash
# Issue 14's long runs on one GPU, as one prepared command for the device machine (15 minutes of device time a
# session, at most 10 minutes a command): pretraining for a wall budget, then fine-tuning and the test score.
#
#   KIND=lm: imdb-lm-lstm-pretrain, then imdb-lm-lstm (--init-prefix encoder)   (LM-LSTM, target > 92.36%)
#   KIND=sa: imdb-sa-lstm-pretrain, then imdb-sa-lstm                            (SA-LSTM, target > 92.76%)
#
# From the repository root; the data is not in the checkout: copy it into a git-ignored folder first and carry it
#   mkdir -p gpudata/imdb && cp ../shared/data/imdb/{unsup,train,test}.jsonl.gz gpudata/imdb/ \
#     && echo /gpudata/ >> .git/info/exclude
# then, on the device (carry: ["gpudata"]):
#   KIND=lm PRETRAIN_SECONDS=300 bash benchmarks/imdb_gpu.sh
# A CPU smoke test of the same steps (tiny slices and models, about a minute; no GPU needed):
#   DEVICE=cpu QUICK=1 bash benchmarks/imdb_gpu.sh
#
# The pretraining gets SIGINT at PRETRAIN_SECONDS (the trainer stops at a step boundary and saves its checkpoint);
# its model.safetensors holds the weights of its last validation (every EVAL_EVERY updates), which the
# classifier starts from. Extra overrides: PRETRAIN_SET / FINETUNE_SET ("--set k=v --set k2=v2"). Results: one JSON
# line per stage, and log.csv / results.json / the test scores copied into $OUT (the device's output folder) or
# runs/gpu-KIND/out.
set -uo pipefail
KIND=${KIND:-lm}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-gpudata/imdb}
RUN=${RUN:-runs/gpu-$KIND}
RESULTS=${OUT:-$RUN/out}
PRETRAIN_SECONDS=${PRETRAIN_SECONDS:-300}
EVAL_EVERY=${EVAL_EVERY:-500}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PY:-python3}
mkdir -p "$RUN" "$RESULTS"

case $KIND in
  # the LM recipe's step schedule lowers the rate for the last of its epochs: here the last of PRETRAIN_EPOCHS
  # (a budget that stops the run earlier keeps Adam's constant 1e-3; PRETRAIN_EPOCHS=6 is the recipe's run)
  lm) verb=lm; pre=imdb-lm-lstm-pretrain; fine=imdb-lm-lstm; init=(--init-prefix encoder)
      schedule=(--set train.decay_start=$((${PRETRAIN_EPOCHS:-50} - 1))) ;;
  sa) verb=autoencoder; pre=imdb-sa-lstm-pretrain; fine=imdb-sa-lstm; init=() schedule=() ;;
  *) echo "KIND must be lm or sa, not '$KIND'" >&2; exit 2 ;;
esac

unsup=$DATA/unsup.jsonl.gz train=$DATA/train.jsonl.gz test=$DATA/test.jsonl.gz
quick=() quick_pre=()
if [ -n "${QUICK:-}" ]; then  # tiny slices and models: the steps run end to end in about a minute on a CPU
  mkdir -p "$RUN/data"
  for f in unsup train test; do
    $PY - "$DATA/$f.jsonl.gz" "$RUN/data/$f.jsonl" <<'EOF'
import gzip, random, sys
lines = gzip.open(sys.argv[1], "rt", encoding="utf-8").readlines()
random.Random(0).shuffle(lines)  # train/test are sorted by label: a random slice holds both
open(sys.argv[2], "w", encoding="utf-8").writelines(lines[:300])
EOF
  done
  unsup=$RUN/data/unsup.jsonl train=$RUN/data/train.jsonl test=$RUN/data/test.jsonl
  quick=(--set model.hidden_size=32 --set model.embedding_size=16 --set tokenizer.vocab_size=2000
         --set data.max_length=60)
  quick_pre=(--set "model.adaptive_cutoffs=[200,1000]")
  PRETRAIN_SECONDS=${PRETRAIN_SECONDS_QUICK:-20} EVAL_EVERY=5
fi

json() { echo "{\"bench\": \"imdb_gpu\", \"kind\": \"$KIND\", \"device\": \"$DEVICE\", $1}"; }

if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
fi

# 1. pretraining (resumed when $RUN/pretrain holds a checkpoint), stopped at the budget
resume=()
[ -d "$RUN/pretrain/checkpoint" ] && resume=(--resume)
t0=$SECONDS
timeout -s INT "$PRETRAIN_SECONDS" $PY -m rnnkit train $verb --recipe $pre --data "$unsup" --out "$RUN/pretrain" \
  "${resume[@]}" --device "$DEVICE" --set train.epochs=${PRETRAIN_EPOCHS:-50} ${schedule[@]+"${schedule[@]}"} \
  --set train.eval_every=$EVAL_EVERY ${quick[@]+"${quick[@]}"} ${quick_pre[@]+"${quick_pre[@]}"} ${PRETRAIN_SET:-} \
  2>&1 | tee "$RUN/pretrain.log"
status=${PIPESTATUS[0]}
t1=$SECONDS
# 124: stopped at the budget (SIGINT, checkpoint saved); 0: the epochs ended first
if [ "$status" != 0 ] && [ "$status" != 124 ]; then echo "pretraining failed (exit $status)" >&2; exit 1; fi
last_valid=$(grep ',valid,' "$RUN/pretrain/log.csv" | tail -n 1)
json "\"stage\": \"pretrain\", \"seconds\": $((t1 - t0)), \"last_valid_row\": \"$last_valid\""

# 2. fine-tuning from its last validated weights for the recipe's max_steps (400 LM / 1,000 SA updates, the
#    measured CPU runs'; FINETUNE_SET="--set train.max_steps=0" lifts it), the test scored on the selected weights
t0=$SECONDS
$PY -m rnnkit train classify --recipe $fine --data "$train" --test "$test" --init-from "$RUN/pretrain" "${init[@]}" \
  --out "$RUN/finetune" --overwrite --device "$DEVICE" ${quick[@]+"${quick[@]}"} \
  ${FINETUNE_SET:-} 2>&1 | tee "$RUN/finetune.log"
status=${PIPESTATUS[0]}
t1=$SECONDS
if [ "$status" != 0 ]; then echo "fine-tuning failed (exit $status)" >&2; exit 1; fi
json "\"stage\": \"finetune\", \"seconds\": $((t1 - t0)), \"results\": $(tr -d '\n ' < "$RUN/finetune/results.json")"

cp "$RUN/pretrain/log.csv" "$RESULTS/pretrain-log.csv"
cp "$RUN/finetune/log.csv" "$RESULTS/finetune-log.csv"
cp "$RUN/finetune/results.json" "$RESULTS/finetune-results.json"
cp "$RUN/pretrain.log" "$RUN/finetune.log" "$RESULTS/"
