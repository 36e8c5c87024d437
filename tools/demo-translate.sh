#!/usr/bin/env bash
#
# The offline demo: example requests translated between regions by
# build/xregion, shown side by side (the region's message as it arrives,
# the message the destination region receives), with the route and the
# canonical message in between.
#
#   tools/demo-translate.sh [XREGION_BIN]
#
# Fixtures: tests/fixtures/messages/<domain>/<profile>/<txn>.request.<ext>
# and <txn>.response.<ext>.  File names are globbed, so a missing or renamed
# fixture skips that example instead of failing.  The translated files stay
# in .demo/translate/.
#
set -euo pipefail

cd "$(dirname "$0")/.."

bin=${1:-${XREGION_BIN:-build/xregion}}
fixtures=tests/fixtures/messages
out=.demo/translate
width=${DEMO_WIDTH:-160}

if [ ! -x "$bin" ]; then
    echo "demo: $bin not built (make build)" >&2
    exit 1
fi

rm -rf "$out"
mkdir -p "$out"

"$bin" profiles > "$out/profiles.txt"

shown=0
failed=0


# codec and charset of a profile, from `xregion profiles`
profile_info() {
    awk -v p="$1" '$1 == p { print $2, $3; found = 1 } \
        END { if (!found) exit 1 }' "$out/profiles.txt"
}


# JSON indented without parsing it: number literals such as 0.00 and 12.30
# are the wire's bytes and must be shown as they are.
json_indent() {
    python3 -c '
import sys

text = sys.stdin.read()
out, depth, in_str, esc, i = [], 0, False, False, 0
pad = lambda d: "\n" + "  " * d
while i < len(text):
    c = text[i]
    i += 1
    if in_str:
        out.append(c)
        if esc:
            esc = False
        elif c == "\\":
            esc = True
        elif c == "\"":
            in_str = False
    elif c == "\"":
        out.append(c)
        in_str = True
    elif c in " \t\r\n":
        continue
    elif c in "{[":
        rest = text[i:].lstrip()
        if rest[:1] in ("}", "]"):
            out.append(c + rest[0])
            i = len(text) - len(rest) + 1
        else:
            depth += 1
            out.append(c + pad(depth))
    elif c in "}]":
        depth -= 1
        out.append(pad(depth) + c)
    elif c == ",":
        out.append(c + pad(depth))
    elif c == ":":
        out.append(": ")
    else:
        out.append(c)
print("".join(out))
'
}


# A message made readable: hex dump for fixed-width records, GBK converted
# to UTF-8, JSON indented.
readable() {
    local file=$1 codec=$2 charset=$3

    if [ "$codec" = fixed ]; then
        xxd -g 1 -c 16 "$file"
        return
    fi

    if [ "$charset" = GBK ]; then
        iconv -f GB18030 -t UTF-8 "$file"
    else
        cat "$file"
    fi | if [ "$codec" = json ]; then
        json_indent
    else
        cat
    fi
}


# Two texts in two columns, wrapped (not cut) at the column width, with
# Chinese characters counted as two cells.
side_by_side() {
    python3 - "$width" "$@" <<'PY'
import sys
import unicodedata

width = int(sys.argv[1])
col = (width - 3) // 2
titles = sys.argv[2:4]
files = sys.argv[4:6]


def cells(ch):
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def wrap(line):
    out, cur, n = [], "", 0
    for ch in line.expandtabs(4):
        w = cells(ch)
        if n + w > col:
            out.append((cur, n))
            cur, n = "", 0
        cur += ch
        n += w
    out.append((cur, n))
    return out


cols = []
for title, path in zip(titles, files):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read().rstrip("\n").split("\n")
    lines = wrap(title) + [("-" * min(col, 40), min(col, 40))]
    for line in text:
        lines.extend(wrap(line))
    cols.append(lines)

rows = max(len(c) for c in cols)
for i in range(rows):
    left = cols[0][i] if i < len(cols[0]) else ("", 0)
    right = cols[1][i] if i < len(cols[1]) else ("", 0)
    print(left[0] + " " * (col - left[1]) + " | " + right[0])
PY
}


