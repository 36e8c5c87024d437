#!/usr/bin/env python3
"""xregion against nginx alone and against the Lua and njs peers, in one
run, with the same payloads, with wrk (`make bench`).

Rows (servers: bench/bench_env.py; every nginx worker on CPU 0, wrk, Redis
and the canned destinations on CPU 1):

  return 200          nginx's ceiling
  plain proxy_pass    Shanghai's settlement request to Jiangsu's canned
                      answer, untranslated: what a user runs without xregion
  <domain> cold       the translate path, both ways, no Redis: medical
                      settle, transit card_status, gov card_status
  <domain> cache hit  a cacheable query answered from Redis (medical
                      person_info, transit and gov card_status)
  <domain> replay     the same money transaction again, answered from its
                      record in Redis (medical settle, transit trip_upload;
                      gov has no money transaction)
  Lua peer, njs peer  the medical cold path's translation written with
                      lua-nginx-module and njs (bench/peers/)
  medical cold+audit  the medical cold path with `xregion_audit sync=always`

Before any run, a recording destination stands in for Jiangsu's medical
system: the request xregion sends there and the ones the peers send must
be the same bytes, and so must the three answers.  During each run every
answer is logged and must be the row's (outcome ok; HIT; REPLAY; the
expected destination), at least as many as wrk counted.  Afterwards the
answers are compared again (replays with the first answer, cache hits with
the cold answer of the same query).  Any of these failing fails the
command; a missed performance target does not.

  python3 bench/compare_bench.py [--seconds 5] [--connections 16]
      [--rounds 1] [--only SUBSTRING] [--no-audit] [--keep]

With --rounds N every row runs N times (all rows in turn, then again), and
the table shows each figure's median: a burst of other work on the machine
then moves one round of a row, not the row.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_env import (AUDIT, COLD, HIT, LUA, NJS, PLAIN,  # noqa: E402
                       REPLAY, RETURN200, SETTLE, Capture, Env, canned)
from gateway_bench import measure, write_post_script  # noqa: E402

FLUSH = 0.5         # the access logs' flush=200ms, and some


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    debian = "?"
    if os.path.exists("/etc/debian_version"):
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    return "%d CPUs, %s, Linux %s, Debian %s, load %s" % (
        os.cpu_count(), model, os.uname().release, debian,
        " ".join(open("/proc/loadavg").read().split()[:3]))


def variant(body):
    """The settlement with other values: another message id, amounts,
    codes, and an optional field left out."""
    doc = json.loads(body)
    doc["msgid"] = "3101000000120250314000000999"
    doc["jysj"] = "2025-12-31 23:59:58"
    doc["xxnr"].update(cardtype="3", yllb="2", xzlx="2", jsfs="2",
                       zhsybz="0", totalexpense="1.5", cxjje="3",
                       xxzfje="7")
    del doc["xxnr"]["fph"]
    return json.dumps(doc, ensure_ascii=False).encode()


def check_peers(env, failures):
    """The requests each sends to Jiangsu and the answers each makes,
    against a recording destination, for the fixture and for a variant of
    it: the same bytes, or the peers are not doing the same work."""
    answer, ct = canned(SETTLE[0], SETTLE[2], SETTLE[3])
    rows = (COLD["medical"], LUA, NJS)
    bodies = (COLD["medical"].body(), variant(COLD["medical"].body()))
    cap = Capture(env.settle_port, answer, ct)
    answers = {}
    try:
        for body in bodies:
            for row in rows:
                status, answers[row.name, body] = env.post(row, body)
                if status != 200:
                    failures.append("%s answered %d" % (row.name, status))
    finally:
        cap.close()
    for row in rows:
        env.clear_log(row)      # the measured runs count their own
    if len(cap.seen) != 2 * len(rows):
        failures.append("the recording destination saw %d requests, not %d"
                        % (len(cap.seen), 2 * len(rows)))
        for (row, body), a in answers.items():
            print("  %s: %s" % (row, a.decode("utf-8", "replace")))
        return
    for i, body in enumerate(bodies):
        seen = cap.seen[3 * i:3 * i + 3]
        same = [s == seen[0] for s in seen[1:]]
        print("%s: request to Jiangsu %d B; Lua peer's %s, njs peer's %s"
              % ("fixture" if i == 0 else "variant", len(seen[0][1]),
                 *("same bytes" if x else "DIFFERENT" for x in same)))
        a = [answers[row.name, body] for row in rows]
        print("  answer %d B; Lua peer's %s, njs peer's %s"
              % (len(a[0]), *("same bytes" if x == a[0] else "DIFFERENT"
                              for x in a[1:])))
        if not all(same) or a[1:] != [a[0], a[0]]:
            failures.append("the peers' work differs from xregion's")
            for row, (_, req), ans in zip(rows, seen, a):
                print("  %s:\n    %s\n    %s" % (
                    row.name, req.decode("utf-8", "replace"),
                    ans.decode("utf-8", "replace")))


def same_answers(answers, failures):
    """After the runs: the peers' answers are xregion's, byte for byte."""
    x = answers[COLD["medical"].name]
    for row in (LUA, NJS):
        ok = answers[row.name] == x
        print("%s answer: %s" % (row.name, "same bytes as xregion's"
                                 if ok else "DIFFERENT"))
        if not ok:
            failures.append("%s's answer differs from xregion's" % row.name)
            print("  xregion: %s\n  %s: %s" % (
                x.decode("utf-8", "replace"), row.name,
                answers[row.name].decode("utf-8", "replace")))


def run_row(env, row, args, failures):
    """One wrk run of a row, and its answers counted in its access log."""
    wrk_dir = env.path("wrk-" + row.log[:-4])
    os.makedirs(wrk_dir, exist_ok=True)
    _, lua = write_post_script(wrk_dir, row.body())
    workers = env.workers_of(row.instance)

    def before():
        time.sleep(FLUSH)       # the warm-up's lines are written
        env.clear_log(row)

    r = measure(env.url(row), lua, workers, args.seconds, args.connections,
                before)
    time.sleep(FLUSH)
    lines = env.log_lines(row)
    r["expected"] = lines.count(row.expected)
    if r["expected"] < r["requests"] or r["non2xx"] or r["sockerr"]:
        failures.append(
            "%s: %d answers as expected (%r) of %d, %d non-2xx, socket "
            "errors: %s; others: %s" % (
                row.name, r["expected"], row.expected, r["requests"],
                r["non2xx"], r["sockerr"] or "none",
                sorted(set(lines) - {row.expected})[:5]))
    return r


def median(runs):
    """Each figure's median over the rounds, on its own."""
    return {k: statistics.median(r[k] for r in runs)
            for k in ("rps", "p50", "p99", "cpu_us", "user_us", "sys_us",
                      "requests")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every row this many times, in turn, and "
                    "print the medians")
    ap.add_argument("--only", help="run the rows whose name holds this "
                    "(the checks run whatever it says)")
    ap.add_argument("--no-audit", action="store_true",
                    help="leave out the medical cold+audit row")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory")
    args = ap.parse_args()

    rows = ([RETURN200, PLAIN] + [r for d in ("medical", "transit", "gov")
                                  for r in (COLD[d], HIT[d])
                                  + ((REPLAY[d],) if d in REPLAY else ())]
            + [LUA, NJS] + ([] if args.no_audit else [AUDIT]))
    if args.only:
        rows = [r for r in rows if args.only in r.name]

    env = Env(audit=not args.no_audit, keep=args.keep)
    failures = []
    runs = {}
    results = {}
    audited = 0
    try:
        env.start_gateways()
        check_peers(env, failures)
        env.start_upstream()

        # the first of each money transaction, recorded: the runs replay it
        first = {}
        for d, row in REPLAY.items():
            status, first[d] = env.post(row)
            time.sleep(FLUSH)
            lines = env.log_lines(row)
            if status != 200 or lines[-1:] != [row.expected.replace(
                    "REPLAY", "NEW")]:
                failures.append("%s: the first request got %d, %s"
                                % (row.name, status, lines[-1:]))
            env.clear_log(row)

        runs = {row.name: [] for row in rows}
        for n in range(args.rounds):
            for row in rows:
                r = run_row(env, row, args, failures)
                runs[row.name].append(r)
                print("  %d %-20s %10.0f req/s %8.1f us/req" % (
                    n + 1, row.name, r["rps"], r["cpu_us"]), file=sys.stderr)
        results = {name: median(rs) for name, rs in runs.items()}

        # the answers once more, outside the runs
        answers = {row.name: env.post(row)[1]
                   for row in (COLD["medical"], LUA, NJS)}
        same_answers(answers, failures)
        for d, row in REPLAY.items():
            if env.post(row)[1] != first[d]:
                failures.append("%s: the replay differs from the first "
                                "answer" % row.name)
        for d in ("transit", "gov"):
            if env.post(HIT[d])[1] != env.post(COLD[d])[1]:
                failures.append("%s: the cached answer differs from the "
                                "translated one" % HIT[d].name)
        if AUDIT.name in results:
            adir = env.path("audit")
            for name in os.listdir(adir):
                with open(os.path.join(adir, name), "rb") as f:
                    audited += sum(1 for line in f
                                   if b'"type":"rec"' in line)
            made = sum(r["requests"] for r in runs[AUDIT.name])
            if audited < made:
                failures.append("audit: %d records for %d requests"
                                % (audited, made))
        env.check_logs()
    except SystemExit:
        sys.stderr.write(env.stderr())
        raise
    finally:
        env.stop()

    report(args, results, runs, audited)
    for f in failures:
        print("FAILED: %s" % f)
    if not failures:
        print("checks: the peers send and answer the same bytes as xregion; "
              "every measured answer was the row's")
    return 1 if failures else 0


