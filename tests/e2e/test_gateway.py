"""End-to-end tests of the gateway: nginx + the xregion module + the regional
simulator (fixtures in conftest.py).

Requests are built from the fixtures in tests/fixtures/messages/ with the
simulator's own codec (an implementation independent of the C core): the
caller's fixture is decoded, pointed at another region and written again in
the caller's format.  What the destination received is read back from the
simulator's log and decoded with the destination's profile; what the caller
got back is decoded with the caller's.
"""

import copy
import datetime as dt
import glob
import itertools
import json
import os
import re
import shutil
import socket
import threading
import time

import pytest

from conftest import (CONFIG_DIR, ROOT, Answer, Nginx, b64, free_port,
                      make_workdir, render_example, wait_for, xrsim)

REGIONS = {
    'shanghai': '310000', 'jiangsu': '320000', 'zhejiang': '330000',
    'anhui': '340000', 'beijing': '110000', 'tianjin': '120000',
    'hebei': '130000',
}

# a GB/T 13497 city code in each region (config/tables/citycode.conf)
CITY = {
    'shanghai': '2900', 'jiangsu': '3010', 'zhejiang': '3310',
    'anhui': '3610', 'beijing': '1000', 'tianjin': '1121', 'hebei': '1210',
}

# the transaction each domain's exchange tests use
TXN = {'medical': 'settle', 'transit': 'card_status', 'gov': 'card_status'}

DOMAINS = ('medical', 'transit', 'gov')

PAIRS = [(d, c, t) for d in DOMAINS for c in REGIONS for t in REGIONS
         if c != t]

_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _clean_faults(request):
    """A fault a test set up ends with the test."""
    yield
    if 'sim' in request.fixturenames:
        request.getfixturevalue('sim').clear_faults()


@pytest.fixture(autouse=True)
def _no_cached_answers(request):
    """Each test starts with no cached answer: these tests ask the same
    cards and credentials again and expect the destination to see them
    (tests/e2e/test_redis.py tests the cache itself)."""
    if 'gateway' in request.fixturenames \
            or 'alt_gateway' in request.fixturenames:
        r = request.getfixturevalue('redis')
        for key in r.keys('xregion:c:*'):
            r.cli('DEL', key)
    yield


def error_table():
    """XR error name -> HTTP status, from the one table (core/xr_error.c)."""
    with open(os.path.join(ROOT, 'core', 'xr_error.c')) as f:
        text = f.read()
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r'\{\s*"(XR-[A-Z-]+)",\s*(\d+)', text)}


XR_STATUS = error_table()


def fixture(domain, profile, txn, kind='request'):
    files = glob.glob(os.path.join(ROOT, 'tests', 'fixtures', 'messages',
                                   domain, profile, '%s.%s.*' % (txn, kind)))
    assert files, 'no fixture %s/%s/%s.%s' % (domain, profile, txn, kind)
    with open(files[0], 'rb') as f:
        return f.read()


def unique_id(msg_id):
    """The fixture's message id with a unique tail of the same length."""
    tail = '%06d' % (next(_seq) + (os.getpid() % 1000) * 1000)
    return msg_id[:-6] + tail[-6:] if len(msg_id) > 6 else tail[-len(msg_id):]


def retarget(canon, domain, region):
    """Points a canonical request at region, the way each domain routes."""
    if domain == 'medical':
        canon['@dest'] = REGIONS[region][:2] + '0100'    # a city there
    elif domain == 'gov':
        canon['@dest'] = REGIONS[region]
    else:
        canon['card_no'] = CITY[region] + canon['card_no'][4:]
        canon['issuer_city'] = CITY[region]


def build(sim, caller, domain, txn=None, dest=None, tweak=None):
    """(canonical, wire bytes) of a request of caller's fixture."""
    txn = txn or TXN[domain]
    codec = sim.codec(caller)
    canon = copy.deepcopy(codec.decode('request',
                                       fixture(domain, caller, txn)))
    canon['@msg_id'] = unique_id(canon['@msg_id'])
    if dest:
        retarget(canon, domain, dest)
    if tweak:
        tweak(canon)
    return canon, codec.encode('request', canon, txn)


def mapped(profile, txn, direction):
    """Canonical names a profile carries for txn in one direction."""
    ops = list(profile.env.get(direction, []))
    ops += profile.txns[txn].ops.get(direction, [])
    return {op.canon for op in ops if hasattr(op, 'canon')}


def media_type(ct):
    parts = [p.strip().lower() for p in (ct or '').split(';')]
    charset = [p.split('=', 1)[1] for p in parts[1:]
               if p.startswith('charset=')]
    return parts[0], (charset[0] if charset else None)


