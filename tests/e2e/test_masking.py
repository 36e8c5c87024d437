"""End-to-end: personal identifiers are masked in every log line.

Requests carry known ID, card and phone numbers and names (fields marked
pii= in config/schema) through the failures whose error text quotes a
value: an unmapped code next to them, a malformed date of birth in an
answer, a destination's refusal that quotes the person, answers that are
garbage or HTTP errors.  The raw identifiers must appear neither in
nginx's error log (at the example's `info` level) nor in its access log;
the masked forms (or the field names) appear where the log says what went
wrong.  The gateway is the session's (conftest.py: nginx.conf.example,
the simulator, the scripted destination of the test server).
"""

import json
import os
import re

import pytest

from conftest import ROOT, b64, wait_for
from test_gateway import build, expect_error

# identifiers of no fixture: each test sends some of them
ID_NO = '330102198503071234'            # id    330102********1234
CERT_NO = '330102198503075678'          # id    330102********5678
PSN_NO = '33010000000000098765'         # id    330100********8765
NAME = '钱多多'                          # name  钱**
CARD = 'B98765432'                      # card  ****5432
CARD_SN = '330100D156000005B98765430000000C'    # card 330100********000C
PHONE = '13912345678'                   # phone 139****5678
BIRTH = '1985-03-07'

RAW = (ID_NO, CERT_NO, PSN_NO, NAME, CARD, CARD_SN, PHONE)

# an ID number nobody declared, in a destination's text
OTHER_ID = '110101198001011111'         # 110101********1111


@pytest.fixture(autouse=True)
def _no_cached_answers(redis):
    """person_info answers may be cached: each test asks afresh."""
    for key in redis.keys('xregion:c:*'):
        redis.cli('DEL', key)
    yield


def size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


class Logs:
    """What the gateway's error and access logs get from now on."""

    def __init__(self, gateway):
        self.gateway = gateway
        self.start = {p: size(p) for p in (gateway.error_log,
                                            gateway.access_log)}

    def new(self, path):
        with open(path, 'rb') as f:
            f.seek(self.start[path])
            return f.read().decode('utf-8', 'replace')

    def assert_clean(self, raw=RAW, quiet=False):
        """The new error log lines, once the request's access log line is
        written, after checking that no raw value is in either log (and
        that something was logged, unless quiet)."""
        g = self.gateway
        wait_for(lambda: size(g.access_log) > self.start[g.access_log], 5,
                 'the access log line')
        err, access = self.new(g.error_log), self.new(g.access_log)
        for v in raw:
            assert v not in err, '%s in the error log:\n%s' % (
                v, '\n'.join(ln for ln in err.splitlines() if v in ln))
            assert v not in access, '%s in the access log' % v
        assert quiet or err.strip(), 'nothing logged'
        return err.splitlines()


def set_wire(sim, profile, txn, body, canon_name, value):
    """body (profile's request) with the wire field of canon_name set to
    value, written as the profile writes it."""
    p = sim.config.profiles[profile]
    path, = [op.wire for op in p.txns[txn].ops['request']
             if getattr(op, 'canon', None) == canon_name]
    if p.codec == 'json':
        doc = json.loads(body.decode(p.charset))
        node = doc
        for k in path.split('.')[:-1]:
            node = node[k]
        node[path.split('.')[-1]] = value
        return json.dumps(doc, ensure_ascii=False).encode(p.charset)
    assert p.codec == 'xml', p.codec
    tag = re.escape(path.split('.')[-1]).encode()
    out, n = re.subn(rb'(<' + tag + rb'>)[^<]*(</' + tag + rb'>)',
                     rb'\g<1>' + value.encode(p.charset) + rb'\g<2>', body)
    assert n == 1, (path, body)
    return out


def personal(canon):
    for k, v in (('card_no', CARD), ('id_no', ID_NO), ('name', NAME),
                 ('phone', PHONE), ('psn_no', PSN_NO), ('cert_no', CERT_NO),
                 ('card_sn', CARD_SN)):
        if k in canon:
            canon[k] = v


# ---- requests the gateway refuses -------------------------------------------

