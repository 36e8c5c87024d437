"""End-to-end: the circuit breaker per destination (xregion_breaker).

One gateway for the module: the example's configuration plus a server
(BREAKER) whose locations carry breakers with short times (open=1s), on a
port both workers listen on apart (reuseport), so that connections spread
over the two workers.  Its access log ($pid, $xregion_breaker) says which
worker answered and what the request found.  Queries go through with
`xregion_cache off`: every request let through reaches the simulator, and
a refused one must not.

A breaker's state outlives a test, so each test works toward destinations
(upstream{} blocks) of its own, and closes what it opened.
"""

import os
import re
import subprocess
import threading
import time

import pytest

from conftest import (PROXY_COMMON, VALGRIND, Nginx, free_port,
                      make_workdir, port_open, render_example, wait_for)
from test_gateway import (TXN, build, decode_answer, expect_error, line_of,
                          nginx_t, wait_log_line)
from test_limit import query as limit_query
from test_limit import wait_ready

BREAKER = '''
    # ---- tests/e2e/test_breaker.py
    log_format  breaker  '$pid msg_id=$xregion_msg_id '
                         'breaker=$xregion_breaker outcome=$xregion_outcome '
                         'route=$xregion_route';

    server {
        listen  127.0.0.1:%(port)d reuseport;
        xregion_cache  off;
        access_log  %(prefix)s/breaker.log  breaker;

        xregion_breaker  failures=3 window=1500ms open=1s max_open=2s;

        location /br/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
        }
        location /br/transit/ {
            xregion transit;
            xregion_caller_profile $http_x_xregion_caller;
        }
        location /br/gov/ {
            xregion gov;
            xregion_caller_profile $http_x_xregion_caller;
        }
        location /off/gov/ {
            xregion gov;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_breaker off;
        }
        location /probes/gov/ {
            xregion gov;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_breaker failures=3 window=10s open=1s probes=2;
        }
        location /workers/gov/ {
            xregion gov;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_breaker failures=4 window=10s open=3s;
        }
        location /reload/gov/ {
            xregion gov;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_breaker failures=2 window=10s open=30s;
        }
        location /slow/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_pass /_slow;
            xregion_breaker failures=2 window=10s open=2s;
        }

        location /_xregion/ {
%(proxy)s
            subrequest_output_buffer_size  1m;
            proxy_read_timeout  3s;
        }
        location /_slow/ {
%(proxy)s
            subrequest_output_buffer_size  1m;
            proxy_read_timeout  500ms;
        }
    }
'''

REDIS_LINE = 'prefix=xregion: timeout=500ms;'

# a refusal is answered at once (valgrind makes everything slow)
FAST = 3.0 if VALGRIND else 0.3


def own_prefix(text):
    """Redis keys of this module's own, and no fallback on a busy machine."""
    assert REDIS_LINE in text, 'the example\'s xregion_redis line moved'
    return text.replace(REDIS_LINE, 'prefix=xrbrk: timeout=5s;')


@pytest.fixture(scope='module')
def bgw(module_so, sim, redis):
    prefix = make_workdir('breaker')
    port, test_port = free_port(), free_port()
    conf = render_example(module_so, sim.ports, prefix, port,
                          BREAKER % {'port': test_port, 'prefix': prefix,
                                     'proxy': PROXY_COMMON},
                          edit=own_prefix, redis_port=redis.port)
    g = Nginx(prefix, conf, port).start()
    wait_for(lambda: port_open(test_port), 10, 'the test server')
    g.test_port = test_port
    wait_ready(g)
    yield g
    g.stop()
    bad = g.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


@pytest.fixture(autouse=True)
def _clean_faults(sim):
    yield
    sim.clear_faults()


# ---- requests ---------------------------------------------------------------