def same_content_type(got, want):
    g, w = media_type(got), media_type(want)
    return g[0] == w[0] and (g[1] is None or w[1] is None or g[1] == w[1])


def same_value(key, got, sent):
    if key == '@time' and isinstance(got, dt.datetime):
        # a destination may write coarser times than the caller (date only)
        return got == sent or (got.date() == sent.date()
                               and got.time() == dt.time(0, 0))
    return got == sent


# ---- every region calls, and is called by, every other one ------------------

@pytest.mark.parametrize('domain,caller,dest', PAIRS,
                         ids=['%s-%s-to-%s' % p for p in PAIRS])
def test_exchange(gateway, sim, domain, caller, dest):
    cp, dp, txn = '%s.%s' % (caller, domain), '%s.%s' % (dest, domain), \
        TXN[domain]
    canon, body = build(sim, cp, domain, dest=dest)

    a = gateway.post('/xr/%s/' % domain, body, caller=cp)
    assert a.status == 200, a.body[:300]

    # the destination got one request, in its own format
    entries = sim.received(dp, canon['@msg_id'])
    assert len(entries) == 1, 'destination %s saw %d requests' % (
        dp, len(entries))
    e = entries[0]
    assert e['txn'] == txn
    assert not e.get('error'), e.get('error')
    assert same_content_type(e['content_type'],
                             sim.config.profiles[dp].content_type_header())

    got = sim.codec(dp).decode('request', b64(e['raw_b64']))
    carried = mapped(sim.config.profiles[dp], txn, 'request')
    for k in carried:
        if k in canon:
            assert k in got, 'destination lacks %s' % k
            assert same_value(k, got[k], canon[k]), \
                '%s: destination got %r, caller sent %r' % (k, got[k],
                                                            canon[k])
    for k in got:
        if k in ('@domain',):
            continue
        assert k in canon, 'destination got %s=%r the caller never sent' % (
            k, got[k])

    # the caller hears the destination's answer in its own format
    assert same_content_type(a.header('Content-Type'),
                             sim.config.profiles[cp].content_type_header())
    ans = sim.codec(cp).decode('response', a.body, txn=txn)
    assert ans['@status'] == 'ok', ans
    if '@msg_id' in mapped(sim.config.profiles[cp], txn, 'response'):
        assert ans['@msg_id'] == canon['@msg_id']

    dest_ans = sim.codec(dp).decode('response', b64(e['answer_b64']), txn=txn)
    back = mapped(sim.config.profiles[cp], txn, 'response') \
        & mapped(sim.config.profiles[dp], txn, 'response')
    for k in back:
        if k.startswith('@') or k not in dest_ans:
            continue
        assert k in ans, 'the caller lacks %s' % k
        assert same_value(k, ans[k], dest_ans[k]), \
            '%s: caller got %r, destination answered %r' % (k, ans[k],
                                                             dest_ans[k])


@pytest.mark.parametrize('dest', ['jiangsu', 'hebei'])
def test_national_format_caller(gateway, sim, dest):
    """A hospital system speaking the national standard (no region of
    its own) calls through the same endpoint."""
    canon, body = build(sim, 'national.medical', 'medical', dest=dest)
    a = gateway.post('/xr/medical/', body, caller='national.medical')
    assert a.status == 200
    ans = sim.codec('national.medical').decode('response', a.body,
                                               txn='settle')
    assert ans['@status'] == 'ok', ans
    assert len(sim.received('%s.medical' % dest, canon['@msg_id'])) == 1


def test_amounts_to_the_fen(gateway, sim):
    """A yuan caller (shanghai) and a fen destination (anhui): every amount
    arrives to the fen."""
    def odd_amounts(c):
        c['total'] = type(c['total'])(45863)
        c['ownpay_amt'] = type(c['total'])(2846)
        c['inscp_amt'] = type(c['total'])(41787)
        c['preselfpay_amt'] = type(c['total'])(1)

    canon, body = build(sim, 'shanghai.medical', 'medical', dest='anhui',
                        tweak=odd_amounts)
    a = gateway.post('/xr/medical/', body, caller='shanghai.medical')
    assert a.status == 200
    e, = sim.received('anhui.medical', canon['@msg_id'])
    got = sim.codec('anhui.medical').decode('request', b64(e['raw_b64']))
    for k in ('total', 'ownpay_amt', 'inscp_amt', 'preselfpay_amt'):
        if k in got:
            assert int(got[k]) == int(canon[k]), k


