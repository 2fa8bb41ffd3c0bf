#!/usr/bin/env bash
# The main job, from a fresh clone: set up .venv, prepare ML-1M, train GPT-2, then recommend with Top-K and
# with multi-sequence generation (RRA, T = 0.3, 20 sequences) and print the metrics of both.
#   bash scripts/main.sh [--source PATH] [hydra overrides for training ...]
# Without --source, ML-1M is downloaded from GroupLens (checksum verified). ClearML runs offline.
set -euo pipefail
cd "$(dirname "$0")/.."
source_args=()
if [ "${1:-}" = "--source" ]; then source_args=(--source "$2"); shift 2; fi
bash scripts/setup.sh
py=.venv/bin/python
if [ ! -f data/ml-1m.csv ]; then
  $py scripts/prepare_data.py ml-1m "${source_args[@]}"
fi
mkdir -p runs
log=$(mktemp runs/.main-train-XXXXXX.log)
$py src/run_train.py --config-name=GPT_train data_path=data/ml-1m.csv task_name=ml1_GPT_train "$@" 2>&1 | tee "$log"
cmd=$(grep '^python src/run_predict.py' "$log" | tail -n 1)
rm -f "$log"
if [ -z "$cmd" ]; then echo "error: training did not print a run_predict command; see the output above" >&2; exit 1; fi
echo "+ $cmd"
eval "$py ${cmd#python }"
# generation: the paper's best strategy, 20 sampled sequences aggregated by reciprocal rank
gen="${cmd/--config-name=GPT_predict/--config-name=GPT_temperature}"
gen="${gen/_predict /_multisequence } generation_params.temperature=0.3 generation_params.num_return_sequences=20"
echo "+ $gen"
eval "$py ${gen#python }"
