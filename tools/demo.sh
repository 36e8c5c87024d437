#!/usr/bin/env bash
#
# The gateway demo: nginx with the xregion module between the regions'
# systems, played by the simulator (tests/sim/xrsim.py).
#
#   tools/demo.sh            build the module, start the simulator and nginx,
#                            send one request per domain, then keep running
#                            until Ctrl-C (which stops everything)
#   tools/demo.sh --once     the same, but stop after the examples
#
# Everything listens on 127.0.0.1 only.  Files (rendered nginx.conf, logs,
# ports) go to .demo/gateway/.
#
# Environment: NGINX (default /usr/sbin/nginx), DEMO_PORT (default: a free
# port), PYTHON (default /usr/bin/python3).
#
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

nginx=${NGINX:-/usr/sbin/nginx}
python=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
dir=$repo/.demo/gateway
module=$repo/build/nginx-src/objs/ngx_http_xregion_module.so
fixtures=tests/fixtures/messages

once=0
case "${1:-}" in
    --once) once=1 ;;
    "") ;;
    *) echo "usage: tools/demo.sh [--once]" >&2; exit 2 ;;
esac

sim_pid=
nginx_pid=
redis_pid=

stop() {
    trap - INT TERM EXIT
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -QUIT "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
        kill -TERM "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    echo "demo: stopped (logs in ${dir#$repo/}/)"
}

trap stop EXIT
trap 'exit 130' INT TERM

# waits up to $1 seconds for the command in $2... to succeed
wait_for() {
    local tries=$(( $1 * 10 )); shift
    while ! "$@" 2>/dev/null; do
        tries=$(( tries - 1 ))
        if [ "$tries" -le 0 ]; then
            return 1
        fi
        sleep 0.1
    done
}

# small helpers in Python: ports, JSON, showing messages
read -r -d '' helpers <<'PYEOF' || true
import base64, json, socket, sys

cmd, args = sys.argv[1], sys.argv[2:]

if cmd == 'free-port':
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    print(s.getsockname()[1])

elif cmd == 'port-open':
    socket.create_connection(('127.0.0.1', int(args[0])), 0.5).close()

elif cmd == 'control-port':
    print(json.load(open(args[0]))['control'])

elif cmd == 'last-received':
    # the raw bytes of the last request in a /_sim/log answer on stdin
    entry = json.load(sys.stdin)[-1]
    sys.stdout.buffer.write(base64.b64decode(entry['raw_b64']))

elif cmd == 'show':
    # a message readably: UTF-8 text, GBK text (converted), or a hex dump
    data = open(args[0], 'rb').read()
    for cs, note in (('utf-8', ''),
                     ('gb18030', '    (GBK on the wire, shown as UTF-8)\n')):
        try:
            text = data.decode(cs)
        except UnicodeDecodeError:
            continue
        if all(c.isprintable() or c in '\r\n\t' for c in text):
            text = text.replace('\n', '\n    ').rstrip()
            sys.stdout.write(note + '    ' + text + '\n')
            break
    else:
        for i in range(0, len(data), 16):
            chunk = data[i:i + 16]
            sys.stdout.write('    %04x  %-47s  %s\n' % (
                i, ' '.join('%02x' % b for b in chunk),
                ''.join(chr(b) if 32 <= b < 127 else '.' for b in chunk)))
PYEOF

py() {
    "$python" -c "$helpers" "$@"
}

port_open() {
    py port-open "$1"
}

show() {
    py show "$1"
}

echo "==== building the module"
tools/build-module.sh

rm -rf "$dir"
mkdir -p "$dir"
chmod 755 "$dir"

echo "==== starting the simulator (tests/sim/xrsim.py)"
"$python" tests/sim/xrsim.py --config config --host 127.0.0.1 \
    --ports-file "$dir/ports.json" >"$dir/sim.log" 2>&1 &
sim_pid=$!

if ! wait_for 30 test -s "$dir/ports.json"; then
    echo "demo: the simulator did not start:" >&2
    cat "$dir/sim.log" >&2
    exit 1
fi

port=${DEMO_PORT:-$(py free-port)}
control=$(py control-port "$dir/ports.json")
redis_port=$(py free-port)
tls_port=${DEMO_TLS_PORT:-$(py free-port)}
pki=$repo/.demo/pki

echo "==== a private CA and one certificate per platform and regulator (${pki#$repo/})"
tools/make-pki.sh "$pki"

echo "==== starting redis-server on 127.0.0.1:$redis_port"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
redis_pid=$!

if ! wait_for 15 port_open "$redis_port"; then
    echo "demo: redis-server did not start:" >&2
    cat "$dir/redis.log" >&2
    exit 1
fi

echo "==== starting nginx on 127.0.0.1:$port"
"$python" tools/render-nginx-conf.py --ports-file "$dir/ports.json" \
    --module "$module" --config config --prefix "$dir" \
    --gateway-port "$port" --tls-port "$tls_port" --redis-port "$redis_port" \
    --pki "$pki" --out "$dir/nginx.conf"

# The workers (user nobody) write the audit log and temporary files in
# directories nginx makes for them under $dir: in a checkout under a
# private home directory they cannot reach them, and then they run as the
# user that runs the demo.
globals='daemon off;'
if [ "$(id -u)" = 0 ] && ! setpriv --reuid=65534 --regid=65534 \
        --clear-groups test -x "$dir" 2>/dev/null; then
    echo "demo: the workers' user (nobody) cannot reach ${dir#$repo/}:" \
         "they run as root"
    globals='daemon off; user root;'
fi

"$nginx" -t -q -p "$dir" -c "$dir/nginx.conf" -g "$globals"
"$nginx" -p "$dir" -c "$dir/nginx.conf" -g "$globals" \
    >"$dir/nginx.out" 2>&1 &
nginx_pid=$!

if ! wait_for 15 port_open "$port"; then
    echo "demo: nginx did not start:" >&2
    cat "$dir/nginx.out" "$dir/error.log" >&2 || true
    exit 1
fi

base=http://127.0.0.1:$port
tls=https://127.0.0.1:$tls_port

cat <<EOF

The gateway (config: ${dir#$repo/}/nginx.conf, from nginx.conf.example):

    $tls/xr/medical/    off-site medical settlement
    $tls/xr/transit/    transit card interop
    $tls/xr/gov/        government services

Mutual TLS: each platform presents its certificate (${pki#$repo/}/<profile>.crt,
CN = its profile, <region>.<domain>, see config/profiles/); the CA is
${pki#$repo/}/ca.crt.  POST a message in the caller's own format.
The same endpoints without TLS on $base, for a trusted local network only:
there the X-Xregion-Caller header names the caller.
Simulator control: http://127.0.0.1:$control/_sim/log (what each region's
system received), /_sim/fault (make one fail).
Redis (cached answers, money transactions done once): 127.0.0.1:$redis_port,
keys under xregion: (redis-cli -p $redis_port --scan). Send a settlement
twice: the second answer is the recorded one (idempotency=REPLAY in
${dir#$repo/}/access.log) and the simulator sees it once.
Audit trail (one record per transaction, hash-chained, signed checkpoints):
${dir#$repo/}/audit/audit-*.jsonl; verify it as a regulator does:
    build/xregion audit verify ${dir#$repo/}/audit/audit-*.jsonl \\
        --pubkey ${pki#$repo/}/gateway-sm2.pub
EOF

# caller profile, domain, destination profile (for its log), fixture
examples=(
    "shanghai.medical medical jiangsu.medical
     medical/shanghai.medical/settle.request.json"
    "shanghai.transit transit jiangsu.transit
     transit/shanghai.transit/card_status.request.json"
    "beijing.gov gov jiangsu.gov gov/beijing.gov/card_status.request.xml"
)

n=0
for ex in "${examples[@]}"; do
    read -r caller domain dest file <<<"$(echo $ex)"
    file=$fixtures/$file
    n=$(( n + 1 ))

    echo
    echo "==== $domain: $caller -> $dest"
    echo
    echo "  curl -sS --cacert ${pki#$repo/}/ca.crt \\"
    echo "       --cert ${pki#$repo/}/$caller.crt --key ${pki#$repo/}/$caller.key \\"
    echo "       --data-binary @$file \\"
    echo "       $tls/xr/$domain/"
    echo
    echo "  the caller sends ($file):"
    show "$file"

    curl -sS -o "$dir/answer.$n" -D "$dir/headers.$n" \
        --cacert "$pki/ca.crt" --cert "$pki/$caller.crt" \
        --key "$pki/$caller.key" --data-binary "@$file" \
        "$tls/xr/$domain/"

    curl -sS "http://127.0.0.1:$control/_sim/log?profile=$dest" \
        | py last-received > "$dir/received.$n"

    echo
    echo "  $dest receives:"
    show "$dir/received.$n"
    echo
    status=$(head -n1 "$dir/headers.$n" | tr -d '\r')
    ctype=$(grep -i '^content-type:' "$dir/headers.$n" | tr -d '\r')
    echo "  the caller gets back ($status, $ctype):"
    show "$dir/answer.$n"
done

echo
echo "==== access log (${dir#$repo/}/access.log)"
sleep 0.2
sed 's/^/    /' "$dir/access.log"

if [ "$once" = 1 ]; then
    exit 0
fi

echo
echo "The gateway keeps running on $base; Ctrl-C stops it and the simulator."

while kill -0 "$nginx_pid" 2>/dev/null && kill -0 "$sim_pid" 2>/dev/null; do
    sleep 1
done

echo "demo: nginx or the simulator exited" >&2
exit 1