def test_route_variables_in_access_log(gateway, sim):
    canon, body = build(sim, 'shanghai.medical', 'medical', dest='jiangsu')
    a = gateway.post('/xr/medical/', body, caller='shanghai.medical')
    assert a.status == 200
    line = wait_log_line(os.path.join(gateway.prefix, 'access.log'),
                         canon['@msg_id'])
    assert 'route=nanjing_medical' in line          # 3201 beats 32
    assert 'dest_profile=jiangsu.medical' in line
    assert 'caller=shanghai.medical' in line
    assert 'txn=settle' in line and 'outcome=ok' in line
    assert re.search(r'upstream_time=\d+\.\d{3}', line)


def wait_log_line(path, needle, timeout=5):
    found = []

    def look():
        with open(path, encoding='utf-8', errors='replace') as f:
            found[:] = [ln for ln in f if needle in ln]
        return bool(found)

    wait_for(look, timeout, '%s in %s' % (needle, path))
    return found[-1]


def test_large_body_through_a_temp_file(gateway, sim):
    """A trip batch of ~40 KB: nginx keeps the body in a temporary file."""
    def many_trips(c):
        trips = c['trips'] * 120
        c['trips'] = copy.deepcopy(trips)
        if 'trip_count' in c:
            c['trip_count'] = len(trips)
        if 'total' in c:
            c['total'] = type(c['total'])(sum(int(t['amount'])
                                              for t in trips))

    canon, body = build(sim, 'shanghai.transit', 'transit', txn='trip_upload',
                        tweak=many_trips)
    assert len(body) > 32 * 1024
    a = gateway.post('/xr/transit/', body, caller='shanghai.transit')
    assert a.status == 200
    ans = sim.codec('shanghai.transit').decode('response', a.body,
                                               txn='trip_upload')
    assert ans['@status'] == 'ok', ans
    e, = sim.received('zhejiang.transit', canon['@msg_id'])
    got = sim.codec('zhejiang.transit').decode('request', b64(e['raw_b64']))
    assert len(got['trips']) == len(canon['trips'])


# ---- failures, each in the caller's own error format ---------------------

# (caller profile, domain, destination region): JSON/UTF-8 with HTTP 200
# errors, XML/GBK, and fixed-width records with the errors' own statuses
CALLERS = [('shanghai.medical', 'medical', 'jiangsu'),
           ('anhui.medical', 'medical', 'beijing'),
           ('beijing.transit', 'transit', 'shanghai')]


def decode_answer(sim, caller, body, txn):
    """An answer in caller's format, as the caller reads it."""
    p = sim.config.profiles[caller]
    try:
        return sim.codec(caller).decode('response', body, txn=txn)
    except xrsim.XRError as e:
        if p.codec != 'fixed' or e.code != 'XR-TXN-UNKNOWN':
            raise
    # An error answer to a request the gateway could not read names no
    # transaction (a zero code): the header tells the rest.
    vals = {f.name: xrsim.fixed_get(f, body, 0, p.charset)
            for f in p.headers['response'].fields}
    assert vals.get('txn', '').strip('0 ') == '', vals
    result = vals[p.result[0]]
    return {'@status': 'ok' if result in p.result[1] else 'error',
            '@err_code': p.err_canon(result),
            '@err_msg': vals.get(p.message, '')}


def expect_error(sim, caller, a, code, txn=None, msg_id=None, gw=None):
    """a is caller's error answer for XR error code, in caller's format."""
    p = sim.config.profiles[caller]
    want_status = p.error_status or XR_STATUS[code]
    assert a.status == want_status, (a.status, a.body[:300])
    assert same_content_type(a.header('Content-Type'),
                             p.content_type_header())
    ans = decode_answer(sim, caller, a.body,
                        txn or TXN[p.name.split('.')[1]])
    assert ans['@status'] == 'error', ans
    assert ans['@err_code'] == p.err_canon(p.err_wire(code)), ans
    if msg_id and '@msg_id' in ans:
        assert ans['@msg_id'] == msg_id
    if gw is not None:
        log = gw.log()
        needle = 'xregion %s:' % code
        assert needle in log, 'no log line for %s' % code
        if msg_id:
            assert any(needle in ln and 'msg_id: "%s"' % msg_id in ln
                       for ln in log.splitlines()), \
                'the log line does not name msg_id %s' % msg_id
    return ans


@pytest.mark.parametrize('caller,domain,dest', CALLERS)
@pytest.mark.parametrize('mode,code', [
    ('http500', 'XR-UPSTREAM-ERROR'),
    ('garbage', 'XR-UPSTREAM-BAD-ANSWER'),
    ('drop', 'XR-UPSTREAM-ERROR'),
])
def test_destination_fault(gateway, sim, caller, domain, dest, mode, code):
    txn = TXN[domain]
    canon, body = build(sim, caller, domain, dest=dest)
    sim.fault('%s.%s' % (dest, domain), mode)
    a = gateway.post('/xr/%s/' % domain, body, caller=caller,
                     port=gateway.test_port)
    expect_error(sim, caller, a, code, txn, canon['@msg_id'], gateway)


