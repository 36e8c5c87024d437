"""End-to-end: who may call what (xregion_allow), and who signed it
(xregion_verify).

Gateways of their own: one whose access rules are narrower than the
example's (the example's xregion_allow lines are replaced by the ones under
test), one whose callers sign (HMAC-SM3, HMAC-SHA256, SM2 with a key pair
made by the openssl command line, which also makes the SM2 signatures).
Every refusal is answered in the caller's format with its own error,
logged with the caller's name, and nothing reaches the destination.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import (ROOT, Nginx, free_port, make_workdir, pki_dir,
                      render_example)
from test_gateway import build, expect_error, nginx_t

KEYS = os.path.join(ROOT, 'tests', 'fixtures', 'keys')

RULES = '''
    xregion_allow  shanghai.medical  medical txn=person_info 32;
    xregion_allow  shanghai.medical  medical txn=settle 3201;
    xregion_allow  beijing.gov       gov     *;
    xregion_allow  *                 transit 31;
'''


def only_rules(rules):
    def edit(text):
        text = re.sub(r'(?m)^    xregion_allow .*\n', '', text)
        return text.replace('    # ---- routes ----', rules
                            + '\n    # ---- routes ----', 1)
    return edit


@pytest.fixture(scope='module')
def acl_gateway(module_so, sim, redis):
    prefix = make_workdir('acl')
    port = free_port()
    conf = render_example(module_so, sim.ports, prefix, port,
                          edit=only_rules(RULES), redis_port=redis.port)
    assert len(re.findall(r'(?m)^\s*xregion_allow ', conf)) == 4
    g = Nginx(prefix, conf, port).start()
    yield g
    g.stop()


def forbidden(acl_gateway, sim, caller, domain, txn, dest, dest_profile):
    canon, body = build(sim, caller, domain, txn=txn, dest=dest)
    a = acl_gateway.post('/xr/%s/' % domain, body, caller=caller)
    expect_error(sim, caller, a, 'XR-FORBIDDEN', txn, canon['@msg_id'],
                 acl_gateway)
    assert sim.received(dest_profile, canon['@msg_id']) == []
    line = [ln for ln in acl_gateway.log().splitlines()
            if 'XR-FORBIDDEN' in ln and canon['@msg_id'] in ln][-1]
    assert 'caller: %s' % caller in line, line
    return a


def allowed(acl_gateway, sim, caller, domain, txn, dest, dest_profile):
    canon, body = build(sim, caller, domain, txn=txn, dest=dest)
    a = acl_gateway.post('/xr/%s/' % domain, body, caller=caller)
    assert a.status == 200, a.body[:300]
    assert len(sim.received(dest_profile, canon['@msg_id'])) == 1


def test_allowed_transaction_and_region(acl_gateway, sim):
    # person_info toward any Jiangsu code (32...), settle toward Nanjing
    allowed(acl_gateway, sim, 'shanghai.medical', 'medical', 'person_info',
            'jiangsu', 'jiangsu.medical')
    allowed(acl_gateway, sim, 'shanghai.medical', 'medical', 'settle',
            'jiangsu', 'jiangsu.medical')       # 320100 starts with 3201


def test_wrong_region_is_forbidden(acl_gateway, sim):
    forbidden(acl_gateway, sim, 'shanghai.medical', 'medical', 'person_info',
              'zhejiang', 'zhejiang.medical')


def test_wrong_transaction_is_forbidden(acl_gateway, sim):
    forbidden(acl_gateway, sim, 'shanghai.medical', 'medical',
              'settle_reversal', 'jiangsu', 'jiangsu.medical')


def test_caller_without_rule_is_forbidden(acl_gateway, sim):
    # deny by default, in each caller's own format (XML/GBK, fixed width)
    forbidden(acl_gateway, sim, 'anhui.medical', 'medical', 'settle',
              'jiangsu', 'jiangsu.medical')
    forbidden(acl_gateway, sim, 'beijing.medical', 'medical', 'settle',
              'jiangsu', 'jiangsu.medical')
    forbidden(acl_gateway, sim, 'shanghai.gov', 'gov', 'card_status',
              'jiangsu', 'jiangsu.gov')


def test_wildcards(acl_gateway, sim):
    allowed(acl_gateway, sim, 'beijing.gov', 'gov', 'card_status', 'jiangsu',
            'jiangsu.gov')
    # any caller toward Shanghai's transit cards, no one elsewhere
    allowed(acl_gateway, sim, 'jiangsu.transit', 'transit', 'card_status',
            'shanghai', 'shanghai.transit')
    forbidden(acl_gateway, sim, 'shanghai.transit', 'transit', 'card_status',
              'jiangsu', 'jiangsu.transit')


def test_forbidden_settlement_claims_nothing(acl_gateway, sim, redis):
    before = set(redis.keys('xregion:i:*'))
    forbidden(acl_gateway, sim, 'shanghai.medical', 'medical', 'settle',
              'zhejiang', 'zhejiang.medical')
    assert set(redis.keys('xregion:i:*')) == before


@pytest.mark.parametrize('rule,words', [
    ('xregion_allow nobody.medical medical *;', 'unknown caller "nobody.medical"'),
    ('xregion_allow shanghai.transit medical *;', 'is a transit profile'),
    ('xregion_allow * medical txn=card_status *;',
     'has no transaction "card_status"'),
    ('xregion_allow * medical 99;', 'no region of the xregion configuration'),
    ('xregion_allow * medical 1234567;', 'invalid region prefix'),
    ('xregion_allow * lottery *;', 'unknown domain "lottery"'),
    ('xregion_allow * * txn=settle *;', '"txn=" needs a domain'),
    ('xregion_allow * medical tx=settle *;', 'invalid parameter "tx=settle"'),
])
def test_conf_rule_errors(module_so, rule, words):
    p, path, conf = nginx_t(module_so, rule)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr
    line = conf.splitlines().index(
        [ln for ln in conf.splitlines() if rule in ln][0]) + 1
    assert '%s:%d' % (path, line) in p.stderr, p.stderr


def test_conf_no_rule_warns(module_so):
    p, path, conf = nginx_t(module_so, '')
    assert p.returncode == 0, p.stderr
    assert 'no "xregion_allow" rule' in p.stderr


# ---- signed requests (xregion_verify) ---------------------------------------

HMAC_SECRET = b'shanghai-medical-platform-secret-0001'
SHA_SECRET = b'jiangsu-medical-platform-secret-0002'


def openssl(*args, data=None):
    p = subprocess.run(['openssl'] + list(args), input=data,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


@pytest.fixture(scope='module')
def signing(module_so, sim, redis):
    prefix = make_workdir('sign')
    port = free_port()
    key = os.path.join(prefix, 'anhui-sm2.key')
    pub = os.path.join(prefix, 'anhui-sm2.pub')
    openssl('genpkey', '-algorithm', 'SM2', '-out', key)
    openssl('pkey', '-in', key, '-pubout', '-out', pub)
    with open(os.path.join(prefix, 'shanghai.secret'), 'wb') as f:
        f.write(HMAC_SECRET + b'\n')
    with open(os.path.join(prefix, 'jiangsu.secret'), 'wb') as f:
        f.write(SHA_SECRET)
    extra = '''
    xregion_verify  shanghai.medical  hmac-sm3     secret=%(p)s/shanghai.secret;
    xregion_verify  jiangsu.medical   hmac-sha256  secret=%(p)s/jiangsu.secret;
    xregion_verify  anhui.medical     sm2          key=%(p)s/anhui-sm2.pub;
''' % {'p': prefix}
    conf = render_example(module_so, sim.ports, prefix, port, extra_http=extra,
                          redis_port=redis.port)
    g = Nginx(prefix, conf, port).start()
    g.sm2_key = key
    yield g
    g.stop()


def signing_string(path, stamp, nonce, body):
    return b'\n'.join([b'POST', path.encode(), stamp.encode(),
                       nonce.encode(),
                       hashlib.sha256(body).hexdigest().encode()])


def sign_headers(method, path, body, key=None, secret=None, digest='sm3',
                 raw=False):
    stamp, nonce = str(int(time.time())), uuid.uuid4().hex
    s = signing_string(path, stamp, nonce, body)
    if secret is not None:
        sig = hmac.new(secret, s, digest).hexdigest()
    else:
        # SM3withSM2 by the openssl command line, the standard's user ID
        der = openssl('dgst', '-sm3', '-sign', key, '-sigopt',
                      'distid:1234567812345678', data=s)
        if raw:
            der = der_to_raw(der)
        sig = base64.b64encode(der).decode()
    return {'X-Xregion-Signature': sig, 'X-Xregion-Timestamp': stamp,
            'X-Xregion-Nonce': nonce}


def der_to_raw(der):
    """SEQUENCE { INTEGER r, INTEGER s } -> r || s, 32 bytes each."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b''
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n]
        out += v.lstrip(b'\0').rjust(32, b'\0')
        i += 2 + n
    return out


