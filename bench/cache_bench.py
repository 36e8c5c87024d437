#!/usr/bin/env python3
"""The cache-hit path against nginx's `return 200` and the uncached gateway,
in one run, with wrk.

Starts on 127.0.0.1 (ports picked by the OS): a redis-server, an upstream
nginx that plays the destination with a canned person_info answer, and the
gateway nginx with the module (one worker pinned to CPU 0, xregion_redis
set) with three locations:

  return200   `return 200` (nginx's ceiling)
  uncached    the person_info query translated both ways, `xregion_cache off`
  cached      the same query, answered from Redis after the first request
              (the canonical answer is encoded in the caller's format each
              time)

then runs wrk (pinned to CPU 1) with the same request against each and
prints requests/s, p50/p99 latency, the gateway worker's CPU per request
and the ratios.  Every answer of the cached run must be a HIT: the access
log is counted.

  python3 bench/cache_bench.py [--seconds 8] [--connections 16]
      [--caller shanghai.medical] [--dest jiangsu.medical]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway_bench import (MODULE, NGINX, ROOT,  # noqa: E402
                           canned_answer, fixture, free_port, measure,
                           temp_paths, wait_port, worker_pids,
                           write_post_script, write_upstream_conf)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--caller", default="shanghai.medical")
    ap.add_argument("--dest", default="jiangsu.medical")
    args = ap.parse_args()
    txn = "person_info"

    if not os.path.exists(MODULE):
        sys.exit("build the module first: make module")
    domain = args.caller.split(".")[1]

    request = open(fixture(domain, args.caller, txn, "request"), "rb").read()
    answer, dest_ct = canned_answer(domain, args.dest, txn)

    tmp = tempfile.mkdtemp(prefix="xr-cache-bench-")
    up_port, gw_port, redis_port = free_port(), free_port(), free_port()
    procs = []

    common = temp_paths(tmp)
    up_conf = write_upstream_conf(tmp, up_port, answer, dest_ct)

    gw_conf = os.path.join(tmp, "gateway.conf")
    with open(gw_conf, "w") as f:
        f.write("""
load_module {mod};
worker_processes 1; daemon off; pid {t}/gw.pid; error_log {t}/gw.err warn;
events {{ worker_connections 1024; }}
http {{ {common}
    keepalive_requests 100000;
    log_format cache '$xregion_cache';
    access_log off;
    xregion_config {cfg};
    xregion_redis 127.0.0.1:{redis};
    upstream canned {{ server 127.0.0.1:{up}; keepalive 32; }}
    xregion_route {domain} default canned;
    xregion_dest_profile {dregion} {domain} {dest};
    server {{
        listen 127.0.0.1:{gw};
        location /uncached/ {{
            xregion {domain};
            xregion_caller_profile {caller};
            xregion_cache off;
        }}
        location /cached/ {{
            xregion {domain};
            xregion_caller_profile {caller};
            xregion_cache_ttl 1h;
            access_log {t}/cached.log cache;
        }}
        location /_xregion/ {{
            internal;
            proxy_pass_request_headers off;
            proxy_set_header Content-Type $xregion_dest_content_type;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://$xregion_upstream$xregion_dest_path;
            subrequest_output_buffer_size 1m;
        }}
        location /return200 {{ return 200 'ok'; }}
    }}
}}
""".format(mod=MODULE, t=tmp, common=common, cfg=os.path.join(ROOT, "config"),
           up=up_port, gw=gw_port, redis=redis_port, domain=domain,
           caller=args.caller, dest=args.dest,
           dregion=args.dest.split(".")[0]))

    _, lua = write_post_script(tmp, request)

    def start(cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(tmp, "stderr"), "ab"))
        procs.append(p)
        return p

    try:
        start(["taskset", "-c", "1", "redis-server", "--port",
               str(redis_port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", tmp])
        start(["taskset", "-c", "1", NGINX, "-p", tmp, "-c", up_conf])
        wait_port(redis_port)
        wait_port(up_port)
        gw = start(["taskset", "-c", "0", NGINX, "-p", tmp, "-c", gw_conf])
        wait_port(gw_port)
        time.sleep(0.5)     # the worker's Redis connection comes up
        workers = worker_pids(gw.pid) or [gw.pid]

        results = {}
        for name, path in (("return 200", "/return200"),
                           ("uncached", "/uncached/"),
                           ("cache hit", "/cached/")):
            url = "http://127.0.0.1:%d%s" % (gw_port, path)
            log = os.path.join(tmp, "cached.log")

            def clear_log(log=log):
                # only the measured run's answers are counted
                if os.path.exists(log):
                    os.truncate(log, 0)

            r = measure(url, lua, workers, args.seconds, args.connections,
                        clear_log)
            results[name] = r

        with open(os.path.join(tmp, "cached.log")) as f:
            states = f.read().split()
        hits = states.count("HIT")
    except SystemExit:
        with open(os.path.join(tmp, "stderr")) as f:
            sys.stderr.write(f.read())
        raise
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGQUIT if p.args[3] == NGINX
                              else signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    print("xregion cache bench: %s %s -> %s, %d B request, %d B answer"
          % (txn, args.caller, args.dest, len(request), len(answer)))
    print("wrk -t1 -c%d -d%ds; gateway worker on CPU 0, wrk, redis and the "
          "upstream on CPU 1; %s" % (args.connections, args.seconds,
                                     os.uname().release))
    print("%-12s %10s %9s %9s %12s %12s %7s" % (
        "", "req/s", "p50 ms", "p99 ms", "CPU us/req", "(user+sys)",
        "errors"))
    for name, r in results.items():
        print("%-12s %10.0f %9.3f %9.3f %12.1f %5.1f+%-6.1f %7d" % (
            name, r["rps"], r["p50"], r["p99"], r["cpu_us"], r["user_us"],
            r["sys_us"], r["non2xx"]))
    ret, unc, hit = (results["return 200"], results["uncached"],
                     results["cache hit"])
    print("cache hit / return 200: %.0f%% of requests/s (target >= 60%%)"
          % (100 * hit["rps"] / ret["rps"]))
    print("cache hit / uncached gateway: %.2fx requests/s, %.2fx worker CPU "
          "per request" % (hit["rps"] / unc["rps"],
                           hit["cpu_us"] / unc["cpu_us"]))
    print("cached run: %d of %d answers were HIT" % (hits, len(states)))
    shutil.rmtree(tmp, ignore_errors=True)
    ok = hits == len(states) and hits > 0 and hit["non2xx"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