class Sent:
    """One request through the BREAKER server and what came of it."""

    def __init__(self, g, sim, path, caller, dest, money=False, tweak=None):
        domain = caller.split('.')[1]
        if domain == 'medical' and not money and tweak is None:
            self.canon, body, self.txn, self.dest = limit_query(sim, caller,
                                                                dest)
        else:
            self.canon, body = build(sim, caller, domain, dest=dest,
                                     tweak=tweak)
            self.txn = TXN[domain]
            self.dest = '%s.%s' % (dest, domain)
        self.caller = caller
        self.msg_id = self.canon['@msg_id']
        t0 = time.monotonic()
        self.a = g.post(path, body, caller=caller, port=g.test_port)
        self.took = time.monotonic() - t0
        self.got = len(sim.received(self.dest, self.msg_id))


def log_of(g, msg_id):
    """(pid, $xregion_breaker, $xregion_outcome) of msg_id's access log
    line in the BREAKER server's log."""
    line = wait_log_line(os.path.join(g.prefix, 'breaker.log'),
                         'msg_id=%s ' % msg_id)
    m = re.match(r'(\d+) msg_id=\S+ breaker=(\S+) outcome=(\S+) ', line)
    assert m, line
    return int(m.group(1)), ('' if m.group(2) == '-' else m.group(2)), \
        m.group(3)


def passes(g, sim, path, caller, dest, found='CLOSED', **kw):
    s = Sent(g, sim, path, caller, dest, **kw)
    assert s.a.status == 200, (caller, s.a.status, s.a.body[:300])
    assert decode_answer(sim, caller, s.a.body, s.txn)['@status'] == 'ok'
    assert s.got == 1
    assert log_of(g, s.msg_id)[1] == found
    return s


def fails(g, sim, path, caller, dest, code='XR-UPSTREAM-ERROR',
          found='CLOSED', **kw):
    """One request that the destination fails (the fault set for it)."""
    s = Sent(g, sim, path, caller, dest, **kw)
    # (the simulator logs a request it delays once it has answered it)
    assert s.got == 1 or code == 'XR-UPSTREAM-TIMEOUT', \
        'the destination did not see the request'
    expect_error(sim, caller, s.a, code, s.txn, s.msg_id)
    assert log_of(g, s.msg_id)[1] == found
    return s


def refused(g, sim, path, caller, dest, found='OPEN', **kw):
    """XR-UNAVAILABLE in the caller's own format, at once, with
    Retry-After; nothing sent.  Returns (Sent, Retry-After)."""
    s = Sent(g, sim, path, caller, dest, **kw)
    assert s.got == 0, 'the destination received a refused request'
    expect_error(sim, caller, s.a, 'XR-UNAVAILABLE', s.txn, s.msg_id, g)
    retry = int(s.a.header('Retry-After'))
    assert retry >= 1
    assert s.took < FAST, s.took
    assert log_of(g, s.msg_id)[1] == found
    line = wait_log_line(g.error_log, 'msg_id: "%s"' % s.msg_id)
    assert 'xregion XR-UNAVAILABLE:' in line and '[warn]' in line, line
    return s, retry


def open_with(g, sim, path, caller, dest, n, mode='http500', **kw):
    """n failures in a row open the breaker; the time it opened."""
    sim.fault(dest_profile(caller, dest), mode, count=n)
    for _ in range(n):
        fails(g, sim, path, caller, dest, **kw)
    return time.monotonic()


def dest_profile(caller, dest):
    return '%s.%s' % (dest, caller.split('.')[1])


def until(t):
    """Sleeps until monotonic time t (bounded: t is seconds away)."""
    left = t - time.monotonic()
    assert left < 10
    if left > 0:
        time.sleep(left)


def events(g, upstream, what):
    """The breaker's log lines about upstream saying `what`."""
    return [ln for ln in g.log().splitlines()
            if 'breaker of upstream "%s" %s' % (upstream, what) in ln]


# ---- open, fail fast, half-open, close --------------------------------------

# (caller, destination region, the upstream the route chooses): JSON with
# HTTP 200 errors, XML/GBK, fixed-width records with the errors' statuses
CALLERS = [('shanghai.medical', 'jiangsu', 'nanjing_medical'),
           ('anhui.medical', 'beijing', 'beijing_medical'),
           ('beijing.transit', 'shanghai', 'shanghai_transit')]