def signed_ok(g, sim, caller, headers, body, canon):
    a = g.post('/xr/medical/', body, caller=caller, headers=headers)
    assert a.status == 200, a.body[:300]
    assert len(sim.received('jiangsu.medical' if not caller.startswith(
        'jiangsu') else 'zhejiang.medical', canon['@msg_id'])) == 1


def bad_signature(g, sim, caller, headers, body, canon, dest_profile):
    a = g.post('/xr/medical/', body, caller=caller, headers=headers)
    expect_error(sim, caller, a, 'XR-BAD-SIGNATURE', 'settle', None, g)
    assert sim.received(dest_profile, canon['@msg_id']) == []
    line = [ln for ln in g.log().splitlines()
            if 'XR-BAD-SIGNATURE' in ln][-1]
    assert 'caller: %s' % caller in line, line


def test_hmac_sm3_signed_request_passes(signing, sim):
    canon, body = build(sim, 'shanghai.medical', 'medical', dest='jiangsu')
    h = sign_headers('POST', '/xr/medical/', body, secret=HMAC_SECRET)
    signed_ok(signing, sim, 'shanghai.medical', h, body, canon)


def test_hmac_sha256_signed_request_passes(signing, sim):
    canon, body = build(sim, 'jiangsu.medical', 'medical', dest='zhejiang')
    h = sign_headers('POST', '/xr/medical/', body, secret=SHA_SECRET,
                     digest='sha256')
    signed_ok(signing, sim, 'jiangsu.medical', h, body, canon)


