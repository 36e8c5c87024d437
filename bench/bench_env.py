"""The servers of bench/compare_bench.py and bench/soak.py, on 127.0.0.1.

One Env starts, in a temporary directory, on ports the OS picks:

  upstream   an nginx that plays the destinations: one server per canned
             answer (the destination's fixture answer, in its own format);
             the Python simulator would be the bottleneck of every row
  redis      a redis-server (cache and idempotency records)
  gw         the gateway without Redis: `return 200`, plain proxy_pass and
             the translate path (cold) of each domain
  gwr        the gateway with xregion_redis: cache hits and idempotent
             replays
  lua, njs   the peers (bench/peers/settle.lua, settle.js): nginx with
             lua-nginx-module or njs, doing the medical cold path's
             translation themselves
  audit      optional: the gateway's cold medical path with an audit log
             (`sync=always`)

Every location logs one line per request (buffered): `$status` for the
baselines and the peers, the outcome, cache and idempotency states and the
destination profile for xregion's, so that a run can show that every
answer was what the row claims (Row.expected).
"""

import http.server
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gateway_bench import (MODULE, NGINX, ROOT, fixture,  # noqa: E402
                           nginx_string, temp_paths, wait_port, worker_pids)

PEERS = os.path.join(HERE, "peers")
NGINX_MODULES = "/usr/lib/nginx/modules"
LUA_MODULES = ("ndk_http_module.so", "ngx_http_lua_module.so")
NJS_MODULES = ("ngx_http_js_module.so",)

# The peers' upstream path: Jiangsu's medical transactions
PEER_PATH = "/hxpt/api/transaction"

XR_LOG = "'$xregion_outcome $xregion_cache $xregion_idempotency " \
         "$xregion_dest_profile'"


_taken = set()


def free_port():
    """A port nothing listens on, below the kernel's ephemeral range
    (32768-60999 on Debian): a port the OS hands out for binding to 0 may
    be some client's local port, or another test's server, by the time
    the server that is to listen on it starts."""
    while True:
        port = random.randrange(20000, 32768)
        if port in _taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port


class Row:
    """One measured row: an endpoint of an instance, the body sent and the
    line every answer must log."""

    def __init__(self, name, instance, path, domain, caller, txn, dest,
                 expected, log=None):
        self.name, self.instance, self.path = name, instance, path
        self.domain, self.caller, self.txn, self.dest = (domain, caller,
                                                         txn, dest)
        self.expected = expected
        self.log = log or path.strip("/").replace("/", "-") + ".log"

    def body(self):
        with open(fixture(self.domain, self.caller, self.txn, "request"),
                  "rb") as f:
            return f.read()


def xr_row(name, instance, mode, domain, txn, dest):
    cache = "HIT" if mode == "hit" else "-"
    idem = {"replay": "REPLAY", "new": "NEW"}.get(mode, "-")
    return Row(name, instance, "/%s/%s/" % (mode, domain), domain,
               "shanghai." + domain, txn, dest,
               "ok %s %s %s" % (cache, idem, dest))


# The same medical settlement for the baselines, the cold path and the
# peers; the queries the schemas cache; the domains' money transactions
# (gov has none).  Transit cards and gov records route by the card's city
# and the record's place: the Shanghai fixtures go to Jiangsu, except the
# trip batch, whose cards are Hangzhou's.
SETTLE = ("medical", "shanghai.medical", "settle", "jiangsu.medical")

