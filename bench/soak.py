#!/usr/bin/env python3
"""Soak: N requests through xregion, and each worker's memory meanwhile
(`make soak`; not part of `make check`).

Starts (bench/bench_env.py, on 127.0.0.1) Redis, the canned destinations
and one gateway with xregion_redis and two workers, whose endpoints are
the rows of bench/compare_bench.py: the translate path of each domain
(cache and idempotency off), the cache hits, the idempotent replays, and
"medical new": a settlement with a message id of its own every time
(claimed and recorded in Redis, kept 30 s).  wrk sends them in turn, in
runs of --chunk seconds, until --requests have been answered; after each
run the resident set (VmRSS) of every worker is read from /proc.

The baseline of each worker is its RSS after the warm-up (the first
sample past --warmup requests); the soak fails when any later sample of a
worker is more than --tolerance KiB above its baseline, when a worker is
replaced (it died), when an answer is not its endpoint's (the access
logs, as in compare_bench), or on an [alert] or [emerg] in the error log.

  python3 bench/soak.py [--requests 1000000] [--connections 16]
      [--chunk 5] [--warmup 100000] [--tolerance 1024]
"""

import argparse
import collections
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_env import COLD, HIT, NEW, REPLAY, Env  # noqa: E402
from gateway_bench import parse_wrk  # noqa: E402

ROWS = list(COLD.values()) + list(HIT.values()) + list(REPLAY.values()) \
    + [NEW]

# the settlements in the mix drop the person_info answer cached for the
# same card (schema: settle invalidates person_info), so some of those
# queries are misses and go to the destination again
ALSO = {HIT["medical"].name: {"ok MISS - jiangsu.medical"}}