@pytest.mark.parametrize('raw', [False, True], ids=['der', 'raw-r-s'])
def test_sm2_signature_from_openssl_passes(signing, sim, raw):
    canon, body = build(sim, 'anhui.medical', 'medical', dest='jiangsu')
    h = sign_headers('POST', '/xr/medical/', body, key=signing.sm2_key,
                     raw=raw)
    signed_ok(signing, sim, 'anhui.medical', h, body, canon)


def test_unsigned_caller_without_rule_passes(signing, sim):
    canon, body = build(sim, 'beijing.medical', 'medical', dest='jiangsu')
    signed_ok(signing, sim, 'beijing.medical', {}, body, canon)


@pytest.mark.parametrize('case', ['missing', 'no-nonce', 'wrong-secret',
                                  'tampered-body', 'other-path',
                                  'not-hex', 'sha256-for-sm3'])
def test_hmac_rejections(signing, sim, case):
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='jiangsu')
    h = sign_headers('POST', '/xr/medical/', body, secret=HMAC_SECRET)
    if case == 'missing':
        h = {}
    elif case == 'no-nonce':
        del h['X-Xregion-Nonce']
    elif case == 'wrong-secret':
        h = sign_headers('POST', '/xr/medical/', body, secret=b'x' * 32)
    elif case == 'tampered-body':
        canon2 = dict(canon)
        canon2['total'] = canon['total'] + 1
        body = sim.codec(caller).encode('request', canon2, 'settle')
    elif case == 'other-path':
        h = sign_headers('POST', '/xr/transit/', body, secret=HMAC_SECRET)
    elif case == 'not-hex':
        h['X-Xregion-Signature'] = 'zz' * 32
    elif case == 'sha256-for-sm3':
        h = sign_headers('POST', '/xr/medical/', body, secret=HMAC_SECRET,
                         digest='sha256')
    bad_signature(signing, sim, caller, h, body, canon, 'jiangsu.medical')


