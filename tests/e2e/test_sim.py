"""End-to-end tests of the regional simulators (tests/sim/xrsim.py).

The simulator runs as a subprocess on free loopback ports; every profile and
every transaction that has a request fixture in
tests/fixtures/messages/<domain>/<profile>/<txn>.request.* is exercised, and
the answers are decoded with the simulator's own (independent) decoder.

    python3 -m pytest -q tests/e2e/test_sim.py
"""

import base64
import datetime as dt
import glob
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIM = os.path.join(ROOT, 'tests', 'sim', 'xrsim.py')
CONFIG = os.path.join(ROOT, 'config')
FIXTURES = os.path.join(ROOT, 'tests', 'fixtures', 'messages')
sys.path.insert(0, os.path.dirname(SIM))

import xrsim  # noqa: E402

CFG = xrsim.Config(CONFIG)
PROFILES = sorted(CFG.profiles)
HTTP_TIMEOUT = 15          # seconds, every request
START_TIMEOUT = 20         # seconds for the ports file
STOP_TIMEOUT = 10          # seconds for a clean exit after SIGTERM


def fixture_file(pname, txn, direction='request'):
    p = CFG.profiles[pname]
    hits = sorted(glob.glob(os.path.join(FIXTURES, p.domain, pname,
                                         '%s.%s.*' % (txn, direction))))
    return hits[0] if hits else None


def read(path):
    with open(path, 'rb') as f:
        return f.read()


# (profile, txn) pairs collected from the fixtures that exist
PAIRS = [(pn, t) for pn in PROFILES for t in sorted(CFG.profiles[pn].txns)
         if fixture_file(pn, t)]


def pairs_for(txn, domain=None):
    return [pn for pn, t in PAIRS if t == txn
            and (domain is None or CFG.profiles[pn].domain == domain)]


def first_pair(pname):
    for pn, t in PAIRS:
        if pn == pname:
            return t
    return None


PROFILES_WITH_FIXTURES = [pn for pn in PROFILES if first_pair(pn)]


# ---------------------------------------------------------------------------
# the simulator process