# pick the fixtures of a profile, the preferred transaction first
fixtures_of() {
    local domain=$1 profile=$2 kind=$3 txn=$4
    local dir=$fixtures/$domain/$profile

    shopt -s nullglob
    if [ -n "$txn" ]; then
        for f in "$dir/$txn.$kind."*; do
            echo "$f"
        done
    fi
    for f in "$dir/"*".$kind."*; do
        case "$(basename "$f")" in
            "$txn.$kind."*) ;;
            *) echo "$f" ;;
        esac
    done
    shopt -u nullglob
}


example() {
    local domain=$1 from=$2 to=$3 kind=$4 txn=$5
    local from_info to_info file name t dest args files

    echo
    echo "======================================================================"
    echo " $domain: $from -> $to ($kind)"
    echo "======================================================================"

    if ! from_info=$(profile_info "$from") \
            || ! to_info=$(profile_info "$to"); then
        echo "skipped: profile $from or $to is not configured"
        return
    fi

    mapfile -t files < <(fixtures_of "$domain" "$from" "$kind" "$txn")
    if [ "${#files[@]}" -eq 0 ]; then
        echo "skipped: no $fixtures/$domain/$from/*.$kind.* fixture"
        return
    fi

    # requests the router sends to the target's region first: that is the
    # message the gateway would really hand to it
    if [ "$kind" = request ]; then
        local first=() rest=()
        for file in "${files[@]}"; do
            if "$bin" route --from "$from" "$file" 2> /dev/null \
                    | grep -q " ${to%%.*}\$"; then
                first+=("$file")
            else
                rest+=("$file")
            fi
        done
        files=("${first[@]}" "${rest[@]}")
    fi

    for file in "${files[@]}"; do
        name=$(basename "$file")
        t=${name%%.*}
        args=(--from "$from")
        if [ "$kind" = response ]; then
            args+=(--response --txn "$t")
        fi
        dest=$out/$domain.$from.$name.to.$to

        if ! "$bin" translate "${args[@]}" --to "$to" "$file" \
                > "$dest" 2> "$out/err"; then
            echo "not shown: $file: $(cat "$out/err")"
            continue
        fi
        "$bin" translate "${args[@]}" --canonical "$file" \
            > "$dest.canonical.json"

        # shellcheck disable=SC2086
        readable "$file" $from_info > "$out/left"
        # shellcheck disable=SC2086
        readable "$dest" $to_info > "$out/right"

        echo "transaction $t; fixture $file"
        if [ "$kind" = request ]; then
            echo "route: $("$bin" route --from "$from" "$file" 2>&1)"
        fi
        echo
        side_by_side "$from ($from_info) sends" "$to ($to_info) receives" \
            "$out/left" "$out/right"
        echo
        echo "canonical message (xregion translate --canonical):"
        sed 's/^/    /' "$dest.canonical.json"
        shown=$((shown + 1))
        return
    done

    echo "FAILED: no $from fixture translates to $to"
    failed=$((failed + 1))
}


# medical: the NHSA national format, Shanghai's local one, Anhui's GBK XML
example medical shanghai.medical national.medical request  settle
example medical anhui.medical    jiangsu.medical  request  settle
example medical national.medical shanghai.medical response settle
# transit: binary fixed-width records (hex dump) <-> JSON and GBK XML
example transit beijing.transit  zhejiang.transit request  trip_upload
example transit jiangsu.transit  hebei.transit    request  card_status
example transit zhejiang.transit beijing.transit  response trip_upload
# gov: GBK XML with Chinese transaction codes <-> JSON
example gov     zhejiang.gov     jiangsu.gov      request  card_loss
example gov     hebei.gov        zhejiang.gov     request  pension_transfer

echo
echo "demo: $shown examples shown, $failed failed; files in $out/"
[ "$failed" -eq 0 ] && [ "$shown" -gt 0 ]