@pytest.mark.parametrize('case', ['other-key', 'flipped', 'garbage',
                                  'not-base64', 'hmac-instead'])
def test_sm2_rejections(signing, sim, case, tmp_path):
    caller = 'anhui.medical'
    canon, body = build(sim, caller, 'medical', dest='jiangsu')
    h = sign_headers('POST', '/xr/medical/', body, key=signing.sm2_key)
    if case == 'other-key':
        other = str(tmp_path / 'other.key')
        openssl('genpkey', '-algorithm', 'SM2', '-out', other)
        h = sign_headers('POST', '/xr/medical/', body, key=other)
    elif case == 'flipped':
        sig = bytearray(base64.b64decode(h['X-Xregion-Signature']))
        sig[-1] ^= 1
        h['X-Xregion-Signature'] = base64.b64encode(bytes(sig)).decode()
    elif case == 'garbage':
        h['X-Xregion-Signature'] = base64.b64encode(b'1234567').decode()
    elif case == 'not-base64':
        h['X-Xregion-Signature'] = '!!!!'
    elif case == 'hmac-instead':
        h = sign_headers('POST', '/xr/medical/', body, secret=HMAC_SECRET)
    bad_signature(signing, sim, caller, h, body, canon, 'jiangsu.medical')


@pytest.mark.parametrize('http,words', [
    ('xregion_verify nobody.medical hmac-sm3 secret=%s;'
     % os.path.join(KEYS, 'README.md'), 'unknown caller "nobody.medical"'),
    ('xregion_verify shanghai.medical hmac-md5 secret=%s;'
     % os.path.join(KEYS, 'README.md'), 'unknown signature method "hmac-md5"'),
    ('xregion_verify shanghai.medical hmac-sm3 secret=%s;'
     % os.path.join(KEYS, 'short-test-only.secret'),
     'shorter than 16 bytes'),
    ('xregion_verify shanghai.medical hmac-sm3 secret=/nonexistent;',
     'failed'),
    ('xregion_verify shanghai.medical sm2;', 'needs "key="'),
    ('xregion_verify shanghai.medical sm2 key=%s;'
     % os.path.join(KEYS, 'p256-test-only-pub.pem'), 'is not an SM2 key'),
])
def test_conf_verify_errors(module_so, http, words):
    p, path, conf = nginx_t(module_so, http)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr
    assert path in p.stderr, p.stderr


# ---- mutual TLS: the caller is its client certificate ----------------------

def tls_post(port, body, cert=None, headers=None):
    pki = pki_dir()
    ctx = ssl.create_default_context(cafile=os.path.join(pki, 'ca.crt'))
    if cert:
        ctx.load_cert_chain(os.path.join(pki, cert + '.crt'),
                            os.path.join(pki, cert + '.key'))
    c = http.client.HTTPSConnection('127.0.0.1', port, context=ctx,
                                    timeout=20)
    try:
        c.request('POST', '/xr/medical/', body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_mtls_certificate_names_the_caller(gateway, sim):
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='jiangsu')
    # the header would name another caller: on the TLS port it is ignored
    status, answer = tls_post(gateway.tls_port, body, cert=caller,
                              headers={'X-Xregion-Caller': 'anhui.medical'})
    assert status == 200, answer[:300]
    ans = sim.codec(caller).decode('response', answer, txn='settle')
    assert ans['@status'] == 'ok' and ans['@msg_id'] == canon['@msg_id']
    assert len(sim.received('jiangsu.medical', canon['@msg_id'])) == 1