@pytest.mark.parametrize('caller,domain,dest', CALLERS)
def test_upstream_timeout(gateway, sim, caller, domain, dest):
    """The destination is slower than proxy_read_timeout (1s)."""
    txn = TXN[domain]
    canon, body = build(sim, caller, domain, dest=dest)
    sim.fault('%s.%s' % (dest, domain), 'delay', ms=2500)
    t0 = time.monotonic()
    a = gateway.post('/xr/%s/' % domain, body, caller=caller,
                     port=gateway.test_port)
    assert time.monotonic() - t0 < 2.4
    expect_error(sim, caller, a, 'XR-UPSTREAM-TIMEOUT', txn,
                 canon['@msg_id'], gateway)


def test_deadline(gateway, sim):
    """xregion_timeout (1s) answers before proxy_read_timeout (6s); the late
    answer is dropped and the gateway goes on."""
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='zhejiang')
    sim.fault('zhejiang.medical', 'delay', ms=2000)
    t0 = time.monotonic()
    a = gateway.post('/deadline/', body, caller=caller,
                     port=gateway.test_port)
    took = time.monotonic() - t0
    assert 0.9 < took < 1.9, took
    expect_error(sim, caller, a, 'XR-UPSTREAM-TIMEOUT', 'settle',
                 canon['@msg_id'], gateway)
    assert (a.header('Connection') or '').lower() == 'close'

    wait_for(lambda: 'late answer' in gateway.log()
             and canon['@msg_id'] in gateway.log(), 5, 'the late answer')

    canon, body = build(sim, caller, 'medical', dest='zhejiang')
    a = gateway.post('/deadline/', body, caller=caller,
                     port=gateway.test_port)
    assert a.status == 200
    assert sim.codec(caller).decode('response', a.body,
                                    txn='settle')['@status'] == 'ok'


@pytest.mark.parametrize('delay', [300, 1500])
def test_client_goes_away(gateway, sim, delay):
    """The caller hangs up while the destination works (it answers before
    and after the 1s deadline): nothing breaks, the next caller is served."""
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='zhejiang')
    sim.fault('zhejiang.medical', 'delay', ms=delay)
    s = socket.create_connection(('127.0.0.1', gateway.test_port), timeout=5)
    s.sendall(b'POST /deadline/ HTTP/1.1\r\nHost: x\r\n'
              b'X-Xregion-Caller: shanghai.medical\r\n'
              b'Content-Length: %d\r\n\r\n%s' % (len(body), body))
    time.sleep(0.1)
    s.close()
    wait_for(lambda: len(sim.received('zhejiang.medical',
                                      canon['@msg_id'])) == 1, 5,
             'the destination')
    time.sleep(delay / 1000.0 + 0.3)

    canon, body = build(sim, caller, 'medical', dest='zhejiang')
    a = gateway.post('/deadline/', body, caller=caller,
                     port=gateway.test_port)
    assert a.status == 200
    assert sim.codec(caller).decode('response', a.body,
                                    txn='settle')['@status'] == 'ok'


def test_business_refusal(gateway, sim):
    """A destination's refusal is its answer: passed on, in the caller's
    format and error code."""
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='jiangsu')
    sim.fault('jiangsu.medical', 'business_error')
    a = gateway.post('/xr/medical/', body, caller=caller)
    assert a.status == 200
    ans = sim.codec(caller).decode('response', a.body, txn='settle')
    assert ans['@status'] == 'error'
    assert ans['@msg_id'] == canon['@msg_id']
    assert '模拟业务拒绝' in ans.get('@err_msg', '')


def test_answer_too_large(gateway, sim):
    """An answer over subrequest_output_buffer_size (64 bytes here)."""
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='jiangsu')
    a = gateway.post('/tiny/', body, caller=caller, port=gateway.test_port)
    expect_error(sim, caller, a, 'XR-UPSTREAM-BAD-ANSWER', 'settle',
                 canon['@msg_id'], gateway)


