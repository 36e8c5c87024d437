"""Fixtures for the gateway end-to-end tests (tests/e2e/test_gateway.py).

The tests run Debian's nginx (/usr/sbin/nginx, or $NGINX) with the module
built by tools/build-module.sh, against the regional simulator
tests/sim/xrsim.py, everything on 127.0.0.1 and free ports in a temporary
directory:

  module_so   builds the module once per session
  sim         one simulator for the session (faults cleared after each test)
  redis       one redis-server for the session (Redis: start, stop, cli())
  gateway     nginx.conf.example rendered with the simulator's ports, plus a
              test server (render_example(), TEST_SERVER) for faults that
              need other timeouts and limits, and a scripted destination
              (gateway.scripted) for answers the simulator does not give
  Nginx       one nginx instance: start, reload, stop, post(), its error log

After every test the error logs of the running instances are read: an
[alert], [emerg] or sanitizer line fails the test, and so does any of the
personal identifiers of the fixture messages (ID, card and phone numbers,
names: the fields marked pii= in config/schema) in an error or access log.
Every wait is bounded.
XREGION_E2E_VALGRIND=1 runs nginx under valgrind, whose reports count as
such lines; XREGION_E2E_KEEP=1 keeps the nginx directories.
"""

import base64
import glob
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIG_DIR = os.path.join(ROOT, 'config')
NGINX = os.environ.get('NGINX', '/usr/sbin/nginx')
MODULE_SO = os.path.join(ROOT, 'build', 'nginx-src', 'objs',
                         'ngx_http_xregion_module.so')
EXAMPLE = os.path.join(ROOT, 'nginx.conf.example')

sys.path.insert(0, os.path.join(ROOT, 'tests', 'sim'))
import xrsim  # noqa: E402