@pytest.mark.parametrize('cert', [None, 'expired', 'revoked', 'rogue',
                                  'regulator-nhsa'])
def test_mtls_refusals(gateway, sim, cert):
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='jiangsu')
    status, answer = tls_post(gateway.tls_port, body, cert=cert,
                              headers={'X-Xregion-Caller': caller})
    assert status == 401, (status, answer[:300])
    assert json.loads(answer)['code'] == 'XR-UNAUTHORIZED'
    if cert in ('expired', 'revoked'):
        assert cert.encode() in answer, answer     # nginx's reason, told
    assert sim.received('jiangsu.medical', canon['@msg_id']) == []


# ---- what the gateway signs (xregion_upstream_sign, xregion_sign_answers) --

ZJ_SECRET = 'zhejiang-gateway-app-secret-0003'
ZJ_ACCESS_KEY = 'H33010000001'
ANHUI_UP_SECRET = b'anhui-medical-upstream-secret-04'


@pytest.fixture(scope='module')
def signer(module_so, sim, redis):
    prefix = make_workdir('signer')
    port = free_port()
    key = os.path.join(prefix, 'gateway-sm2.key')
    pub = os.path.join(prefix, 'gateway-sm2.pub')
    openssl('genpkey', '-algorithm', 'SM2', '-out', key)
    openssl('pkey', '-in', key, '-pubout', '-out', pub)
    with open(os.path.join(prefix, 'zhejiang.secret'), 'w') as f:
        f.write(ZJ_SECRET + '\n')
    with open(os.path.join(prefix, 'anhui.secret'), 'wb') as f:
        f.write(ANHUI_UP_SECRET)
    extra = '''
    xregion_sign_key       %(p)s/gateway-sm2.key;
    xregion_sign_answers   on;
    xregion_upstream_sign  zhejiang.medical zhejiang-hmac-sm3
                           secret=%(p)s/zhejiang.secret
                           access_key=%(ak)s;
    xregion_upstream_sign  jiangsu.medical  sm2;
    xregion_upstream_sign  anhui.medical    hmac-sm3 secret=%(p)s/anhui.secret;
''' % {'p': prefix, 'ak': ZJ_ACCESS_KEY}
    conf = render_example(module_so, sim.ports, prefix, port, extra_http=extra,
                          redis_port=redis.port)
    g = Nginx(prefix, conf, port).start()
    g.pub = pub
    yield g
    g.stop()


@pytest.fixture
def zhejiang_requires_signature(sim):
    sim.require_signature('zhejiang.medical', 'zhejiang-hmac-sm3',
                          secret=ZJ_SECRET, access_key=ZJ_ACCESS_KEY)
    yield
    sim.require_signature('zhejiang.medical', None)


def sm2_verifies(pub, text, sig_b64, tmp):
    """The openssl command line's verdict on an SM3withSM2 signature."""
    sig = os.path.join(tmp, 'sig-%s.der' % uuid.uuid4().hex)
    with open(sig, 'wb') as f:
        f.write(base64.b64decode(sig_b64))
    p = subprocess.run(['openssl', 'dgst', '-sm3', '-verify', pub, '-sigopt',
                        'distid:1234567812345678', '-signature', sig],
                       input=text, capture_output=True, timeout=30)
    return p.returncode == 0 and b'Verified OK' in p.stdout


def settle_to(sim, g, caller, dest, dest_profile):
    canon, body = build(sim, caller, 'medical', dest=dest)
    a = g.post('/xr/medical/', body, caller=caller)
    return canon, a, sim.received(dest_profile, canon['@msg_id'])