RETURN200 = Row("return 200", "gw", "/return200", *SETTLE, expected="200")
PLAIN = Row("plain proxy_pass", "gw", "/plain/", *SETTLE, expected="200")
COLD = {
    "medical": xr_row("medical cold", "gw", "cold", "medical", "settle",
                      "jiangsu.medical"),
    "transit": xr_row("transit cold", "gw", "cold", "transit",
                      "card_status", "jiangsu.transit"),
    "gov": xr_row("gov cold", "gw", "cold", "gov", "card_status",
                  "jiangsu.gov"),
}
HIT = {
    "medical": xr_row("medical cache hit", "gwr", "hit", "medical",
                      "person_info", "jiangsu.medical"),
    "transit": xr_row("transit cache hit", "gwr", "hit", "transit",
                      "card_status", "jiangsu.transit"),
    "gov": xr_row("gov cache hit", "gwr", "hit", "gov", "card_status",
                  "jiangsu.gov"),
}
REPLAY = {
    "medical": xr_row("medical replay", "gwr", "replay", "medical",
                      "settle", "jiangsu.medical"),
    "transit": xr_row("transit replay", "gwr", "replay", "transit",
                      "trip_upload", "zhejiang.transit"),
}
LUA = Row("Lua peer", "lua", "/lua/", *SETTLE, expected="200")
NJS = Row("njs peer", "njs", "/njs/", *SETTLE, expected="200")
AUDIT = Row("medical cold+audit", "audit", "/cold/medical/", *SETTLE,
            expected="ok - - jiangsu.medical", log="audit-medical.log")
# the soak's: every request a new settlement (a message id of its own),
# claimed and recorded in Redis, kept there 30 s
NEW = xr_row("medical new", "gwr", "new", "medical", "settle",
             "jiangsu.medical")
NEW_TTL = "30s"

XR_ROWS = list(COLD.values()) + list(HIT.values()) + list(REPLAY.values())


def canned(domain, txn, dest):
    """(bytes, content type) of the destination's fixture answer."""
    path = fixture(domain, dest, txn, "response")
    ext = path.rsplit(".", 1)[1]
    return open(path, "rb").read(), {
        "json": "application/json", "xml": "text/xml"}.get(
            ext, "application/octet-stream")