def start_sim(tmpdir, extra=()):
    ports_file = os.path.join(tmpdir, 'ports.json')
    proc = subprocess.Popen(
        [sys.executable, SIM, '--config', CONFIG, '--host', '127.0.0.1',
         '--ports-file', ports_file, '--control-port', '0'] + list(extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if os.path.exists(ports_file):
            with open(ports_file) as f:
                return proc, json.load(f)
        if proc.poll() is not None:
            out, err = proc.communicate(timeout=5)
            pytest.fail('xrsim exited with %s before listening:\n%s'
                        % (proc.returncode, err.decode('utf-8', 'replace')))
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=5)
    pytest.fail('xrsim did not write %s within %ds' % (ports_file, START_TIMEOUT))


def stop_sim(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        pytest.fail('xrsim did not exit within %ds of signal %d'
                    % (STOP_TIMEOUT, sig))
    return proc.returncode, err.decode('utf-8', 'replace')


@pytest.fixture(scope='module')
def sim(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp('xrsim'))
    proc, info = start_sim(tmp)
    yield info
    rc, err = stop_sim(proc)
    assert rc == 0, 'xrsim exit status %s; stderr:\n%s' % (rc, err)
    assert 'Traceback' not in err, err


@pytest.fixture(autouse=True)
def clean(request):
    if 'sim' in request.fixturenames:
        info = request.getfixturevalue('sim')
        status, _ = control(info, 'POST', '/_sim/reset', {})
        assert status == 200


# ---------------------------------------------------------------------------
# HTTP helpers (bounded in time)

def http_call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=HTTP_TIMEOUT)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def control(info, method, path, obj=None):
    body = None if obj is None else json.dumps(obj).encode()
    st, _, data = http_call(info['control'], method, path, body,
                       {'Content-Type': 'application/json'} if body else None)
    return st, (json.loads(data.decode('utf-8')) if data else None)


def post(info, pname, txn, body, path=None):
    p = CFG.profiles[pname]
    path = path or p.txns[txn].path
    return http_call(info['profiles'][pname], 'POST', path, body,
                {'Content-Type': p.content_type_header()})


def codec(pname):
    return xrsim.Codec(CFG.profiles[pname])


def decode_answer(pname, txn, body):
    return codec(pname).decode('response', body, txn=txn)


def encode_request(pname, canon):
    return codec(pname).encode('request', canon)


def decode_request(pname, body):
    return codec(pname).decode('request', body)


def env_maps(pname, direction, name):
    return any(op.kind == 'map' and op.canon == name
               for op in CFG.profiles[pname].env[direction])


def assert_ok_answer(pname, txn, status, headers, body, req=None):
    p = CFG.profiles[pname]
    assert status == 200, (pname, txn, status, body[:300])
    assert headers.get('content-type') == p.content_type_header()
    ans = decode_answer(pname, txn, body)     # checks required fields too
    assert ans['@status'] == 'ok', (pname, txn, ans)
    xrsim.Codec.check_required(p.schema.txns[txn].response, ans)
    for name, f in p.schema.txns[txn].response.items():
        if f.required:
            assert name in ans, (pname, txn, name)
    if req is not None and env_maps(pname, 'response', '@msg_id'):
        assert ans.get('@msg_id') == req.get('@msg_id')
    if env_maps(pname, 'response', '@ref_msg_id'):
        assert ans.get('@ref_msg_id')
    if env_maps(pname, 'response', '@txn'):
        assert ans['@txn'] == txn
    return ans


def assert_error_answer(pname, txn, status, body, code, msg=None):
    p = CFG.profiles[pname]
    assert status == (p.error_status or 200), (pname, status, body[:300])
    ans = decode_answer(pname, txn, body)
    assert ans['@status'] == 'error', (pname, txn, ans)
    assert ans['@err_wire'] == p.err_wire(code), (pname, code, ans)
    assert ans['@err_wire'] not in p.result[1]
    if msg is not None and p.message:
        assert msg in ans.get('@err_msg', ''), ans
    return ans


def new_msg_id(req, suffix):
    old = req.get('@msg_id') or 'MSG'
    return (old[:-len(suffix)] + suffix) if len(old) > len(suffix) else old + suffix


def state(info):
    st, s = control(info, 'GET', '/_sim/state')
    assert st == 200
    return s


# ---------------------------------------------------------------------------
# fixtures exist, the config loads

@pytest.mark.parametrize('pname', PROFILES)
def test_profile_has_fixtures(pname):
    assert any(pn == pname for pn, _ in PAIRS), \
        'no request fixture for %s under %s' % (pname, FIXTURES)


def test_pairs_collected():
    assert len(PAIRS) >= len(PROFILES)


@pytest.mark.parametrize('pname,txn', PAIRS)
def test_fixture_decodes_and_roundtrips(pname, txn):
    """The simulator's decoder reads every fixture (request and answer), and
    its encoder writes what its decoder reads back identically."""
    c = codec(pname)
    for direction in ('request', 'response'):
        f = fixture_file(pname, txn, direction)
        if not f:
            continue
        canon = c.decode(direction, read(f), txn=txn)
        if direction == 'response':
            assert canon['@status'] == 'ok', (f, canon)
        again = c.decode(direction, c.encode(direction, canon, txn), txn=txn)
        assert xrsim.jsonable(again) == xrsim.jsonable(canon), f


# ---------------------------------------------------------------------------
# every profile, every transaction: a successful answer

def settle_first(info, pname):
    """Settles with the profile's settle fixture; returns the answer."""
    f = fixture_file(pname, 'settle')
    assert f, 'settle_reversal needs a settle fixture for %s' % pname
    st, hd, body = post(info, pname, 'settle', read(f))
    return assert_ok_answer(pname, 'settle', st, hd, body)


@pytest.mark.parametrize('pname,txn', PAIRS)
def test_fixture_request_answered(sim, pname, txn):
    body = read(fixture_file(pname, txn))
    req = decode_request(pname, body)
    if txn == 'settle_reversal':
        # without a settlement first: a refusal in the profile's shape
        st, hd, ans = post(sim, pname, txn, body)
        assert_error_answer(pname, txn, st, ans, 'BIZ-NOT-FOUND',
                            'no such settlement')
        s = settle_first(sim, pname)
        req['setl_id'] = s['setl_id']
        body = encode_request(pname, req)
    elif txn == 'card_unfreeze':
        # the card must be lost first
        loss = {k: v for k, v in req.items() if k.startswith('@')}
        loss.update({'@txn': 'card_loss', '@msg_id': new_msg_id(req, 'L1'),
                     'card_no': req['card_no'], 'id_no': req['id_no'],
                     'name': req['name'], 'loss_type': 'temporary'})
        st, hd, ans = post(sim, pname, 'card_loss', encode_request(pname, loss))
        assert_ok_answer(pname, 'card_loss', st, hd, ans, loss)
    st, hd, ans = post(sim, pname, txn, body)
    a = assert_ok_answer(pname, txn, st, hd, ans, req)
    if txn == 'settle_reversal':
        assert int(a['total']) == -int(s['total'])
    if txn == 'card_unfreeze':
        assert a.get('status', 'active') == 'active'
    # the simulator logged it, canonical and raw
    code, log = control(sim, 'GET', '/_sim/log?profile=' + pname)
    assert code == 200
    last = log[-1]
    assert last['txn'] == txn and last['path'] == CFG.profiles[pname].txns[txn].path
    assert base64.b64decode(last['raw_b64']) == body
    assert last['msg_id'] == req.get('@msg_id')
    assert last['canonical']['@txn'] == txn


# ---------------------------------------------------------------------------
# medical state

@pytest.mark.parametrize('pname', pairs_for('settle', 'medical'))
def test_settle_twice_is_one_settlement(sim, pname):
    body = read(fixture_file(pname, 'settle'))
    req = decode_request(pname, body)
    st1, hd1, a1 = post(sim, pname, 'settle', body)
    ans1 = assert_ok_answer(pname, 'settle', st1, hd1, a1, req)
    st2, hd2, a2 = post(sim, pname, 'settle', body)
    assert st2 == 200 and a2 == a1
    s = state(sim)
    recs = s['settlements'][pname]
    assert len(recs) == 1
    assert recs[0]['receipts'] == 2
    assert recs[0]['setl_id'] == ans1['setl_id']
    assert s['duplicates'][pname] == 1
    # amounts: fund 70 % (half up, fen), the rest account / cash
    total = int(ans1['total'])
    assert int(ans1['fund_pay']) == (total * 7 + 5) // 10
    assert int(ans1['fund_pay']) + int(ans1['acct_pay']) + int(ans1['cash_pay']) == total
    # a different message id is a different settlement
    req['@msg_id'] = new_msg_id(req, 'X2')
    st3, hd3, a3 = post(sim, pname, 'settle', encode_request(pname, req))
    ans3 = assert_ok_answer(pname, 'settle', st3, hd3, a3, req)
    assert ans3['setl_id'] != ans1['setl_id']
    assert len(state(sim)['settlements'][pname]) == 2


def test_concurrent_settles_recorded_once(sim):
    import concurrent.futures
    pname = pairs_for('settle', 'medical')[0]
    body = read(fixture_file(pname, 'settle'))
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(lambda _: post(sim, pname, 'settle', body),
                              range(32)))
    assert {r[0] for r in results} == {200}
    assert len({r[2] for r in results}) == 1
    recs = state(sim)['settlements'][pname]
    assert len(recs) == 1 and recs[0]['receipts'] == 32