WRK_SCRIPT = """
-- %(n)d endpoints in turn; "new" ones get a message id of their own
local entries = {%(entries)s}
local reqs, n, i, c, offset = {}, #entries, 0, 0, 0
local headers = { ["Content-Type"] = "application/json" }

local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

function init(args)
    offset = tonumber(args[1]) or 0
    for k, e in ipairs(entries) do
        local body = slurp(e.body)
        if e.new then
            local s, t = body:find(e.id, 1, true)
            e.pre, e.post = body:sub(1, s - 1), body:sub(t + 1)
        else
            reqs[k] = wrk.format("POST", e.path, headers, body)
        end
    end
end

function request()
    i = i %% n + 1
    local e = entries[i]
    if not e.new then
        return reqs[i]
    end
    c = c + 1
    return wrk.format("POST", e.path, headers,
                      e.pre .. string.format("%%s%%09d", e.stem, offset + c)
                      .. e.post)
end
"""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def write_script(env):
    entries = []
    for row in ROWS:
        path = env.path("soak-" + row.log[:-4] + ".body")
        body = row.body()
        with open(path, "wb") as f:
            f.write(body)
        if row is NEW:
            # Shanghai's msgid: jgdm (11) + yyyyMMdd + a sequence of 9
            old = b'"3101000000120250314000000104"'
            assert old in body, "the settle fixture's msgid changed"
            # (another day than the fixture's: none is the replays' id)
            entries.append('{ path = "%s", body = "%s", new = true, '
                           'id = "3101000000120250314000000104", '
                           'stem = "3101000000120991231" }'
                           % (row.path, path))
        else:
            entries.append('{ path = "%s", body = "%s" }' % (row.path, path))
    script = env.path("soak.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % {"n": len(entries),
                              "entries": "\n    " + ",\n    ".join(entries)})
    return script


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=5,
                    help="seconds per wrk run (one RSS sample after each)")
    ap.add_argument("--warmup", type=int, default=100000,
                    help="requests before the baseline sample")
    ap.add_argument("--tolerance", type=int, default=1024,
                    help="KiB a worker's RSS may grow over its baseline")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    warmup = min(args.warmup, args.requests // 10)

    env = Env(workers=2, pin=False, peers=False, keep=args.keep,
              reuseport=True)
    failures = []
    samples = []            # (seconds, requests, {pid: KiB})
    try:
        env.start_soak()
        env.start_upstream()
        port = env.ports["gwr"]
        # the first answer to cache and to record, so that every later
        # one is the endpoint's HIT or REPLAY
        for row in list(HIT.values()) + list(REPLAY.values()):
            if env.post(row)[0] != 200:
                sys.exit("%s: the first request failed" % row.name)
        time.sleep(0.5)
        for row in ROWS:
            env.clear_log(row)
        workers = sorted(env.workers_of("gwr"))
        script = write_script(env)
        start = time.time()
        samples.append((0.0, 0, {p: rss_kib(p) for p in workers}))
        total = chunk = 0
        while total < args.requests:
            # ids of "new" settlements never repeat: offset past every
            # request sent so far, and those in flight
            offset = total + chunk * 10 * args.connections
            out = subprocess.run(
                ["wrk", "-t1", "-c%d" % args.connections,
                 "-d%ds" % args.chunk, "--latency", "-s", script,
                 "http://127.0.0.1:%d/" % port, "--", str(offset)],
                capture_output=True, text=True, timeout=args.chunk + 60)
            if out.stderr:
                sys.exit("wrk: " + out.stderr)
            r = parse_wrk(out.stdout)
            if r["non2xx"] or r["sockerr"]:
                failures.append("run %d: %d non-2xx answers %s"
                                % (chunk, r["non2xx"], r["sockerr"]))
                break
            total += r["requests"]
            chunk += 1
            now = sorted(env.workers_of("gwr"))
            if now != workers:
                failures.append("the workers changed: %s -> %s (one died)"
                                % (workers, now))
                break
            samples.append((time.time() - start, total,
                            {p: rss_kib(p) for p in workers}))
            print("  %6.0f s %9d requests  %s" % (
                samples[-1][0], total, "  ".join(
                    "%d KiB" % samples[-1][2][p] for p in workers)),
                file=sys.stderr)
        time.sleep(0.5)     # the access logs are flushed
        counts = {}
        for row in ROWS:
            ok = {row.expected} | ALSO.get(row.name, set())
            seen = counts[row.name] = collections.Counter(
                env.log_lines(row))
            wrong = {k: v for k, v in seen.items() if k not in ok}
            if wrong:
                failures.append("%s: answers not as expected: %s"
                                % (row.name, wrong))
        env.check_logs()
    except SystemExit:
        sys.stderr.write(env.stderr())
        raise
    finally:
        env.stop()

    print("xregion soak: %d requests in %d runs of %d s (wrk -t1 -c%d), "
          "gateway with 2 workers and Redis; load %s" % (
              total, chunk, args.chunk, args.connections,
              " ".join(open("/proc/loadavg").read().split()[:3])))
    print("answers per endpoint ($xregion_outcome $xregion_cache "
          "$xregion_idempotency $xregion_dest_profile):")
    for name, seen in counts.items():
        print("  %-18s %s" % (name, ", ".join(
            "%d %s" % (n, line) for line, n in seen.most_common())))
    print("worker RSS, KiB:")
    print("  %7s %10s  %s" % ("seconds", "requests", "  ".join(
        "pid %-7d" % p for p in workers)))
    for t, n, rss in samples:
        print("  %7.0f %10d  %s" % (t, n, "  ".join(
            "%11d" % rss[p] for p in workers)))
    base = next((s for s in samples if s[1] >= warmup), None)
    if base is None or base is samples[-1]:
        failures.append("too few samples after the warm-up: raise "
                        "--requests or lower --chunk")
    else:
        for p in workers:
            after = [s[2][p] for s in samples if s[1] > base[1]]
            growth = max(after) - base[2][p]
            print("worker %d: %d KiB after %d requests (warm-up), at most "
                  "%d KiB later: %+d KiB (tolerance %d KiB)" % (
                      p, base[2][p], base[1], max(after), growth,
                      args.tolerance))
            if growth > args.tolerance:
                failures.append("worker %d grew by %d KiB" % (p, growth))
    for f in failures:
        print("FAILED: %s" % f)
    if not failures:
        print("soak: flat worker memory, every answer as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