def report(args, results, runs, audited):
    print("xregion against nginx and the peers: wrk -t1 -c%d -d%ds, "
          "nginx workers on CPU 0; wrk, Redis and the destinations on CPU 1"
          % (args.connections, args.seconds))
    if args.rounds > 1:
        print("%d rounds (every row in turn, then again): the medians, each "
              "column on its own" % args.rounds)
    print(machine())
    plain = results.get(PLAIN.name)
    ret = results.get(RETURN200.name)
    hits = {HIT[d].name for d in HIT}
    print("%-20s %8s %7s %7s %8s %12s %8s %8s %8s" % (
        "", "req/s", "p50 ms", "p99 ms", "CPU us/r", "(user+sys)",
        "/plain", "CPU/pl", "/ret200"))
    for name, r in results.items():
        print("%-20s %8.0f %7.3f %7.3f %8.1f %5.1f+%-6.1f %8s %8s %8s" % (
            name, r["rps"], r["p50"], r["p99"], r["cpu_us"], r["user_us"],
            r["sys_us"],
            "%.0f%%" % (100 * r["rps"] / plain["rps"]) if plain else "",
            "%.2fx" % (r["cpu_us"] / plain["cpu_us"]) if plain else "",
            "%.0f%%" % (100 * r["rps"] / ret["rps"])
            if ret and name in hits else ""))
    print("/plain: requests/s against plain proxy_pass; CPU/pl: worker CPU "
          "per request against it; /ret200: cache hits against return 200")
    if args.rounds > 1:
        print("each round, req/s (CPU us/req):")
        for name, rs in runs.items():
            print("  %-20s %s" % (name, " / ".join(
                "%.0f (%.1f)" % (r["rps"], r["cpu_us"]) for r in rs)))
    if AUDIT.name in results:
        print("audit: %d records written for %d requests"
              % (audited, sum(r["requests"] for r in runs[AUDIT.name])))

    def target(text, value, goal, ge=True):
        met = value >= goal if ge else value <= goal
        print("  %-58s %s" % (text % value, "met" if met else "NOT met"))

    cold = results.get(COLD["medical"].name)
    print("targets (issue 7):")
    if cold and plain:
        target("medical translate path: %.0f%% of plain proxy_pass req/s "
               "(>= 70%%)", 100 * cold["rps"] / plain["rps"], 70)
        target("medical translate path: %.2fx its worker CPU (<= 1.5x)",
               cold["cpu_us"] / plain["cpu_us"], 1.5, ge=False)
    lua = results.get(LUA.name)
    if cold and lua:
        target("medical translate path: %.1fx the Lua peer's req/s (>= 3x)",
               cold["rps"] / lua["rps"], 3)
    for d in ("medical", "transit", "gov"):
        hit = results.get(HIT[d].name)
        if hit and ret:
            target(d + " cache hit: %.0f%% of return 200 req/s (>= 60%%)",
                   100 * hit["rps"] / ret["rps"], 60)
    njs = results.get(NJS.name)
    if cold and (lua or njs):
        print("the peers' worker CPU per request against xregion's: %s" % (
            ", ".join("%s %.1fx" % (p[0], p[1]["cpu_us"] / cold["cpu_us"])
                      for p in (("Lua", lua), ("njs", njs)) if p[1])))
    if plain and ret:
        print("plain proxy_pass / return 200: %.0f%% req/s; gov has no money "
              "transaction (no gov replay row)"
              % (100 * plain["rps"] / ret["rps"]))


if __name__ == "__main__":
    sys.exit(main())