@pytest.mark.parametrize('caller,domain,dest', CALLERS)
def test_malformed_body(gateway, sim, caller, domain, dest):
    canon, body = build(sim, caller, domain, dest=dest)
    before = len(sim.log())
    a = gateway.post('/xr/%s/' % domain, body[:len(body) // 2] + b'\x01\xff',
                     caller=caller)
    p = sim.config.profiles[caller]
    assert a.status in (p.error_status or 400, 400)
    ans = decode_answer(sim, caller, a.body, TXN[domain])
    assert ans['@status'] == 'error'
    assert ans['@err_code'] in {p.err_canon(p.err_wire(c)) for c in (
        'XR-SYNTAX', 'XR-TRUNCATED', 'XR-CHARSET', 'XR-FIELD-FORMAT',
        'XR-FIELD-MISSING', 'XR-FIELD-TYPE', 'XR-TXN-UNKNOWN',
        'XR-CODE-UNMAPPED', 'XR-FIELD-TOO-LONG')}
    assert len(sim.log()) == before, 'garbage was forwarded'


@pytest.mark.parametrize('caller,domain,dest', CALLERS)
def test_empty_body(gateway, sim, caller, domain, dest):
    a = gateway.post('/xr/%s/' % domain, b'', caller=caller)
    expect_error(sim, caller, a, 'XR-BODY-EMPTY', gw=gateway)


@pytest.mark.parametrize('caller,domain,dest', CALLERS)
def test_unknown_region(gateway, sim, caller, domain, dest):
    def nowhere(c):
        if domain == 'transit':
            c['card_no'] = '9999' + c['card_no'][4:]
            c['issuer_city'] = '9999'
        else:
            c['@dest'] = '990100'

    canon, body = build(sim, caller, domain, tweak=nowhere)
    a = gateway.post('/xr/%s/' % domain, body, caller=caller)
    expect_error(sim, caller, a, 'XR-REGION-UNKNOWN', TXN[domain],
                 canon['@msg_id'], gateway)


@pytest.mark.parametrize('caller,domain,dest', CALLERS)
def test_body_too_large(gateway, sim, caller, domain, dest):
    limit = 4 << 20 if domain == 'transit' else 1 << 20
    a = gateway.post('/xr/%s/' % domain, b' ' * (limit + 1), caller=caller)
    expect_error(sim, caller, a, 'XR-BODY-TOO-LARGE', gw=gateway)


def test_body_too_large_chunked(gateway, sim):
    """No Content-Length: the size is known only while reading."""
    caller = 'shanghai.medical'
    s = socket.create_connection(('127.0.0.1', gateway.port), timeout=20)
    try:
        s.sendall(b'POST /xr/medical/ HTTP/1.1\r\nHost: x\r\n'
                  b'X-Xregion-Caller: shanghai.medical\r\n'
                  b'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n')
        chunk = b'{' + b' ' * 65535
        for _ in range(20):                     # 1.25 MiB
            s.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))
        s.sendall(b'0\r\n\r\n')
        data = b''
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    status = int(head.split()[1])
    ct = re.search(rb'(?i)content-type: *([^\r]*)', head).group(1).decode()
    expect_error(sim, caller, Answer(status, [('Content-Type', ct)], body),
                 'XR-BODY-TOO-LARGE', gw=gateway)


def test_small_limit_after_reading(gateway, sim):
    """xregion_max_body 2k: a 3 KB body with Content-Length."""
    caller = 'shanghai.medical'
    a = gateway.post('/small/', b'{' + b' ' * 3000 + b'}', caller=caller,
                     port=gateway.test_port)
    expect_error(sim, caller, a, 'XR-BODY-TOO-LARGE', gw=gateway)


def test_caller_not_identified(gateway, sim):
    canon, body = build(sim, 'shanghai.medical', 'medical', dest='jiangsu')
    for hdr in (None, 'nobody.medical'):
        a = gateway.post('/xr/medical/', body, caller=hdr)
        assert a.status == 401
        assert a.header('Content-Type').startswith('application/json')
        assert b'"code":"XR-UNAUTHORIZED"' in a.body


def test_caller_profile_per_request(gateway, sim):
    canon, body = build(sim, 'shanghai.medical', 'medical', dest='jiangsu')
    a = gateway.post('/xr/medical/', body, caller='nosuch.medical',
                     port=gateway.test_port)
    assert a.status == 400 and b'XR-PROFILE-UNKNOWN' in a.body
    # the name keeps its quotes in the message, escaped as JSON
    assert json.loads(a.body)['message'] == \
        'unknown caller profile "nosuch.medical"'
    a = gateway.post('/xr/medical/', body, caller='shanghai.gov',
                     port=gateway.test_port)
    assert a.status == 400 and b'XR-DOMAIN-MISMATCH' in a.body


def test_static_caller_profile(gateway, sim):
    canon, body = build(sim, 'shanghai.medical', 'medical', dest='hebei')
    a = gateway.post('/static/', body, port=gateway.test_port)
    assert a.status == 200
    ans = sim.codec('shanghai.medical').decode('response', a.body,
                                               txn='settle')
    assert ans['@status'] == 'ok'


