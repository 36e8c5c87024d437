"""End-to-end: the gateway's shared state in a real redis-server.

nginx + the module + the simulator (fixtures in conftest.py) with Redis:
the response cache, idempotent money transactions, the replay guard, and
what happens when Redis goes away, stops answering, answers late or fails
over under Sentinel.  Each test starts what it needs (redis-servers,
sentinels, nginx instances, small Python servers) on 127.0.0.1 and free
ports and stops it at the end; every wait is bounded.

The tests that only need a working Redis share one gateway (`rgw`): the
example's configuration with the session's redis-server, plus a second
server (EXTRA) whose locations change one directive each.
"""

import collections
import datetime as dt
import os
import random
import re
import socket
import threading
import time

import pytest

from conftest import (PROXY_COMMON, Nginx, Redis, free_port, make_workdir,
                      port_open, render_example, wait_for)
from test_gateway import (build, decode_answer, expect_error, line_of,
                          nginx_t, wait_log_line)


# ---- what the tests start ----------------------------------------------------

REDIS_LINE = ('    xregion_redis  127.0.0.1:@REDIS_PORT@ prefix=xregion: '
              'timeout=500ms;\n')

# a second server: one location per directive under test, each with its own
# way to the destinations (xregion_pass resolves in the same server)
EXTRA = '''
    # ---- tests/e2e/test_redis.py
    server {
        listen  127.0.0.1:%(port)d;

        location /ttl1/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_cache_ttl person_info 1s;
        }
        location /nocache/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_cache off;
        }
        location /wait/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_idempotency_wait 200ms;
        }
        location /shortwait/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_idempotency_wait 300ms;
        }
        location /pass/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_idempotency_unavailable pass;
        }
        location /replay/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_replay_guard window=60s nonce=$http_x_xregion_nonce
                                 timestamp=$http_x_xregion_timestamp;
        }
        location /t150/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_timeout 150ms;
        }
        location /t500/medical/ {
            xregion medical;
            xregion_caller_profile $http_x_xregion_caller;
            xregion_timeout 500ms;
        }

        location /_xregion/ {
%(proxy)s
            subrequest_output_buffer_size  1m;
            proxy_read_timeout  10s;
        }
    }
'''

SETTLE_FIELDS = ('setl_id', 'total', 'fund_pay', 'acct_pay', 'cash_pay',
                 'balance', 'mdtrt_id', 'psn_no')
PERSON_FIELDS = ('psn_no', 'name', 'id_no', 'gender', 'birth_date',
                 'insurances')


def start_gateway(module_so, sim, name, redis_port=None, redis_args=None,
                  edit=None):
    """The example + EXTRA; redis_args replaces the xregion_redis line's
    parameters.  .test_port is EXTRA's port."""
    prefix = make_workdir(name)
    port, test_port = free_port(), free_port()

    def edit_all(text):
        assert REDIS_LINE in text, 'the example\'s xregion_redis line moved'
        if redis_args is not None:
            text = text.replace(REDIS_LINE,
                                '    xregion_redis  %s;\n' % redis_args)
        return edit(text) if edit else text

    conf = render_example(module_so, sim.ports, prefix, port,
                          EXTRA % {'port': test_port, 'proxy': PROXY_COMMON},
                          edit=edit_all, redis_port=redis_port)
    g = Nginx(prefix, conf, port).start()
    wait_for(lambda: port_open(test_port), 10, 'the test server')
    g.test_port = test_port
    return g


def stop_and_check(g):
    """Stops g; the error log's [alert]/[emerg]/[crit]/sanitizer lines."""
    g.stop()
    return g.bad_lines()


class Stack:
    """What a test started, stopped at its end (last first)."""

    def __init__(self):
        self.items = []

    def push(self, obj):
        self.items.append(obj)
        return obj


@pytest.fixture
def stack():
    s = Stack()
    yield s
    bad = []
    for obj in reversed(s.items):
        if isinstance(obj, Nginx):
            bad += stop_and_check(obj)
        elif isinstance(obj, Redis):
            obj.stop(kill=True)
        else:
            obj.stop()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


@pytest.fixture(autouse=True)
def _clean_faults(request):
    yield
    if 'sim' in request.fixturenames:
        request.getfixturevalue('sim').clear_faults()