@pytest.mark.parametrize('caller,domain,txn,field', [
    ('shanghai.gov', 'gov', 'card_loss', 'loss_type'),
    ('zhejiang.gov', 'gov', 'card_loss', 'loss_type'),
    ('shanghai.medical', 'medical', 'settle', 'cert_type'),
    ('shanghai.medical', 'medical', 'person_info', 'cert_type'),
])
def test_unmapped_code_next_to_identifiers(gateway, sim, caller, domain,
                                           txn, field):
    """The error names the unmapped code (not personal: quoted as it is)
    and the field; the identifiers next to it are nowhere in the logs."""
    canon, body = build(sim, caller, domain, txn=txn, dest='jiangsu',
                        tweak=personal)
    assert sum(v in canon.values() for v in RAW) >= 2, canon
    body = set_wire(sim, caller, txn, body, field, '7Q')

    logs = Logs(gateway)
    a = gateway.post('/xr/%s/' % domain, body, caller=caller)
    # the message did not decode: the log line names no msg_id
    expect_error(sim, caller, a, 'XR-CODE-UNMAPPED', txn, None, gateway)

    lines = logs.assert_clean()
    assert any('"7Q" of field %s has no mapping' % field in ln
               for ln in lines), lines


def test_exchange_logs_no_identifiers(gateway, sim):
    """A transaction that succeeds: its access log line, no identifier."""
    canon, body = build(sim, 'shanghai.gov', 'gov', txn='card_loss',
                        dest='jiangsu', tweak=personal)
    logs = Logs(gateway)
    a = gateway.post('/xr/gov/', body, caller='shanghai.gov')
    assert a.status == 200, a.body[:300]
    ans = sim.codec('shanghai.gov').decode('response', a.body,
                                           txn='card_loss')
    assert ans['@status'] == 'ok', ans
    e, = sim.received('jiangsu.gov', canon['@msg_id'])
    got = sim.codec('jiangsu.gov').decode('request', b64(e['raw_b64']))
    assert got['id_no'] == ID_NO and got['name'] == NAME
    logs.assert_clean(quiet=True)


# ---- destinations that answer badly -----------------------------------------

def person_info_answer(sim, **changes):
    """jiangsu.medical's answer to person_info about our person, with the
    wire fields in changes (canonical name -> wire text) replaced."""
    codec = sim.codec('jiangsu.medical')
    with open(os.path.join(ROOT, 'tests', 'fixtures', 'messages', 'medical',
                           'jiangsu.medical', 'person_info.response.json'),
              'rb') as f:
        canon = codec.decode('response', f.read(), txn='person_info')
    personal(canon)
    body = codec.encode('response', canon, 'person_info')
    doc = json.loads(body.decode('utf-8'))
    p = sim.config.profiles['jiangsu.medical']
    for name, text in changes.items():
        path, = [op.wire for op in p.txns['person_info'].ops['response']
                 if getattr(op, 'canon', None) == name]
        node = doc
        for k in path.split('.')[:-1]:
            node = node[k]
        node[path.split('.')[-1]] = text
    return json.dumps(doc, ensure_ascii=False).encode('utf-8')


def http_answer(body, status='200 OK'):
    return (b'HTTP/1.1 %s\r\nContent-Type: application/json\r\n'
            b'Content-Length: %d\r\n\r\n%s' % (status.encode(), len(body),
                                               body))


def scripted_person_info(gateway, sim, answer, cert_no=CERT_NO):
    def ours(c):
        personal(c)
        c['cert_no'] = cert_no

    gateway.scripted.answer = answer
    canon, body = build(sim, 'shanghai.medical', 'medical',
                        txn='person_info', dest='jiangsu', tweak=ours)
    logs = Logs(gateway)
    a = gateway.post('/scripted/', body, caller='shanghai.medical',
                     port=gateway.test_port)
    return canon, a, logs


@pytest.mark.parametrize('brdy,mask,what', [
    ('1985-13-07', '****-**-**', 'is not a real date or time'),
    ('19850307', '********', 'does not match'),
    ('1985-03-07T00:00', '****-**-**T**:**', 'does not match'),
])
def test_malformed_birth_date_in_an_answer(gateway, sim, brdy, mask, what):
    canon, a, logs = scripted_person_info(
        gateway, sim, http_answer(person_info_answer(sim, birth_date=brdy)))
    expect_error(sim, 'shanghai.medical', a, 'XR-UPSTREAM-BAD-ANSWER',
                 'person_info', canon['@msg_id'], gateway)

    lines = logs.assert_clean(RAW + (brdy,))
    # the detail of a log line has its quotes as '?'
    want = re.compile(r'time ["?]%s["?] of field birth_date %s'
                      % (re.escape(mask), what))
    assert any(want.search(ln) for ln in lines), lines


