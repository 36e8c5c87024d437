"""End-to-end: rate limits per caller and per destination
(xregion_limit_caller, xregion_limit_dest).

Gateways of their own, each on a private redis-server: the example's
configuration plus a server (LIMITS) whose locations carry small limits,
per minute, so that no count refills while a test runs (one location is per
second, for the refill).  Every Redis is flushed before each test that
shares it, so tests do not see each other's counts.  Queries go through
with `xregion_cache off`: every admitted request reaches the simulator, and
a refused one must not.
"""

import os
import re
import time

import pytest

from conftest import (PROXY_COMMON, Nginx, Redis, free_port, make_workdir,
                      port_open, render_example, wait_for)
from test_gateway import (XR_STATUS, build, decode_answer, line_of,
                          nginx_t, same_content_type, wait_log_line)
from test_redis import DOWN_LINE, UP_LINE, digits, per_worker

LIMITS = '''
    # ---- tests/e2e/test_limit.py
    server {
        listen  127.0.0.1:%(port)d;
        xregion_cache  off;

        location /caller/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_limit_caller 1r/m burst=2;
            xregion_limit_caller 1r/m caller=jiangsu.medical;
        }
        location /caller/transit/ {
            xregion transit;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_limit_caller 1r/m burst=2;
        }
        location /dest/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_limit_dest 100r/s burst=100;
            xregion_limit_dest 1r/m burst=2 region=anhui;
        }
        location /both/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_limit_caller 1r/m burst=1;
            xregion_limit_dest 1r/m burst=1 region=anhui;
        }
        location /burst/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_limit_caller 1r/m burst=4;
        }
        location /second/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_limit_caller 1r/s;
        }
        location /free/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
        }

        location /_xregion/ {
%(proxy)s
            subrequest_output_buffer_size  1m;
            proxy_read_timeout  10s;
        }
    }
'''

# hebei.medical may only call toward Beijing here: the forbidden caller
HEBEI_RULE = '    xregion_allow  hebei.medical     medical  *;\n'


# a busy machine must not make a worker fall back to its local count (a
# Redis that is stopped is noticed at once all the same)
REDIS_TIMEOUT = 'prefix=xregion: timeout=500ms;'


def narrow_hebei(text):
    assert HEBEI_RULE in text, 'the example\'s hebei.medical rule moved'
    assert REDIS_TIMEOUT in text, 'the example\'s xregion_redis line moved'
    text = text.replace(REDIS_TIMEOUT, 'prefix=xregion: timeout=5s;')
    return text.replace(HEBEI_RULE,
                        '    xregion_allow  hebei.medical  medical  11;\n')


def start_gateway(module_so, sim, name, redis_port, edit=narrow_hebei):
    """The example + LIMITS on redis_port; .test_port is LIMITS's port."""
    prefix = make_workdir(name)
    port, test_port = free_port(), free_port()
    conf = render_example(module_so, sim.ports, prefix, port,
                          LIMITS % {'port': test_port, 'proxy': PROXY_COMMON},
                          edit=edit, redis_port=redis_port)
    g = Nginx(prefix, conf, port).start()
    wait_for(lambda: port_open(test_port), 10, 'the test server')
    g.test_port = test_port
    return g


def wait_ready(g, timeout=20):
    """Both workers connected to Redis (at once, or after a first attempt
    that timed out: slow under valgrind)."""
    up = r'xregion: redis \S+ is (ready|available again)'
    wait_for(lambda: len(per_worker(g.log(), up)) == 2, timeout,
             'both workers\' Redis connection')


@pytest.fixture(scope='module')
def lredis():
    r = Redis(make_workdir('limit-redis')).start()
    yield r
    r.stop()


@pytest.fixture(scope='module')
def lgw(module_so, sim, lredis):
    g = start_gateway(module_so, sim, 'limit', lredis.port)
    wait_ready(g)
    yield g
    g.stop()
    bad = g.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


@pytest.fixture
def flushed(lredis):
    """Every count starts at zero."""
    assert lredis.cli('FLUSHALL') == 'OK'
    return lredis


# ---- requests ---------------------------------------------------------------