@pytest.mark.parametrize('pname', [p for p in pairs_for('settle_reversal', 'medical')
                                   if fixture_file(p, 'settle')])
def test_reversal_recorded_once(sim, pname):
    body = read(fixture_file(pname, 'settle_reversal'))
    st, _, ans = post(sim, pname, 'settle_reversal', body)
    assert_error_answer(pname, 'settle_reversal', st, ans, 'BIZ-NOT-FOUND',
                        'no such settlement')
    assert state(sim)['reversals'] == {}
    s = settle_first(sim, pname)
    req = decode_request(pname, body)
    req['setl_id'] = s['setl_id']
    rb = encode_request(pname, req)
    st1, hd1, a1 = post(sim, pname, 'settle_reversal', rb)
    assert_ok_answer(pname, 'settle_reversal', st1, hd1, a1, req)
    st2, _, a2 = post(sim, pname, 'settle_reversal', rb)
    assert st2 == 200 and a2 == a1
    revs = state(sim)['reversals'][pname]
    assert len(revs) == 1 and revs[0]['receipts'] == 2
    # another reversal of the same settlement is refused
    req['@msg_id'] = new_msg_id(req, 'R2')
    st3, _, a3 = post(sim, pname, 'settle_reversal', encode_request(pname, req))
    assert_error_answer(pname, 'settle_reversal', st3, a3, 'BIZ-ALREADY')