@pytest.mark.parametrize('caller,dest,upstream', CALLERS)
def test_opens_fails_fast_and_closes(bgw, sim, caller, dest, upstream):
    path = '/br/%s/' % caller.split('.')[1]
    passes(bgw, sim, path, caller, dest)

    # two failures: still closed, still sent
    sim.fault(dest_profile(caller, dest), 'http500', count=3)
    fails(bgw, sim, path, caller, dest)
    fails(bgw, sim, path, caller, dest)
    assert events(bgw, upstream, 'opens') == []

    # the third opens it, named at warn
    fails(bgw, sim, path, caller, dest)
    opened = time.monotonic()
    line, = events(bgw, upstream, 'opens')
    assert '[warn]' in line and 'opens for 1000 ms' in line, line
    assert '3 failures in a row' in line and 'XR-UPSTREAM-ERROR' in line

    # fast, in the caller's format, nothing sent, from every caller
    s, retry = refused(bgw, sim, path, caller, dest)
    assert retry == 1
    assert 'upstream: %s' % upstream in \
        wait_log_line(bgw.error_log, 'msg_id: "%s"' % s.msg_id)
    refused(bgw, sim, path, caller, dest)

    # the metrics show it open
    from test_metrics import scrape
    m = scrape(bgw)
    assert m[('xregion_breaker_state', '{upstream="%s"}' % upstream)] == 1
    assert m[('xregion_breaker_opened_total',
              '{upstream="%s"}' % upstream)] >= 1

    # after the back-off, one probe; its success closes the breaker
    until(opened + 1.05)
    passes(bgw, sim, path, caller, dest, found='PROBE')
    assert scrape(bgw)[('xregion_breaker_state',
                        '{upstream="%s"}' % upstream)] == 0
    line, = events(bgw, upstream, 'closes')
    assert '[warn]' in line and '1 probe succeeded' in line, line
    assert len(events(bgw, upstream, 'is half-open')) == 1
    for _ in range(3):
        passes(bgw, sim, path, caller, dest)


def test_failed_probe_reopens_longer(bgw, sim):
    """open=1s max_open=2s: 1 s, then 2 s, then 2 s again (the cap)."""
    caller, dest, up = 'shanghai.medical', 'tianjin', 'tianjin_medical'
    path = '/br/medical/'
    opened = open_with(bgw, sim, path, caller, dest, 3)
    assert refused(bgw, sim, path, caller, dest)[1] == 1

    for n in (1, 2):
        until(opened + 1.05 if n == 1 else opened + 2.05)
        sim.fault('tianjin.medical', 'http500', count=1)
        fails(bgw, sim, path, caller, dest, found='PROBE')
        opened = time.monotonic()
        again = events(bgw, up, 'opens again')
        assert len(again) == n, again
        assert 'opens again for 2000 ms' in again[-1], again[-1]
        assert 'its probe failed, XR-UPSTREAM-ERROR' in again[-1]
        assert refused(bgw, sim, path, caller, dest)[1] == 2
        time.sleep(1.1)
        assert refused(bgw, sim, path, caller, dest)[1] == 1

    until(opened + 2.05)
    passes(bgw, sim, path, caller, dest, found='PROBE')
    assert len(events(bgw, up, 'closes')) == 1
    passes(bgw, sim, path, caller, dest)


def test_timeouts_open_it(bgw, sim):
    """/slow/: proxy_read_timeout 500ms, failures=2.  A destination that
    hangs costs each caller 500 ms until the breaker opens; then nothing."""
    caller, dest = 'jiangsu.medical', 'shanghai'
    path = '/slow/medical/'
    sim.fault('shanghai.medical', 'delay', ms=1500, count=2)
    slow = []
    for _ in range(2):
        s = fails(bgw, sim, path, caller, dest, code='XR-UPSTREAM-TIMEOUT')
        assert s.took >= 0.45, s.took
        slow.append(s.msg_id)
    opened = time.monotonic()
    line, = events(bgw, 'shanghai_medical', 'opens')
    assert '2 failures in a row' in line and 'XR-UPSTREAM-TIMEOUT' in line
    for _ in range(3):
        refused(bgw, sim, path, caller, dest)
    for msg_id in slow:
        wait_for(lambda: sim.received('shanghai.medical', msg_id), 5,
                 'the simulator\'s late answer')
    until(opened + 2.05)
    passes(bgw, sim, path, caller, dest, found='PROBE')
    passes(bgw, sim, path, caller, dest)


