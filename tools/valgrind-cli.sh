#!/usr/bin/env bash
#
# Runs the xregion tool under valgrind on its success and error paths.
# A run fails on any memory error or definite/indirect leak (valgrind exit
# 3), on a crash, or on an exit status other than the one expected.
#
#   tools/valgrind-cli.sh [XREGION_BIN]
#
set -euo pipefail

cd "$(dirname "$0")/.."

bin=${1:-${XREGION_BIN:-build/xregion}}
if [ ! -x "$bin" ]; then
    echo "valgrind-cli: $bin not built (make build)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

runs=0
failed=0

# expect <status|any> <stdin file or -> args...: "any" accepts 0 and 2, for
# fixtures whose translation depends on the profiles' state.
expect() {
    local want=$1 input=$2 rc
    shift 2
    runs=$((runs + 1))
    if [ "$input" = "-" ]; then
        input=/dev/null
    fi
    set +e
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=3 --log-file="$tmp/vg.log" \
        "$bin" "$@" < "$input" > "$tmp/out" 2> "$tmp/err"
    rc=$?
    set -e
    if [ "$rc" -eq 3 ] || [ -s "$tmp/vg.log" ] \
            || { [ "$want" = any ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; } \
            || { [ "$want" != any ] && [ "$rc" -ne "$want" ]; }; then
        failed=$((failed + 1))
        echo "valgrind-cli: FAIL (exit $rc, expected $want): xregion $*"
        sed 's/^/    stderr: /' "$tmp/err" | head -n 5
        sed 's/^/    /' "$tmp/vg.log" | head -n 60
    else
        echo "valgrind-cli: ok   (exit $rc): xregion $*"
    fi
}

expect 0 - --help
expect 0 - --version
expect 0 - translate --help
expect 0 - check
expect 0 - profiles
expect 2 - check "$tmp/no-such-dir"
expect 2 - frobnicate
expect 2 - translate --from nosuch.medical --to nosuch.transit "$tmp/none"
expect 2 - translate --from

# a broken copy of the configuration: the loader's error path
cp -r config "$tmp/config"
printf 'profile {\n' > "$tmp/config/profiles/broken.medical.conf"
expect 2 - check "$tmp/config"

# profiles: name codec charset, without the header line
"$bin" profiles | tail -n +2 | awk '{ print $1, $2 }' > "$tmp/profiles" \
    || true

json=$(awk '$2 == "json" { print $1; exit }' "$tmp/profiles")
xml=$(awk '$2 == "xml" { print $1; exit }' "$tmp/profiles")
fixed=$(awk '$2 == "fixed" { print $1; exit }' "$tmp/profiles")

printf '{"a": [1, 2,' > "$tmp/bad.json"
printf '<a><b></a>' > "$tmp/bad.xml"
printf '\001\002' > "$tmp/bad.bin"
: > "$tmp/empty"

if [ -n "$json" ]; then
    expect 2 - translate --from "$json" --canonical "$tmp/bad.json"
    expect 2 "$tmp/bad.json" translate --from "$json" --canonical -
    expect 2 - translate --from "$json" --canonical "$tmp/empty"
    expect 2 - translate --from "$json" --canonical --max-body 4 \
        "$tmp/bad.json"
fi
if [ -n "$xml" ]; then
    expect 2 - translate --from "$xml" --canonical "$tmp/bad.xml"
fi
if [ -n "$fixed" ]; then
    expect 2 - translate --from "$fixed" --canonical "$tmp/bad.bin"
fi

# the fixtures: each request decoded, routed and encoded for another region
# of its domain (first fixture of each profile)
shopt -s nullglob
for dir in tests/fixtures/messages/*/*/; do
    from=$(basename "$dir")
    domain=${from#*.}
    files=("$dir"*.request.*)
    [ "${#files[@]}" -gt 0 ] || continue
    file=${files[0]}
    to=$(awk -v d=".$domain" -v f="$from" \
        '$1 != f && substr($1, length($1) - length(d) + 1) == d \
        { print $1; exit }' "$tmp/profiles")

    expect any - translate --from "$from" --canonical "$file"
    expect any - route --from "$from" "$file"
    if [ -n "$to" ]; then
        expect any - translate --from "$from" --to "$to" "$file"
    fi
done

# audit: a log written, continued after a torn line, rotated, verified and
# exported; tampered logs and wrong keys refused (exit 1), bad use (exit 2)
keys=tests/fixtures/keys
mkdir "$tmp/audit"
for i in 1 2 3 4 5; do
    printf '{"time":"2024-12-29T14:00:0%s","caller":"shanghai.medical",'\
'"domain":"medical","txn":"settle","msg_id":"M%s","origin":"310000",'\
'"dest":"320100","outcome":"ok","latency_ms":%s,"upstream_ms":null,'\
'"amounts":{"total":4586%s},"ids":{"psn_no":"3101**********123%s"}}\n' \
        "$i" "$i" "$i" "$i" "$i"
done > "$tmp/records.jsonl"
expect 0 "$tmp/records.jsonl" audit append "$tmp/audit/a.log" \
    --key "$keys/sm2-test-only-key.pem" --every 2
printf '{"seq":99,"prev":"00' >> "$tmp/audit/a.log"
expect 0 "$tmp/records.jsonl" audit append "$tmp/audit/a.log" \
    --key "$keys/sm2-test-only-key.pem"
expect 0 "$tmp/records.jsonl" audit append "$tmp/audit/b.log" \
    --key "$keys/sm2-test-only-key.pem" --continue "$tmp/audit/a.log"
expect 0 - audit verify "$tmp/audit" --pubkey "$keys/sm2-test-only-pub.pem"
expect 0 - audit verify tests/fixtures/audit/p256-sha256.audit \
    --pubkey "$keys/p256-test-only-pub.pem" \
    --checkpoints tests/fixtures/audit/p256-sha256.audit
expect 0 - audit export "$tmp/audit" --format csv --domain medical \
    --from 2024-12-29T14:00:02 --scope 31,32
expect 0 - audit export tests/fixtures/audit/sm2-sm3.audit --type all \
    --from-seq 3 --limit 4
expect 0 - audit key "$keys/p256-test-only-key.pem"
expect 1 - audit verify "$tmp/audit" --pubkey "$keys/p256-test-only-pub.pem"
sed '3s/"latency_ms":2/"latency_ms":3/' "$tmp/audit/a.log" > "$tmp/tampered"
expect 1 - audit verify "$tmp/tampered" \
    --pubkey "$keys/sm2-test-only-pub.pem"
sed '4d' "$tmp/audit/a.log" > "$tmp/tampered"
expect 1 - audit verify "$tmp/tampered" \
    --pubkey "$keys/sm2-test-only-pub.pem"
head -c 700 "$tmp/audit/a.log" > "$tmp/tampered"
expect 1 - audit verify "$tmp/tampered" \
    --pubkey "$keys/sm2-test-only-pub.pem"
expect 1 - audit append "$tmp/records.jsonl" \
    --key "$keys/sm2-test-only-key.pem"
expect 2 - audit verify "$tmp/audit/a.log"
expect 2 - audit export "$tmp/audit/a.log" --format xml
expect 2 - audit export "$tmp/records.jsonl"
expect 2 - audit frobnicate

echo "valgrind-cli: $runs runs, $failed failed"
[ "$failed" -eq 0 ]