def test_pass_location_does_not_proxy(gateway, sim):
    """xregion_pass names no proxying location: an error, not garbage."""
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='jiangsu')
    a = gateway.post('/noproxy/', body, caller=caller,
                     port=gateway.test_port)
    expect_error(sim, caller, a, 'XR-UPSTREAM-ERROR', 'settle',
                 canon['@msg_id'], gateway)
    assert 'does not proxy' in gateway.log()


def test_post_only(gateway):
    a = gateway.post('/xr/medical/', None, caller='shanghai.medical',
                     method='GET')
    assert a.status == 405


# ---- a gateway with a missing route and a dead upstream -------------------

@pytest.fixture(scope='module')
def alt_gateway(module_so, sim, redis):
    prefix = make_workdir('alt')
    port, dead = free_port(), free_port()

    def edit(text):
        text = text.replace('    xregion_route medical 13 hebei_medical;\n',
                            '')
        return re.sub(r'(upstream tianjin_medical\s*\{\s*server 127\.0\.0\.1:)'
                      r'@SIM_PORT_tianjin\.medical@', r'\g<1>%d' % dead, text)

    conf = render_example(module_so, sim.ports, prefix, port, edit=edit,
                          redis_port=redis.port)
    assert 'hebei_medical;' not in conf.split('xregion_route medical 12')[1] \
        .split('xregion_route transit')[0]
    g = Nginx(prefix, conf, port).start()
    yield g
    g.stop()


@pytest.mark.parametrize('caller', ['shanghai.medical', 'anhui.medical'])
def test_no_route(alt_gateway, sim, caller):
    canon, body = build(sim, caller, 'medical', dest='hebei')
    a = alt_gateway.post('/xr/medical/', body, caller=caller)
    expect_error(sim, caller, a, 'XR-NO-ROUTE', 'settle', canon['@msg_id'],
                 alt_gateway)


@pytest.mark.parametrize('caller', ['shanghai.medical', 'anhui.medical'])
def test_upstream_refused(alt_gateway, sim, caller):
    canon, body = build(sim, caller, 'medical', dest='tianjin')
    a = alt_gateway.post('/xr/medical/', body, caller=caller)
    expect_error(sim, caller, a, 'XR-UPSTREAM-REFUSED', 'settle',
                 canon['@msg_id'], alt_gateway)


# ---- reload under load ------------------------------------------------------

def test_reload_under_load(gateway, sim):
    caller = 'shanghai.medical'
    results, errors = [], []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                canon, body = build(sim, caller, 'medical', dest='zhejiang')
                a = gateway.post('/xr/medical/', body, caller=caller)
                ans = sim.codec(caller).decode('response', a.body,
                                               txn='settle')
                results.append((a.status, ans['@status'],
                                ans.get('@msg_id') == canon['@msg_id']))
            except Exception as e:      # noqa: BLE001 (reported below)
                errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(0.7)
            gateway.reload()
        time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not errors, errors[:5]
    assert len(results) > 10
    assert all(r == (200, 'ok', True) for r in results), \
        [r for r in results if r != (200, 'ok', True)][:5]


# ---- nginx -t: configuration errors name file:line ------------------------

MINI = '''
load_module %(module)s;
error_log %(prefix)s/error.log info;
pid %(prefix)s/nginx.pid;
events { }
http {
    client_body_temp_path %(prefix)s/client_body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    xregion_config %(config)s;
    upstream jiangsu_medical { server 127.0.0.1:9; }
    upstream shanghai_medical { server 127.0.0.1:9; }
%(http)s
    server {
        listen 127.0.0.1:%(port)d;
        location /xr/medical/ {
            xregion medical;
%(location)s
        }
    }
}
'''


def nginx_t(module_so, http='', location=None, config=CONFIG_DIR):
    prefix = make_workdir('conf')
    if location is None:
        location = '            xregion_caller_profile shanghai.medical;'
    conf = MINI % {'module': module_so, 'prefix': prefix, 'config': config,
                   'http': http, 'location': location, 'port': free_port()}
    path = os.path.join(prefix, 'nginx.conf')
    with open(path, 'w') as f:
        f.write(conf)
    p = Nginx(prefix, conf, 0).test()
    return p, path, conf


def line_of(conf, needle):
    for n, ln in enumerate(conf.splitlines(), 1):
        if needle in ln:
            return n
    raise AssertionError(needle)


def test_conf_ok(module_so):
    p, path, conf = nginx_t(module_so,
                            '    xregion_route medical 32 jiangsu_medical;\n')
    assert p.returncode == 0, p.stderr


