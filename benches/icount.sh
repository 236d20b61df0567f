#!/usr/bin/env bash
# Instructions per sync call (valgrind --tool=callgrind), for benches/why.md: for each
# contestant and scenario, (instructions of 20,000 calls - of 10,000 calls) / 10,000.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin=$(cargo bench -p retry-benches --bench icount --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "icount" and m.get("executable"):
        print(m["executable"])')
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '| scenario | hand loop | #[retry] |\n|---|---|---|\n'
for s in ${SCENARIOS:-success k1-zero k4-zero k4-exp0}; do
    row="| $s"
    for who in ${CONTESTANTS:-hand retry}; do
        a=$(count "$who" "$s" 10000)
        b=$(count "$who" "$s" 20000)
        row="$row | $(( (b - a) / 10000 ))"
    done
    echo "$row |"
done