# ---- what counts ------------------------------------------------------------

def test_business_refusals_do_not_count(bgw, sim):
    """A refusal is an answer: it ends a run of failures, and any number of
    them opens nothing."""
    caller, dest, up = 'shanghai.medical', 'hebei', 'hebei_medical'
    path = '/br/medical/'

    def biz():
        sim.fault('hebei.medical', 'business_error', count=1)
        s = Sent(bgw, sim, path, caller, dest)
        assert s.got == 1 and s.a.status == 200
        ans = decode_answer(sim, caller, s.a.body, s.txn)
        assert ans['@status'] == 'error', ans
        found, outcome = log_of(bgw, s.msg_id)[1:]
        assert found == 'CLOSED' and outcome.startswith('BIZ-'), outcome

    for _ in range(6):
        biz()

    open_with(bgw, sim, path, caller, dest, 2)
    biz()
    open_with(bgw, sim, path, caller, dest, 2)
    assert events(bgw, up, 'opens') == [], 'a refusal did not end the run'

    # the third failure in a row
    opened = open_with(bgw, sim, path, caller, dest, 1)
    assert len(events(bgw, up, 'opens')) == 1
    refused(bgw, sim, path, caller, dest)
    until(opened + 1.05)
    passes(bgw, sim, path, caller, dest, found='PROBE')


def test_window(bgw, sim):
    """window=1500ms: failures further apart than that from the first of
    their run start a new run."""
    caller, dest, up = 'anhui.medical', 'zhejiang', 'zhejiang_medical'
    path = '/br/medical/'
    first = time.monotonic()
    open_with(bgw, sim, path, caller, dest, 2)
    until(first + 1.7)
    open_with(bgw, sim, path, caller, dest, 2)
    assert events(bgw, up, 'opens') == []
    opened = open_with(bgw, sim, path, caller, dest, 1)
    assert len(events(bgw, up, 'opens')) == 1
    refused(bgw, sim, path, caller, dest)
    until(opened + 1.05)
    passes(bgw, sim, path, caller, dest, found='PROBE')


# ---- probes -----------------------------------------------------------------

def test_one_probe_at_a_time(bgw, sim):
    """While a probe is out, every other request is refused (HALF_OPEN,
    Retry-After: 1), from either worker."""
    caller, dest, up = 'beijing.gov', 'tianjin', 'tianjin_gov'
    path = '/br/gov/'
    opened = open_with(bgw, sim, path, caller, dest, 3)
    until(opened + 1.05)

    sim.fault('tianjin.gov', 'delay', ms=1200, count=1)
    probe = []
    t = threading.Thread(target=lambda: probe.append(
        Sent(bgw, sim, path, caller, dest)))
    t.start()
    try:
        time.sleep(0.3)
        pids = set()
        for _ in range(6):
            s, retry = refused(bgw, sim, path, caller, dest,
                               found='HALF_OPEN')
            assert retry == 1
            pids.add(log_of(bgw, s.msg_id)[0])
    finally:
        t.join(10)
    assert not t.is_alive()
    s, = probe
    assert s.a.status == 200 and s.got == 1
    assert decode_answer(sim, caller, s.a.body, s.txn)['@status'] == 'ok'
    assert log_of(bgw, s.msg_id)[1] == 'PROBE'
    assert len(events(bgw, up, 'closes')) == 1
    passes(bgw, sim, path, caller, dest)


def test_probes_two(bgw, sim):
    """probes=2: two probes in a row must succeed, one after the other."""
    caller, dest, up = 'shanghai.gov', 'hebei', 'hebei_gov'
    path = '/probes/gov/'
    opened = open_with(bgw, sim, path, caller, dest, 3)
    refused(bgw, sim, path, caller, dest)
    until(opened + 1.05)
    passes(bgw, sim, path, caller, dest, found='PROBE')
    assert events(bgw, up, 'closes') == []
    passes(bgw, sim, path, caller, dest, found='PROBE')
    line, = events(bgw, up, 'closes')
    assert '2 probes succeeded' in line, line
    passes(bgw, sim, path, caller, dest)


