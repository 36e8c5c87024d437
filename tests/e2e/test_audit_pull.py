"""The regulators' pull API (xregion_audit_pull): a regulator pulls the
audit log of a running gateway over mutual TLS and checks it offline.

The gateway is nginx.conf.example with xregion_audit, two regulators
(regulator-nhsa sees everything, regulator-yrd only Shanghai and Jiangsu,
scope=31,32) and a TLS server for the pull API whose client certificates
are checked by the module itself (ssl_verify_client optional_no_ca lets a
certificate of another CA through the handshake).  Its log is filled by
real transactions through the gateway; every answer of the API is
compared with what `xregion audit export` gives for the same files and
range (the head the answer names), and a full pull verifies with
`xregion audit verify -` and the public key the API hands out.

A second gateway starts on a large log written beforehand with
`xregion audit append` (three files, the writer continues the last): a
pull of all of it streams with the worker's memory flat, a client that
reads slowly or goes away does not hurt the worker, and a page from the
middle of a file (binary search) matches export.
"""

import http.client
import json
import os
import pwd
import re
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import (ROOT, Nginx, free_port, make_workdir, pki_dir,
                      render_example, wait_for)
from test_gateway import build, nginx_t

KEYS = os.path.join(ROOT, 'tests', 'fixtures', 'keys')
SM2_KEY = os.path.join(KEYS, 'sm2-test-only-key.pem')
SM2_PUB = os.path.join(KEYS, 'sm2-test-only-pub.pem')
BIN = os.environ.get('XREGION_BIN', os.path.join(ROOT, 'build', 'xregion'))

NAME = re.compile(r'^audit-\d{20}\.jsonl$')


def xregion(*args, stdin=b''):
    return subprocess.run([BIN] + [str(a) for a in args], input=stdin,
                          capture_output=True, timeout=300)


def export(audit_dir, head, *args):
    """`xregion audit export` of the directory, up to the head a pull
    named."""
    res = xregion('audit', 'export', audit_dir, '--to-seq', head, *args)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout


def no_audit(text):
    """The example without an xregion_audit of its own (the tests add
    theirs)."""
    return re.sub(r'(?m)^[ \t]*xregion_audit\s[^;]*;[^\n]*\n', '', text)


def worker_user(path):
    """nginx's workers run as nobody when the tests run as root: the
    files they continue must be theirs."""
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam('nobody')
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)


PULL_HTTP = '''
    # ---- tests/e2e/test_audit_pull.py: the audit log and its pull API
    xregion_audit  %(dir)s  key=%(key)s  instance=gw-pull
                   checkpoint=%(every)d  checkpoint_interval=1h  sync=always;

    xregion_audit_regulator  regulator-nhsa;
    xregion_audit_regulator  regulator-yrd  scope=31,32;

    # the identity from the certificate's name only: the module itself
    # refuses a certificate that did not verify
    map $ssl_client_s_dn $xr_regulator {
        default                                         "";
        "~(^|,)CN=(?<reg>regulator-[a-z]+)(,|$)"        $reg;
    }

    server {
        listen  127.0.0.1:%(pull)d ssl;
        listen  127.0.0.1:%(plain)d;

        ssl_certificate         %(pki)s/gateway.crt;
        ssl_certificate_key     %(pki)s/gateway.key;
        ssl_client_certificate  %(pki)s/ca.crt;
        ssl_verify_client       optional_no_ca;
        ssl_protocols           TLSv1.2 TLSv1.3;

        location /audit/ {
            xregion_audit_pull  $xr_regulator;
        }

        location /static/ {
            xregion_audit_pull  regulator-nhsa;
        }
    }
'''


def start_gateway(module_so, sim, redis, name, every, before=None,
                  workers=None):
    prefix = make_workdir(name)
    audit_dir = os.path.join(prefix, 'audit')
    os.makedirs(audit_dir)
    if before:
        before(audit_dir)
    worker_user(audit_dir)
    port, pull, plain = free_port(), free_port(), free_port()

    def edit(text):
        text = no_audit(text)
        if workers:
            text = re.sub(r'(?m)^worker_processes\s+\d+;',
                          'worker_processes  %d;' % workers, text)
        return text

    conf = render_example(module_so, sim.ports, prefix, port,
                          PULL_HTTP % {'dir': audit_dir, 'key': SM2_KEY,
                                       'every': every, 'pull': pull,
                                       'plain': plain, 'pki': pki_dir()},
                          edit=edit, redis_port=redis.port)
    g = Nginx(prefix, conf, port).start()
    wait_for(lambda: port_open(pull), 10, 'the pull server')
    g.pull_port, g.plain_port, g.audit_dir = pull, plain, audit_dir
    return g


