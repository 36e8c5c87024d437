#!/usr/bin/env python3
"""Gateway throughput against plain proxy_pass, in one run, with wrk.

Starts on 127.0.0.1 (ports picked by the OS):
  - an upstream nginx that plays the destination system with a canned
    answer in its own format (the simulator itself is Python and would be
    the bottleneck of both sides, hiding what the gateway costs);
  - the gateway nginx with the module, one worker pinned to CPU 0, with
    three locations toward the same upstream: xregion (the translation
    path), plain proxy_pass (what a user would run without xregion), and
    `return 200` (nginx's ceiling);
  - the same gateway again with `xregion_audit ... sync=always` (every
    answer waits for its record on disk, group commit): "xregion+audit";
then runs wrk (pinned to CPU 1) with the same request body against each,
and prints requests/s, p50/p99 latency, worker CPU time per request (from
/proc before and after each run) and the ratios.

  python3 bench/gateway_bench.py [--seconds 8] [--connections 16] [--only NAME]
      [--caller shanghai.medical] [--dest jiangsu.medical] [--txn settle]

XR_BENCH_CALLGRIND=<file> runs the gateway in one process under callgrind;
XR_BENCH_STRACE=<prefix> counts the worker's system calls per location.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.path.join(ROOT, "build/nginx-src/objs/ngx_http_xregion_module.so")
NGINX = "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixture(domain, profile, txn, direction):
    d = os.path.join(ROOT, "tests/fixtures/messages", domain, profile)
    for name in sorted(os.listdir(d)):
        if name.startswith(txn + "." + direction + "."):
            return os.path.join(d, name)
    sys.exit("no %s %s fixture for %s" % (txn, direction, profile))


def nginx_string(data):
    text = data.decode("latin-1")   # bytes through unchanged
    if "$" in text:
        sys.exit("canned answer holds '$': nginx would read a variable")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def wait_port(port, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("port %d did not open" % port)


def worker_pids(master_pid):
    out = subprocess.run(["pgrep", "-P", str(master_pid)],
                         capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def cpu_ticks(pids):
    """(user ticks, system ticks, minor page faults) of the processes."""
    user = system = minflt = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        minflt += int(fields[7])
        user += int(fields[11])
        system += int(fields[12])
    return user, system, minflt


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))

    def lat(pct):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % pct, out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockerr = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": reqs, "p50": lat(50), "p99": lat(99),
            "non2xx": int(errors.group(1)) if errors else 0,
            "sockerr": sockerr.group(1) if sockerr else ""}


def temp_paths(tmp):
    """nginx.conf lines that keep nginx's temporary files in tmp."""
    return """
    client_body_temp_path {t}/cb; proxy_temp_path {t}/px;
    fastcgi_temp_path {t}/fc; uwsgi_temp_path {t}/uw; scgi_temp_path {t}/sc;
    """.format(t=tmp)


def canned_answer(domain, dest, txn):
    """(bytes, content type) of the destination's fixture answer."""
    path = fixture(domain, dest, txn, "response")
    ct = {"json": "application/json", "xml": "application/xml"}.get(
        path.rsplit(".", 1)[1], "application/octet-stream")
    return open(path, "rb").read(), ct


def write_upstream_conf(tmp, port, answer, content_type):
    """An nginx that plays the destination: every request gets answer."""
    path = os.path.join(tmp, "upstream.conf")
    with open(path, "w") as f:
        f.write("""
worker_processes 1; daemon off; pid {t}/up.pid; error_log {t}/up.err warn;
events {{ worker_connections 1024; }}
http {{ {common} access_log off;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{p};
        location / {{ default_type "{ct}"; return 200 {body}; }}
    }}
}}
""".format(t=tmp, common=temp_paths(tmp), p=port, ct=content_type,
           body=nginx_string(answer)))
    return path


def write_post_script(tmp, body):
    """(body file, wrk script that POSTs it)."""
    path = os.path.join(tmp, "body")
    with open(path, "wb") as f:
        f.write(body)
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write("""
local f = io.open("%s", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
""" % path)
    return path, lua