# ---- per destination, for every worker --------------------------------------

def test_per_destination(bgw, sim):
    """Jiangsu's gov system open: its other systems, and Anhui, go on."""
    path = '/br/gov/'
    opened = open_with(bgw, sim, path, 'shanghai.gov', 'jiangsu', 3)
    refused(bgw, sim, path, 'shanghai.gov', 'jiangsu')
    refused(bgw, sim, path, 'zhejiang.gov', 'jiangsu')     # any caller
    passes(bgw, sim, path, 'shanghai.gov', 'anhui')
    passes(bgw, sim, path, 'zhejiang.gov', 'anhui')
    # Jiangsu's medical system (upstream jiangsu_medical) is another one
    passes(bgw, sim, '/br/medical/', 'shanghai.medical', 'jiangsu',
           tweak=lambda c: c.update({'@dest': '320500'}))
    assert events(bgw, 'jiangsu_gov', 'opens')
    assert not events(bgw, 'anhui_gov', 'opens')
    until(opened + 1.05)
    passes(bgw, sim, path, 'shanghai.gov', 'jiangsu', found='PROBE')


def test_one_worker_opens_it_for_all(bgw, sim):
    """failures=4 from connections spread over both workers open it for
    both: a worker that saw fewer than 4 failures itself refuses too."""
    path, caller, dest = '/workers/gov/', 'anhui.gov', 'zhejiang'
    opened = open_with(bgw, sim, path, caller, dest, 4)
    failed_in = [log_of(bgw, e['msg_id'])[0]
                 for e in sim.log('zhejiang.gov')[-4:]]
    refused_in = []
    for _ in range(16):
        s, retry = refused(bgw, sim, path, caller, dest)
        assert retry in (1, 2, 3)
        refused_in.append(log_of(bgw, s.msg_id)[0])
    assert len(set(refused_in)) == 2, 'one worker took every connection'
    assert any(failed_in.count(pid) < 4 for pid in set(refused_in)), \
        (failed_in, refused_in)
    until(opened + 3.05)
    passes(bgw, sim, path, caller, dest, found='PROBE')


def test_off_location(bgw, sim):
    """xregion_breaker off: the location sends whatever the state."""
    caller, dest = 'hebei.gov', 'beijing'
    opened = open_with(bgw, sim, '/br/gov/', caller, dest, 3)
    refused(bgw, sim, '/br/gov/', caller, dest)
    s = passes(bgw, sim, '/off/gov/', caller, dest, found='')
    assert s.got == 1
    refused(bgw, sim, '/br/gov/', caller, dest)
    until(opened + 1.05)
    passes(bgw, sim, '/br/gov/', caller, dest, found='PROBE')