def test_conf_limit_except_refused(module_so):
    # limit_except would send POST to a location with no handler
    location = ('            xregion_caller_profile shanghai.medical;\n'
                '            limit_except POST { deny all; }')
    p, path, conf = nginx_t(module_so,
                            '    xregion_route medical 32 jiangsu_medical;\n',
                            location=location)
    assert p.returncode != 0
    assert '"limit_except" cannot be used in an xregion location' in p.stderr
    assert '%s:%d' % (path, line_of(conf, 'xregion medical;')) in p.stderr


def test_conf_example_ok(module_so, sim):
    prefix = make_workdir('example')
    conf = render_example(module_so, sim.ports, prefix, free_port())
    p = Nginx(prefix, conf, 0).test()
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize('http,needle,words', [
    ('    xregion_route medical 32 nosuch_upstream;\n',
     'medical 32 nosuch_upstream;', 'unknown upstream "nosuch_upstream"'),
    ('    xregion_route medical 32 jiangsu_medical;\n'
     '    xregion_route medical 32 shanghai_medical;\n',
     'medical 32 shanghai_medical;', 'overlaps'),
    ('    xregion_route medical txn=nosuch 32 jiangsu_medical;\n',
     'medical txn=nosuch 32', 'no transaction "nosuch"'),
    ('    xregion_route weather 32 jiangsu_medical;\n',
     'xregion_route weather 32', 'unknown xregion domain "weather"'),
    ('    xregion_route medical 3x jiangsu_medical;\n',
     'medical 3x jiangsu_medical;', 'invalid region prefix'),
    ('    xregion_dest_profile jiangsu medical jiangsu.gov;\n',
     'xregion_dest_profile jiangsu', 'belongs to domain "gov"'),
])
def test_conf_route_errors(module_so, http, needle, words):
    p, path, conf = nginx_t(module_so, http)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr
    assert '%s:%d' % (path, line_of(conf, needle)) in p.stderr, p.stderr


def test_conf_overlap_names_both_lines(module_so):
    p, path, conf = nginx_t(module_so,
                            '    xregion_route medical 32 jiangsu_medical;\n'
                            '    xregion_route medical 32 shanghai_medical;\n')
    assert '%s:%d' % (path, line_of(conf, '32 jiangsu_medical')) in p.stderr
    assert '%s:%d' % (path, line_of(conf, '32 shanghai_medical')) in p.stderr


@pytest.mark.parametrize('location,words', [
    ('            xregion_caller_profile nosuch.medical;',
     'unknown xregion profile "nosuch.medical"'),
    ('            xregion_caller_profile shanghai.gov;',
     'belongs to domain "gov"'),
])
def test_conf_caller_profile_errors(module_so, location, words):
    p, path, conf = nginx_t(module_so, location=location)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr
    assert '%s:%d' % (path, line_of(conf, 'xregion_caller_profile')) \
        in p.stderr, p.stderr


def test_conf_caller_profile_missing(module_so):
    p, path, conf = nginx_t(module_so, location='')
    assert p.returncode != 0
    assert '"xregion_caller_profile" is not set' in p.stderr
    assert '%s:%d' % (path, line_of(conf, 'xregion medical;')) in p.stderr


def test_conf_bad_profile(module_so, tmp_path):
    """A broken profile file: the loader's file:line and the directive's."""
    cfg = tmp_path / 'config'
    shutil.copytree(CONFIG_DIR, cfg)
    prof = cfg / 'profiles' / 'jiangsu.medical.conf'
    lines = prof.read_text(encoding='utf-8').splitlines(True)
    for i, ln in enumerate(lines):
        if ln.lstrip().startswith('map ') and '@' not in ln:
            lines[i] = ln.replace('map ', 'map nosuch_field_x ', 1)
            bad_line = i + 1
            break
    prof.write_text(''.join(lines), encoding='utf-8')
    p, path, conf = nginx_t(module_so, config=str(cfg))
    assert p.returncode != 0
    assert '%s:%d' % (prof, bad_line) in p.stderr, p.stderr
    assert '%s:%d' % (path, line_of(conf, 'xregion_config')) in p.stderr


def test_conf_config_dir_missing(module_so, tmp_path):
    p, path, conf = nginx_t(module_so, config=str(tmp_path / 'nothing'))
    assert p.returncode != 0
    assert '%s:%d' % (path, line_of(conf, 'xregion_config')) in p.stderr


# ---- answers the simulator does not give: a scripted destination -----------

def real_answer(gateway, sim, caller='shanghai.medical', dest='jiangsu'):
    """A destination's answer to a settle, as the simulator writes it."""
    canon, body = build(sim, caller, 'medical', dest=dest)
    a = gateway.post('/xr/medical/', body, caller=caller)
    assert a.status == 200
    e, = sim.received('%s.medical' % dest, canon['@msg_id'])
    return b64(e['answer_b64'])


