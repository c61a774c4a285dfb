#!/bin/bash
# Behaviour check for a refactoring: the same command and seed must give byte-identical model.safetensors
# under two revisions of ser_hf (default: HEAD~1 against the working tree). Trains a mel-CNN and a Whisper
# tiny.en LoRA run of a few optimizer steps on URDU fold 0, once per revision, one torch thread, then prints
# the sha256 of each model.safetensors and of its metrics.json (timings, paths and machine facts left out), each
# with "identical" or "DIFFERENT".
#
#   bash benchmarks/same_weights.sh [OLD_REV] [DATA_DIR] [WHISPER_DIR]
#   bash benchmarks/same_weights.sh 0b09791 ../shared/data/urdu-16k ../shared/models/whisper-tiny.en-encoder
set -euo pipefail
old=${1:-HEAD~1}
data=$(realpath "${2:-../shared/data/urdu-16k}")
whisper=$(realpath "${3:-../shared/models/whisper-tiny.en-encoder}")
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/same_weights.XXXX)
git -C "$repo" worktree add --detach "$work/old" "$old" > /dev/null
trap 'git -C "$repo" worktree remove --force "$work/old"' EXIT
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONHASHSEED=0
steps=(--fold 0 --max_steps 4 --eval_strategy steps --save_strategy steps --eval_steps 2 --save_steps 2
       --report_to none --disable_tqdm true --cache_dir "$work/cache")
for tree in old new; do
  src=$repo; [ "$tree" = old ] && src=$work/old
  (cd "$src" && PYTHONPATH="$src" python scripts/finetune.py configs/urdu_melcnn.yaml --data_dir "$data" \
      "${steps[@]}" --output_dir "$work/$tree/mel" > "$work/$tree-mel.log" 2>&1)
  (cd "$src" && PYTHONPATH="$src" python scripts/finetune.py configs/urdu_wav2vec2_lora.yaml --data_dir "$data" \
      --model_name_or_path "$whisper" "${steps[@]}" --output_dir "$work/$tree/lora" > "$work/$tree-lora.log" 2>&1)
done
# metrics.json without what differs between any two runs (wall times, throughput, folders, the machine)
metrics_digest() {
  python - "$1" <<'PY'
import hashlib, json, sys
VARIES = ("time", "runtime", "per_second", "wall", "machine", "output_dir", "path", "date", "versions", "rtf")
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if not any(w in k for w in VARIES)}
    return [strip(v) for v in x] if isinstance(x, list) else x
data = strip(json.load(open(sys.argv[1])))
print(hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16])
PY
}
status=0
for run in mel lora; do
  for what in weights metrics; do
    if [ $what = weights ]; then
      a=$(sha256sum < "$work/old/$run/model.safetensors" | cut -c1-16)
      b=$(sha256sum < "$work/new/$run/model.safetensors" | cut -c1-16)
    else
      a=$(metrics_digest "$work/old/$run/metrics.json"); b=$(metrics_digest "$work/new/$run/metrics.json")
    fi
    if [ "$a" = "$b" ]; then verdict=identical; else verdict=DIFFERENT; status=1; fi
    echo "$run $what: $old $a  working tree $b  $verdict"
  done
done
echo "logs and runs in $work"
exit $status