class Capture:
    """A destination that records what it is sent and answers a canned
    answer, closing each connection (nothing stays in the gateways'
    keepalive caches when it goes)."""

    def __init__(self, port, answer, content_type):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                seen.append((self.path, self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Env:
    """The servers; start() them, stop() them (also on failure)."""

    def __init__(self, workers=1, pin=True, audit=False, redis=True,
                 peers=True, keep=False, reuseport=False):
        if not os.path.exists(MODULE):
            sys.exit("build the module first: make module")
        self.workers, self.pin, self.keep = workers, pin, keep
        # one listening socket per worker: the kernel spreads connections
        self.listen = " reuseport" if reuseport else ""
        self.procs = []
        self.pids = {}              # instance -> master pid
        self.ports = {}             # instance -> port
        names = ["gw"] + (["gwr"] if redis else []) \
            + (["lua", "njs"] if peers else []) + (["audit"] if audit else [])
        for name in names:
            self.ports[name] = free_port()
        self.redis_port = free_port() if redis else None

        # one canned destination per (domain, txn, dest)
        self.answers = {}
        for row in [PLAIN] + XR_ROWS:
            key = (row.domain, row.txn, row.dest)
            if key not in self.answers:
                self.answers[key] = (free_port(),) + canned(*key)
        self.settle_port = self.answers[SETTLE[0], SETTLE[2], SETTLE[3]][0]

        self.tmp = tempfile.mkdtemp(prefix="xr-compare-")
        os.chmod(self.tmp, 0o755)   # the workers' user writes audit there
        os.mkdir(os.path.join(self.tmp, "log"))
        self.audit_key = None
        if audit:
            self.audit_key = os.path.join(self.tmp, "audit-sm2.key")
            if subprocess.run(["openssl", "genpkey", "-algorithm", "SM2",
                               "-out", self.audit_key],
                              capture_output=True).returncode != 0:
                shutil.rmtree(self.tmp, ignore_errors=True)
                sys.exit("openssl could not make an SM2 key")

    # -- configuration --------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def head(self, name, modules, workers=None):
        loads = "".join("load_module %s;\n" % m for m in modules)
        xr = "log_format xr %s;" % XR_LOG if MODULE in modules else ""
        return """{loads}
worker_processes {w}; daemon off; pid {t}/{n}.pid;
error_log {t}/{n}.err warn;
events {{ worker_connections 4096; }}
http {{ {common}
    keepalive_requests 1000000;
    log_format st '$status';
    {xr}
""".format(loads=loads, w=workers or self.workers, t=self.tmp, n=name,
           common=temp_paths(self.tmp), xr=xr)

    def log(self, row):
        return "access_log %s %s buffer=64k flush=200ms;" % (
            self.path("log", row.log),
            "st" if row.expected == "200" else "xr")

    def upstream_name(self, domain, txn, dest):
        return "up_%s_%s_%s" % (domain, txn, dest.split(".")[0])

    def upstreams(self):
        return "".join(
            "    upstream %s { server 127.0.0.1:%d; keepalive 32; }\n"
            % (self.upstream_name(*key), port)
            for key, (port, _, _) in self.answers.items())

    def write_upstream(self):
        servers = "".join("""
    server {{
        listen 127.0.0.1:{p};
        location / {{ default_type "{ct}"; return 200 {body}; }}
    }}""".format(p=port, ct=ct, body=nginx_string(answer))
            for port, answer, ct in self.answers.values())
        conf = self.path("upstream.conf")
        with open(conf, "w") as f:
            f.write(self.head("up", (), workers=1)
                    + "    access_log off;\n" + servers + "\n}\n")
        return conf

    def write_gateway(self, name, rows, extra=""):
        routes = "".join(
            "    xregion_route %s txn=%s default %s;\n"
            % (domain, txn, self.upstream_name(domain, txn, dest))
            for (domain, txn, dest) in self.answers)
        locations = []
        for row in rows:
            if row is RETURN200:
                body = "return 200 'ok';"
            elif row is PLAIN:
                body = """proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://%s/;""" % self.upstream_name(
                SETTLE[0], SETTLE[2], SETTLE[3])
            else:
                mode = row.path.split("/")[1]
                body = """xregion %s;
            xregion_caller_profile %s;""" % (row.domain, row.caller)
                if mode == "cold":
                    body += "\n            xregion_cache off;" \
                            "\n            xregion_idempotency off;"
                elif mode == "hit":
                    body += "\n            xregion_cache_ttl 1h;"
                elif mode == "new":
                    body += "\n            xregion_idempotency_ttl %s;" \
                            % NEW_TTL
            locations.append("""
        location %s {
            %s
            %s
        }""" % (row.path, body, self.log(row)))
        conf = self.path(name + ".conf")
        with open(conf, "w") as f:
            f.write(self.head(name, (MODULE,)) + """
    access_log off;
    {extra}
    xregion_config {cfg};
{upstreams}{routes}
    server {{
        listen 127.0.0.1:{port}{listen};
        {locations}
        location /_xregion/ {{
            internal;
            proxy_pass_request_headers off;
            proxy_set_header Content-Type $xregion_dest_content_type;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://$xregion_upstream$xregion_dest_path;
            subrequest_output_buffer_size 1m;
        }}
    }}
}}
""".format(extra=extra, cfg=os.path.join(ROOT, "config"),
           upstreams=self.upstreams(), routes=routes,
           port=self.ports[name], listen=self.listen,
           locations="".join(locations)))
        return conf

    def write_peer(self, name, row):
        if name == "lua":
            modules = [os.path.join(NGINX_MODULES, m) for m in LUA_MODULES]
            setup = 'lua_package_path "%s/?.lua;;";' % PEERS
            handler = 'content_by_lua_block { require("settle").handle(' \
                      '"/_peer%s") }' % PEER_PATH
        else:
            modules = [os.path.join(NGINX_MODULES, m) for m in NJS_MODULES]
            setup = "js_path %s; js_import peer from settle.js;" % PEERS
            handler = "js_content peer.settle;"
        conf = self.path(name + ".conf")
        with open(conf, "w") as f:
            f.write(self.head(name, modules) + """
    access_log off;
    {setup}
    upstream jiangsu {{ server 127.0.0.1:{up}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location {path} {{
            {handler}
            {log}
        }}
        location /_peer/ {{
            internal;
            proxy_pass_request_headers off;
            proxy_set_header Content-Type "application/json; charset=UTF-8";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://jiangsu/;
            subrequest_output_buffer_size 1m;
        }}
    }}
}}
""".format(setup=setup, up=self.settle_port, port=self.ports[name],
           path=row.path, handler=handler, log=self.log(row)))
        return conf

    # -- processes ------------------------------------------------------

    def spawn(self, cmd, cpu):
        if self.pin:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                             stderr=open(self.path("stderr"), "ab"))
        self.procs.append(p)
        return p

    def nginx(self, name, conf, cpu):
        p = self.spawn([NGINX, "-p", self.tmp, "-c", conf], cpu)
        self.pids[name] = p.pid
        return p

    def alive(self):
        """Fails when a server has exited (a port taken, a bad conf)."""
        time.sleep(0.2)
        for p in self.procs:
            if p.poll() is not None:
                sys.exit("%s exited with %d" % (" ".join(p.args),
                                                p.returncode))
        self.check_logs()

    def start_redis(self):
        self.spawn(["redis-server", "--port", str(self.redis_port),
                    "--bind", "127.0.0.1", "--save", "", "--appendonly",
                    "no", "--dir", self.tmp], 1)
        wait_port(self.redis_port)

    def start_gateways(self):
        """The gateways and peers (CPU 0) and Redis (CPU 1); not the
        canned destinations (start_upstream), so that a Capture may stand
        in for one first."""
        if self.redis_port:
            self.start_redis()
        self.nginx("gw", self.write_gateway(
            "gw", [RETURN200, PLAIN] + list(COLD.values())), 0)
        if "gwr" in self.ports:
            self.nginx("gwr", self.write_gateway(
                "gwr", list(HIT.values()) + list(REPLAY.values()),
                "xregion_redis 127.0.0.1:%d;" % self.redis_port), 0)
        if "lua" in self.ports:
            self.nginx("lua", self.write_peer("lua", LUA), 0)
            self.nginx("njs", self.write_peer("njs", NJS), 0)
        if "audit" in self.ports:
            self.nginx("audit", self.write_gateway(
                "audit", [AUDIT],
                "xregion_audit %s key=%s sync=always;"
                % (self.path("audit"), self.audit_key)), 0)
        for name, port in self.ports.items():
            wait_port(port, 60)
        time.sleep(0.3)             # the workers' Redis connections
        self.alive()

    def start_soak(self):
        """Redis and one gateway with Redis serving every xregion row and
        NEW (its cold rows with cache and idempotency off, as in gw)."""
        self.start_redis()
        self.nginx("gwr", self.write_gateway(
            "gwr", XR_ROWS + [NEW],
            "xregion_redis 127.0.0.1:%d;" % self.redis_port), 0)
        wait_port(self.ports["gwr"], 60)
        time.sleep(0.3)
        self.alive()

    def start_upstream(self):
        self.nginx("up", self.write_upstream(), 1)
        for port, _, _ in self.answers.values():
            wait_port(port)
        self.alive()

    def workers_of(self, instance):
        pid = self.pids[instance]
        return worker_pids(pid) or [pid]

    def url(self, row):
        return "http://127.0.0.1:%d%s" % (self.ports[row.instance], row.path)

    def post(self, row, body=None):
        """(status, answer bytes) of one request, outside any run."""
        out = subprocess.run(
            ["curl", "-s", "-o", "-", "-w", "\n%{http_code}",
             "-H", "Content-Type: application/json", "--data-binary", "@-",
             self.url(row)],
            input=row.body() if body is None else body, capture_output=True,
            timeout=30).stdout
        answer, _, status = out.rpartition(b"\n")
        return int(status or 0), answer

    def log_lines(self, row):
        path = self.path("log", row.log)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def clear_log(self, row):
        path = self.path("log", row.log)
        if os.path.exists(path):
            os.truncate(path, 0)

    def check_logs(self):
        """Fails on an [alert] or [emerg] of any instance so far."""
        for name in os.listdir(self.tmp):
            if name.endswith(".err"):
                with open(self.path(name), errors="replace") as f:
                    for line in f:
                        if "[alert]" in line or "[emerg]" in line:
                            sys.exit("%s: %s" % (name, line.strip()))

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGQUIT if NGINX in p.args
                              else signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("kept: %s" % self.tmp)

    def stderr(self):
        with open(self.path("stderr"), errors="replace") as f:
            return f.read()