def query(sim, caller, dest):
    """A query of caller's (person_info, card_status) toward dest; its
    (canonical, wire bytes, txn, the destination's profile)."""
    domain = caller.split('.')[1]
    if domain == 'medical':
        def tweak(c):
            c['cert_type'] = 'ss_card'
            c['cert_no'] = 'A' + digits(8)
        txn = 'person_info'
    else:
        def tweak(c):
            c['card_no'] = c['card_no'][:4] + digits(15)
        txn = 'card_status'
    canon, body = build(sim, caller, domain, txn=txn, dest=dest, tweak=tweak)
    return canon, body, txn, '%s.%s' % (dest, domain)


def send(g, sim, path, caller, dest):
    """One query through the LIMITS server: (answer, canonical, txn,
    whether the destination received it)."""
    canon, body, txn, dest_profile = query(sim, caller, dest)
    a = g.post(path, body, caller=caller, port=g.test_port)
    got = sim.received(dest_profile, canon['@msg_id'])
    return a, canon, txn, len(got)


def passes(g, sim, path, caller, dest, n=1):
    for _ in range(n):
        a, canon, txn, got = send(g, sim, path, caller, dest)
        assert a.status == 200, (caller, a.status, a.body[:300])
        ans = decode_answer(sim, caller, a.body, txn)
        assert ans['@status'] == 'ok', ans
        assert got == 1
    return canon


def limited(g, sim, path, caller, dest, max_wait=60):
    """caller's next query is refused: XR-RATE-LIMITED in its own format,
    HTTP 429, Retry-After, one log line naming it; nothing was sent."""
    a, canon, txn, got = send(g, sim, path, caller, dest)
    p = sim.config.profiles[caller]
    assert a.status == XR_STATUS['XR-RATE-LIMITED'] == 429, \
        (caller, a.status, a.body[:300])
    assert same_content_type(a.header('Content-Type'),
                             p.content_type_header())
    ans = decode_answer(sim, caller, a.body, txn)
    assert ans['@status'] == 'error', ans
    assert ans['@err_code'] == p.err_canon(p.err_wire('XR-RATE-LIMITED')), ans
    retry = int(a.header('Retry-After'))
    assert 1 <= retry <= max_wait, retry
    assert got == 0, 'the destination received a refused request'
    line = wait_log_line(g.error_log, canon['@msg_id'])
    assert 'xregion XR-RATE-LIMITED:' in line, line
    assert 'caller: %s,' % caller in line, line
    assert '[warn]' in line, line
    return a, canon, retry


def limit_var(g, msg_id):
    """$xregion_limit of msg_id's access log line ('' when not set)."""
    line = wait_log_line(os.path.join(g.prefix, 'access.log'),
                         'msg_id=%s ' % msg_id)
    m = re.search(r' limit=(\S*)', line)
    assert m, line
    return '' if m.group(1) == '-' else m.group(1)


def script_calls(r):
    """How many times Redis ran a script (EVALSHA or EVAL)."""
    info = r.cli('INFO', 'commandstats')
    n = 0
    for cmd in ('evalsha', 'eval'):
        m = re.search(r'cmdstat_%s:calls=(\d+)' % cmd, info)
        n += int(m.group(1)) if m else 0
    return n


# ---- per caller -------------------------------------------------------------

@pytest.mark.parametrize('caller,other,dest', [
    ('shanghai.medical', 'zhejiang.medical', 'jiangsu'),      # JSON
    ('anhui.medical', 'tianjin.medical', 'beijing'),          # XML, GBK
    ('beijing.transit', 'shanghai.transit', 'shanghai'),      # fixed width
])
def test_caller_over_its_limit(lgw, sim, flushed, caller, other, dest):
    path = '/caller/%s/' % caller.split('.')[1]
    first = passes(lgw, sim, path, caller, dest, 3)     # 1r/m burst=2
    assert limit_var(lgw, first['@msg_id']) == 'PASSED'

    a, canon, retry = limited(lgw, sim, path, caller, dest)
    assert retry > 1                            # 1r/m: about a minute
    assert limit_var(lgw, canon['@msg_id']) == 'REJECTED'
    assert 'xregion_limit_caller 1r/m burst=2' in \
        wait_log_line(lgw.error_log, canon['@msg_id'])

    # the count is in Redis, under the prefix, by the caller's profile
    assert flushed.keys('xregion:l:*') == ['xregion:l:c:%s' % caller]

    # still refused; another caller is not
    limited(lgw, sim, path, caller, dest)
    passes(lgw, sim, path, other, dest, 3)