def _load_renderer():
    path = os.path.join(ROOT, 'tools', 'render-nginx-conf.py')
    spec = importlib.util.spec_from_file_location('render_nginx_conf', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


renderer = _load_renderer()

# lines that fail any test when they show up in an nginx error log (or in
# a valgrind log, with XREGION_E2E_VALGRIND)
BAD_LOG = re.compile(r'\[alert\]|\[emerg\]|\[crit\]|AddressSanitizer|'
                     r'LeakSanitizer|runtime error:|Segmentation fault|'
                     r'exited on signal|'
                     r'==\d+== (Invalid (read|write|free)|Conditional jump|'
                     r'Use of uninitialised|Syscall param|Mismatched free|'
                     r'Source and destination overlap|Process terminating)')

# XREGION_E2E_VALGRIND=1 runs every nginx started by the tests (master and
# workers) under valgrind's memcheck; its reports are read with the error
# logs, so a memory error fails the test that caused it
VALGRIND = bool(os.environ.get('XREGION_E2E_VALGRIND'))

RUNNING = []        # Nginx instances whose logs are checked after each test

# XREGION_E2E_KEEP=1 keeps the nginx directories (logs) for a look afterwards
KEEP = bool(os.environ.get('XREGION_E2E_KEEP'))


_GIVEN_PORTS = set()


def free_port():
    """A port free now and never handed out before in this session: the
    kernel may give a just-closed ephemeral port again, and two listeners
    of one nginx.conf on the same port fail `nginx -t`."""
    for _ in range(100):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port
    raise RuntimeError('no fresh free port in 100 tries')


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError('timed out after %.1fs waiting for %s'
                         % (timeout, what))


def port_open(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
        return True
    except OSError:
        return False


WORKDIRS = []


def make_workdir(name):
    """A directory nginx's workers can use even when they run as nobody;
    removed at the end of the session (kept with XREGION_E2E_KEEP=1)."""
    d = tempfile.mkdtemp(prefix='xregion-%s-' % name)
    os.chmod(d, 0o755)
    WORKDIRS.append(d)
    return d


@pytest.fixture(scope='session', autouse=True)
def _remove_workdirs():
    yield
    for g in list(RUNNING):
        g.stop()
    if not KEEP:
        for d in WORKDIRS:
            shutil.rmtree(d, ignore_errors=True)


# ---- the module -------------------------------------------------------------

@pytest.fixture(scope='session')
def module_so():
    p = subprocess.run([os.path.join(ROOT, 'tools', 'build-module.sh')],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, 'module build failed:\n%s%s' % (p.stdout,
                                                               p.stderr)
    assert os.path.exists(MODULE_SO)
    return MODULE_SO


# ---- the simulator ----------------------------------------------------------

class Sim:
    def __init__(self, workdir):
        self.workdir = workdir
        self.ports_file = os.path.join(workdir, 'ports.json')
        self.stderr = open(os.path.join(workdir, 'sim.log'), 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, 'tests', 'sim', 'xrsim.py'),
             '--config', CONFIG_DIR, '--host', '127.0.0.1',
             '--ports-file', self.ports_file],
            stdout=self.stderr, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.ports_file)
                 or self.proc.poll() is not None, 30, 'the simulator')
        assert self.proc.poll() is None, 'xrsim exited: %s' % self.log_text()
        with open(self.ports_file) as f:
            info = json.load(f)
        self.control = info['control']
        self.ports = info['profiles']
        self.config = xrsim.Config(CONFIG_DIR)

    def log_text(self):
        with open(os.path.join(self.workdir, 'sim.log'), 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def _call(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request('http://127.0.0.1:%d%s'
                                     % (self.control, path),
                                     data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode('utf-8'))

    def fault(self, profile, mode, ms=None, count=1):
        spec = {'profile': profile, 'mode': mode}
        if ms is not None:
            spec['ms'] = ms
        if count is not None:
            spec['count'] = count
        return self._call('POST', '/_sim/fault', spec)

    def require_signature(self, profile, scheme=None, **spec):
        """The profile refuses unsigned requests (scheme None: no longer)."""
        return self._call('POST', '/_sim/signature',
                          dict(spec, profile=profile, scheme=scheme))

    def clear_faults(self):
        self._call('POST', '/_sim/fault', {'profile': '*', 'mode': 'none'})

    def log(self, profile=None, txn=None):
        q = []
        if profile:
            q.append('profile=' + profile)
        if txn:
            q.append('txn=' + txn)
        return self._call('GET', '/_sim/log' + ('?' + '&'.join(q) if q else ''))

    def received(self, profile, msg_id):
        """The log entries of profile whose request had this message id."""
        return [e for e in self.log(profile) if e.get('msg_id') == msg_id]

    def codec(self, profile):
        return xrsim.Codec(self.config.profiles[profile])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.stderr.close()


@pytest.fixture(scope='session')
def sim():
    workdir = make_workdir('sim')
    s = Sim(workdir)
    yield s
    s.stop()


# ---- nginx ------------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Nginx:
    def __init__(self, prefix, conf_text, port):
        self.prefix = prefix
        self.port = port
        self.conf = os.path.join(prefix, 'nginx.conf')
        self.proc = None
        self.log_offsets = {}
        with open(self.conf, 'w') as f:
            f.write(conf_text)

    @property
    def error_log(self):
        return os.path.join(self.prefix, 'error.log')

    def run(self, *args, timeout=30):
        return subprocess.run([NGINX, '-p', self.prefix, '-c', self.conf]
                              + list(args), capture_output=True, text=True,
                              timeout=timeout)

    def test(self):
        return self.run('-t')

    def start(self):
        t = self.test()
        assert t.returncode == 0, 'nginx -t failed:\n%s' % t.stderr
        self.out = open(os.path.join(self.prefix, 'nginx.out'), 'wb')
        cmd = [NGINX, '-p', self.prefix, '-c', self.conf, '-g', 'daemon off;']
        if VALGRIND:
            cmd = ['valgrind', '--quiet', '--error-limit=no',
                   '--log-file=%s/valgrind.%%p' % self.prefix] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self.out,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None,
                 60 if VALGRIND else 15, 'nginx on port %d' % self.port)
        assert self.proc.poll() is None, 'nginx exited:\n%s' % self.log()
        RUNNING.append(self)
        return self

    def reload(self):
        p = self.run('-s', 'reload')
        assert p.returncode == 0, 'nginx -s reload failed:\n%s' % p.stderr

    def stop(self):
        if self in RUNNING:
            RUNNING.remove(self)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc:
            self.out.close()

    def _logs(self):
        """The error log, then what valgrind reported (XREGION_E2E_VALGRIND;
        a report lands in its process's file as it happens)."""
        paths = [self.error_log]
        if VALGRIND:
            paths += sorted(glob.glob(os.path.join(self.prefix,
                                                   'valgrind.*')))
        for path in paths:
            try:
                with open(path, 'rb') as f:
                    yield path, f.read().decode('utf-8', 'replace')
            except FileNotFoundError:
                pass

    def log(self):
        return ''.join(text for _, text in self._logs())

    def new_log(self):
        """What the logs got since the last call."""
        new = ''
        for path, text in self._logs():
            new += text[self.log_offsets.get(path, 0):]
            self.log_offsets[path] = len(text)
        return new

    def bad_lines(self, text=None):
        text = self.log() if text is None else text
        return [ln for ln in text.splitlines() if BAD_LOG.search(ln)]

    @property
    def access_log(self):
        return os.path.join(self.prefix, 'access.log')

    def new_access_log(self):
        """What the access log got since the last call."""
        try:
            with open(self.access_log, 'rb') as f:
                f.seek(self.log_offsets.get(self.access_log, 0))
                data = f.read()
        except FileNotFoundError:
            return ''
        self.log_offsets[self.access_log] = \
            self.log_offsets.get(self.access_log, 0) + len(data)
        return data.decode('utf-8', 'replace')

    @staticmethod
    def personal_lines(text):
        """Lines of text that hold a fixture's personal identifier."""
        pat = fixture_identifiers()
        return [ln for ln in text.splitlines() if pat.search(ln)]

    def post(self, path, body, caller=None, headers=None, timeout=20,
             method='POST', port=None):
        h = {'Content-Type': 'application/octet-stream'}
        if caller:
            h['X-Xregion-Caller'] = caller
        if headers:
            h.update(headers)
        c = http.client.HTTPConnection('127.0.0.1', port or self.port,
                                       timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Answer(r.status, r.getheaders(), r.read())
        finally:
            c.close()


def pki_dir():
    """The session's private PKI (tools/make-pki.sh), made once."""
    global _PKI
    if _PKI is None:
        d = make_workdir('pki')
        p = subprocess.run([os.path.join(ROOT, 'tools', 'make-pki.sh'), d],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        _PKI = d
    return _PKI


_PKI = None


def render_example(module, ports, prefix, gateway_port, extra_http='',
                   edit=None, redis_port=None, tls_port=None):
    """nginx.conf.example filled in; extra_http goes at the end of http{}.
    Without a Redis port, Redis points at a port nothing listens on; the
    mutual-TLS port is tls_port, or a free one."""
    with open(EXAMPLE) as f:
        text = f.read()
    if edit:
        text = edit(text)
    values = {'XREGION_MODULE': module, 'XREGION_CONFIG': CONFIG_DIR,
              'PREFIX': prefix, 'GATEWAY_PORT': gateway_port,
              'REDIS_PORT': redis_port or free_port(),
              'GATEWAY_TLS_PORT': tls_port or free_port(),
              'PKI': pki_dir()}
    conf = renderer.render(text, values, ports)
    end = conf.rstrip().rfind('}')
    assert end > 0
    return conf[:end] + extra_http + conf[end:]


# A second server in the example's http{}: endpoints whose internal
# locations have short timeouts and small limits, for the faults.
PROXY_COMMON = '''
            internal;
            proxy_pass_request_headers  off;
            proxy_set_header  Content-Type      $xregion_dest_content_type;
            proxy_set_header  X-Xregion-Msg-Id  $xregion_msg_id;
            proxy_http_version  1.1;
            proxy_set_header  Connection        "";
            proxy_pass  http://$xregion_upstream$xregion_dest_path;
            proxy_connect_timeout  2s;
'''

TEST_SERVER = '''
    # ---- tests/e2e: a second server with short timeouts and small limits
    server {
        listen  127.0.0.1:%(port)d;

        location /xr/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_pass /_fast;
        }
        location /xr/transit/ {
            xregion transit;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_pass /_fast;
        }
        location /xr/gov/ {
            xregion gov;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_pass /_fast;
        }
        location /deadline/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_pass /_slow;
            xregion_timeout 1s;
        }
        location /small/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_max_body 2k;
        }
        location /static/ {
            xregion medical;
            xregion_caller_profile shanghai.medical;
            xregion_pass /_fast;
        }
        location /noproxy/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_pass /_nowhere;
        }
        location /tiny/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_pass /_tiny;
        }
        location /scripted/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_pass /_scripted;
        }

        location /_fast/ {
%(proxy)s
            subrequest_output_buffer_size  1m;
            proxy_read_timeout  1s;
        }
        location /_slow/ {
%(proxy)s
            subrequest_output_buffer_size  1m;
            proxy_read_timeout  6s;
        }
        location /_tiny/ {
%(proxy)s
            subrequest_output_buffer_size  64;
            proxy_read_timeout  5s;
        }
        location /_scripted/ {
            internal;
            proxy_http_version  1.1;
            proxy_set_header  Connection  "";
            proxy_pass  http://127.0.0.1:%(scripted)d;
            subrequest_output_buffer_size  4k;
            proxy_read_timeout  2s;
        }
    }
'''


class ScriptedUpstream:
    """A destination that answers whatever bytes a test gives it (then
    closes the connection), for answers the simulator does not make: cut
    short, chunked, too large without a Content-Length.  The location
    /scripted/ of the test server goes to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.answer = b'HTTP/1.1 500 Unset\r\nContent-Length: 0\r\n\r\n'
        self.requests = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            c.settimeout(5)
            data = b''
            while b'\r\n\r\n' not in data:
                d = c.recv(65536)
                if not d:
                    return
                data += d
            head, _, body = data.partition(b'\r\n\r\n')
            m = re.search(rb'(?i)\r\ncontent-length: *(\d+)', head)
            want = int(m.group(1)) if m else 0
            while len(body) < want:
                d = c.recv(65536)
                if not d:
                    break
                body += d
            self.requests.append((head, body))
            c.sendall(self.answer)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.sock.close()


# ---- redis ------------------------------------------------------------------

REDIS_SERVER = shutil.which('redis-server') or '/usr/bin/redis-server'


class Redis:
    """A private redis-server on 127.0.0.1 (no persistence), or a sentinel
    (sentinel=True: `conf` is the sentinel configuration)."""

    def __init__(self, workdir, port=None, extra=(), sentinel=False,
                 conf=''):
        self.workdir = workdir
        self.port = port or free_port()
        self.sentinel = sentinel
        self.extra = list(extra)
        self.conf_text = conf
        self.proc = None
        os.makedirs(workdir, exist_ok=True)

    def start(self):
        log = open(os.path.join(self.workdir, 'redis-%d.log' % self.port),
                   'ab')
        if self.sentinel:
            path = os.path.join(self.workdir, 'sentinel-%d.conf' % self.port)
            if not os.path.exists(path):
                with open(path, 'w') as f:
                    f.write('port %d\nbind 127.0.0.1\ndir %s\n%s'
                            % (self.port, self.workdir, self.conf_text))
            cmd = [REDIS_SERVER, path, '--sentinel']
        else:
            cmd = [REDIS_SERVER, '--port', str(self.port),
                   '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                   '--dir', self.workdir] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None,
                 15, 'redis on port %d' % self.port)
        assert self.proc.poll() is None, 'redis-server exited'
        return self

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def cli(self, *args):
        """One command through redis-cli; its output, stripped."""
        p = subprocess.run(['redis-cli', '-h', '127.0.0.1', '-p',
                            str(self.port)] + [str(a) for a in args],
                           capture_output=True, timeout=10)
        return p.stdout.decode('utf-8', 'replace').strip()

    def keys(self, pattern='*'):
        out = self.cli('--scan', '--pattern', pattern)
        return [k for k in out.splitlines() if k]


@pytest.fixture(scope='session')
def redis():
    r = Redis(make_workdir('redis')).start()
    yield r
    r.stop()


@pytest.fixture(scope='session')
def gateway(module_so, sim, redis):
    prefix = make_workdir('gateway')
    port, test_port, tls_port = free_port(), free_port(), free_port()
    scripted = ScriptedUpstream()
    conf = render_example(module_so, sim.ports, prefix, port,
                          TEST_SERVER % {'port': test_port,
                                         'proxy': PROXY_COMMON,
                                         'scripted': scripted.port},
                          redis_port=redis.port, tls_port=tls_port)
    g = Nginx(prefix, conf, port).start()
    g.tls_port = tls_port
    wait_for(lambda: port_open(test_port), 10, 'the test server')
    g.test_port = test_port
    g.scripted = scripted
    yield g
    g.stop()
    scripted.stop()
    bad = g.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


# ---- personal identifiers never logged -------------------------------------

# the kinds looked for: dates of birth are too common a text to be told
# from a date in a log line
PII_SCANNED = ('id', 'card', 'name', 'phone')

_IDENTIFIERS = None


def _personal_values(fields, canon, out):
    for name, f in fields.items():
        v = canon.get(name)
        if v is None:
            continue
        if f.type == 'list':
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, dict):
                    _personal_values(f.children, item, out)
        elif f.pii in PII_SCANNED and isinstance(v, str) \
                and len(v) >= (2 if f.pii == 'name' else 6):
            out.add(v)


def fixture_identifiers():
    """A pattern of the personal values of every fixture message under
    tests/fixtures/messages (read with the simulator's codec), with the
    transit card numbers also under every issuer city code, as the tests
    retarget them."""
    global _IDENTIFIERS
    if _IDENTIFIERS is None:
        config = xrsim.Config(CONFIG_DIR)
        values = set()
        for path in glob.glob(os.path.join(ROOT, 'tests', 'fixtures',
                                           'messages', '*', '*', '*.*.*')):
            profile = os.path.basename(os.path.dirname(path))
            txn, kind = os.path.basename(path).split('.')[:2]
            if profile not in config.profiles \
                    or kind not in ('request', 'response'):
                continue
            with open(path, 'rb') as f:
                data = f.read()
            canon = xrsim.Codec(config.profiles[profile]).decode(kind, data,
                                                                 txn=txn)
            schema = config.schemas[profile.split('.')[1]]
            _personal_values(getattr(schema.txns[txn], kind), canon, values)
        cities = [c for c, _ in config.tables['citycode'].entries]
        for v in list(values):
            if v[:4] in cities and v.isdigit():
                values.update(c + v[4:] for c in cities)
        assert len(values) > 10, values
        _IDENTIFIERS = re.compile('|'.join(
            re.escape(v) for v in sorted(values, key=len, reverse=True)))
    return _IDENTIFIERS


@pytest.fixture(autouse=True)
def _error_log_guard():
    for g in RUNNING:
        g.new_log()
        g.new_access_log()
    yield
    bad = []
    for g in list(RUNNING):
        text = g.new_log()
        bad += g.bad_lines(text)
        bad += ['personal identifier logged: ' + ln
                for ln in g.personal_lines(text + g.new_access_log())]
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


def b64(s):
    return base64.b64decode(s) if s else b''
