#!/bin/bash
# Byte-for-byte comparison of losslens's --help pages and usage errors between two source trees.
#
#   bash benchmarks/compare_help.sh OLD_SRC NEW_SRC
#
# Runs each case below with PYTHONPATH=OLD_SRC and with PYTHONPATH=NEW_SRC (stdout, stderr and
# exit code; the trees' paths are blanked) and prints the differences; exit code 1 if any.
set -u
OLD=$(cd "$1" && pwd); NEW=$(cd "$2" && pwd)
PY=${PYTHON:-python}
cd "$(dirname "$0")/.."
CASES=(
  "" "--help" "--version" "metrics --help" "report --help" "trend --help" "metrics" "report" "bogus"
  "metrics --nope" "metrics --bins abc x.csv" "metrics example_data/wine_logits.csv --bins 0"
  "metrics example_data/wine_logits.csv --bins -3" "metrics example_data/wine_logits.csv --worst -1"
  "metrics example_data/wine_logits.csv --format xyz" "metrics example_data/wine_logits.csv --eps abc"
  "metrics example_data/wine_logits.csv --by" "metrics example_data/wine_logits.csv --seed x"
  "metrics example_data/wine_logits.csv --bootstrap 2.5" "report example_data/wine_logits.csv -o"
  "metrics example_data/wine_logits.csv --fail-if log_loss>abc"
)
run_all() {
  for args in "${CASES[@]}"; do
    echo "=== losslens $args"
    # shellcheck disable=SC2086
    out=$(PYTHONPATH="$1" "$PY" -m losslens $args 2>&1); code=$?
    printf '%s\nexit %s\n' "${out//$1/SRC}" "$code"
  done
}
if diff <(run_all "$OLD") <(run_all "$NEW"); then
  echo "${#CASES[@]} cases: help pages and usage errors byte-identical"
else
  exit 1
fi