class SilentRedis:
    """Accepts connections and reads, never writes; with answer_role, it
    answers the first ROLE as a master and then goes silent."""

    def __init__(self, answer_role=False):
        self.answer_role = answer_role
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.received = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        buf, answered = b'', False
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
                self.received.append(d)
                if self.answer_role and not answered \
                        and b'ROLE' in buf.upper():
                    c.sendall(b'*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n')
                    answered = True
        except OSError:
            pass

    def stop(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class TcpProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target; what comes back is
    held `delay` seconds first (a slow Redis)."""

    def __init__(self, target, delay=0.0, port=0):
        self.target, self.delay = target, delay
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(('127.0.0.1', self.target),
                                             timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u, 0),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, self.delay),
                             daemon=True).start()

    @staticmethod
    def _pump(src, dst, delay):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if delay:
                    time.sleep(delay)
                dst.sendall(d)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


# ---- requests and what to look at ----------------------------------------

def digits(n):
    """n random digits; never ending 9999 (the simulator's unknown)."""
    return ''.join(random.choice('012345678') for _ in range(n))


def new_cert():
    return 'A' + digits(8)


def new_card(region_city='3010'):      # 3010 南京: jiangsu.transit
    return region_city + digits(15)


def person_info(sim, caller, cert, dest='jiangsu'):
    def tweak(c):
        c['cert_type'] = 'ss_card'
        c['cert_no'] = cert
    return build(sim, caller, 'medical', txn='person_info', dest=dest,
                 tweak=tweak)


def settle(sim, caller='shanghai.medical', dest='zhejiang', tweak=None):
    return build(sim, caller, 'medical', txn='settle', dest=dest, tweak=tweak)


def transit(sim, txn, card, caller='shanghai.transit'):
    def tweak(c):
        c['card_no'] = card
        c['issuer_city'] = card[:4]
    return build(sim, caller, 'transit', txn=txn, tweak=tweak)


def ok_answer(sim, caller, a, txn, msg_id=None):
    assert a.status == 200, (a.status, a.body[:300])
    ans = sim.codec(caller).decode('response', a.body, txn=txn)
    assert ans['@status'] == 'ok', ans
    if msg_id is not None:
        assert ans['@msg_id'] == msg_id, (ans['@msg_id'], msg_id)
    return ans


def fields(ans, names):
    return {k: ans[k] for k in names if k in ans}


def access(g, msg_id, timeout=5):
    """The $xregion_cache and $xregion_idempotency of msg_id's (last)
    access log line."""
    line = wait_log_line(os.path.join(g.prefix, 'access.log'),
                         'msg_id=%s ' % msg_id, timeout)
    return dict(re.findall(r' (cache|idempotency|outcome|caller)=(\S*)',
                           line))


def access_lines(g, msg_id):
    with open(os.path.join(g.prefix, 'access.log'),
              encoding='utf-8', errors='replace') as f:
        return [dict(re.findall(r' (cache|idempotency|outcome|caller)=(\S*)',
                                ln))
                for ln in f if 'msg_id=%s ' % msg_id in ln]


def per_worker(text, needle):
    """How many lines matching the regex needle each process wrote."""
    n = collections.Counter()
    for ln in text.splitlines():
        if re.search(needle, ln):
            m = re.search(r'\[\w+\] (\d+)#', ln)
            n[m.group(1) if m else '?'] += 1
    return n


DOWN_LINE = r'xregion: redis \S+ is unavailable \('
UP_LINE = r'xregion: redis \S+ is available again after \d+ ms'


def stored(redis, pattern, before, n=1, timeout=3):
    """The keys matching pattern that were not in before, once there are n
    of them.  A cache entry is written after the answer has gone out (no
    one waits for the write): a test that wants a HIT waits for it."""
    new = []

    def look():
        new[:] = sorted(set(redis.keys(pattern)) - before)
        return len(new) >= n
    wait_for(look, timeout, '%d new key(s) %s' % (n, pattern))
    assert len(new) == n, new
    return new


def idem_kinds(g, msg_id, n):
    """The $xregion_idempotency values of msg_id's n access log lines,
    sorted (workers write their lines in no set order)."""
    wait_for(lambda: len(access_lines(g, msg_id)) >= n, 5,
             '%d access log lines of %s' % (n, msg_id))
    return sorted(v['idempotency'] for v in access_lines(g, msg_id))


def pttl(r, key):
    return int(r.cli('PTTL', key))


def wait_ready(g, workers=2, timeout=10):
    try:
        wait_for(lambda: g.log().count('is ready') >= workers, timeout,
                 'every worker\'s Redis connection')
    except AssertionError as e:
        lines = [ln for ln in g.log().splitlines() if 'xregion: ' in ln]
        raise AssertionError('%s; the error log says:\n%s'
                             % (e, '\n'.join(lines[-4:]))) from None


def post_until(g, path, body, caller, ok, timeout, port=None):
    """Posts body until ok(answer); the answer.  Bounded."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = g.post(path, body, caller=caller, port=port, timeout=10)
        if ok(last):
            return last
        time.sleep(0.2)
    raise AssertionError('no good answer within %.0fs; last: %s %r'
                         % (timeout, last and last.status,
                            last and last.body[:300]))


def is_ok(sim, caller, txn):
    def check(a):
        if a.status != 200:
            return False
        try:
            return sim.codec(caller).decode('response', a.body,
                                            txn=txn)['@status'] == 'ok'
        except Exception:       # noqa: BLE001 (an error answer)
            return False
    return check


# ---- the shared gateway ------------------------------------------------------

@pytest.fixture(scope='module')
def rgw(module_so, sim, redis):
    dead = free_port()

    def dead_tianjin(text):
        text2 = re.sub(r'(upstream tianjin_medical\s*\{\s*server 127\.0\.0\.1:)'
                       r'@SIM_PORT_tianjin\.medical@', r'\g<1>%d' % dead, text)
        assert text2 != text
        return text2

    g = start_gateway(module_so, sim, 'rgw', redis_port=redis.port,
                      edit=dead_tianjin)
    g.dead_port = dead
    wait_ready(g)
    yield g
    bad = stop_and_check(g)
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


# ---- 1. the response cache -------------------------------------------------

def test_cache_miss_then_hit(rgw, sim, redis):
    caller, cert = 'shanghai.medical', new_cert()
    before = set(redis.keys('xregion:c:*'))

    c1, b1 = person_info(sim, caller, cert)
    a1 = rgw.post('/xr/medical/', b1, caller=caller)
    ans1 = ok_answer(sim, caller, a1, 'person_info', c1['@msg_id'])
    key, = stored(redis, 'xregion:c:*', before)

    c2, b2 = person_info(sim, caller, cert)
    assert c2['@msg_id'] != c1['@msg_id']
    a2 = rgw.post('/xr/medical/', b2, caller=caller)
    ans2 = ok_answer(sim, caller, a2, 'person_info', c2['@msg_id'])

    assert 'psn_no' in ans1
    assert fields(ans2, PERSON_FIELDS) == fields(ans1, PERSON_FIELDS)
    assert len(sim.received('jiangsu.medical', c1['@msg_id'])) == 1
    assert sim.received('jiangsu.medical', c2['@msg_id']) == []
    assert access(rgw, c1['@msg_id'])['cache'] == 'MISS'
    v = access(rgw, c2['@msg_id'])
    assert v['cache'] == 'HIT' and v['outcome'] == 'ok', v

    assert set(redis.keys('xregion:c:*')) - before == {key}
    assert re.fullmatch(r'xregion:c:medical:person_info:320100:[0-9a-f]{64}',
                        key), key
    assert cert not in key
    # Redis keeps it twice the TTL (5m in the example)
    assert 590000 < pttl(redis, key) <= 600000


def test_cache_hit_in_another_format(rgw, sim, redis):
    """Shanghai (JSON) asks first; Anhui (XML, GBK) asking about the same
    credential is answered from the cache, in Anhui's format."""
    cert = new_cert()
    before = set(redis.keys('xregion:c:*'))
    c1, b1 = person_info(sim, 'shanghai.medical', cert)
    ans1 = ok_answer(sim, 'shanghai.medical',
                     rgw.post('/xr/medical/', b1, caller='shanghai.medical'),
                     'person_info', c1['@msg_id'])
    stored(redis, 'xregion:c:*', before)

    c2, b2 = person_info(sim, 'anhui.medical', cert)
    a2 = rgw.post('/xr/medical/', b2, caller='anhui.medical')
    p = sim.config.profiles['anhui.medical']
    ct = (a2.header('Content-Type') or '').lower()
    assert ct.split(';')[0] == p.content_type_header().lower().split(';')[0]
    ans2 = ok_answer(sim, 'anhui.medical', a2, 'person_info', c2['@msg_id'])
    assert a2.body.lstrip().startswith(b'<')
    assert fields(ans2, PERSON_FIELDS) == fields(ans1, PERSON_FIELDS)
    assert sim.received('jiangsu.medical', c2['@msg_id']) == []
    v = access(rgw, c2['@msg_id'])
    assert v['cache'] == 'HIT' and v['caller'] == 'anhui.medical', v


def test_cache_expired_after_ttl(rgw, sim, redis):
    """xregion_cache_ttl person_info 1s: HIT within the second, EXPIRED
    (asked again) after it, then HIT on the fresh entry."""
    caller, cert = 'shanghai.medical', new_cert()
    before = set(redis.keys('xregion:c:*'))
    ids = []

    def ask():
        c, b = person_info(sim, caller, cert)
        ok_answer(sim, caller, rgw.post('/ttl1/medical/', b, caller=caller,
                                        port=rgw.test_port),
                  'person_info', c['@msg_id'])
        ids.append(c['@msg_id'])

    ask()
    t0 = time.monotonic()
    key, = stored(redis, 'xregion:c:*', before)
    assert 0 < pttl(redis, key) <= 2000             # kept 2 x 1s
    ask()
    time.sleep(max(0, 1.15 - (time.monotonic() - t0)))
    ask()
    wait_for(lambda: pttl(redis, key) > 1500, 3, 'the fresh entry')
    ask()

    assert [access(rgw, i)['cache'] for i in ids] == \
        ['MISS', 'HIT', 'EXPIRED', 'HIT']
    assert [len(sim.received('jiangsu.medical', i)) for i in ids] == \
        [1, 0, 1, 0]


def test_card_loss_invalidates_card_status(rgw, sim, redis):
    caller, card = 'shanghai.transit', new_card()
    before = set(redis.keys('xregion:c:transit:*'))

    ids = []
    for _ in range(2):
        c, b = transit(sim, 'card_status', card)
        ans = ok_answer(sim, caller, rgw.post('/xr/transit/', b,
                                              caller=caller),
                        'card_status', c['@msg_id'])
        assert ans['status'] == 'normal', ans
        ids.append(c['@msg_id'])
        key, = stored(redis, 'xregion:c:transit:*', before)
    assert [access(rgw, i)['cache'] for i in ids] == ['MISS', 'HIT']
    assert key.startswith('xregion:c:transit:card_status:320100:'), key
    assert card not in key
    assert 25000 < pttl(redis, key) <= 60000      # 2 x 30s

    c, b = transit(sim, 'card_loss', card)
    ok_answer(sim, caller, rgw.post('/xr/transit/', b, caller=caller),
              'card_loss', c['@msg_id'])
    assert len(sim.received('jiangsu.transit', c['@msg_id'])) == 1
    wait_for(lambda: redis.cli('EXISTS', key) == '0', 3,
             'the card_status entry to be dropped')

    c, b = transit(sim, 'card_status', card)
    ans = ok_answer(sim, caller, rgw.post('/xr/transit/', b, caller=caller),
                    'card_status', c['@msg_id'])
    assert ans['status'] == 'lost', ans
    assert access(rgw, c['@msg_id'])['cache'] == 'MISS'
    assert len(sim.received('jiangsu.transit', c['@msg_id'])) == 1


def test_settle_invalidates_person_info(rgw, sim, redis):
    """A settlement paid from the personal account changes the balance:
    the person's cached answer goes."""
    caller, cert = 'shanghai.medical', new_cert()
    before = set(redis.keys('xregion:c:*'))
    c, b = person_info(sim, caller, cert)
    ans1 = ok_answer(sim, caller, rgw.post('/xr/medical/', b, caller=caller),
                     'person_info')
    stored(redis, 'xregion:c:*', before)

    def same_person(s):
        s['cert_type'] = 'ss_card'
        s['cert_no'] = cert
        s['psn_no'] = ans1['psn_no']
        s['acct_used'] = 'yes'
    cs, bs = settle(sim, caller, dest='jiangsu', tweak=same_person)
    ans = ok_answer(sim, caller, rgw.post('/xr/medical/', bs, caller=caller),
                    'settle')
    assert int(ans['acct_pay']) > 0, ans

    def fresh():
        c, b = person_info(sim, caller, cert)
        a = rgw.post('/xr/medical/', b, caller=caller)
        return c, ok_answer(sim, caller, a, 'person_info')

    # the DEL is sent after the settle's answer: allow it a moment
    deadline = time.monotonic() + 3
    while True:
        c, ans2 = fresh()
        if access(rgw, c['@msg_id'])['cache'] != 'HIT' \
                or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert access(rgw, c['@msg_id'])['cache'] == 'MISS'
    assert len(sim.received('jiangsu.medical', c['@msg_id'])) == 1
    assert ans2['insurances'][0]['balance'] != \
        ans1['insurances'][0]['balance']


def test_cache_off(rgw, sim, redis):
    caller, cert = 'shanghai.medical', new_cert()
    before = set(redis.keys('xregion:c:*'))
    ids = []
    for _ in range(2):
        c, b = person_info(sim, caller, cert)
        ok_answer(sim, caller, rgw.post('/nocache/medical/', b,
                                        caller=caller, port=rgw.test_port),
                  'person_info', c['@msg_id'])
        ids.append(c['@msg_id'])
    assert [len(sim.received('jiangsu.medical', i)) for i in ids] == [1, 1]
    assert set(redis.keys('xregion:c:*')) - before == set()
    for i in ids:
        assert access(rgw, i)['cache'] not in ('HIT', 'MISS', 'EXPIRED')


@pytest.mark.parametrize('mode', ['business_error', 'http500'])
def test_failed_answer_not_cached(rgw, sim, redis, mode):
    caller, cert = 'shanghai.medical', new_cert()
    before = set(redis.keys('xregion:c:*'))
    sim.fault('jiangsu.medical', mode)
    c1, b1 = person_info(sim, caller, cert)
    a1 = rgw.post('/xr/medical/', b1, caller=caller)
    if mode == 'http500':
        expect_error(sim, caller, a1, 'XR-UPSTREAM-ERROR', 'person_info',
                     c1['@msg_id'])
    else:
        assert a1.status == 200
        assert sim.codec(caller).decode('response', a1.body,
                                        txn='person_info')['@status'] \
            == 'error'
    assert len(sim.received('jiangsu.medical', c1['@msg_id'])) == 1
    time.sleep(0.2)
    assert set(redis.keys('xregion:c:*')) - before == set()

    c2, b2 = person_info(sim, caller, cert)
    ok_answer(sim, caller, rgw.post('/xr/medical/', b2, caller=caller),
              'person_info', c2['@msg_id'])
    assert access(rgw, c2['@msg_id'])['cache'] == 'MISS'
    assert len(sim.received('jiangsu.medical', c2['@msg_id'])) == 1
    stored(redis, 'xregion:c:*', before)


# ---- 2. idempotent money transactions ---------------------------------------

def test_retry_gets_the_recorded_answer(rgw, sim, redis):
    caller = 'shanghai.medical'
    before = set(redis.keys('xregion:i:*'))
    c, b = settle(sim, caller)
    ans1 = ok_answer(sim, caller, rgw.post('/xr/medical/', b, caller=caller),
                     'settle', c['@msg_id'])
    ans2 = ok_answer(sim, caller, rgw.post('/xr/medical/', b, caller=caller),
                     'settle', c['@msg_id'])
    assert 'setl_id' in ans1
    assert fields(ans2, SETTLE_FIELDS) == fields(ans1, SETTLE_FIELDS)

    # a retry re-stamped with a later time is the same transaction
    c3 = dict(c)
    c3['@time'] = c['@time'] + dt.timedelta(minutes=1)
    b3 = sim.codec(caller).encode('request', c3, 'settle')
    assert b3 != b
    ans3 = ok_answer(sim, caller, rgw.post('/xr/medical/', b3, caller=caller),
                     'settle', c['@msg_id'])
    assert fields(ans3, SETTLE_FIELDS) == fields(ans1, SETTLE_FIELDS)

    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1
    assert idem_kinds(rgw, c['@msg_id'], 3) == ['NEW', 'REPLAY', 'REPLAY']

    new = set(redis.keys('xregion:i:*')) - before
    assert len(new) == 1, new
    key, = new
    assert re.fullmatch(r'xregion:i:medical:settle:shanghai\.medical:'
                        r'[0-9a-f]{64}', key), key
    assert c['@msg_id'] not in key
    assert redis.cli('GET', key).startswith('D')
    assert 86000000 < pttl(redis, key) <= 86400000     # 24h


def test_same_msg_id_other_amount_conflicts(rgw, sim, redis):
    caller = 'anhui.medical'          # XML/GBK: the refusal in its format
    c, b = settle(sim, caller)
    ans1 = ok_answer(sim, caller, rgw.post('/xr/medical/', b, caller=caller),
                     'settle', c['@msg_id'])

    def more(s):
        s['total'] = type(s['total'])(int(s['total']) + 100)
        s['inscp_amt'] = type(s['total'])(int(s['inscp_amt']) + 100)
    c2 = dict(c)
    more(c2)
    b2 = sim.codec(caller).encode('request', c2, 'settle')
    a2 = rgw.post('/xr/medical/', b2, caller=caller)
    expect_error(sim, caller, a2, 'XR-CONFLICT', 'settle', c['@msg_id'], rgw)
    assert a2.body.lstrip().startswith(b'<')
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1

    # the record is untouched: the original retry still gets its answer
    ans3 = ok_answer(sim, caller, rgw.post('/xr/medical/', b, caller=caller),
                     'settle', c['@msg_id'])
    assert fields(ans3, SETTLE_FIELDS) == fields(ans1, SETTLE_FIELDS)
    assert idem_kinds(rgw, c['@msg_id'], 3) == ['CONFLICT', 'NEW', 'REPLAY']


def test_fifty_concurrent_duplicates(rgw, sim, redis):
    caller, n = 'shanghai.medical', 50
    c, b = settle(sim, caller)
    sim.fault('zhejiang.medical', 'delay', ms=300)
    barrier = threading.Barrier(n)
    answers, errors = [None] * n, []

    def one(i):
        try:
            barrier.wait(10)
            answers[i] = rgw.post('/xr/medical/', b, caller=caller,
                                  timeout=20)
        except Exception as e:      # noqa: BLE001 (reported below)
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    got = [fields(ok_answer(sim, caller, a, 'settle', c['@msg_id']),
                  SETTLE_FIELDS) for a in answers]
    assert 'setl_id' in got[0]
    assert all(g == got[0] for g in got), \
        [g for g in got if g != got[0]][:2]
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1

    wait_for(lambda: len(access_lines(rgw, c['@msg_id'])) == n, 5,
             'the access log lines')
    kinds = collections.Counter(v['idempotency']
                                for v in access_lines(rgw, c['@msg_id']))
    assert kinds['NEW'] == 1, kinds
    assert set(kinds) <= {'NEW', 'WAITED', 'REPLAY'}, kinds
    assert kinds['WAITED'] >= 1, kinds


def test_duplicate_busy_after_wait(rgw, sim, redis):
    """xregion_idempotency_wait 200ms, the destination takes 1s: the
    duplicate gets XR-BUSY-RETRY with Retry-After; the first its answer."""
    caller = 'shanghai.medical'
    c, b = settle(sim, caller)
    sim.fault('zhejiang.medical', 'delay', ms=1000)
    first = {}

    def go():
        first['a'] = rgw.post('/wait/medical/', b, caller=caller,
                              port=rgw.test_port)

    t = threading.Thread(target=go)
    t.start()
    try:
        time.sleep(0.25)
        t0 = time.monotonic()
        a2 = rgw.post('/wait/medical/', b, caller=caller, port=rgw.test_port)
        took = time.monotonic() - t0
    finally:
        t.join(10)
    expect_error(sim, caller, a2, 'XR-BUSY-RETRY', 'settle', c['@msg_id'],
                 rgw)
    assert a2.header('Retry-After') == '1'
    assert 0.15 < took < 0.7, took
    ans1 = ok_answer(sim, caller, first['a'], 'settle', c['@msg_id'])

    ans3 = ok_answer(sim, caller, rgw.post('/wait/medical/', b, caller=caller,
                                           port=rgw.test_port),
                     'settle', c['@msg_id'])
    assert fields(ans3, SETTLE_FIELDS) == fields(ans1, SETTLE_FIELDS)
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1
    assert idem_kinds(rgw, c['@msg_id'], 3) == ['BUSY', 'NEW', 'REPLAY']


def test_late_answer_is_recorded(rgw, sim, redis):
    """xregion_timeout 500ms, the destination settles in 1s: the caller is
    told XR-UPSTREAM-TIMEOUT, the answer that comes after is recorded all
    the same, and the retry gets it (the destination settled once)."""
    caller = 'shanghai.medical'
    before = set(redis.keys('xregion:i:*'))
    c, b = settle(sim, caller)
    sim.fault('zhejiang.medical', 'delay', ms=1000)
    a1 = rgw.post('/t500/medical/', b, caller=caller, port=rgw.test_port)
    expect_error(sim, caller, a1, 'XR-UPSTREAM-TIMEOUT', 'settle',
                 c['@msg_id'], rgw)
    key, = stored(redis, 'xregion:i:*', before)
    wait_for(lambda: redis.cli('GET', key).startswith('D'), 5,
             'the late answer recorded')
    ans = ok_answer(sim, caller, rgw.post('/t500/medical/', b, caller=caller,
                                          port=rgw.test_port),
                    'settle', c['@msg_id'])
    assert 'setl_id' in ans
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1
    assert 'recorded after the deadline' in rgw.log()


def test_refused_destination_releases_the_claim(rgw, sim, redis):
    """tianjin_medical points at a dead port: XR-UPSTREAM-REFUSED, the
    claim is given back; once the destination is reachable the retry goes
    through (no stale claim, no recorded refusal)."""
    caller = 'shanghai.medical'
    before = set(redis.keys('xregion:i:*'))
    c, b = settle(sim, caller, dest='tianjin')
    a = rgw.post('/xr/medical/', b, caller=caller)
    expect_error(sim, caller, a, 'XR-UPSTREAM-REFUSED', 'settle',
                 c['@msg_id'], rgw)
    wait_for(lambda: not set(redis.keys('xregion:i:*')) - before, 3,
             'the claim to be released')

    fwd = TcpProxy(sim.ports['tianjin.medical'], port=rgw.dead_port)
    try:
        ans = ok_answer(sim, caller, rgw.post('/xr/medical/', b,
                                              caller=caller),
                        'settle', c['@msg_id'])
    finally:
        fwd.stop()
    assert 'setl_id' in ans
    assert len(sim.received('tianjin.medical', c['@msg_id'])) == 1
    assert idem_kinds(rgw, c['@msg_id'], 2) == ['NEW', 'NEW']


# ---- 3. Redis goes away and comes back -------------------------------------

def test_redis_down_and_back(module_so, sim, stack):
    r = stack.push(Redis(make_workdir('redis-down')).start())
    g = stack.push(start_gateway(module_so, sim, 'down', redis_port=r.port))
    wait_ready(g)
    caller = 'shanghai.medical'

    cert = new_cert()
    c, b = person_info(sim, caller, cert)
    ok_answer(sim, caller, g.post('/xr/medical/', b, caller=caller),
              'person_info')
    assert access(g, c['@msg_id'])['cache'] == 'MISS'

    r.stop()
    wait_for(lambda: sum(per_worker(g.log(), DOWN_LINE).values()) >= 2,
             5, 'both workers to notice the outage')

    # a cached query is answered by the destination
    c, b = person_info(sim, caller, cert)
    ok_answer(sim, caller, g.post('/xr/medical/', b, caller=caller),
              'person_info', c['@msg_id'])
    assert len(sim.received('jiangsu.medical', c['@msg_id'])) == 1
    assert access(g, c['@msg_id'])['cache'] == 'BYPASS'

    # money is refused, retryable, in each caller's format; nothing is sent
    refused = []
    for who, domain, txn in [('shanghai.medical', 'medical', 'settle'),
                             ('anhui.medical', 'medical', 'settle'),
                             ('beijing.transit', 'transit', 'trip_upload')]:
        c, b = build(sim, who, domain, txn=txn)
        a = g.post('/xr/%s/' % domain, b, caller=who)
        expect_error(sim, who, a, 'XR-BUSY-RETRY', txn, c['@msg_id'], g)
        assert a.header('Retry-After') == '1'
        assert access(g, c['@msg_id'])['idempotency'] == 'UNAVAILABLE'
        refused.append(c['@msg_id'])
    assert a.status == 503                     # beijing.transit: HTTP status
    for i in refused:
        assert not [e for e in sim.log() if e.get('msg_id') == i]

    # xregion_idempotency_unavailable pass: forwarded unguarded
    c, b = settle(sim, caller)
    ok_answer(sim, caller, g.post('/pass/medical/', b, caller=caller,
                                  port=g.test_port), 'settle', c['@msg_id'])
    assert access(g, c['@msg_id'])['idempotency'] == 'BYPASS'
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1

    # the replay guard refuses too (unavailable=refuse)
    c, b = settle(sim, caller)
    a = g.post('/replay/medical/', b, caller=caller, port=g.test_port,
               headers={'X-Xregion-Nonce': 'n' + digits(12),
                        'X-Xregion-Timestamp': str(int(time.time()))})
    expect_error(sim, caller, a, 'XR-BUSY-RETRY', 'settle', c['@msg_id'])

    # many more requests: the outage is still logged once per worker
    c, b = settle(sim, caller)
    for _ in range(20):
        expect_error(sim, caller, g.post('/xr/medical/', b, caller=caller),
                     'XR-BUSY-RETRY', 'settle')
    time.sleep(1.0)
    down = per_worker(g.log(), DOWN_LINE)
    assert len(down) == 2 and set(down.values()) == {1}, down

    # back on the same port: no reload
    r.start()
    t0 = time.monotonic()
    post_until(g, '/xr/medical/', b, caller, is_ok(sim, caller, 'settle'), 10)
    wait_for(lambda: len(per_worker(g.log(), UP_LINE)) == 2,
             10 - (time.monotonic() - t0), 'both workers to log the recovery')
    assert per_worker(g.log(), DOWN_LINE) == down
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1
    wait_for(lambda: 'NEW' in [v['idempotency']
                               for v in access_lines(g, c['@msg_id'])],
             5, 'the access log line')
    assert [v['idempotency'] for v in access_lines(g, c['@msg_id'])
            ].count('NEW') == 1
    assert any(k.startswith('xregion:i:medical:settle:') for k in r.keys())


# ---- 4. a Redis that never answers ---------------------------------------

@pytest.mark.parametrize('answer_role', [False, True],
                         ids=['silent', 'silent-after-handshake'])
def test_redis_never_answers(module_so, sim, stack, answer_role):
    fake = stack.push(SilentRedis(answer_role))
    g = stack.push(start_gateway(
        module_so, sim, 'silent',
        redis_args='127.0.0.1:%d timeout=300ms connect_timeout=300ms'
                   % fake.port))
    if answer_role:
        wait_ready(g)
    else:
        # the handshake is never answered: connect_timeout, then backoff
        wait_for(lambda: len(per_worker(g.log(), DOWN_LINE)) == 2, 5,
                 'both workers to give up on the handshake')
    caller = 'shanghai.medical'

    for _ in range(2):
        c, b = settle(sim, caller)
        t0 = time.monotonic()
        a = g.post('/xr/medical/', b, caller=caller, timeout=10)
        took = time.monotonic() - t0
        assert took < 3, took
        expect_error(sim, caller, a, 'XR-BUSY-RETRY', 'settle', c['@msg_id'],
                     g)
        assert sim.received('zhejiang.medical', c['@msg_id']) == []

        c, b = person_info(sim, caller, new_cert())
        t0 = time.monotonic()
        a = g.post('/xr/medical/', b, caller=caller, timeout=10)
        assert time.monotonic() - t0 < 3
        ok_answer(sim, caller, a, 'person_info', c['@msg_id'])
        assert len(sim.received('jiangsu.medical', c['@msg_id'])) == 1
        assert access(g, c['@msg_id'])['cache'] == 'BYPASS'

    assert fake.received, 'the gateway never wrote to the fake Redis'
    why = 'no answer within timeout' if answer_role \
        else 'no connection within connect_timeout'
    assert why in g.log()


# ---- 5. the caller's deadline before Redis answers --------------------------

@pytest.fixture
def slow_redis_gateway(module_so, sim, stack):
    """A gateway whose Redis answers every time 400 ms late (a proxy in
    front of a private redis-server); Redis timeout 2s."""
    r = stack.push(Redis(make_workdir('redis-slow')).start())
    proxy = stack.push(TcpProxy(r.port, delay=0.4))
    g = stack.push(start_gateway(
        module_so, sim, 'slow',
        redis_args='127.0.0.1:%d timeout=2s connect_timeout=2s' % proxy.port))
    wait_ready(g)
    g.redis = r
    return g


def test_first_requests_wait_for_the_first_connection(module_so, sim,
                                                     stack):
    """A worker takes requests as soon as it starts; its Redis handshake
    (here 400 ms per reply) is still under way: money transactions wait
    for it instead of being refused (a reload starts new workers under
    load)."""
    r = stack.push(Redis(make_workdir('redis-first')).start())
    proxy = stack.push(TcpProxy(r.port, delay=0.4))
    g = stack.push(start_gateway(
        module_so, sim, 'first',
        redis_args='127.0.0.1:%d timeout=2s connect_timeout=3s'
                   % proxy.port))
    caller = 'shanghai.medical'
    c, b = settle(sim, caller)
    t0 = time.monotonic()
    a = g.post('/xr/medical/', b, caller=caller)
    took = time.monotonic() - t0
    ok_answer(sim, caller, a, 'settle', c['@msg_id'])
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1
    assert took < 5, took
    assert idem_kinds(g, c['@msg_id'], 1) == ['NEW']


def test_deadline_while_redis_is_asked(slow_redis_gateway, sim):
    g, caller = slow_redis_gateway, 'shanghai.medical'
    c, b = settle(sim, caller)
    t0 = time.monotonic()
    a = g.post('/t150/medical/', b, caller=caller, port=g.test_port)
    took = time.monotonic() - t0
    expect_error(sim, caller, a, 'XR-BUSY-RETRY', 'settle', c['@msg_id'], g)
    assert a.header('Retry-After') == '1'
    assert took < 0.38, took
    assert 'did not answer in time' in g.log()

    # a cached query: the same
    cp, bp = person_info(sim, caller, new_cert())
    a = g.post('/t150/medical/', bp, caller=caller, port=g.test_port)
    expect_error(sim, caller, a, 'XR-BUSY-RETRY', 'person_info',
                 cp['@msg_id'])

    time.sleep(0.8)                 # the late replies arrive meanwhile
    c2, b2 = settle(sim, caller)
    ok_answer(sim, caller, g.post('/xr/medical/', b2, caller=caller),
              'settle', c2['@msg_id'])
    c3, b3 = person_info(sim, caller, new_cert())
    ok_answer(sim, caller, g.post('/xr/medical/', b3, caller=caller),
              'person_info', c3['@msg_id'])
    assert sim.received('zhejiang.medical', c['@msg_id']) == []
    assert sim.received('jiangsu.medical', cp['@msg_id']) == []


def test_deadline_during_claim_gives_the_claim_back(slow_redis_gateway, sim):
    """The caller was told XR-BUSY-RETRY at its deadline, before the claim
    came back, and the destination never saw the request: the retry it was
    told to make (Retry-After: 1) must go through, not be held as "in
    flight" until the claim expires (2 x xregion_timeout + 10 s)."""
    g, caller = slow_redis_gateway, 'shanghai.medical'
    c, b = settle(sim, caller)
    a = g.post('/t150/medical/', b, caller=caller, port=g.test_port)
    expect_error(sim, caller, a, 'XR-BUSY-RETRY', 'settle', c['@msg_id'])
    time.sleep(1.2)                 # the late claim reply is in

    left = [k for k in g.redis.keys('xregion:i:*')
            if g.redis.cli('GET', k).startswith('P')]
    a = g.post('/shortwait/medical/', b, caller=caller, port=g.test_port)
    got = decode_answer(sim, caller, a.body, 'settle')
    assert got['@status'] == 'ok', (
        'the retry 1.2 s after the deadline got %r %r; claims left in '
        'flight in Redis: %s (pttl %s ms)'
        % (got.get('@err_code'), got.get('@err_msg'), left,
           [g.redis.cli('PTTL', k) for k in left]))
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1


# ---- 6. Sentinel failover ------------------------------------------------

SENTINEL_CONF = '''sentinel monitor xr 127.0.0.1 %d 1
sentinel down-after-milliseconds xr 1000
sentinel failover-timeout xr 3000
sentinel parallel-syncs xr 1
'''


def redis_role(r):
    out = r.cli('ROLE').splitlines()
    return out[0] if out else ''


def test_sentinel_failover(module_so, sim, stack):
    wd = make_workdir('sentinel')
    master = stack.push(Redis(wd).start())
    replica = stack.push(Redis(wd, extra=['--replicaof', '127.0.0.1',
                                          str(master.port)]).start())
    wait_for(lambda: 'master_link_status:up'
             in replica.cli('INFO', 'replication'), 15, 'the replica')
    sentinel = stack.push(Redis(wd, sentinel=True,
                                conf=SENTINEL_CONF % master.port).start())
    wait_for(lambda: str(replica.port) in sentinel.cli('SENTINEL', 'replicas',
                                                      'xr'),
             15, 'the sentinel to know the replica')
    assert redis_role(replica) == 'slave'

    via = 'master=xr sentinel=127.0.0.1:%d' % sentinel.port
    g1 = stack.push(start_gateway(module_so, sim, 'sent1', redis_args=via))
    g2 = stack.push(start_gateway(module_so, sim, 'sent2', redis_args=via))
    # a gateway pointed at the replica itself (no sentinel)
    g3 = stack.push(start_gateway(module_so, sim, 'toreplica',
                                  redis_args='127.0.0.1:%d' % replica.port))
    for g in (g1, g2):
        wait_ready(g)
    caller = 'shanghai.medical'

    # the replica is never written: ROLE says slave, money is refused
    wait_for(lambda: 'is not a master (ROLE: slave)' in g3.log(), 5,
             'the ROLE check')
    c, b = settle(sim, caller)
    expect_error(sim, caller, g3.post('/xr/medical/', b, caller=caller),
                 'XR-BUSY-RETRY', 'settle', c['@msg_id'], g3)
    assert sim.received('zhejiang.medical', c['@msg_id']) == []
    assert 'is ready' not in g3.log()

    # before: through the sentinel to the master, replicated
    c0, b0 = settle(sim, caller)
    ans0 = ok_answer(sim, caller, g1.post('/xr/medical/', b0, caller=caller),
                     'settle', c0['@msg_id'])
    key0, = [k for k in master.keys('xregion:i:*')]
    wait_for(lambda: replica.cli('GET', key0).startswith('D'), 5,
             'the record on the replica')

    master.stop(kill=True)
    t0 = time.monotonic()

    # settles work again through both gateways, without a reload
    fresh = {}
    for g in (g1, g2):
        c, b = settle(sim, caller)
        post_until(g, '/xr/medical/', b, caller,
                   is_ok(sim, caller, 'settle'), 30 - (time.monotonic() - t0))
        fresh[g.port] = c['@msg_id']
    for g in (g1, g2):
        wait_for(lambda: len(per_worker(g.log(), UP_LINE)) == 2,
                 max(1, 30 - (time.monotonic() - t0)),
                 'every worker of %d on the new master' % g.port)
    took = time.monotonic() - t0
    assert redis_role(replica) == 'master'
    for g in (g1, g2):
        up = [ln for ln in g.log().splitlines() if re.search(UP_LINE, ln)]
        assert all('redis 127.0.0.1:%d ' % replica.port in ln
                   for ln in up), up

    # the new master holds the record from before, and the new ones
    assert replica.cli('GET', key0).startswith('D')
    ans0b = ok_answer(sim, caller, g2.post('/xr/medical/', b0,
                                           caller=caller),
                      'settle', c0['@msg_id'])
    assert fields(ans0b, SETTLE_FIELDS) == fields(ans0, SETTLE_FIELDS)
    assert len(sim.received('zhejiang.medical', c0['@msg_id'])) == 1
    assert len(replica.keys('xregion:i:*')) >= 3

    # one new settlement at both gateways at once: settled once
    c, b = settle(sim, caller)
    sim.fault('zhejiang.medical', 'delay', ms=300)
    barrier = threading.Barrier(2)
    out = {}

    def go(g):
        barrier.wait(5)
        out[g.port] = g.post('/xr/medical/', b, caller=caller)

    ts = [threading.Thread(target=go, args=(g,)) for g in (g1, g2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(15)
    got = [fields(ok_answer(sim, caller, out[g.port], 'settle',
                            c['@msg_id']), SETTLE_FIELDS) for g in (g1, g2)]
    assert got[0] == got[1] and 'setl_id' in got[0]
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1
    wait_for(lambda: sum(len(access_lines(g, c['@msg_id']))
                         for g in (g1, g2)) == 2, 5, 'both access log lines')
    kinds = sorted(v['idempotency'] for g in (g1, g2)
                   for v in access_lines(g, c['@msg_id']))
    assert kinds in (['NEW', 'WAITED'], ['NEW', 'REPLAY']), kinds
    assert took < 30


def test_master_demoted_under_the_gateway(module_so, sim, stack):
    """No Sentinel: the Redis the gateway writes to becomes a replica
    (REPLICAOF).  A write answered READONLY drops the connection, the ROLE
    check keeps it off the replica (money refused, nothing sent), and
    REPLICAOF NO ONE brings it back without a reload."""
    wd = make_workdir('redis-demote')
    other = stack.push(Redis(wd).start())
    r = stack.push(Redis(wd).start())
    g = stack.push(start_gateway(module_so, sim, 'demote',
                                 redis_port=r.port))
    wait_ready(g)
    caller = 'shanghai.medical'
    c, b = settle(sim, caller)
    ok_answer(sim, caller, g.post('/xr/medical/', b, caller=caller),
              'settle', c['@msg_id'])

    assert r.cli('REPLICAOF', '127.0.0.1', other.port) == 'OK'
    wait_for(lambda: redis_role(r) == 'slave', 5, 'the demotion')

    # each worker finds out with its first write (READONLY) or its ROLE
    refused = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        c, b = settle(sim, caller)
        a = g.post('/xr/medical/', b, caller=caller)
        expect_error(sim, caller, a, 'XR-BUSY-RETRY', 'settle', c['@msg_id'])
        refused.append(c['@msg_id'])
        if len(per_worker(g.log(), DOWN_LINE)) == 2 and len(refused) >= 4:
            break
        time.sleep(0.1)
    assert 'no longer the master (READONLY)' in g.log()
    assert len(per_worker(g.log(), DOWN_LINE)) == 2
    for i in refused:
        assert sim.received('zhejiang.medical', i) == []
    wait_for(lambda: 'is not a master (ROLE: slave)' in g.log(), 5,
             'the ROLE check on the way back')

    assert r.cli('REPLICAOF', 'NO', 'ONE') == 'OK'
    c, b = settle(sim, caller)
    post_until(g, '/xr/medical/', b, caller, is_ok(sim, caller, 'settle'), 10)
    wait_for(lambda: len(per_worker(g.log(), UP_LINE)) == 2, 10,
             'both workers back')
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1


@pytest.mark.parametrize('where', ['tcp', 'unix'])
def test_password_db_prefix(module_so, sim, stack, where):
    """password=, db= and prefix= reach Redis (AUTH, SELECT, key names),
    over TCP and a unix socket; a wrong password is an outage."""
    wd = make_workdir('redis-auth')
    sock = os.path.join(wd, 'redis.sock')
    r = stack.push(Redis(wd, extra=['--requirepass', 's3cret',
                                    '--unixsocket', sock,
                                    '--unixsocketperm', '777']).start())
    addr = '127.0.0.1:%d' % r.port if where == 'tcp' else 'unix:' + sock
    g = stack.push(start_gateway(
        module_so, sim, 'auth',
        redis_args='%s db=3 password=s3cret prefix=gw7:' % addr))
    bad = stack.push(start_gateway(
        module_so, sim, 'badauth',
        redis_args='%s password=wrong' % addr))
    wait_ready(g, timeout=4)
    caller = 'shanghai.medical'

    c, b = settle(sim, caller)
    ok_answer(sim, caller, g.post('/xr/medical/', b, caller=caller),
              'settle', c['@msg_id'])
    ok_answer(sim, caller, g.post('/xr/medical/', b, caller=caller),
              'settle', c['@msg_id'])
    assert idem_kinds(g, c['@msg_id'], 2) == ['NEW', 'REPLAY']
    assert len(sim.received('zhejiang.medical', c['@msg_id'])) == 1

    def keys(db):
        return r.cli('-a', 's3cret', '--no-auth-warning', '-n', db,
                     '--scan').split()
    got = keys(3)
    # the example's rate limit counts (gw7:l:...) live a few ms at its rates
    assert all(k.startswith('gw7:l:') for k in got
               if not k.startswith('gw7:i:')), got
    got = [k for k in got if not k.startswith('gw7:l:')]
    assert len(got) == 1 and got[0].startswith('gw7:i:medical:settle:'), got
    assert keys(0) == []

    wait_for(lambda: 'refused AUTH' in bad.log(), 5, 'the refused AUTH')
    c, b = settle(sim, caller)
    expect_error(sim, caller, bad.post('/xr/medical/', b, caller=caller),
                 'XR-BUSY-RETRY', 'settle', c['@msg_id'])
    assert sim.received('zhejiang.medical', c['@msg_id']) == []


# ---- 7. the replay guard -----------------------------------------------------

def test_replay_guard(rgw, sim, redis):
    caller = 'shanghai.medical'
    nonce = 'n-' + digits(16)
    now = int(time.time())

    def send(hdrs, who=caller):
        c, b = settle(sim, who)
        return c, rgw.post('/replay/medical/', b, caller=who,
                           port=rgw.test_port, headers=hdrs)

    good = {'X-Xregion-Nonce': nonce, 'X-Xregion-Timestamp': str(now)}
    c, a = send(good)
    ok_answer(sim, caller, a, 'settle', c['@msg_id'])

    refused = []
    for hdrs, words in [
            (good, 'already used'),
            ({'X-Xregion-Timestamp': str(now)}, 'no nonce'),
            ({'X-Xregion-Nonce': 'n-' + digits(16)}, 'no timestamp'),
            ({'X-Xregion-Nonce': 'n-' + digits(16),
              'X-Xregion-Timestamp': str(now - 600)}, 'not within 60 s'),
            ({'X-Xregion-Nonce': 'n-' + digits(16),
              'X-Xregion-Timestamp': str(now + 600)}, 'not within 60 s')]:
        c, a = send(hdrs)
        ans = expect_error(sim, caller, a, 'XR-REPLAY', 'settle',
                           c['@msg_id'], rgw)
        assert words in ans.get('@err_msg', ''), (words, ans)
        refused.append(c['@msg_id'])
    for i in refused:
        assert sim.received('zhejiang.medical', i) == []

    key = 'xregion:n:%s:%s' % (caller, nonce)
    assert redis.cli('EXISTS', key) == '1'
    assert 110000 < pttl(redis, key) <= 120000       # twice the window

    # nonces are per caller profile
    c, a = send(good, who='anhui.medical')
    ok_answer(sim, 'anhui.medical', a, 'settle', c['@msg_id'])


# ---- 8. nginx -t ---------------------------------------------------------

LOC = '            xregion_caller_profile shanghai.medical;\n'


@pytest.mark.parametrize('http,location,needle,words', [
    ('', LOC + '            xregion_cache_ttl no_such_txn 1s;',
     'no_such_txn', 'has no transaction "no_such_txn"'),
    ('', LOC + '            xregion_cache_ttl settle 1s;',
     'xregion_cache_ttl settle', 'transaction "settle" is not marked "cache"'),
    ('    xregion_redis sentinel=127.0.0.1:26379;\n', LOC,
     'xregion_redis sentinel', '"sentinel=" needs "master="'),
    ('    xregion_redis master=xr;\n', LOC,
     'xregion_redis master', '"master=" needs at least one "sentinel="'),
    ('    xregion_redis 127.0.0.1:6379 bogus=1;\n', LOC,
     'bogus=1', 'invalid parameter "bogus=1"'),
], ids=['unknown-txn', 'not-cacheable', 'sentinel-no-master',
        'master-no-sentinel', 'bad-parameter'])
def test_conf_errors(module_so, http, location, needle, words):
    p, path, conf = nginx_t(module_so, http, location)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr
    assert '%s:%d' % (path, line_of(conf, needle)) in p.stderr, p.stderr


def test_conf_replay_guard_needs_redis(module_so):
    guard = ('            xregion_replay_guard window=60s '
             'nonce=$http_x_n timestamp=$http_x_t;')
    p, path, conf = nginx_t(module_so, '', LOC + guard)
    assert p.returncode != 0
    assert '"xregion_replay_guard" needs "xregion_redis"' in p.stderr, \
        p.stderr
    assert re.search(re.escape(path) + r':\d+', p.stderr), p.stderr

    # the same with xregion_redis, a per-txn TTL and Sentinel: accepted
    p, path, conf = nginx_t(
        module_so, '    xregion_redis master=xr sentinel=127.0.0.1:26379 '
                   'sentinel=127.0.0.1:26380 timeout=300ms;\n',
        LOC + guard + '\n            xregion_cache_ttl person_info 1s;')
    assert p.returncode == 0, p.stderr