@pytest.mark.parametrize('pname', pairs_for('person_info', 'medical'))
def test_person_info_insured_place(sim, pname):
    body = read(fixture_file(pname, 'person_info'))
    req = decode_request(pname, body)
    st, hd, ans = post(sim, pname, 'person_info', body)
    a = assert_ok_answer(pname, 'person_info', st, hd, ans, req)
    p = CFG.profiles[pname]
    mapped = any(op.canon == 'insurances' for op in p.txns['person_info'].ops['response'])
    if mapped and p.region_code:
        assert a['insurances'][0].get('insured_place', p.region_code) == p.region_code
    # deterministic
    st2, _, ans2 = post(sim, pname, 'person_info', body)
    a2 = decode_answer(pname, 'person_info', ans2)
    assert a2['psn_no'] == a['psn_no']


# ---------------------------------------------------------------------------
# transit and gov state

def status_request_for(pname, loss_req):
    f = fixture_file(pname, 'card_status')
    req = decode_request(pname, read(f))
    req['card_no'] = loss_req['card_no']
    if 'issuer_city' in loss_req:
        req['issuer_city'] = loss_req['issuer_city']
    if CFG.profiles[pname].domain == 'gov':
        req.pop('id_no', None)
        req.pop('name', None)
    return req


@pytest.mark.parametrize('pname', [p for p in pairs_for('card_loss')
                                   if fixture_file(p, 'card_status')])
def test_card_loss_then_status_lost(sim, pname):
    p = CFG.profiles[pname]
    body = read(fixture_file(pname, 'card_loss'))
    loss = decode_request(pname, body)
    sreq = status_request_for(pname, loss)
    st, hd, ans = post(sim, pname, 'card_status', encode_request(pname, sreq))
    before = assert_ok_answer(pname, 'card_status', st, hd, ans, sreq)
    assert before['status'] in ('normal', 'active')
    st, hd, ans = post(sim, pname, 'card_loss', body)
    assert_ok_answer(pname, 'card_loss', st, hd, ans, loss)
    st, hd, ans = post(sim, pname, 'card_status', encode_request(pname, sreq))
    after = assert_ok_answer(pname, 'card_status', st, hd, ans, sreq)
    if p.domain == 'transit':
        assert after['status'] == 'lost'
        assert loss['card_no'] in state(sim)['lost_cards'][pname]
        refusal = 'BIZ-CARD-STATE'
    else:
        want = 'lost_formal' if loss.get('loss_type') == 'formal' else 'lost_temp'
        assert after['status'] == want
        refusal = 'BIZ-ALREADY'
    # reporting it again is refused in the profile's shape
    loss['@msg_id'] = new_msg_id(loss, 'L2')
    st, _, ans = post(sim, pname, 'card_loss', encode_request(pname, loss))
    assert_error_answer(pname, 'card_loss', st, ans, refusal)