def workers(g):
    out = subprocess.run(['pgrep', '-P', str(g.proc.pid)],
                         capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_reload_keeps_the_state(bgw, sim):
    """A reload with the same upstreams keeps every breaker: the new
    workers refuse toward the open one, its back-off running on."""
    path, caller, dest = '/reload/gov/', 'anhui.gov', 'shanghai'
    old = workers(bgw)
    assert len(old) == 2
    opened = open_with(bgw, sim, path, caller, dest, 2)
    bgw.reload()
    # (an old worker keeps its reuseport socket until it has exited)
    wait_for(lambda: len(workers(bgw) - old) == 2
             and not workers(bgw) & old, 15, 'the new workers alone')
    new = workers(bgw)
    for _ in range(4):
        s, retry = refused(bgw, sim, path, caller, dest)
        assert log_of(bgw, s.msg_id)[0] in new
        assert 30 - (time.monotonic() - opened) - 1 <= retry <= 30, retry
    assert not events(bgw, 'shanghai_gov', 'is half-open')


# ---- money: no claim, an audit record ---------------------------------------

def test_money_refused_before_redis(bgw, sim, redis):
    """A settlement toward an open breaker claims nothing in Redis and is
    recorded in the audit log as rejected, XR-UNAVAILABLE."""
    caller, path = 'shanghai.medical', '/br/medical/'

    def to_jiangsu(c):
        c['@dest'] = '320500'           # jiangsu_medical, not Nanjing's

    claims = len(redis.keys('xrbrk:i:*'))
    passes(bgw, sim, path, caller, 'jiangsu', money=True, tweak=to_jiangsu)
    assert len(redis.keys('xrbrk:i:*')) == claims + 1

    sim.fault('jiangsu.medical', 'http500', count=3)
    for _ in range(3):
        fails(bgw, sim, path, caller, 'jiangsu', money=True, tweak=to_jiangsu)
    opened = time.monotonic()
    claims = len(redis.keys('xrbrk:i:*'))

    s, _ = refused(bgw, sim, path, caller, 'jiangsu', money=True,
                   tweak=to_jiangsu)
    assert len(redis.keys('xrbrk:i:*')) == claims, 'a claim was taken'

    def record():
        for name in sorted(os.listdir(os.path.join(bgw.prefix, 'audit'))):
            with open(os.path.join(bgw.prefix, 'audit', name), 'rb') as f:
                for ln in f:
                    if s.msg_id.encode() in ln:
                        return ln.decode()
        return None

    wait_for(record, 5, 'the audit record')
    rec = record()
    assert '"outcome":"rejected"' in rec and \
        '"error":"XR-UNAVAILABLE"' in rec, rec

    until(opened + 1.05)
    passes(bgw, sim, path, caller, 'jiangsu', money=True, tweak=to_jiangsu,
           found='PROBE')


# ---- nginx -t ---------------------------------------------------------------

@pytest.mark.parametrize('params,needle,words', [
    ('failures=0 window=10s open=1s', 'failures=0',
     'invalid failures "failures=0": 1 to 100000'),
    ('failures=many window=10s open=1s', 'failures=many',
     'invalid failures "failures=many"'),
    ('failures=3 window=0 open=1s', 'window=0',
     'invalid window "window=0": a time from 1ms to 1d'),
    ('failures=3 window=10s open=soon', 'open=soon',
     'invalid open "open=soon"'),
    ('failures=3 window=10s open=2d', 'open=2d', 'invalid open "open=2d"'),
    ('failures=3 window=10s open=1s probes=0', 'probes=0',
     'invalid probes "probes=0"'),
    ('failures=3 window=10s', 'window=10s;',
     'needs "failures=", "window=" and "open=", or "off"'),
    ('failures=3 window=10s open=5s max_open=2s', 'max_open=2s',
     '"max_open=" (2000 ms) is shorter than "open=" (5000 ms)'),
    ('failures=3 failures=4 window=10s open=1s', 'failures=4',
     'duplicate parameter "failures=4"'),
    ('failures=3 window=10s open=1s half=1', 'half=1',
     'invalid parameter "half=1"'),
    ('off failures=3', 'off failures', 'invalid parameter "off"'),
])
def test_conf_errors(module_so, params, needle, words):
    location = ('            xregion_caller_profile shanghai.medical;\n'
                '            xregion_breaker %s;' % params)
    p, path, conf = nginx_t(module_so, '', location)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr
    assert '%s:%d' % (path, line_of(conf, needle)) in p.stderr, p.stderr


def test_conf_duplicate(module_so):
    http = '    xregion_breaker failures=3 window=10s open=1s;\n' \
           '    xregion_breaker off;\n'
    p, path, conf = nginx_t(module_so, http)
    assert p.returncode != 0
    assert '"xregion_breaker" directive is duplicate' in p.stderr, p.stderr
    assert '%s:%d' % (path, line_of(conf, 'xregion_breaker off')) \
        in p.stderr


def test_conf_ok(module_so):
    http = ('    xregion_route medical 32 jiangsu_medical;\n'
            '    xregion_breaker failures=5 window=30s open=10s '
            'max_open=5m probes=3;\n')
    location = ('            xregion_caller_profile shanghai.medical;\n'
                '            xregion_breaker off;')
    p, path, conf = nginx_t(module_so, http, location)
    assert p.returncode == 0, p.stderr
    p, path, conf = nginx_t(module_so, http)
    assert p.returncode == 0, p.stderr
