#!/usr/bin/env bash
#
# Runs every libFuzzer target of a fuzz build for a fixed time each.
#
#   tools/run-fuzz.sh BUILD_DIR SECONDS
#
# Each fuzz_<name> keeps its corpus in fuzz-corpus/fuzz_<name>/, seeded (once
# per file) from the fixtures of its codec under tests/fixtures: *.json for
# fuzz_json, *.xml for fuzz_xml, *.bin for fuzz_fixed, *.<name> otherwise
# (*.conf for fuzz_conf, the logs *.audit of tests/fixtures/audit for
# fuzz_audit).  Every tests/fuzz/fuzz_*.c is built and run: a new target
# needs no listing here or in the Makefile.
# Targets whose inputs no fixture holds (fuzz_record: binary records) write
# their own seeds into XR_FUZZ_SEED_DIR, which is set to their corpus.
# Every target runs; crashing inputs are written to BUILD_DIR/artifacts/ and
# fail the run at the end.
#
set -euo pipefail

build=${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}
seconds=${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}

cd "$(dirname "$0")/.."

shopt -s nullglob
fuzzers=()
for f in "$build"/fuzz_*; do
    if [ -f "$f" ] && [ -x "$f" ]; then
        fuzzers+=("$f")
    fi
done

if [ "${#fuzzers[@]}" -eq 0 ]; then
    echo "fuzz: no fuzz targets in $build (tests/fuzz/fuzz_*.c): skipped"
    exit 0
fi

mkdir -p "$build/artifacts"
failed=()

for bin in "${fuzzers[@]}"; do
    name=$(basename "$bin")
    kind=${name#fuzz_}
    case "$kind" in
        fixed) ext=bin ;;
        *)     ext=$kind ;;
    esac

    corpus=fuzz-corpus/$name
    mkdir -p "$corpus"
    seeds=0
    while IFS= read -r -d '' seed; do
        cp -n "$seed" "$corpus/seed-$(printf '%s' "$seed" | md5sum \
            | cut -c1-12)-$(basename "$seed")"
        seeds=$((seeds + 1))
    done < <(find tests/fixtures -type f -name "*.$ext" -print0 2>/dev/null)

    echo "fuzz: $name for ${seconds}s ($seeds seed files *.$ext," \
         "corpus $corpus)"

    if ! XR_FUZZ_SEED_DIR="$corpus" "$bin" -max_total_time="$seconds" \
            -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$build/artifacts/$name-" "$corpus" \
            > "$build/$name.log" 2>&1; then
        grep -v '^#[0-9]' "$build/$name.log" | tail -n 60
        echo "fuzz: $name FAILED; the input is under $build/artifacts/," \
             "the log in $build/$name.log" >&2
        failed+=("$name")
        continue
    fi

    grep -E '^stat::number_of_executed_units|^Done ' "$build/$name.log" \
        | sed "s/^/fuzz: $name: /" || true
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: ${#failed[@]} of ${#fuzzers[@]} targets failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#fuzzers[@]} targets ran ${seconds}s each without a crash"