@pytest.mark.parametrize('pname', pairs_for('card_unfreeze', 'gov'))
def test_unfreeze_needs_a_lost_card(sim, pname):
    body = read(fixture_file(pname, 'card_unfreeze'))
    st, _, ans = post(sim, pname, 'card_unfreeze', body)
    assert_error_answer(pname, 'card_unfreeze', st, ans, 'BIZ-STATE')


@pytest.mark.parametrize('pname', [p for p in pairs_for('trip_upload', 'transit')
                                   if fixture_file(p, 'clearing_summary')])
def test_trip_batches_accumulate(sim, pname):
    body = read(fixture_file(pname, 'trip_upload'))
    req = decode_request(pname, body)
    n = len(req['trips'])
    total = sum(int(t['amount']) for t in req['trips'])
    creq = decode_request(pname, read(fixture_file(pname, 'clearing_summary')))
    creq['issuer_city'] = req['issuer_city']
    cbody = encode_request(pname, creq)

    def summary():
        st, hd, ans = post(sim, pname, 'clearing_summary', cbody)
        a = assert_ok_answer(pname, 'clearing_summary', st, hd, ans, creq)
        return a.get('count'), int(a['total']) if 'total' in a else None

    assert summary() == (0, 0)
    st, hd, a1 = post(sim, pname, 'trip_upload', body)
    ans = assert_ok_answer(pname, 'trip_upload', st, hd, a1, req)
    assert ans.get('accepted', n) == n and ans.get('rejected', 0) == 0
    assert summary() == (n, total)
    # the same batch again: recorded once, same answer
    st, _, a2 = post(sim, pname, 'trip_upload', body)
    assert st == 200 and a2 == a1
    assert summary() == (n, total)
    s = state(sim)
    assert s['trips'][pname][req['issuer_city']]['count'] == n
    assert s['duplicates'][pname] == 1
    # another batch accumulates
    req['@msg_id'] = new_msg_id(req, 'B2')
    st, hd, a3 = post(sim, pname, 'trip_upload', encode_request(pname, req))
    assert_ok_answer(pname, 'trip_upload', st, hd, a3, req)
    assert summary() == (2 * n, 2 * total)
    assert state(sim)['trips'][pname][req['issuer_city']]['total'] == {'fen': 2 * total}


@pytest.mark.parametrize('pname', pairs_for('trip_upload', 'transit'))
def test_trip_batch_with_bad_total_refused(sim, pname):
    req = decode_request(pname, read(fixture_file(pname, 'trip_upload')))
    if 'total' not in req:
        pytest.fail('%s: trip_upload fixture has no batch total' % pname)
    req['total'] = xrsim.Fen(int(req['total']) + 100)
    st, _, ans = post(sim, pname, 'trip_upload', encode_request(pname, req))
    assert_error_answer(pname, 'trip_upload', st, ans, 'BIZ-BATCH-REJECTED')
    assert state(sim)['trips'] == {}


# ---------------------------------------------------------------------------
# faults

FAULT_PROFILES = PROFILES_WITH_FIXTURES
DELAY_PROFILES = sorted({min(pn for pn in PROFILES_WITH_FIXTURES
                             if CFG.profiles[pn].codec == c)
                         for c in ('json', 'xml', 'fixed')
                         if any(CFG.profiles[pn].codec == c
                                for pn in PROFILES_WITH_FIXTURES)})


def fault(info, **spec):
    st, r = control(info, 'POST', '/_sim/fault', spec)
    assert st == 200, r


@pytest.mark.parametrize('pname', DELAY_PROFILES)
def test_fault_delay(sim, pname):
    txn = first_pair(pname)
    body = read(fixture_file(pname, txn))
    fault(sim, profile=pname, mode='delay', ms=400, count=1)
    t0 = time.monotonic()
    st, hd, ans = post(sim, pname, txn, body)
    took = time.monotonic() - t0
    assert took >= 0.4
    assert_ok_answer(pname, txn, st, hd, ans)
    t0 = time.monotonic()
    post(sim, pname, txn, body)
    assert time.monotonic() - t0 < 0.4