def test_good_answer_with_a_birth_date(gateway, sim):
    """The same answer with a good date goes through: the masked failures
    above were the date's, not the scripted answer's."""
    canon, a, logs = scripted_person_info(
        gateway, sim, http_answer(person_info_answer(sim, birth_date=BIRTH)),
        cert_no='330102198503079999')
    assert a.status == 200, a.body[:300]
    ans = sim.codec('shanghai.medical').decode('response', a.body,
                                               txn='person_info')
    assert ans['@status'] == 'ok', ans
    assert ans['id_no'] == ID_NO and ans['name'] == NAME
    logs.assert_clean(RAW + ('330102198503079999',), quiet=True)


def test_refusal_quoting_the_person(gateway, sim):
    """A destination's refusal text is the caller's answer as it is, and
    is logged with the request's identifiers (and any other number that
    looks like an ID) masked."""
    said = ('证件号码%s与姓名%s不符; 卡识别码%s; 凭证%s; 另有%s'
            % (ID_NO, NAME, CARD_SN, CERT_NO, OTHER_ID))
    refusal = sim.codec('jiangsu.medical').encode(
        'response', {'@status': 'error', '@err_wire': '2101',
                     '@err_msg': said}, 'person_info')
    canon, a, logs = scripted_person_info(gateway, sim, http_answer(refusal),
                                    cert_no=CERT_NO)
    assert a.status == 200, a.body[:300]
    ans = sim.codec('shanghai.medical').decode('response', a.body,
                                               txn='person_info')
    assert ans['@status'] == 'error'
    assert ans['@err_msg'] == said

    lines = logs.assert_clean(RAW + (OTHER_ID,))
    want = ('证件号码330102********1234与姓名钱**不符; '
            '卡识别码330100********000C; 凭证330102********5678; '
            '另有110101********1111')
    assert any(want in ln for ln in lines), lines


@pytest.mark.parametrize('status,body,code', [
    ('500 Internal Server Error',
     '{"error": "%s %s %s"}' % (ID_NO, NAME, CERT_NO), 'XR-UPSTREAM-ERROR'),
    ('200 OK', '<html>%s 姓名 %s</html>' % (ID_NO, NAME),
     'XR-UPSTREAM-BAD-ANSWER'),
    ('200 OK', None, 'XR-UPSTREAM-BAD-ANSWER'),
])
def test_scripted_bad_answers(gateway, sim, status, body, code):
    """An HTTP error whose body quotes the person, garbage quoting it, an
    answer whose id_no is too long to be one: never logged."""
    if body is None:
        data = person_info_answer(sim, id_no=ID_NO * 3)
    else:
        data = body.encode('utf-8')
    canon, a, logs = scripted_person_info(gateway, sim, http_answer(data, status))
    expect_error(sim, 'shanghai.medical', a, code, 'person_info',
                 canon['@msg_id'], gateway)
    lines = logs.assert_clean()
    if body is None:
        assert any('field id_no' in ln and 'has 54 characters' in ln
                   for ln in lines), lines


@pytest.mark.parametrize('mode,code', [
    ('garbage', 'XR-UPSTREAM-BAD-ANSWER'),
    ('http500', 'XR-UPSTREAM-ERROR'),
    ('business_error', None),
])
def test_simulated_faults(gateway, sim, mode, code):
    canon, body = build(sim, 'shanghai.gov', 'gov', txn='card_loss',
                        dest='jiangsu', tweak=personal)
    sim.fault('jiangsu.gov', mode)
    logs = Logs(gateway)
    try:
        a = gateway.post('/xr/gov/', body, caller='shanghai.gov',
                         port=gateway.test_port)
    finally:
        sim.clear_faults()
    if code:
        expect_error(sim, 'shanghai.gov', a, code, 'card_loss',
                     canon['@msg_id'], gateway)
    else:
        ans = sim.codec('shanghai.gov').decode('response', a.body,
                                               txn='card_loss')
        assert ans['@status'] == 'error'
    logs.assert_clean()