def port_open(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
        return True
    except OSError:
        return False


def tls_context(cert):
    pki = pki_dir()
    ctx = ssl.create_default_context(cafile=os.path.join(pki, 'ca.crt'))
    if cert:
        if os.path.isabs(cert):
            ctx.load_cert_chain(cert + '.crt', cert + '.key')
        else:
            ctx.load_cert_chain(os.path.join(pki, cert + '.crt'),
                                os.path.join(pki, cert + '.key'))
    return ctx


class Pulled:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def head(self):
        return int(self.headers['x-xregion-audit-head'])

    def json(self):
        return json.loads(self.body)


def pull(g, path, cert='regulator-nhsa', method='GET', plain=False):
    if plain:
        c = http.client.HTTPConnection('127.0.0.1', g.plain_port, timeout=60)
    else:
        c = http.client.HTTPSConnection('127.0.0.1', g.pull_port,
                                        context=tls_context(cert),
                                        timeout=60)
    try:
        c.request(method, path)
        r = c.getresponse()
        return Pulled(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def ok(g, path, cert='regulator-nhsa'):
    a = pull(g, path, cert)
    assert a.status == 200, (a.status, a.body[:300])
    return a


def seqs(body):
    return [json.loads(x)['seq'] for x in body.splitlines()]


def refused(a, code='XR-FORBIDDEN', status=403):
    assert a.status == status, (a.status, a.body[:300])
    assert a.headers['content-type'].startswith('application/json')
    err = a.json()
    assert err['code'] == code, err
    assert err['message']
    return err['message']


# ---- a gateway whose log holds real transactions ----------------------------

# (caller, domain, txn, destination); the last ones are refused before
# anything is sent (an unknown region): outcome rejected
TRAFFIC = [
    ('shanghai.medical', 'medical', 'settle', 'jiangsu'),
    ('jiangsu.medical', 'medical', 'settle', 'zhejiang'),
    ('anhui.medical', 'medical', 'settle', 'beijing'),
    ('beijing.medical', 'medical', 'settle', 'hebei'),
    ('zhejiang.medical', 'medical', 'settle', 'shanghai'),
    ('tianjin.medical', 'medical', 'settle', 'anhui'),
    ('shanghai.transit', 'transit', 'card_status', 'anhui'),
    ('hebei.transit', 'transit', 'card_status', 'tianjin'),
    ('jiangsu.transit', 'transit', 'card_status', 'shanghai'),
    ('beijing.gov', 'gov', 'card_status', 'zhejiang'),
    ('shanghai.gov', 'gov', 'card_status', 'jiangsu'),
    ('anhui.gov', 'gov', 'card_status', 'hebei'),
]


def nowhere(domain):
    def tweak(c):
        if domain == 'transit':
            c['card_no'] = '9999' + c['card_no'][4:]
            c['issuer_city'] = '9999'
        else:
            c['@dest'] = '990100'
    return tweak


@pytest.fixture(scope='module')
def pull_gw(module_so, sim, redis):
    g = start_gateway(module_so, sim, redis, 'pull', every=5)
    sent = []
    for caller, domain, txn, dest in TRAFFIC * 2:
        canon, body = build(sim, caller, domain, txn=txn, dest=dest)
        a = g.post('/xr/%s/' % domain, body, caller=caller)
        assert a.status == 200, a.body[:300]
        sent.append(canon['@msg_id'])
    for caller, domain, txn, _ in TRAFFIC[:4]:
        canon, body = build(sim, caller, domain, txn=txn,
                            tweak=nowhere(domain))
        g.post('/xr/%s/' % domain, body, caller=caller)
        sent.append(canon['@msg_id'])
    g.sent = sent
    yield g
    g.stop()
    bad = g.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


def test_records_of_real_transactions(pull_gw):
    a = ok(pull_gw, '/audit/records')
    assert a.headers['content-type'].startswith('application/x-ndjson')
    assert a.headers.get('transfer-encoding') == 'chunked'
    recs = [json.loads(x) for x in a.body.splitlines()]
    assert [r['msg_id'] for r in recs][:len(pull_gw.sent)] == pull_gw.sent
    assert {r['type'] for r in recs} == {'rec'}
    assert {'ok', 'cached', 'rejected'} <= {r['outcome'] for r in recs}
    assert recs[-1]['seq'] <= a.head
    assert a.body == export(pull_gw.audit_dir, a.head)

    # the pull and the refusals are logged with the identity and the
    # query, never a record's content
    log = [ln for ln in pull_gw.log().splitlines() if 'audit pull' in ln]
    assert any(re.search(r'\[notice\].* xregion audit pull: regulator '
                         r'"regulator-nhsa": records "", head %d' % a.head,
                         ln) for ln in log), log
    assert not any(m in ln for m in pull_gw.sent for ln in log)


def test_full_pull_verifies_with_the_pulled_key(pull_gw, tmp_path):
    key = ok(pull_gw, '/audit/pubkey')
    assert key.headers['content-type'] == 'application/x-pem-file'
    assert key.body.startswith(b'-----BEGIN PUBLIC KEY-----\n')
    # the key id is the one checkpoints name, and the key the operator's
    info = xregion('audit', 'key', SM2_KEY).stdout.decode()
    assert key.headers['x-xregion-key-id'] in info
    assert key.body.decode() in info
    pem = tmp_path / 'gateway.pub.pem'
    pem.write_bytes(key.body)

    a = ok(pull_gw, '/audit/records?types=all&limit=1000000')
    lines = a.body.splitlines()
    assert seqs(a.body) == list(range(1, a.head + 1))
    types = [json.loads(x)['type'] for x in lines]
    assert types[0] == 'open' and 'ckpt' in types
    # the lines as on disk
    assert a.body == export(pull_gw.audit_dir, a.head, '--type', 'all')
    res = xregion('audit', 'verify', '-', '--pubkey', pem, stdin=a.body)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.startswith(b'ok: %d entries' % a.head)

    # pulled checkpoints hold the log to what it was
    ck = ok(pull_gw, '/audit/checkpoints')
    (tmp_path / 'ckpt.jsonl').write_bytes(ck.body)
    res = xregion('audit', 'verify', '-', '--pubkey', pem, '--checkpoints',
                  tmp_path / 'ckpt.jsonl', stdin=a.body)
    assert res.returncode == 0, res.stderr.decode()
    # and catch a log cut after the last of them
    last = max(seqs(ck.body))
    cut = b'\n'.join(lines[:last - 2]) + b'\n'
    res = xregion('audit', 'verify', '-', '--pubkey', pem, '--checkpoints',
                  tmp_path / 'ckpt.jsonl', stdin=cut)
    assert res.returncode == 1, res.stderr.decode()
    assert b'truncated log' in res.stderr


@pytest.mark.parametrize('query,args', [
    ('domain=medical', ['--domain', 'medical']),
    ('domain=gov&outcome=ok', ['--domain', 'gov', '--outcome', 'ok']),
    ('txn=card_status', ['--txn', 'card_status']),
    ('outcome=rejected', ['--outcome', 'rejected']),
    ('caller=anhui.medical', ['--caller', 'anhui.medical']),
    ('origin=31', ['--origin', '31']),
    ('dest=32', ['--dest', '32']),
    ('origin=11&dest=13', ['--origin', '11', '--dest', '13']),
    ('seq_from=5&seq_to=17', ['--from-seq', '5', '--to-seq', '17']),
    ('types=ckpt,open', ['--type', 'ckpt,open']),
    ('types=rec&domain=transit', ['--type', 'rec', '--domain', 'transit']),
    ('from=2000-01-01&to=2999-01-01', ['--from', '2000-01-01',
                                       '--to', '2999-01-01']),
    ('to=2000-01-01', ['--to', '2000-01-01']),
    ('from=&domain=', []),              # empty values: not given
    ('limit=4&domain=medical', ['--limit', '4', '--domain', 'medical']),
])
def test_filters_match_export(pull_gw, query, args):
    a = ok(pull_gw, '/audit/records?' + query)
    want = export(pull_gw.audit_dir, a.head, *args)
    assert a.body == want
    assert want or query.startswith('to=')     # the cases find something


def test_time_range_matches_export(pull_gw):
    recs = [json.loads(x) for x in ok(pull_gw, '/audit/records').body
            .splitlines()]
    t = recs[len(recs) // 2]['time']            # 2025-..T..:..:...mmm+08:00
    q = t.replace('+', '%2B').replace(':', '%3A')
    a = ok(pull_gw, '/audit/records?from=%s&to=2999-12-31' % q)
    assert a.body == export(pull_gw.audit_dir, a.head, '--from', t,
                            '--to', '2999-12-31')
    assert 0 < len(a.body.splitlines()) < len(recs)


def test_paging_by_seq(pull_gw):
    head, got, after, pages = None, [], 0, 0
    while True:
        a = ok(pull_gw, '/audit/records?types=all&limit=7&seq_from=%d'
               % (after + 1))
        head = head or a.head
        page = seqs(a.body)
        assert len(page) <= 7
        if not page:
            break
        got += page
        after = page[-1]
        pages += 1
    assert got == list(range(1, len(got) + 1))
    assert got[-1] >= head and pages >= 3


def test_csv(pull_gw):
    a = ok(pull_gw, '/audit/records?format=csv&domain=medical')
    assert a.headers['content-type'].startswith('text/csv')
    assert a.body.startswith(b'seq,time,inst,caller,domain,txn,msg_id,')
    assert a.body == export(pull_gw.audit_dir, a.head, '--format', 'csv',
                            '--domain', 'medical')
    assert len(a.body.split(b'\r\n')) > 3


def test_scoped_regulator(pull_gw):
    a = ok(pull_gw, '/audit/records', cert='regulator-yrd')
    want = export(pull_gw.audit_dir, a.head, '--scope', '31,32')
    assert a.body == want
    recs = [json.loads(x) for x in want.splitlines()]
    assert recs and all(r['origin'][:2] in ('31', '32')
                        or r['dest'][:2] in ('31', '32') for r in recs)
    everything = ok(pull_gw, '/audit/records').body
    assert len(recs) < len(everything.splitlines())

    # scope on top of the filters
    a = ok(pull_gw, '/audit/records?domain=medical&format=csv',
           cert='regulator-yrd')
    assert a.body == export(pull_gw.audit_dir, a.head, '--scope', '31,32',
                            '--domain', 'medical', '--format', 'csv')

    # no open entries, no checkpoints among its records
    for q in ('types=all', 'types=ckpt', 'types=rec,open'):
        msg = refused(pull(pull_gw, '/audit/records?' + q,
                           cert='regulator-yrd'))
        assert 'regulator-yrd' in msg
    # the checkpoints and the key are for every regulator
    ck = ok(pull_gw, '/audit/checkpoints', cert='regulator-yrd')
    assert ck.body == export(pull_gw.audit_dir, ck.head, '--type', 'ckpt')
    assert ok(pull_gw, '/audit/pubkey', cert='regulator-yrd').body


def test_checkpoints(pull_gw):
    a = ok(pull_gw, '/audit/checkpoints')
    ck = [json.loads(x) for x in a.body.splitlines()]
    assert ck and {c['type'] for c in ck} == {'ckpt'}
    assert a.body == export(pull_gw.audit_dir, a.head, '--type', 'ckpt')
    first = ck[-1]['seq']
    a = ok(pull_gw, '/audit/checkpoints?seq_from=%d' % first)
    assert seqs(a.body) == [first]


def test_head_bounds_the_answer(pull_gw, sim):
    a = ok(pull_gw, '/audit/records?types=all&limit=1000000')
    caller, domain, txn, dest = TRAFFIC[0]
    canon, body = build(sim, caller, domain, txn=txn, dest=dest)
    assert pull_gw.post('/xr/%s/' % domain, body, caller=caller).status \
        == 200
    b = ok(pull_gw, '/audit/records?types=all&limit=1000000')
    assert b.head > a.head
    assert b.body.startswith(a.body)
    assert seqs(b.body)[-1] == b.head
    assert json.loads(b.body.splitlines()[-1].decode()).get('msg_id') \
        in (canon['@msg_id'], None)


def garble(path, index):
    """Line `index` of the file made unreadable in place (its type): the
    file's descriptor, the offset, the line's start and seq."""
    with open(path, 'rb') as f:
        lines = f.read().split(b'\n')
    start = sum(len(x) + 1 for x in lines[:index])
    at = start + lines[index].index(b'"type":"rec"')
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, b'"type":"reX"', at)
    return fd, at, start, json.loads(lines[index])['seq']


def test_a_line_that_does_not_parse(pull_gw, tmp_path):
    """Unfiltered, the line goes to the regulator as it is and the verifier
    names it; filtered, the pull stops there and the operator's log says
    where."""
    (name,) = [n for n in os.listdir(pull_gw.audit_dir) if NAME.match(n)]
    path = os.path.join(pull_gw.audit_dir, name)
    fd, at, start, seq = garble(path, 4)
    try:
        a = ok(pull_gw, '/audit/records?types=all&limit=1000000')
        assert b'"type":"reX"' in a.body
        pem = tmp_path / 'pub.pem'
        pem.write_bytes(ok(pull_gw, '/audit/pubkey').body)
        res = xregion('audit', 'verify', '-', '--pubkey', pem, stdin=a.body)
        assert res.returncode == 1
        assert b'stdin:%d: seq %d: malformed' % (seq, seq) in res.stderr, \
            res.stderr

        # the line comes before anything was sent: an error answer
        pull_gw.new_log()
        a = pull(pull_gw, '/audit/records?domain=medical')
        refused(a, 'XR-AUDIT-INVALID', 500)
        wait_for(lambda: 'the log could not be read' in pull_gw.log(), 5,
                 'the log lines')
        new = pull_gw.new_log()
        assert re.search(r'\[error\].* xregion audit pull: "%s" at byte %d: '
                         r'audit line: .* stops there'
                         % (re.escape(path), start), new), new

    finally:
        os.pwrite(fd, b'"type":"rec"', at)
        os.close(fd)


ROGUE = None


def rogue_regulator(tmp_dir):
    """A certificate named like a regulator, from another CA."""
    global ROGUE
    if ROGUE is None:
        pki = pki_dir()
        base = os.path.join(tmp_dir, 'rogue-regulator')
        for args in (
                ['genpkey', '-algorithm', 'EC', '-pkeyopt',
                 'ec_paramgen_curve:P-256', '-out', base + '.key'],
                ['req', '-new', '-key', base + '.key', '-out', base + '.csr',
                 '-subj', '/O=xregion local/CN=regulator-nhsa'],
                ['x509', '-req', '-in', base + '.csr', '-CA',
                 os.path.join(pki, 'rogue-ca.crt'), '-CAkey',
                 os.path.join(pki, 'rogue-ca.key'), '-CAcreateserial',
                 '-CAserial', base + '.srl', '-days', '30', '-out',
                 base + '.crt']):
            p = subprocess.run(['openssl'] + args, capture_output=True,
                               timeout=60)
            assert p.returncode == 0, p.stderr.decode()
        ROGUE = base
    return ROGUE


@pytest.mark.parametrize('cert,words', [
    (None, 'NONE'),
    ('shanghai.medical', 'is not a regulator'),
    ('rogue', 'FAILED'),
    ('rogue-regulator', 'FAILED'),
])
def test_refused_clients(pull_gw, cert, words):
    if cert == 'rogue-regulator':
        cert = rogue_regulator(make_workdir('rogue'))
    # (an expired or revoked certificate nginx refuses itself, 400, even
    # with optional_no_ca)
    pull_gw.new_log()
    msg = refused(pull(pull_gw, '/audit/records', cert=cert))
    assert words in msg, msg
    # refused before anything else: the same for every resource
    refused(pull(pull_gw, '/audit/pubkey', cert=cert))
    refused(pull(pull_gw, '/audit/nothing-here', cert=cert))
    wait_for(lambda: 'xregion audit pull refused' in pull_gw.log(), 5,
             'the refusal in the log')
    new = pull_gw.new_log()
    assert re.search(r'\[notice\].*xregion audit pull refused: .*request: '
                     r'"GET /audit/records HTTP/1.1"', new), new


def test_plain_http_refused(pull_gw):
    # even where the identity is written in the configuration
    for path in ('/audit/records', '/static/records', '/static/pubkey'):
        msg = refused(pull(pull_gw, path, plain=True))
        assert 'TLS' in msg
    # over TLS the static identity is a regulator once the certificate
    # verified, whoever it names
    assert ok(pull_gw, '/static/records', cert='shanghai.medical').body
    refused(pull(pull_gw, '/static/records', cert=None))


@pytest.mark.parametrize('query,name', [
    ('limit=0', 'limit'),
    ('limit=1000001', 'limit'),
    ('limit=ten', 'limit'),
    ('seq_from=-1', 'seq_from'),
    ('seq_to=99999999999999999999', 'seq_to'),
    ('from=yesterday', 'from'),
    ('to=2024-13-01', 'to'),
    ('origin=shanghai', 'origin'),
    ('dest=3100001', 'dest'),
    ('domain=health', 'domain'),
    ('outcome=good', 'outcome'),
    ('format=xml', 'format'),
    ('types=rec,nope', 'types'),
    ('format=csv&types=all', 'format'),
    ('txn=a%20b', 'txn'),
    ('domain=medical&domain=gov', 'domain'),
    ('doamin=medical', 'doamin'),
])
def test_bad_parameters(pull_gw, query, name):
    msg = refused(pull(pull_gw, '/audit/records?' + query), 'XR-USAGE', 400)
    assert '"%s"' % name in msg, msg


@pytest.mark.parametrize('path,name', [
    ('/audit/checkpoints?domain=medical', 'domain'),
    ('/audit/checkpoints?format=csv', 'format'),
    ('/audit/pubkey?limit=3', 'limit'),
])
def test_parameters_per_resource(pull_gw, path, name):
    msg = refused(pull(pull_gw, path), 'XR-USAGE', 400)
    assert '"%s"' % name in msg, msg


def test_not_found_and_methods(pull_gw):
    for path in ('/audit/', '/audit/record', '/audit/records/',
                 '/audit/keys'):
        refused(pull(pull_gw, path), 'XR-NOT-FOUND', 404)
    a = pull(pull_gw, '/audit/records', method='POST')
    refused(a, 'XR-METHOD-NOT-ALLOWED', 405)
    assert a.headers['allow'] == 'GET, HEAD'
    a = pull(pull_gw, '/audit/records', method='HEAD')
    assert a.status == 200 and a.body == b''
    assert a.head > 0


@pytest.mark.parametrize('http,words', [
    ('server { listen 127.0.0.1:%(port)d; location /a/ { '
     'xregion_audit_pull $ssl_client_s_dn; } }\n'
     '    xregion_audit_regulator r1;\n',
     '"xregion_audit_pull" needs "xregion_audit"'),
    ('xregion_audit %(dir)s key=%(key)s;\n'
     '    server { listen 127.0.0.1:%(port)d; location /a/ { '
     'xregion_audit_pull $ssl_client_s_dn; } }\n',
     'no "xregion_audit_regulator" is configured'),
    ('xregion_audit %(dir)s key=%(key)s;\n'
     '    xregion_audit_regulator r1;\n'
     '    server { listen 127.0.0.1:%(port)d; location /a/ { '
     'xregion_audit_pull r2; } }\n',
     'names "r2", which is no xregion_audit_regulator'),
    ('xregion_audit_regulator r1 scope=31,3x;\n',
     'invalid region prefix "3x"'),
    ('xregion_audit_regulator r1 scope=31,;\n', 'invalid region prefix ""'),
    ('xregion_audit_regulator r1 area=31;\n', 'invalid parameter "area=31"'),
    ('xregion_audit_regulator r1;\n    xregion_audit_regulator r1;\n',
     'duplicate regulator "r1"'),
    ('xregion_audit_regulator r1;\n',
     '"xregion_audit_regulator" needs "xregion_audit"'),
    ('xregion_audit %(dir)s key=%(key)s;\n'
     '    xregion_audit_regulator r1;\n'
     '    server { listen 127.0.0.1:%(port)d; location /a/ { '
     'xregion medical; xregion_caller_profile shanghai.medical; '
     'xregion_audit_pull r1; } }\n',
     'cannot be in the same location'),
])
def test_conf_errors(module_so, http, words):
    http = http % {'port': free_port(), 'dir': make_workdir('conf-audit'),
                   'key': SM2_KEY}
    p, path, conf = nginx_t(module_so, '    ' + http)
    assert p.returncode != 0, conf
    assert words in p.stderr, p.stderr
    assert path in p.stderr, p.stderr


def test_conf_ok(module_so):
    http = ('    xregion_audit %s key=%s;\n'
            '    xregion_audit_regulator regulator-nhsa;\n'
            '    xregion_audit_regulator regulator-yrd scope=31,32,3401;\n'
            '    server { listen 127.0.0.1:%d; location /a/ { '
            'xregion_audit_pull regulator-nhsa; } }\n'
            % (make_workdir('conf-audit'), SM2_KEY, free_port()))
    p, path, conf = nginx_t(module_so, http)
    assert p.returncode == 0, p.stderr


# ---- a large log: streaming, memory, slow and leaving clients ---------------

BIG_FILES = (30000, 20000, 15000)       # records per file, written before


def big_record(i):
    return {
        'time': '2025-03-%02dT%02d:%02d:%02d.000+08:00'
                % (1 + i // 40000, (i // 3600) % 24, (i // 60) % 60, i % 60),
        'caller': ('shanghai.medical', 'jiangsu.transit', 'anhui.gov')[i % 3],
        'domain': ('medical', 'transit', 'gov')[i % 3],
        'txn': ('settle', 'card_status', 'card_status')[i % 3],
        'msg_id': 'BIG%09d' % i,
        'origin': ('310000', '320100', '340000', '110000')[i % 4],
        'dest': ('320100', '330100', '130000', '310000')[i % 4],
        'upstream': 'dest_upstream', 'peer': '127.0.0.1:8081',
        'outcome': ('ok', 'ok', 'rejected', 'failed')[i % 4],
        'error': '' if i % 4 < 2 else 'XR-UPSTREAM-TIMEOUT',
        'latency_ms': 10 + i % 90, 'upstream_ms': 5 + i % 50,
        'amounts': {'total': 1000 * i + 1, 'fund_pay': 700 * i},
        'ids': {'psn_no': '3101**********%04d' % (i % 10000),
                'name': '\u5f20*', 'card_no': '6222**********%04d'
                % (i % 10000)},
    }


def write_big_log(audit_dir):
    first, n0 = 1, 0
    prev = None
    for count in BIG_FILES:
        tmp = os.path.join(audit_dir, 'next.tmp')
        stdin = b''.join(json.dumps(big_record(i)).encode() + b'\n'
                         for i in range(n0, n0 + count))
        args = ['audit', 'append', tmp, '--key', SM2_KEY, '--inst',
                'gw-big', '--every', '1000']
        if prev:
            args += ['--continue', prev]
        res = xregion(*args, stdin=stdin)
        assert res.returncode == 0, res.stderr.decode()
        with open(tmp, 'rb') as f:
            first = json.loads(f.readline())['seq']
        name = os.path.join(audit_dir, 'audit-%020d.jsonl' % first)
        os.rename(tmp, name)
        prev = name
        n0 += count


@pytest.fixture(scope='module')
def big_gw(module_so, sim, redis):
    g = start_gateway(module_so, sim, redis, 'pull-big', every=1000,
                      before=write_big_log, workers=1)
    g.size = sum(os.path.getsize(os.path.join(g.audit_dir, f))
                 for f in os.listdir(g.audit_dir))
    yield g
    g.stop()
    bad = g.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


def workers(g):
    out = subprocess.run(['pgrep', '-P', str(g.proc.pid)],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for ln in f:
            if ln.startswith('VmRSS:'):
                return int(ln.split()[1])
    raise AssertionError('no VmRSS for %d' % pid)


class RawPull:
    """A pull read by hand: the body chunks as they come."""

    def __init__(self, g, path, cert='regulator-nhsa'):
        raw = socket.create_connection(('127.0.0.1', g.pull_port),
                                       timeout=60)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock = tls_context(cert).wrap_socket(raw,
                                                  server_hostname='127.0.0.1')
        self.sock.sendall(b'GET %s HTTP/1.1\r\nHost: gw\r\n\r\n'
                          % path.encode())
        head = b''
        while b'\r\n\r\n' not in head:
            d = self.sock.recv(65536)
            assert d, 'no header'
            head += d
        self.header, _, rest = head.partition(b'\r\n\r\n')
        self.buf = bytearray(rest)

    def recv(self, n=16384):
        d = self.sock.recv(n)
        self.buf += d
        return d

    def close(self):
        self.sock.close()


def dechunk(data):
    out, pos = [], 0
    while True:
        end = data.index(b'\r\n', pos)
        size = int(data[pos:end], 16)
        if size == 0:
            return b''.join(out)
        out.append(bytes(data[end + 2:end + 2 + size]))
        pos = end + 2 + size + 2


def test_big_log_in_files(big_gw):
    names = sorted(os.listdir(big_gw.audit_dir))
    assert len(names) == 3 and all(NAME.match(n) for n in names)
    a = ok(big_gw, '/audit/records?types=all&limit=1000000')
    assert a.head > sum(BIG_FILES)
    assert seqs(a.body) == list(range(1, a.head + 1))
    assert a.body == export(big_gw.audit_dir, a.head, '--type', 'all')
    key = ok(big_gw, '/audit/pubkey').body
    pem = os.path.join(big_gw.prefix, 'pub.pem')
    with open(pem, 'wb') as f:
        f.write(key)
    res = xregion('audit', 'verify', '-', '--pubkey', pem, stdin=a.body)
    assert res.returncode == 0, res.stderr.decode()


@pytest.mark.parametrize('query,args', [
    # the middle of the first file, of the second, across the two
    ('seq_from=12345&limit=50', ['--from-seq', '12345', '--limit', '50']),
    ('seq_from=40000&limit=3&types=all',
     ['--from-seq', '40000', '--limit', '3', '--type', 'all']),
    ('seq_from=29990&seq_to=30100&types=all',
     ['--from-seq', '29990', '--to-seq', '30100', '--type', 'all']),
    ('seq_from=60000&domain=gov&outcome=failed&format=csv',
     ['--from-seq', '60000', '--domain', 'gov', '--outcome', 'failed',
      '--format', 'csv']),
    ('origin=34&dest=13&limit=20', ['--origin', '34', '--dest', '13',
                                    '--limit', '20']),
])
def test_big_log_pages(big_gw, query, args):
    a = ok(big_gw, '/audit/records?' + query)
    assert a.body and a.body == export(big_gw.audit_dir, a.head, *args)


def test_default_limit(big_gw):
    a = ok(big_gw, '/audit/records')
    assert len(a.body.splitlines()) == 10000


def test_slow_client_memory_stays_flat(big_gw):
    ok(big_gw, '/audit/records?limit=10')             # the worker warm
    (pid,) = workers(big_gw)
    base = rss_kb(pid)
    p = RawPull(big_gw, '/audit/records?types=all&limit=1000000')
    peak, got, t0 = base, 0, time.monotonic()
    # slowly: 16 KB, then a pause, for the first 8 MB
    while got < 8 << 20:
        d = p.recv(16384)
        assert d
        got += len(d)
        time.sleep(0.002)
        if got % (256 << 10) < 16384:
            peak = max(peak, rss_kb(pid))
    assert time.monotonic() - t0 < 120
    # the rest at full speed
    while not p.buf.endswith(b'\r\n0\r\n\r\n'):
        d = p.recv(1 << 20)
        assert d, 'the answer ended without its last chunk'
        peak = max(peak, rss_kb(pid))
    p.close()
    body = dechunk(p.buf)
    assert len(body) > 25 << 20, len(body)
    assert body.count(b'\n') > sum(BIG_FILES)
    growth = (peak - base) << 10
    print('worker VmRSS %d kB before, %d kB at most, for %d bytes'
          % (base, peak, len(body)))
    assert growth < 8 << 20 and growth < len(body) // 4, \
        'the worker grew by %d bytes for a %d-byte answer' % (growth,
                                                               len(body))


def test_cut_after_part_of_the_answer(big_gw):
    """A line the pull cannot read after megabytes were sent: the answer
    ends without its last chunk, the client knows it is not whole."""
    path = os.path.join(big_gw.audit_dir, sorted(os.listdir(
        big_gw.audit_dir))[0])
    fd, at, start, seq = garble(path, 5000)
    try:
        c = http.client.HTTPSConnection('127.0.0.1', big_gw.pull_port,
                                        context=tls_context('regulator-nhsa'),
                                        timeout=60)
        c.request('GET', '/audit/records?types=rec,open&limit=1000000')
        r = c.getresponse()
        assert r.status == 200
        with pytest.raises(http.client.IncompleteRead) as e:
            r.read()
        c.close()
        # whole lines (nginx sends whole buffers), in order, up to the line
        got = seqs(e.value.partial)
        assert got[0] == 1 and got == sorted(got) and got[-1] < seq
        assert len(e.value.partial) > 1 << 20
        log = wait_new(big_gw, 'the log could not be read')
        assert re.search(r'"%s" at byte %d: audit line: ' % (re.escape(path),
                                                             start), log), log
    finally:
        os.pwrite(fd, b'"type":"rec"', at)
        os.close(fd)


def wait_new(g, needle, timeout=10):
    """What the error log got until it holds needle."""
    got = ['']

    def seen():
        got[0] += g.new_log()
        return needle in got[0]

    wait_for(seen, timeout, needle)
    return got[0]


@pytest.mark.parametrize('when', ['after-header', 'mid-stream',
                                  'not-reading'])
def test_client_goes_away(big_gw, when):
    big_gw.new_log()
    p = RawPull(big_gw, '/audit/records?types=all&limit=1000000')
    if when == 'mid-stream':
        for _ in range(40):
            assert p.recv()
    elif when == 'not-reading':
        time.sleep(0.5)                 # the server fills the buffers
    p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      struct.pack('ii', 1, 0))      # a reset, at once
    p.close()
    new = wait_new(big_gw, 'stopped after')
    assert 'the client went away' in new, new[-2000:]
    # the worker goes on serving
    a = ok(big_gw, '/audit/records?seq_from=100&limit=5')
    assert len(seqs(a.body)) == 5
    assert a.body == export(big_gw.audit_dir, a.head, '--from-seq', 100,
                            '--limit', 5)


def test_parallel_pulls(big_gw):
    pulls = [RawPull(big_gw, '/audit/records?seq_from=%d&limit=2000'
                     % (1 + 20000 * i)) for i in range(3)]
    bodies = []
    for p in pulls:
        while not p.buf.endswith(b'\r\n0\r\n\r\n'):
            assert p.recv(1 << 20)
        p.close()
        bodies.append(dechunk(p.buf))
    for i, body in enumerate(bodies):
        assert len(body.splitlines()) == 2000
        assert seqs(body)[0] >= 1 + 20000 * i


def test_the_example_block(module_so, sim, redis):
    """nginx.conf.example's commented regulator block, uncommented, is a
    working pull API."""
    prefix = make_workdir('pull-example')
    audit_dir = os.path.join(prefix, 'audit')
    port, pull_port = free_port(), free_port()

    def edit(text):
        text = no_audit(text)
        head, mark, block = text.partition('To turn it on, uncomment:\n')
        assert mark
        block = re.sub(r'(?m)^    #   ', '    ', block)
        block = re.sub(r'(?m)^    #$', '', block)
        block = block.replace('127.0.0.1:8443', '127.0.0.1:%d' % pull_port)
        return head + mark + block

    conf = render_example(module_so, sim.ports, prefix, port,
                          '    xregion_audit %s key=%s;\n'
                          % (audit_dir, SM2_KEY),
                          edit=edit, redis_port=redis.port)
    assert 'xregion_audit_pull  $xr_regulator;' in conf
    g = Nginx(prefix, conf, port).start()
    try:
        wait_for(lambda: port_open(pull_port), 10, 'the pull server')
        g.pull_port = pull_port
        a = ok(g, '/audit/records?types=ckpt,open', cert='regulator-nhsa')
        types = [json.loads(x)['type'] for x in a.body.splitlines()]
        assert types[0] == 'open' and set(types) <= {'open', 'ckpt'}
        refused(pull(g, '/audit/records?types=all', cert='regulator-yrd'))
        refused(pull(g, '/audit/records', cert='shanghai.medical'))
    finally:
        g.stop()
    assert not g.bad_lines(), g.bad_lines()


def test_reload_during_a_pull(big_gw):
    """The old worker finishes the pull it serves; the new ones serve the
    next (the chain's head survives the reload)."""
    p = RawPull(big_gw, '/audit/records?types=all&limit=1000000')
    for _ in range(20):
        assert p.recv()
    big_gw.reload()
    while not p.buf.endswith(b'\r\n0\r\n\r\n'):
        assert p.recv(1 << 20), 'the answer ended without its last chunk'
    p.close()
    body = dechunk(p.buf)
    assert seqs(body) == list(range(1, len(body.splitlines()) + 1))
    a = ok(big_gw, '/audit/records?types=all&limit=1000000')
    # the exiting workers sign what the restart entry left unsigned
    assert a.body.startswith(body)
    assert all(json.loads(l)["type"] == "ckpt"
               for l in a.body[len(body):].splitlines())


def test_thousands_pulled_in_pages_and_verified(pull_gw, sim, tmp_path):
    """Thousands of transactions of every domain, from many connections,
    pulled back page by page and verified as one log."""
    from test_audit import traffic
    got = traffic(pull_gw, sim, 1500, workers=8)
    assert sorted(set(got.values())) == [200]

    body, seq_from, pages = b'', 1, 0
    while True:
        a = ok(pull_gw, '/audit/records?types=all&limit=400&seq_from=%d'
               % seq_from)
        if not a.body:
            break
        body += a.body
        seq_from = seqs(a.body)[-1] + 1
        pages += 1
        if seq_from > a.head:
            break
    assert pages >= 4
    assert seqs(body) == list(range(1, len(body.splitlines()) + 1))
    pem = tmp_path / 'pub.pem'
    pem.write_bytes(ok(pull_gw, '/audit/pubkey').body)
    res = xregion('audit', 'verify', '-', '--pubkey', pem, stdin=body)
    assert res.returncode == 0, res.stderr.decode()
    recs = [json.loads(x) for x in body.splitlines()]
    mine = {r['msg_id'] for r in recs if r['type'] == 'rec'} & set(got)
    assert mine == set(got)
    assert {r['domain'] for r in recs
            if r['type'] == 'rec' and r['msg_id'] in got} == \
        {'medical', 'transit', 'gov'}