def chunked(*parts):
    return b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in parts if p)


def scripted_exchange(gateway, sim, answer, caller='shanghai.medical'):
    gateway.scripted.answer = answer
    canon, body = build(sim, caller, 'medical', dest='jiangsu')
    a = gateway.post('/scripted/', body, caller=caller,
                     port=gateway.test_port)
    return canon, a


def test_scripted_chunked_answer(gateway, sim):
    """A complete chunked answer (no Content-Length) is translated."""
    ans = real_answer(gateway, sim)
    canon, a = scripted_exchange(
        gateway, sim, b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        + chunked(ans[:10], ans[10:]) + b'0\r\n\r\n')
    assert a.status == 200, a.body[:300]
    got = sim.codec('shanghai.medical').decode('response', a.body,
                                               txn='settle')
    assert got['@status'] == 'ok' and got['@msg_id'] == canon['@msg_id']


def test_answer_cut_short_chunked(gateway, sim):
    """A chunked answer that ends before its last chunk is cut short, as
    one that ends before its Content-Length: XR-UPSTREAM-ERROR."""
    ans = real_answer(gateway, sim)
    canon, a = scripted_exchange(
        gateway, sim, b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        + chunked(ans[:len(ans) // 2]))
    expect_error(sim, 'shanghai.medical', a, 'XR-UPSTREAM-ERROR', 'settle',
                 canon['@msg_id'], gateway)


def test_answer_cut_short_content_length(gateway, sim):
    ans = real_answer(gateway, sim)
    canon, a = scripted_exchange(
        gateway, sim, b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s'
        % (len(ans), ans[:len(ans) // 2]))
    expect_error(sim, 'shanghai.medical', a, 'XR-UPSTREAM-ERROR', 'settle',
                 canon['@msg_id'], gateway)


def test_answer_too_large_chunked(gateway, sim):
    """Over subrequest_output_buffer_size (4k) with no Content-Length: the
    body filter, not the header filter, refuses it."""
    ans = real_answer(gateway, sim)
    pad = b' ' * 2000
    canon, a = scripted_exchange(
        gateway, sim, b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        + chunked(pad, pad, pad, ans) + b'0\r\n\r\n')
    expect_error(sim, 'shanghai.medical', a, 'XR-UPSTREAM-BAD-ANSWER',
                 'settle', canon['@msg_id'], gateway)


def test_body_too_large_names_its_size(gateway, sim):
    """The refusal of a Content-Length over the limit says how large the
    body was (discarding it must not change the number)."""
    caller = 'shanghai.medical'
    body = b'{' + b' ' * 3000 + b'}'
    # headers and body in one write: nginx reads the body with the headers
    a = raw_exchange(gateway.test_port,
                     b'POST /small/ HTTP/1.1\r\nHost: x\r\n'
                     b'X-Xregion-Caller: %s\r\nContent-Length: %d\r\n'
                     b'Connection: close\r\n\r\n%s'
                     % (caller.encode(), len(body), body))
    ans = expect_error(sim, caller, a, 'XR-BODY-TOO-LARGE', gw=gateway)
    assert 'message of 3002 bytes' in ans.get('@err_msg', ''), ans


def raw_exchange(port, data):
    """One request written at once; the answer read to the connection's
    end."""
    s = socket.create_connection(('127.0.0.1', port), timeout=20)
    try:
        s.sendall(data)
        out = b''
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    finally:
        s.close()
    head, _, body = out.partition(b'\r\n\r\n')
    status = int(head.split()[1])
    ct = re.search(rb'(?i)content-type: *([^\r]*)', head).group(1).decode()
    return Answer(status, [('Content-Type', ct)], body)


def test_caller_name_is_clean_in_the_log(gateway, sim):
    """A caller profile chosen per request comes from the caller's bytes:
    the log line does not carry its control characters."""
    canon, body = build(sim, 'shanghai.medical', 'medical', dest='jiangsu')
    a = raw_exchange(gateway.test_port,
                     b'POST /xr/medical/ HTTP/1.1\r\nHost: x\r\n'
                     b'X-Xregion-Caller: evil\x1b[31m.medical\r\n'
                     b'Content-Length: %d\r\nConnection: close\r\n\r\n%s'
                     % (len(body), body))
    assert a.status == 400 and b'XR-PROFILE-UNKNOWN' in a.body
    lines = [ln for ln in gateway.log().splitlines()
             if 'XR-PROFILE-UNKNOWN' in ln and 'evil' in ln]
    assert lines
    assert not any('\x1b' in ln for ln in lines), lines[-1]
