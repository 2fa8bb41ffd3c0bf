#!/usr/bin/env bash
# The main job, from a fresh clone: set up .venv, prepare ML-1M, train GPT-2, then recommend with Top-K and
# with multi-sequence generation (RRA, T = 0.3, 20 sequences), print the metrics of both and, last, their paired
# difference (multi-sequence minus Top-K over the same test users: 95 % bootstrap CI, sign-flip p, verdict).
#   bash scripts/main.sh [--source PATH] [hydra overrides for training ...]
# Without --source, ML-1M is downloaded from GroupLens (checksum verified). ClearML runs offline.
# The summary goes to results/main/summary.json (`python scripts/make_docs.py` puts it into README.md).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
start=$(date +%s)
source_args=()
if [ "${1:-}" = "--source" ]; then source_args=(--source "$2"); shift 2; fi
bash scripts/setup.sh
py=.venv/bin/python
if [ ! -f data/ml-1m.csv ]; then
  $py scripts/prepare_data.py ml-1m "${source_args[@]}"
fi
mkdir -p runs
log=$(mktemp runs/.main-XXXXXX.log)
trap 'rm -f "$log"' EXIT
$py src/run_train.py --config-name=GPT_train data_path=data/ml-1m.csv task_name=ml1_GPT_train "$@" 2>&1 | tee "$log"
# the last line training prints is the next command: `python src/run_predict.py ...`, possibly with absolute paths
# (`/abs/.venv/bin/python /abs/src/run_predict.py ...`); keep its arguments, run them with this repo's interpreter
line=$(grep -E '^[^ ]*python[0-9.]* +[^ ]*src/run_predict\.py( |$)' "$log" | tail -n 1 || true)
if [ -z "$line" ]; then echo "error: training did not print a run_predict command; see the output above" >&2; exit 1; fi
predict_args=$(printf '%s\n' "$line" | sed -E 's#^[^ ]*python[0-9.]* +[^ ]*src/run_predict\.py ?##')
train_id=$(printf '%s\n' "$predict_args" | grep -oE 'train_task=[^ ]+' | head -n 1 | cut -d= -f2)
run_predict() {  # run_predict ARGS: show its command and output (on stderr), print its run ID (from `run <ID>: ...`)
  echo "+ python src/run_predict.py $1" >&2
  eval "$py src/run_predict.py $1" 2>&1 | tee "$log" >&2
  grep -oE '^run [^ :]+: predictions' "$log" | tail -n 1 | cut -d' ' -f2 | tr -d ':'
}
topk_out=$(run_predict "$predict_args")
# generation: the paper's best strategy, 20 sampled sequences aggregated by reciprocal rank
gen=$(printf '%s\n' "$predict_args" | sed -E 's#--config-name=[^ ]+#--config-name=GPT_temperature#; s#task_name=([^ ]*)_predict( |$)#task_name=\1_multisequence\2#')
gen="$gen generation_params.temperature=0.3 generation_params.num_return_sequences=20"
multi_out=$(run_predict "$gen")
if [ -z "$topk_out" ] || [ -z "$multi_out" ]; then echo "error: a predict run printed no run ID; see the output above" >&2; exit 1; fi
echo
$py scripts/make_docs.py --main-summary "$train_id" "$topk_out" "$multi_out" --wall-seconds $(( $(date +%s) - start )) \
  --command "bash scripts/main.sh${source_args:+ --source <data>}${*:+ $*}"