def test_zhejiang_gets_its_hmac_sm3_headers(signer, sim,
                                            zhejiang_requires_signature):
    canon, a, got = settle_to(sim, signer, 'shanghai.medical', 'zhejiang',
                              'zhejiang.medical')
    assert a.status == 200, a.body[:300]
    ans = sim.codec('shanghai.medical').decode('response', a.body,
                                                txn='settle')
    assert ans['@status'] == 'ok', ans
    assert len(got) == 1 and 'error' not in got[0], got
    h = {k.lower(): v for k, v in got[0]['headers'].items()}
    body = base64.b64decode(got[0]['raw_b64'])
    # recomputed here, independently of the simulator and the gateway
    want = hmac.new(ZJ_SECRET.encode(), h['x-xregion-timestamp'].encode()
                    + b'\n' + body, 'sm3').hexdigest().upper()
    assert h['x-xregion-signature'] == want
    assert h['x-access-key'] == ZJ_ACCESS_KEY
    assert abs(int(h['x-xregion-timestamp']) - time.time()) < 60
    assert 'x-xregion-nonce' not in h       # not part of Zhejiang's scheme


def test_unsigned_request_is_refused_by_zhejiang(gateway, sim,
                                                 zhejiang_requires_signature):
    # the example's gateway has no xregion_upstream_sign: Zhejiang refuses,
    # records nothing, and the caller hears the refusal in its own format
    canon, a, got = settle_to(sim, gateway, 'shanghai.medical', 'zhejiang',
                              'zhejiang.medical')
    assert len(got) == 1 and got[0]['error']['code'] == 'XR-BAD-SIGNATURE'
    assert 'x-xregion-signature' not in {k.lower() for k in got[0]['headers']}
    ans = sim.codec('shanghai.medical').decode('response', a.body,
                                                txn='settle')
    assert ans['@status'] == 'error', ans
    assert sim.log('zhejiang.medical', txn='settle')[-1]['error']['code'] \
        == 'XR-BAD-SIGNATURE'


def test_sm2_signed_upstream_verifies_with_openssl(signer, sim, tmp_path):
    canon, a, got = settle_to(sim, signer, 'shanghai.medical', 'jiangsu',
                              'jiangsu.medical')
    assert a.status == 200, a.body[:300]
    h = {k.lower(): v for k, v in got[0]['headers'].items()}
    body = base64.b64decode(got[0]['raw_b64'])
    text = b'\n'.join([b'POST', got[0]['path'].encode(),
                       h['x-xregion-timestamp'].encode(),
                       h['x-xregion-nonce'].encode(),
                       hashlib.sha256(body).hexdigest().encode()])
    assert re.fullmatch(r'[0-9a-f]{32}', h['x-xregion-nonce'])
    assert sm2_verifies(signer.pub, text, h['x-xregion-signature'],
                        str(tmp_path))
    # one character of the signed text otherwise: the signature fails
    other = text[:-1] + (b'1' if text.endswith(b'0') else b'0')
    assert not sm2_verifies(signer.pub, other, h['x-xregion-signature'],
                            str(tmp_path))


def test_hmac_signed_upstream_and_fresh_nonces(signer, sim):
    nonces = set()
    for _ in range(2):
        canon, a, got = settle_to(sim, signer, 'shanghai.medical', 'anhui',
                                  'anhui.medical')
        assert a.status == 200, a.body[:300]
        h = {k.lower(): v for k, v in got[0]['headers'].items()}
        body = base64.b64decode(got[0]['raw_b64'])
        text = b'\n'.join([b'POST', got[0]['path'].encode(),
                           h['x-xregion-timestamp'].encode(),
                           h['x-xregion-nonce'].encode(),
                           hashlib.sha256(body).hexdigest().encode()])
        assert h['x-xregion-signature'] == hmac.new(
            ANHUI_UP_SECRET, text, 'sm3').hexdigest()
        nonces.add(h['x-xregion-nonce'])
    assert len(nonces) == 2