def test_caller_override(lgw, sim, flushed):
    path = '/caller/medical/'
    passes(lgw, sim, path, 'jiangsu.medical', 'zhejiang')   # 1r/m, no burst
    limited(lgw, sim, path, 'jiangsu.medical', 'zhejiang')
    passes(lgw, sim, path, 'shanghai.medical', 'zhejiang', 3)
    limited(lgw, sim, path, 'shanghai.medical', 'zhejiang')


def test_burst(lgw, sim, flushed):
    path = '/burst/medical/'
    passes(lgw, sim, path, 'shanghai.medical', 'jiangsu', 5)  # 1 + burst=4
    limited(lgw, sim, path, 'shanghai.medical', 'jiangsu')


def test_refill(lgw, sim, flushed):
    """1r/s: the next request is due a second after the last one."""
    path = '/second/medical/'
    passes(lgw, sim, path, 'shanghai.medical', 'jiangsu')
    t0 = time.monotonic()
    a, _, retry = limited(lgw, sim, path, 'shanghai.medical', 'jiangsu')
    assert retry == 1
    time.sleep(max(0, 1.05 - (time.monotonic() - t0)))
    passes(lgw, sim, path, 'shanghai.medical', 'jiangsu')


# ---- per destination --------------------------------------------------------

def test_destination_limit(lgw, sim, flushed):
    path = '/dest/medical/'
    # toward Anhui: 1r/m burst=2 for all callers together
    passes(lgw, sim, path, 'shanghai.medical', 'anhui', 2)
    passes(lgw, sim, path, 'zhejiang.medical', 'anhui')
    for caller in ('jiangsu.medical', 'shanghai.medical', 'beijing.medical'):
        a, canon, _ = limited(lgw, sim, path, caller, 'anhui')
        line = wait_log_line(lgw.error_log, canon['@msg_id'])
        assert 'toward anhui' in line, line
        assert 'xregion_limit_dest 1r/m burst=2' in line, line

    # toward another region the same callers go on (100r/s burst=100)
    for caller in ('jiangsu.medical', 'shanghai.medical', 'beijing.medical'):
        passes(lgw, sim, path, caller, 'zhejiang', 2)

    # (Zhejiang's key expires within 10 ms: back to a full burst)
    keys = flushed.keys('xregion:l:*')
    assert 'xregion:l:d:medical:anhui' in keys, keys
    assert set(keys) <= {'xregion:l:d:medical:anhui',
                         'xregion:l:d:medical:zhejiang'}, keys


def test_one_key_refusing_costs_the_other_nothing(lgw, sim, flushed):
    """/both/: each caller 1r/m burst=1, toward Anhui 1r/m burst=1."""
    path = '/both/medical/'
    passes(lgw, sim, path, 'shanghai.medical', 'zhejiang', 2)
    # refused by its caller's count: Anhui's is left as it was
    limited(lgw, sim, path, 'shanghai.medical', 'anhui')
    limited(lgw, sim, path, 'shanghai.medical', 'anhui')
    passes(lgw, sim, path, 'jiangsu.medical', 'anhui')
    passes(lgw, sim, path, 'zhejiang.medical', 'anhui')
    # Anhui's count is used up now; refused by it, tianjin keeps its own
    limited(lgw, sim, path, 'tianjin.medical', 'anhui')
    passes(lgw, sim, path, 'tianjin.medical', 'zhejiang', 2)


def test_forbidden_caller_takes_nothing(lgw, sim, flushed):
    """Refused by the access rules: its rate limit is untouched."""
    path = '/both/medical/'
    for _ in range(3):
        a, canon, txn, got = send(lgw, sim, path, 'hebei.medical', 'anhui')
        ans = decode_answer(sim, 'hebei.medical', a.body, txn)
        p = sim.config.profiles['hebei.medical']
        assert ans['@err_code'] == p.err_canon(p.err_wire('XR-FORBIDDEN'))
        assert got == 0
    assert flushed.keys('xregion:l:*') == []
    passes(lgw, sim, path, 'hebei.medical', 'beijing', 2)