@pytest.mark.parametrize('pname', FAULT_PROFILES)
def test_fault_http500(sim, pname):
    txn = first_pair(pname)
    body = read(fixture_file(pname, txn))
    fault(sim, profile=pname, mode='http500')
    for _ in range(2):                       # persistent without count
        st, _, ans = post(sim, pname, txn, body)
        assert st == 500 and ans
    fault(sim, profile=pname, mode='none')
    st, hd, ans = post(sim, pname, txn, body)
    assert_ok_answer(pname, txn, st, hd, ans)


@pytest.mark.parametrize('pname', FAULT_PROFILES)
def test_fault_garbage(sim, pname):
    txn = first_pair(pname)
    body = read(fixture_file(pname, txn))
    fault(sim, profile=pname, mode='garbage', count=1)
    st, _, ans = post(sim, pname, txn, body)
    assert st == 200
    with pytest.raises(xrsim.XRError):
        decode_answer(pname, txn, ans)
    st, hd, ans = post(sim, pname, txn, body)
    assert_ok_answer(pname, txn, st, hd, ans)


@pytest.mark.parametrize('pname', FAULT_PROFILES)
def test_fault_drop(sim, pname):
    txn = first_pair(pname)
    body = read(fixture_file(pname, txn))
    fault(sim, profile=pname, mode='drop', count=1)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        post(sim, pname, txn, body)
    st, hd, ans = post(sim, pname, txn, body)
    assert_ok_answer(pname, txn, st, hd, ans)
    _, log = control(sim, 'GET', '/_sim/log?profile=' + pname)
    assert [e['fault'] for e in log] == ['drop', None]


@pytest.mark.parametrize('pname', FAULT_PROFILES)
def test_fault_business_error(sim, pname):
    txn = first_pair(pname)
    body = read(fixture_file(pname, txn))
    req = decode_request(pname, body)
    fault(sim, profile=pname, mode='business_error', count=2)
    for _ in range(2):
        st, _, ans = post(sim, pname, txn, body)
        a = assert_error_answer(pname, txn, st, ans, 'BIZ-REFUSED')
        if env_maps(pname, 'response', '@msg_id'):
            assert a.get('@msg_id') == req.get('@msg_id')
    st, hd, ans = post(sim, pname, txn, body)
    assert_ok_answer(pname, txn, st, hd, ans)


def test_fault_bad_spec(sim):
    st, _ = control(sim, 'POST', '/_sim/fault', {'profile': 'nowhere.medical',
                                                  'mode': 'drop'})
    assert st == 400
    st, _ = control(sim, 'POST', '/_sim/fault', {'profile': PROFILES[0],
                                                  'mode': 'explode'})
    assert st == 400
    st, _ = control(sim, 'POST', '/_sim/fault', {'profile': PROFILES[0],
                                                  'mode': 'drop', 'count': 0})
    assert st == 400


def test_reset_clears_faults(sim):
    pname = PROFILES_WITH_FIXTURES[0]
    fault(sim, profile=pname, mode='http500')
    control(sim, 'POST', '/_sim/reset', {})
    txn = first_pair(pname)
    st, hd, ans = post(sim, pname, txn, read(fixture_file(pname, txn)))
    assert_ok_answer(pname, txn, st, hd, ans)


# ---------------------------------------------------------------------------
# bad input: an error answer in the profile's own shape

SYNTAX_CODES = ('XR-SYNTAX', 'XR-TRUNCATED', 'XR-CHARSET', 'XR-BODY-EMPTY')


@pytest.mark.parametrize('pname', PROFILES_WITH_FIXTURES)
def test_malformed_body(sim, pname):
    txn = first_pair(pname)
    for bad in (b'\x00\x01 this is not a message {<', b'{"x":', b'<a><b></a>'):
        st, _, ans = post(sim, pname, txn, bad)
        _, log = control(sim, 'GET', '/_sim/log?profile=' + pname)
        code = log[-1]['error']['code']
        assert code in SYNTAX_CODES, log[-1]
        a = assert_error_answer(pname, txn, st, ans, code)
        if CFG.profiles[pname].message:
            assert a.get('@err_msg')


