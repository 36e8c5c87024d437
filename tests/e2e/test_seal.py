"""End-to-end: a sealed profile (seal nhsa_mobile, core/xr_seal.h).

The gateway runs on a copy of config/ in which tianjin.medical is sealed,
as Tianjin's mobile-payment interface seals its messages: SM4 encData and
an SM2 signData over the sorted parameter string.  This test plays the
Tianjin platform with the openssl command line and Python only (an
implementation independent of the gateway's): it seals its request with
its own key, the gateway opens it, translates it for Jiangsu, and seals
the answer with the gateway's key, which the test opens and checks.
"""

import base64
import binascii
import json
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import (CONFIG_DIR, Nginx, free_port, make_workdir,
                      render_example)
from test_gateway import build, nginx_t

APP_SECRET = 'tianjin-mobile-app-secret-0001'
SM4_KEY = '3f1c0d9a8b7e6f5a4b3c2d1e0f9a8b7c'
DISTID = 'distid:1234567812345678'


def openssl(*args, data=None):
    p = subprocess.run(['openssl'] + list(args), input=data,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def canonical(v):
    """Keys sorted at every level, "" and null left out, compact."""
    def clean(x):
        if isinstance(x, dict):
            return {k: clean(w) for k, w in x.items()
                    if w is not None and w != ''}
        if isinstance(x, list):
            return [clean(w) for w in x]
        return x
    return json.dumps(clean(v), ensure_ascii=False, sort_keys=True,
                      separators=(',', ':'))


def sign_string(obj, data_text):
    params = {k: v for k, v in obj.items()
              if k not in ('signData', 'encData', 'extra', 'data')
              and v is not None and v != ''}
    params = {k: (v if isinstance(v, str) else json.dumps(v))
              for k, v in params.items()}
    if data_text is not None:
        params['data'] = data_text
    s = '&'.join('%s=%s' % (k, params[k]) for k in sorted(params))
    return (s + '&key=' + APP_SECRET).encode('utf-8')


def der_to_raw(der):
    i = 2 if der[1] < 0x80 else 3
    out = b''
    for _ in range(2):
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b'\0').rjust(32, b'\0')
        i += 2 + n
    return out


def raw_to_der(raw):
    def integer(b):
        b = b.lstrip(b'\0') or b'\0'
        if b[0] & 0x80:
            b = b'\0' + b
        return b'\x02' + bytes([len(b)]) + b
    body = integer(raw[:32]) + integer(raw[32:])
    return b'\x30' + bytes([len(body)]) + body


def seal(plain, key):
    obj = json.loads(plain)
    text = canonical(obj.pop('data'))
    obj['encType'], obj['signType'] = 'SM4', 'SM2'
    der = openssl('dgst', '-sm3', '-sign', key, '-sigopt', DISTID,
                  data=sign_string(obj, text))
    obj['signData'] = base64.b64encode(der_to_raw(der)).decode()
    enc = openssl('enc', '-sm4-ecb', '-K', SM4_KEY, '-nosalt',
                  data=text.encode('utf-8'))
    obj['encData'] = binascii.hexlify(enc).decode().upper()
    return json.dumps(obj, ensure_ascii=False).encode('utf-8')