def test_no_limit_no_redis(lgw, sim, flushed):
    """A location without limits asks Redis nothing for them."""
    before = script_calls(flushed)
    canon = passes(lgw, sim, '/free/medical/', 'shanghai.medical', 'jiangsu',
                   3)
    assert script_calls(flushed) == before
    assert limit_var(lgw, canon['@msg_id']) == ''
    passes(lgw, sim, '/caller/medical/', 'shanghai.medical', 'jiangsu')
    assert script_calls(flushed) == before + 1


def test_example_limits_are_generous(lgw, sim, flushed):
    """The example's own endpoints: the same callers, many requests."""
    for caller in ('shanghai.medical', 'jiangsu.medical'):
        for _ in range(10):
            canon, body, txn, dest_profile = query(sim, caller, 'zhejiang')
            a = lgw.post('/xr/medical/', body, caller=caller)
            assert a.status == 200
            assert decode_answer(sim, caller, a.body,
                                 txn)['@status'] == 'ok'
        assert limit_var(lgw, canon['@msg_id']) == 'PASSED'


# ---- shared by instances, local while Redis is away -------------------------

def test_two_instances_share_the_count(module_so, sim, lgw, flushed):
    other = start_gateway(module_so, sim, 'limit-b', flushed.port)
    try:
        wait_ready(other)
        path = '/caller/medical/'
        passes(lgw, sim, path, 'shanghai.medical', 'jiangsu', 2)
        passes(other, sim, path, 'shanghai.medical', 'jiangsu')
        limited(other, sim, path, 'shanghai.medical', 'jiangsu')
        limited(lgw, sim, path, 'shanghai.medical', 'jiangsu')

        passes(other, sim, '/dest/medical/', 'jiangsu.medical', 'anhui')
        passes(lgw, sim, '/dest/medical/', 'zhejiang.medical', 'anhui', 2)
        limited(other, sim, '/dest/medical/', 'beijing.medical', 'anhui')
    finally:
        other.stop()
    bad = other.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


def test_redis_down_local_then_back(module_so, sim):
    r = Redis(make_workdir('limit-down')).start()
    g = None
    try:
        g = start_gateway(module_so, sim, 'limit-down', r.port)
        wait_ready(g)
        path, caller = '/caller/medical/', 'shanghai.medical'

        c = passes(g, sim, path, caller, 'jiangsu', 3)
        assert limit_var(g, c['@msg_id']) == 'PASSED'
        limited(g, sim, path, caller, 'jiangsu')

        mark = len(g.log())
        r.stop()
        wait_for(lambda: len(per_worker(g.log()[mark:], DOWN_LINE)) == 2, 5,
                 'both workers to notice the outage')

        # this instance counts: the same limit, both workers in one count
        for _ in range(3):
            c = passes(g, sim, path, caller, 'jiangsu')
            assert limit_var(g, c['@msg_id']) == 'LOCAL'
        for _ in range(2):
            a, c, _ = limited(g, sim, path, caller, 'jiangsu')
            assert limit_var(g, c['@msg_id']) == 'LOCAL_REJECTED'
            assert 'counted by this instance' in \
                wait_log_line(g.error_log, c['@msg_id'])
        # under its limit, another caller goes on
        c = passes(g, sim, path, 'zhejiang.medical', 'jiangsu')
        assert limit_var(g, c['@msg_id']) == 'LOCAL'

        # back on the same port, empty (no persistence): shared again, no
        # reload; the script is loaded again (NOSCRIPT, then EVAL)
        mark = len(g.log())
        r.start()
        wait_for(lambda: len(per_worker(g.log()[mark:], UP_LINE)) == 2, 10,
                 'both workers to reconnect')
        c = passes(g, sim, path, caller, 'jiangsu', 3)
        assert limit_var(g, c['@msg_id']) == 'PASSED'
        a, c, _ = limited(g, sim, path, caller, 'jiangsu')
        assert limit_var(g, c['@msg_id']) == 'REJECTED'
        assert r.keys('xregion:l:*') == ['xregion:l:c:%s' % caller]
        stats = r.cli('INFO', 'commandstats')
        assert re.search(r'cmdstat_eval:calls=[1-9]', stats), stats
        assert re.search(r'cmdstat_evalsha:calls=[1-9]', stats), stats
    finally:
        if g:
            g.stop()
        r.stop()
    bad = g.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