def measure(url, lua, workers, seconds, connections, before_run=None,
            after_run=None):
    """One wrk run (after a 1 s warm-up) against url, wrk on CPU 1: the
    parsed figures plus the workers' CPU and page faults per request."""
    subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c4", "-d1s",
                    "-s", lua, url], capture_output=True)
    if before_run:
        before_run()
    hz = os.sysconf("SC_CLK_TCK")
    before = cpu_ticks(workers)
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c%d" % connections,
         "-d%ds" % seconds, "--latency", "-s", lua, url],
        capture_output=True, text=True, timeout=seconds + 30).stdout
    after = cpu_ticks(workers)
    if after_run:
        after_run()
    r = parse_wrk(out)
    n = max(r["requests"], 1)
    r["user_us"] = (after[0] - before[0]) / hz * 1e6 / n
    r["sys_us"] = (after[1] - before[1]) / hz * 1e6 / n
    r["cpu_us"] = r["user_us"] + r["sys_us"]
    r["faults"] = (after[2] - before[2]) / n
    return r


PROFILE = os.environ.get("XR_BENCH_CALLGRIND")
STRACE = os.environ.get("XR_BENCH_STRACE")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--caller", default="shanghai.medical")
    ap.add_argument("--dest", default="jiangsu.medical")
    ap.add_argument("--txn", default="settle")
    ap.add_argument("--only", help="run one of: return200, plain, xregion")
    args = ap.parse_args()

    if not os.path.exists(MODULE):
        sys.exit("build the module first: make module")
    domain = args.caller.split(".")[1]

    request = open(fixture(domain, args.caller, args.txn, "request"),
                   "rb").read()
    answer, dest_ct = canned_answer(domain, args.dest, args.txn)

    tmp = tempfile.mkdtemp(prefix="xr-bench-")
    os.chmod(tmp, 0o755)    # the workers' user writes the audit log there
    up_port, gw_port = free_port(), free_port()
    procs = []

    common = temp_paths(tmp) + "access_log off;"

    up_conf = write_upstream_conf(tmp, up_port, answer, dest_ct)

    # the same gateway twice: without an audit log, and with one that
    # syncs every answer's record before the answer leaves
    key = os.path.join(tmp, "audit-sm2.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", key],
                   check=True, capture_output=True)
    audit_port = free_port()
    audit_conf = os.path.join(tmp, "gateway-audit.conf")
    gw_conf = os.path.join(tmp, "gateway.conf")
    for conf, port, name, extra in (
            (gw_conf, gw_port, "gw", ""),
            (audit_conf, audit_port, "gwa",
             "xregion_audit {t}/audit key={k} sync=always;".format(
                 t=tmp, k=key))):
      with open(conf, "w") as f:
        f.write("""
load_module {mod};
worker_processes 1; daemon off; pid {t}/{name}.pid;
error_log {t}/{name}.err warn;
events {{ worker_connections 1024; }}
http {{ {common}
    keepalive_requests 100000;
    {extra}
    xregion_config {cfg};
    upstream canned {{ server 127.0.0.1:{up}; keepalive 32; }}
    xregion_route {domain} default canned;
    xregion_dest_profile {dregion} {domain} {dest};
    server {{
        listen 127.0.0.1:{gw};
        location /xr/ {{
            xregion {domain};
            xregion_caller_profile {caller};
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
        location /plain/ {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://canned/;
        }}
        location /return200 {{ return 200 'ok'; }}
    }}
}}
""".format(mod=MODULE, t=tmp, common=common, cfg=os.path.join(ROOT, "config"),
           up=up_port, gw=port, domain=domain, caller=args.caller,
           dest=args.dest, dregion=args.dest.split(".")[0], name=name,
           extra=extra))

    body_file, lua = write_post_script(tmp, request)

    def start(conf, cpu):
        cmd = ["taskset", "-c", str(cpu), NGINX, "-p", tmp, "-c", conf]
        if PROFILE and conf == gw_conf:
            # one process, profiled: XR_BENCH_CALLGRIND=<output file>
            cmd = ["valgrind", "--tool=callgrind",
                   "--callgrind-out-file=" + PROFILE, NGINX, "-p", tmp,
                   "-c", conf, "-g", "master_process off;"]
        p = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        procs.append(p)
        return p

    def stop():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGQUIT)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    try:
        start(up_conf, 1)
        gw = start(gw_conf, 0)
        gwa = start(audit_conf, 0)
        wait_port(up_port)
        wait_port(gw_port, 60)
        wait_port(audit_port, 60)
        time.sleep(0.3)
        plain_workers = worker_pids(gw.pid) or [gw.pid]
        audit_workers = worker_pids(gwa.pid) or [gwa.pid]

        results = {}
        for name, path, port in (
                ("return 200", "/return200", gw_port),
                ("plain proxy_pass", "/plain/", gw_port),
                ("xregion", "/xr/", gw_port),
                ("xregion+audit", "/xr/", audit_port)):
            if args.only and args.only not in (name, path.strip("/")):
                continue
            workers = audit_workers if port == audit_port else plain_workers
            url = "http://127.0.0.1:%d%s" % (port, path)
            tracer = []

            def trace_start(path=path):
                # XR_BENCH_STRACE=<prefix>: system calls of the run
                tracer.append(subprocess.Popen(
                    ["strace", "-c", "-f", "-o", STRACE + "." + path.strip("/"),
                     "-p", ",".join(str(w) for w in workers)],
                    stderr=subprocess.DEVNULL))
                time.sleep(0.5)

            def trace_stop():
                tracer[0].send_signal(signal.SIGINT)
                tracer[0].wait(10)

            r = measure(url, lua, workers, args.seconds, args.connections,
                        trace_start if STRACE else None,
                        trace_stop if STRACE else None)
            results[name] = r

        # the translated answer must be right, or the figure means nothing
        check = subprocess.run(
            ["curl", "-s", "-o", os.path.join(tmp, "answer"), "-w",
             "%{http_code}", "--data-binary", "@" + body_file,
             "http://127.0.0.1:%d/xr/" % gw_port],
            capture_output=True, text=True).stdout
        answer_ok = check == "200"
        audited = 0
        for name in os.listdir(os.path.join(tmp, "audit")):
            with open(os.path.join(tmp, "audit", name), "rb") as f:
                audited += sum(1 for line in f if b'"type":"rec"' in line)
    finally:
        stop()

    print("xregion gateway bench: %s %s -> %s, %d B request, %d B answer"
          % (args.txn, args.caller, args.dest, len(request), len(answer)))
    print("wrk -t1 -c%d -d%ds; gateway worker on CPU 0, wrk and the "
          "upstream on CPU 1; %s" % (args.connections, args.seconds,
                                     os.uname().release))
    print("%-18s %10s %9s %9s %12s %12s %8s %7s" % (
        "", "req/s", "p50 ms", "p99 ms", "CPU us/req", "(user+sys)",
        "faults/r", "errors"))
    for name, r in results.items():
        print("%-18s %10.0f %9.3f %9.3f %12.1f %5.1f+%-6.1f %8.2f %7d" % (
            name, r["rps"], r["p50"], r["p99"], r["cpu_us"], r["user_us"],
            r["sys_us"], r["faults"], r["non2xx"]))
    if len(results) < 3:
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    plain, xr = results["plain proxy_pass"], results["xregion"]
    ret = results["return 200"]
    print("xregion / plain proxy_pass: %.0f%% of requests/s, %.2fx worker "
          "CPU per request (target >= 70%%)"
          % (100 * xr["rps"] / plain["rps"], xr["cpu_us"] / plain["cpu_us"]))
    print("plain proxy_pass / return 200: %.0f%%"
          % (100 * plain["rps"] / ret["rps"]))
    if "xregion+audit" in results:
        xa = results["xregion+audit"]
        print("xregion+audit (sync=always) / xregion: %.0f%% of requests/s, "
              "%.2fx worker CPU per request; %d records written"
              % (100 * xa["rps"] / xr["rps"], xa["cpu_us"] / xr["cpu_us"],
                 audited))
        if audited < xa["requests"]:
            print("FAILED: fewer records than requests")
            answer_ok = False
    print("translated answer check: %s" % ("ok" if answer_ok else "FAILED"))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if answer_ok and xr["non2xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