def test_destination_without_rule_gets_no_signature(signer, sim):
    canon, a, got = settle_to(sim, signer, 'shanghai.medical', 'hebei',
                              'hebei.medical')
    assert a.status == 200, a.body[:300]
    assert not {k.lower() for k in got[0]['headers']} & {
        'x-xregion-signature', 'x-xregion-timestamp', 'x-access-key'}


def answer_text(status, path, a):
    return b'\n'.join([str(status).encode(), path.encode(),
                       a.header('X-Xregion-Timestamp').encode(),
                       a.header('X-Xregion-Nonce').encode(),
                       hashlib.sha256(a.body).hexdigest().encode()])


def test_answers_carry_the_gateway_signature(signer, sim, tmp_path):
    caller = 'shanghai.medical'
    canon, body = build(sim, caller, 'medical', dest='hebei')
    a = signer.post('/xr/medical/', body, caller=caller,
                    headers={'X-Xregion-Nonce': 'caller-nonce-0001'})
    assert a.status == 200, a.body[:300]
    # the caller's nonce comes back: the answer is bound to the request
    assert a.header('X-Xregion-Nonce') == 'caller-nonce-0001'
    text = answer_text(200, '/xr/medical/', a)
    assert sm2_verifies(signer.pub, text, a.header('X-Xregion-Signature'),
                        str(tmp_path))
    # another body under the same headers does not verify
    forged = text[:-64] + hashlib.sha256(a.body + b' ').hexdigest().encode()
    assert not sm2_verifies(signer.pub, forged,
                            a.header('X-Xregion-Signature'), str(tmp_path))


@pytest.mark.parametrize('caller', ['shanghai.medical', 'anhui.medical',
                                    'beijing.medical'])
def test_refusals_are_signed_too(signer, sim, caller, tmp_path):
    # a malformed body, in JSON, GBK XML and fixed-width callers' formats;
    # a nonce that could not go in a header is replaced, not echoed
    a = signer.post('/xr/medical/', b'\x00garbage', caller=caller,
                    headers={'X-Xregion-Nonce': 'bad nonce\t'})
    assert a.status >= 200 and a.header('X-Xregion-Signature'), a.headers
    assert re.fullmatch(r'[0-9a-f]{32}', a.header('X-Xregion-Nonce'))
    assert sm2_verifies(signer.pub, answer_text(a.status, '/xr/medical/', a),
                        a.header('X-Xregion-Signature'), str(tmp_path))


def test_unsigned_gateway_sends_no_answer_signature(gateway, sim):
    canon, body = build(sim, 'shanghai.medical', 'medical', dest='hebei')
    a = gateway.post('/xr/medical/', body, caller='shanghai.medical')
    assert a.status == 200 and a.header('X-Xregion-Signature') is None


@pytest.mark.parametrize('http,words', [
    ('xregion_sign_answers on;', 'needs "xregion_sign_key"'),
    ('xregion_upstream_sign nobody.medical hmac-sm3 secret=%s;'
     % os.path.join(KEYS, 'README.md'), 'unknown profile "nobody.medical"'),
    ('xregion_upstream_sign zhejiang.medical sm2;',
     'needs "xregion_sign_key"'),
    ('xregion_upstream_sign zhejiang.medical zhejiang-hmac-sm3;',
     'needs "secret="'),
    ('xregion_upstream_sign zhejiang.medical hmac-md5 secret=%s;'
     % os.path.join(KEYS, 'README.md'), 'unknown signature method'),
    ('xregion_sign_key %s;' % os.path.join(KEYS, 'sm2-test-only-pub.pem'),
     'is not an SM2 private key'),
    ('xregion_sign_key %s;' % os.path.join(KEYS, 'p256-test-only-key.pem'),
     'is not an SM2 private key'),
])
def test_conf_sign_errors(module_so, http, words):
    p, path, conf = nginx_t(module_so, http)
    assert p.returncode != 0
    assert words in p.stderr, p.stderr
    assert path in p.stderr, p.stderr