def test_without_redis_local(module_so, sim):
    """No xregion_redis at all: the shared memory of the instance, one count
    for both workers, kept over a reload."""
    def no_redis(text):
        text = narrow_hebei(text)
        return re.sub(r'(?m)^    xregion_redis .*\n', '', text)

    g = start_gateway(module_so, sim, 'limit-local', None, edit=no_redis)
    try:
        path = '/caller/medical/'
        c = passes(g, sim, path, 'anhui.medical', 'beijing', 3)
        assert limit_var(g, c['@msg_id']) == 'LOCAL'
        a, c, _ = limited(g, sim, path, 'anhui.medical', 'beijing')
        assert limit_var(g, c['@msg_id']) == 'LOCAL_REJECTED'
        passes(g, sim, '/dest/medical/', 'anhui.medical', 'jiangsu', 5)

        # a reload keeps the counts (same profiles and regions: same zone)
        g.reload()
        wait_for(lambda: g.log().count('exited with code 0') >= 2, 15,
                 'the old workers to exit')
        limited(g, sim, path, 'anhui.medical', 'beijing')
        passes(g, sim, path, 'beijing.medical', 'beijing')
    finally:
        g.stop()
    bad = g.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


# ---- nginx -t ---------------------------------------------------------------

@pytest.mark.parametrize('http,location,needle,words', [
    ('', '            xregion_limit_caller 5r/h;', '5r/h',
     'invalid rate "5r/h"'),
    ('', '            xregion_limit_caller 0r/s;', '0r/s',
     'invalid rate "0r/s"'),
    ('    xregion_limit_dest fast;\n', None, 'limit_dest fast',
     'invalid rate "fast"'),
    ('', '            xregion_limit_caller 5r/s burst=-1;', 'burst=-1',
     'invalid burst "burst=-1"'),
    ('', '            xregion_limit_caller 5r/s region=anhui;',
     'region=anhui', 'invalid parameter "region=anhui"'),
    ('', '            xregion_limit_caller 5r/s caller=nobody.medical;',
     'nobody.medical', 'unknown caller "nobody.medical"'),
    ('    xregion_limit_dest 5r/s region=atlantis;\n', None, 'atlantis',
     'unknown region "atlantis"'),
    ('    xregion_limit_dest 5r/s region=national;\n', None,
     'region=national', 'region "national" has no code'),
    ('', '            xregion_limit_caller 5r/s;\n'
         '            xregion_limit_caller 9r/s;', '9r/s',
     'duplicate default "xregion_limit_caller"'),
    ('    xregion_limit_dest 5r/s region=anhui;\n'
     '    xregion_limit_dest 9r/m burst=2 region=anhui;\n', None, '9r/m',
     'duplicate "xregion_limit_dest" for region="anhui"'),
])
def test_conf_errors(module_so, http, location, needle, words):
    if location is not None:
        location = ('            xregion_caller_profile shanghai.medical;\n'
                    + location)
    p, path, conf = nginx_t(module_so, http, location)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr
    assert '%s:%d' % (path, line_of(conf, needle)) in p.stderr, p.stderr


def test_conf_first_of_a_duplicate_named(module_so):
    location = ('            xregion_caller_profile shanghai.medical;\n'
                '            xregion_limit_caller 5r/s caller=anhui.medical;\n'
                '            xregion_limit_caller 6r/s caller=anhui.medical;')
    p, path, conf = nginx_t(module_so, '', location)
    assert p.returncode != 0
    assert 'first in %s:%d' % (path, line_of(conf, '5r/s caller=')) \
        in p.stderr, p.stderr


def test_conf_ok(module_so):
    http = ('    xregion_limit_caller 10r/s burst=20;\n'
            '    xregion_limit_dest 300r/m region=anhui;\n')
    location = ('            xregion_caller_profile shanghai.medical;\n'
                '            xregion_limit_caller 1r/s '
                'caller=shanghai.medical;')
    p, path, conf = nginx_t(module_so, http, location)
    assert p.returncode == 0, p.stderr


def test_conf_needs_config(module_so):
    prefix = make_workdir('limit-noconf')
    conf = ('load_module %s;\nerror_log %s/error.log;\npid %s/nginx.pid;\n'
            'events { }\nhttp {\n    xregion_limit_caller 5r/s;\n}\n'
            % (module_so, prefix, prefix))
    p = Nginx(prefix, conf, 0).test()
    assert p.returncode != 0
    assert 'need "xregion_config"' in p.stderr, p.stderr