def unseal(sealed, pub, tmp):
    """The plain answer, after checking its signature with pub."""
    obj = json.loads(sealed)
    assert obj.pop('encType') == 'SM4' and obj.pop('signType') == 'SM2'
    assert 'data' not in obj
    data = None
    if 'encData' in obj:          # a refusal has no data to seal
        text = openssl('enc', '-d', '-sm4-ecb', '-K', SM4_KEY, '-nosalt',
                       data=binascii.unhexlify(obj.pop('encData')))
        data = json.loads(text)
    sig = os.path.join(tmp, 'sig-%s.der' % uuid.uuid4().hex)
    with open(sig, 'wb') as f:
        f.write(raw_to_der(base64.b64decode(obj.pop('signData'))))
    p = subprocess.run(['openssl', 'dgst', '-sm3', '-verify', pub, '-sigopt',
                        DISTID, '-signature', sig],
                       input=sign_string(dict(obj, encType='SM4',
                                              signType='SM2'),
                                         None if data is None
                                         else canonical(data)),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, (p.stdout, p.stderr)
    if data is not None:
        obj['data'] = data
    return json.dumps(obj, ensure_ascii=False).encode('utf-8')


@pytest.fixture(scope='module')
def sealed_gateway(module_so, sim, redis):
    prefix = make_workdir('seal')
    config = os.path.join(prefix, 'config')
    shutil.copytree(CONFIG_DIR, config)
    prof = os.path.join(config, 'profiles', 'tianjin.medical.conf')
    with open(prof) as f:
        text = f.read()
    with open(prof, 'w') as f:
        f.write(text.replace('\nerror_status 200;\n',
                             '\nerror_status 200;\nseal nhsa_mobile;\n', 1))
    keys = {}
    for who in ('gateway', 'tianjin'):
        keys[who] = os.path.join(prefix, who + '.key')
        openssl('genpkey', '-algorithm', 'SM2', '-out', keys[who])
        openssl('pkey', '-in', keys[who], '-pubout', '-out',
                keys[who] + '.pub')
    with open(os.path.join(prefix, 'sm4.key'), 'w') as f:
        f.write(SM4_KEY + '\n')
    with open(os.path.join(prefix, 'app.secret'), 'w') as f:
        f.write(APP_SECRET)
    extra = '''
    xregion_sign_key  %(p)s/gateway.key;
    xregion_seal      tianjin.medical  sm4_key=%(p)s/sm4.key
                      peer_key=%(p)s/tianjin.key.pub
                      app_secret=%(p)s/app.secret;
''' % {'p': prefix}
    port = free_port()
    conf = render_example(module_so, sim.ports, prefix, port, extra_http=extra,
                          redis_port=redis.port)
    conf = conf.replace(CONFIG_DIR, config)
    assert 'seal nhsa_mobile' in open(prof).read()
    g = Nginx(prefix, conf, port).start()
    g.keys = keys
    yield g
    g.stop()


CALLER = 'tianjin.medical'


def test_sealed_caller_round_trip(sealed_gateway, sim, tmp_path):
    canon, plain = build(sim, CALLER, 'medical', dest='jiangsu')
    body = seal(plain, sealed_gateway.keys['tianjin'])
    assert b'"data"' not in body and canon['@msg_id'].encode() in body
    a = sealed_gateway.post('/xr/medical/', body, caller=CALLER)
    assert a.status == 200, a.body[:300]
    # the destination got the plain request in its own format
    got = sim.received('jiangsu.medical', canon['@msg_id'])
    assert len(got) == 1 and 'error' not in got[0], got
    # the answer is sealed with the gateway's key
    assert b'"encData"' in a.body and b'"data"' not in a.body
    ans = sim.codec(CALLER).decode(
        'response', unseal(a.body, sealed_gateway.keys['gateway'] + '.pub',
                           str(tmp_path)), txn='settle')
    assert ans['@status'] == 'ok', ans
    assert ans['@msg_id'] == canon['@msg_id']
    assert ans['total'] == canon['total']


@pytest.mark.parametrize('case', ['unsealed', 'other-key', 'clear-changed',
                                  'enc-flipped'])
def test_bad_envelopes_are_refused_sealed(sealed_gateway, sim, case,
                                          tmp_path):
    canon, plain = build(sim, CALLER, 'medical', dest='jiangsu')
    key = sealed_gateway.keys['tianjin']
    if case == 'unsealed':
        body = plain
    elif case == 'other-key':
        body = seal(plain, sealed_gateway.keys['gateway'])
    else:
        obj = json.loads(seal(plain, key))
        if case == 'clear-changed':
            obj['insuAdmdvs'] = '320200'        # a parameter outside data
        else:
            h = obj['encData']
            obj['encData'] = ('0' if h[0] != '0' else '1') + h[1:]
        body = json.dumps(obj, ensure_ascii=False).encode('utf-8')
    a = sealed_gateway.post('/xr/medical/', body, caller=CALLER)
    assert a.status == 200, a.body[:300]            # error_status 200
    ans = sim.codec(CALLER).decode(
        'response', unseal(a.body, sealed_gateway.keys['gateway'] + '.pub',
                           str(tmp_path)), txn='settle')
    assert ans['@status'] == 'error'
    assert ans['@err_code'] == sim.config.profiles[CALLER].err_canon(
        sim.config.profiles[CALLER].err_wire('XR-BAD-SIGNATURE')), ans
    assert sim.received('jiangsu.medical', canon['@msg_id']) == []


def test_sealed_profile_needs_its_keys(module_so, tmp_path):
    config = str(tmp_path / 'config')
    shutil.copytree(CONFIG_DIR, config)
    prof = os.path.join(config, 'profiles', 'tianjin.medical.conf')
    with open(prof) as f:
        text = f.read()
    with open(prof, 'w') as f:
        f.write(text.replace('\nerror_status 200;\n',
                             '\nerror_status 200;\nseal nhsa_mobile;\n', 1))
    p, path, conf = nginx_t(module_so, config=config)
    assert p.returncode != 0
    assert 'profile "tianjin.medical" is sealed' in p.stderr, p.stderr