@pytest.mark.parametrize('pname', [pn for pn in PROFILES_WITH_FIXTURES
                                   if CFG.profiles[pn].codec == 'xml'])
def test_xml_doctype_refused(sim, pname):
    txn = first_pair(pname)
    body = read(fixture_file(pname, txn))
    i = body.index(b'?>') + 2 if body.lstrip().startswith(b'<?xml') else 0
    root = CFG.profiles[pname].env['request'][0].path[0]
    evil = (body[:i] + b'\n<!DOCTYPE ' + root.encode('utf-8') +
            b' [<!ENTITY x "boom">]>' + body[i:])
    st, _, ans = post(sim, pname, txn, evil)
    assert_error_answer(pname, txn, st, ans, 'XR-XML-DTD')
    _, log = control(sim, 'GET', '/_sim/log?profile=' + pname)
    assert log[-1]['error']['code'] == 'XR-XML-DTD'


@pytest.mark.parametrize('pname', PROFILES_WITH_FIXTURES)
def test_txn_at_the_wrong_path(sim, pname):
    p = CFG.profiles[pname]
    txn = first_pair(pname)
    others = [t for t in p.txns.values() if t.path and t.path != p.txns[txn].path]
    if not others:
        return          # one endpoint for every txn (e.g. national.medical)
    st, _, ans = post(sim, pname, txn, read(fixture_file(pname, txn)),
                      path=others[0].path)
    assert_error_answer(pname, txn, st, ans, 'XR-TXN-UNKNOWN')


def test_unknown_path_and_method(sim):
    pname = PROFILES[0]
    st, _, _ = http_call(sim['profiles'][pname], 'POST', '/no/such/path', b'{}')
    assert st == 404
    st, _, _ = http_call(sim['profiles'][pname], 'GET', '/')
    assert st == 405


def test_body_limit(sim):
    pname = PROFILES_WITH_FIXTURES[0]
    txn = first_pair(pname)
    big = b' ' * (4 * 1024 * 1024 + 1)
    try:
        st, _, _ = post(sim, pname, txn, big)
        assert st == 413
    except (ConnectionError, http.client.HTTPException):
        pass      # the simulator may close before reading it all
    st, _ = control(sim, 'GET', '/_sim/health')
    assert st == 200


# ---------------------------------------------------------------------------
# control API

def test_health_and_log_format(sim):
    st, h = control(sim, 'GET', '/_sim/health')
    assert st == 200 and h['ok'] and sorted(h['profiles']) == PROFILES
    assert sorted(sim['profiles']) == PROFILES
    for pn, t in PAIRS:
        if t in ('settle', 'trip_upload'):
            break
    body = read(fixture_file(pn, t))
    post(sim, pn, t, body)
    st, log = control(sim, 'GET', '/_sim/log?profile=' + pn)
    assert st == 200 and len(log) == 1
    e = log[0]
    for k in ('txn', 'msg_id', 'canonical', 'raw_b64', 'content_type', 'path'):
        assert k in e
    assert e['content_type'] == CFG.profiles[pn].content_type_header()
    c = e['canonical']
    assert isinstance(c['total'], dict) and isinstance(c['total']['fen'], int)
    assert isinstance(c['@time'], str)
    dt.datetime.fromisoformat(c['@time'])
    st, _ = control(sim, 'GET', '/_sim/log?profile=nowhere.x')
    assert st == 404
    control(sim, 'POST', '/_sim/reset', {})
    _, log = control(sim, 'GET', '/_sim/log')
    assert log == []


def test_sigint_exits_cleanly(tmp_path):
    proc, info = start_sim(str(tmp_path), ['--profiles', PROFILES[0]])
    assert list(info['profiles']) == [PROFILES[0]]
    st, _ = control(info, 'GET', '/_sim/health')
    assert st == 200
    rc, err = stop_sim(proc, signal.SIGINT)
    assert rc == 0, err
