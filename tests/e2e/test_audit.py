"""End-to-end: the gateway's audit trail (xregion_audit).

Gateways of their own with an audit directory, signing checkpoints with a
fresh SM2 key made by the openssl command line.  What the gateway wrote is
checked with the offline verifier (`xregion audit verify`), and the chain
hashes are recomputed here from docs/regulators.md, so that the writer is
not checked only against the C code that reads it.

Faults: workers and the master killed with SIGKILL under load, a restart,
rotation, a write that fails (the file size limit of the workers, set and
lifted with prlimit(1), makes write() fail as a full disk does), free space
below the reserve.
"""

import base64
import concurrent.futures as cf
import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import (Nginx, fixture_identifiers, free_port, make_workdir,
                      render_example, wait_for)
from test_gateway import build, expect_error, nginx_t
from test_audit_cli import BIN, relink

SM3_OK = 'sm3' in hashlib.algorithms_available
NAME = re.compile(r'^audit-(\d{20})\.jsonl$')


def openssl(*args):
    p = subprocess.run(['openssl'] + list(args), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def make_key(prefix):
    key = os.path.join(prefix, 'gateway-sm2.key')
    pub = os.path.join(prefix, 'gateway-sm2.pub')
    openssl('genpkey', '-algorithm', 'SM2', '-out', key)
    openssl('pkey', '-in', key, '-pubout', '-out', pub)
    return key, pub


class Audited:
    """A gateway (the example's configuration) with an audit log."""

    def __init__(self, module_so, sim, redis, params='', name='audit',
                 extra='', edit=None):
        self.prefix = make_workdir(name)
        self.dir = os.path.join(self.prefix, 'audit')
        self.key, self.pub = make_key(self.prefix)
        self.port = free_port()
        http = '''
    xregion_sign_key  %s;
    xregion_audit  %s instance=gw-e2e %s;
%s''' % (self.key, self.dir, params, extra)
        def without_example_audit(text):
            text = re.sub(r'\n    xregion_audit [^;]*;', '\n', text)
            return edit(text) if edit else text
        self.conf = render_example(module_so, sim.ports, self.prefix,
                                   self.port, extra_http=http,
                                   redis_port=redis.port,
                                   edit=without_example_audit)
        self.nginx = None

    def start(self):
        self.nginx = Nginx(self.prefix, self.conf, self.port).start()
        return self

    def stop(self):
        if self.nginx:
            self.nginx.stop()

    def post(self, *args, **kw):
        return self.nginx.post(*args, **kw)

    def files(self):
        names = sorted(n for n in os.listdir(self.dir) if NAME.match(n))
        return [os.path.join(self.dir, n) for n in names]

    def lines(self):
        out = []
        for f in self.files():
            with open(f, 'rb') as fh:
                out += fh.read().splitlines()
        return out

    def entries(self):
        return [json.loads(l) for l in self.lines()]

    def records(self):
        return [e for e in self.entries() if e['type'] == 'rec']

    def verify(self, *extra):
        return subprocess.run([BIN, 'audit', 'verify'] + self.files()
                              + ['--pubkey', self.pub] + list(extra),
                              capture_output=True, timeout=120)

    def worker_pids(self):
        master = self.nginx.proc.pid
        out = subprocess.run(['pgrep', '-P', str(master)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


def chain_ok(lines):
    """The chain recomputed from the documented formula (SM3)."""
    prev = b'\0' * 32
    for i, line in enumerate(lines):
        m = re.match(rb'^\{"seq":(\d+),"prev":"([0-9a-f]{64})",(.*),'
                     rb'"hash":"([0-9a-f]{64})"\}$', line)
        assert m, line
        seq = int(m.group(1))
        assert bytes.fromhex(m.group(2).decode()) == prev, 'seq %d' % seq
        inner = hashlib.new('sm3', m.group(3)).digest()
        h = hashlib.new('sm3', prev + seq.to_bytes(8, 'big') + inner)
        assert h.hexdigest() == m.group(4).decode(), 'seq %d' % seq
        prev = h.digest()
    return True


def wait_checkpoint(g, timeout=10):
    """Until a checkpoint covers the last record."""
    def covered():
        es = g.entries()
        recs = [e['seq'] for e in es if e['type'] == 'rec']
        cks = [e['last'] for e in es if e['type'] == 'ckpt']
        return recs and cks and max(cks) >= max(recs)
    wait_for(covered, timeout, 'a checkpoint over the last record')


def settle(g, sim, caller='shanghai.medical', dest='jiangsu', tweak=None):
    canon, body = build(sim, caller, 'medical', dest=dest, tweak=tweak)
    a = g.post('/xr/medical/', body, caller=caller)
    return canon, a


def query(g, sim, caller='shanghai.transit', dest='jiangsu', domain='transit'):
    canon, body = build(sim, caller, domain, dest=dest)
    a = g.post('/xr/%s/' % domain, body, caller=caller)
    return canon, a


@pytest.fixture(scope='module')
def audited(module_so, sim, redis):
    g = Audited(module_so, sim, redis,
                'checkpoint=20 checkpoint_interval=1s').start()
    yield g
    g.stop()
    bad = g.nginx.bad_lines()
    assert not bad, 'nginx error log:\n' + '\n'.join(bad)


# ---- what is recorded ------------------------------------------------------

def test_records_of_every_kind(audited, sim):
    g = audited
    ok, a = settle(g, sim)
    assert a.status == 200, a.body[:300]
    again = g.post('/xr/medical/', build_again(sim, ok), caller='shanghai.medical')
    assert again.status == 200
    forbidden_region, b = settle(g, sim, tweak=lambda c: c.update(
        {'@dest': '990000'}))
    assert b'990000' in b.body
    sim.fault('jiangsu.medical', 'http500')
    failed, c = settle(g, sim)
    wait_checkpoint(g)

    recs = {}
    for r in g.records():
        recs.setdefault(r['msg_id'], r)
    r = recs[ok['@msg_id']]
    assert r['outcome'] == 'ok'
    assert (r['caller'], r['domain'], r['txn'], r['origin']) == \
        ('shanghai.medical', 'medical', 'settle', '310000')
    assert r['dest'] == ok['@dest'] and r['dest'].startswith('32')
    assert r['upstream'] and r['peer'].startswith('127.0.0.1:')
    assert r['error'] == '' and r['latency_ms'] >= 0
    assert r['upstream_ms'] is not None
    # amounts in fen, as the caller sent them
    assert r['amounts'], r
    assert all(isinstance(v, int) for v in r['amounts'].values())
    # identifiers masked, never in clear
    assert r['ids'], r
    text = b'\n'.join(g.lines()).decode()
    found = fixture_identifiers().search(text)
    assert not found, 'identifier in clear in the audit log: %s' % found

    replays = [x for x in g.records() if x['msg_id'] == ok['@msg_id']]
    assert [x['outcome'] for x in replays] == ['ok', 'replayed']

    r = recs[forbidden_region['@msg_id']]
    assert (r['outcome'], r['error'], r['upstream_ms']) == \
        ('rejected', 'XR-REGION-UNKNOWN', None)
    r = recs[failed['@msg_id']]
    assert r['outcome'] == 'failed' and r['error'].startswith('XR-UPSTREAM')

    res = g.verify()
    assert res.returncode == 0, res.stderr.decode()
    if SM3_OK:
        assert chain_ok(g.lines())


def build_again(sim, canon):
    """The same message again: a caller's retry."""
    return sim.codec('shanghai.medical').encode('request', canon, 'settle')


# ---- volume, across all domains, from many connections ---------------------

CALLS = [('shanghai.medical', 'medical', 'jiangsu'),
         ('jiangsu.medical', 'medical', 'anhui'),
         ('zhejiang.transit', 'transit', 'shanghai'),
         ('anhui.transit', 'transit', 'beijing'),
         ('beijing.gov', 'gov', 'hebei'),
         ('tianjin.gov', 'gov', 'zhejiang')]


def traffic(g, sim, n, workers=8, stop=None):
    """n transactions, round robin over CALLS, from `workers` threads: the
    msg_ids sent and the status each got (None: no answer)."""
    msgs = []
    for i in range(n):
        caller, domain, dest = CALLS[i % len(CALLS)]
        canon, body = build(sim, caller, domain, dest=dest)
        msgs.append((canon['@msg_id'], caller, domain, body))

    def one(m):
        if stop is not None and stop.is_set():
            return m[0], None
        try:
            a = g.post('/xr/%s/' % m[2], m[3], caller=m[1], timeout=30)
            return m[0], a.status
        except OSError:
            return m[0], None

    with cf.ThreadPoolExecutor(workers) as ex:
        return dict(ex.map(one, msgs))


def test_thousands_of_transactions(audited, sim):
    g = audited
    before = len(g.records())
    got = traffic(g, sim, 1800)
    assert all(s == 200 for s in got.values())
    wait_checkpoint(g)
    recs = g.records()[before:]
    assert len(recs) == len(got)
    assert {r['msg_id'] for r in recs} == set(got)
    assert {r['domain'] for r in recs} == {'medical', 'transit', 'gov'}
    assert {r['outcome'] for r in recs} <= {'ok', 'cached'}
    assert {r['outcome'] for r in recs if r['domain'] == 'medical'} == {'ok'}
    res = g.verify()
    assert res.returncode == 0, res.stderr.decode()
    seqs = [e['seq'] for e in g.entries()]
    assert seqs == list(range(1, len(seqs) + 1))
    ck = [e for e in g.entries() if e['type'] == 'ckpt']
    assert len(ck) >= len(recs) // 20 // 2


# ---- restart, kill -9, rotation --------------------------------------------

def test_restart_continues_the_chain(module_so, sim, redis):
    g = Audited(module_so, sim, redis, 'checkpoint=5 checkpoint_interval=1s',
                name='audit-restart')
    try:
        g.start()
        traffic(g, sim, 12, workers=2)
        g.stop()
        # a clean stop leaves the log signed to its end
        es = g.entries()
        assert es[-1]['type'] == 'ckpt' and es[-1]['last'] == es[-2]['seq']
        n = len(g.lines())
        g.start()
        traffic(g, sim, 12, workers=2)
        wait_checkpoint(g)
        es = g.entries()
        opens = [e for e in es if e['type'] == 'open']
        assert [o['reason'] for o in opens] == ['start', 'restart']
        assert opens[1]['seq'] == n + 1 and opens[1]['torn'] == 0
        assert len(g.files()) == 1
        res = g.verify()
        assert res.returncode == 0, res.stderr.decode()
        if SM3_OK:
            assert chain_ok(g.lines())
    finally:
        g.stop()
    assert not g.nginx.bad_lines()


KILLED = re.compile(r'exited on signal 9|was locked by \d+')


def test_kill_9_under_load(module_so, sim, redis):
    """Workers killed with SIGKILL while answering, then the whole
    instance: the log verifies to its last line, no line is torn, and the
    chain goes on after the restart."""
    g = Audited(module_so, sim, redis, 'checkpoint=50 checkpoint_interval=1s',
                name='audit-kill')
    try:
        g.start()
        stop = threading.Event()
        with cf.ThreadPoolExecutor(1) as ex:
            load = ex.submit(traffic, g, sim, 1500, 6, stop)
            for _ in range(3):
                wait_for(lambda: len(g.lines()) > 50, 20, 'records')
                time.sleep(0.3)
                for pid in g.worker_pids()[:1]:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            # the whole instance: master first, so no worker is respawned
            master = g.nginx.proc.pid
            workers = g.worker_pids()
            os.kill(master, signal.SIGKILL)
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            g.nginx.proc.wait(10)
            stop.set()
            got = load.result(120)
        wait_for(lambda: not any(os.path.exists('/proc/%d' % p)
                                 for p in workers), 10, 'workers gone')

        for f in g.files():
            with open(f, 'rb') as fh:
                data = fh.read()
            assert data.endswith(b'\n'), 'a torn line in %s' % f
        res = g.verify()
        assert res.returncode == 0, res.stderr.decode()
        recorded = {r['msg_id'] for r in g.records()}
        answered = {m for m, s in got.items() if s == 200}
        # every answer given has its record (sync=always)
        assert answered <= recorded, len(answered - recorded)
        n = len(g.lines())

        g.nginx.stop()
        g.start()
        traffic(g, sim, 30, workers=3)
        wait_checkpoint(g)
        es = g.entries()
        assert es[n]['type'] == 'open' and es[n]['reason'] == 'restart'
        res = g.verify()
        assert res.returncode == 0, res.stderr.decode()
        if SM3_OK:
            assert chain_ok(g.lines())
    finally:
        g.stop()
    bad = [l for l in g.nginx.bad_lines() if not KILLED.search(l)]
    assert not bad, bad


def test_rotation_by_size(module_so, sim, redis):
    g = Audited(module_so, sim, redis, 'rotate=256k checkpoint=100 checkpoint_interval=1s',
                name='audit-rotate')
    try:
        g.start()
        traffic(g, sim, 900, workers=6)
        wait_checkpoint(g)
        files = g.files()
        assert len(files) >= 2, [os.path.getsize(f) for f in files]
        prev_last = 0
        for i, f in enumerate(files):
            with open(f, 'rb') as fh:
                ls = fh.read().splitlines()
            first = json.loads(ls[0])
            assert first['type'] == 'open'
            assert first['reason'] == ('start' if i == 0 else 'rotate')
            assert first['seq'] == int(NAME.match(
                os.path.basename(f)).group(1)) == prev_last + 1
            if i:
                assert first['prev_file'] == os.path.basename(files[i - 1])
            # size limit: a file ends before 256 KiB plus one line
            assert os.path.getsize(f) <= 256 * 1024 + 65536
            prev_last = json.loads(ls[-1])['seq']
        res = g.verify()
        assert res.returncode == 0, res.stderr.decode()
        if SM3_OK:
            assert chain_ok(g.lines())
    finally:
        g.stop()
    assert not g.nginx.bad_lines()


# ---- a log that cannot take records ----------------------------------------

def prlimit_fsize(pids, limit):
    for pid in pids:
        subprocess.run(['prlimit', '--pid', str(pid),
                        '--fsize=%s:' % limit], check=True, timeout=10)


def refused(g, sim, caller, a, canon, txn):
    """a is the XR-AUDIT-UNAVAILABLE refusal, and nothing was sent (the
    tests send to Jiangsu)."""
    expect_error(sim, caller, a, 'XR-AUDIT-UNAVAILABLE', txn=txn,
                 msg_id=canon['@msg_id'], gw=g.nginx)
    assert a.header('Retry-After') == '1'
    dest = 'jiangsu.' + caller.split('.')[1]
    assert not sim.received(dest, canon['@msg_id'])


def as_root(text):
    """Workers of the test's own user: prlimit(1) may then change their
    soft limits without CAP_SYS_RESOURCE."""
    return 'user root;\n' + text


def test_write_failure_refuses_money_then_recovers(module_so, sim, redis):
    """The workers may not grow the file (as with a full disk): the next
    record fails, a money transaction is refused with XR-AUDIT-UNAVAILABLE
    before anything is sent, a query is still answered; when the limit is
    lifted the gateway records and settles again, and the half-written
    line a failed write left is gone."""
    g = Audited(module_so, sim, redis, 'checkpoint=1000', name='audit-full',
                edit=as_root)
    try:
        g.start()
        # the limit is the workers', for every file: the audit file must be
        # the largest, so that the logs still have room (a record is longer
        # than the lines a transaction leaves in the logs)
        for _ in range(30):
            canon, a = settle(g, sim)
            assert a.status == 200
        size = os.path.getsize(g.files()[-1])
        assert size > 2 * max(os.path.getsize(g.nginx.error_log),
                              os.path.getsize(g.nginx.access_log))
        # room for part of one more line: the write is cut short
        prlimit_fsize(g.worker_pids(), size + 100)

        canon, a = settle(g, sim)      # processed, its record fails
        assert a.status == 200
        canon, a = settle(g, sim)      # refused: nothing is sent
        refused(g, sim, 'shanghai.medical', a, canon, 'settle')
        q, b = query(g, sim)           # a query goes on
        assert b.status == 200
        assert 'XR-AUDIT' not in b.body.decode('utf-8', 'replace')
        assert sim.received('jiangsu.transit', q['@msg_id'])
        assert os.path.getsize(g.files()[-1]) == size

        prlimit_fsize(g.worker_pids(), 'unlimited')
        # the first record written clears the state: a query's, or the
        # refusal's own
        for _ in range(3):
            canon, a = settle(g, sim)
            if sim.received('jiangsu.medical', canon['@msg_id']):
                break
        assert a.status == 200
        assert sim.received('jiangsu.medical', canon['@msg_id'])
        res = g.verify()
        assert res.returncode == 0, res.stderr.decode()
        recs = g.records()
        assert recs[-1]['msg_id'] == canon['@msg_id']
        assert recs[-1]['outcome'] == 'ok'
    finally:
        g.stop()
    log = g.nginx.log()
    assert re.search(r'write\(\) of audit entry \d+ .* failed \(\d+ of \d+ '
                     r'bytes written\)', log)
    assert 'no audit record for msg_id' in log


def test_reserve_refuses_money_keeps_queries(module_so, sim, redis):
    g = Audited(module_so, sim, redis, 'reserve=999999999m',
                name='audit-reserve')
    try:
        g.start()
        wait_for(lambda: 'below reserve=' in g.nginx.log(), 5,
                 'the free space check')
        canon, a = settle(g, sim)
        refused(g, sim, 'shanghai.medical', a, canon, 'settle')
        q, b = query(g, sim)
        assert b.status == 200
        recs = g.records()
        assert [(r['msg_id'], r['outcome'], r['error']) for r in recs] == [
            (canon['@msg_id'], 'rejected', 'XR-AUDIT-UNAVAILABLE'),
            (q['@msg_id'], recs[1]['outcome'], '')]
        assert recs[1]['outcome'] in ('ok', 'cached')
    finally:
        g.stop()


def test_required_all_refuses_queries_too(module_so, sim, redis):
    g = Audited(module_so, sim, redis, 'reserve=999999999m required=all',
                name='audit-all')
    try:
        g.start()
        wait_for(lambda: 'below reserve=' in g.nginx.log(), 5,
                 'the free space check')
        q, b = query(g, sim)
        refused(g, sim, 'shanghai.transit', b, q, 'card_status')
    finally:
        g.stop()


def test_interval_sync(module_so, sim, redis):
    g = Audited(module_so, sim, redis, 'sync=200ms checkpoint=10 '
                'checkpoint_interval=1s hash=sha256', name='audit-interval')
    try:
        g.start()
        got = traffic(g, sim, 60, workers=4)
        assert all(s == 200 for s in got.values())
        wait_checkpoint(g)
        assert len(g.records()) == 60
        assert {e['hash_alg'] for e in g.entries()
                if e['type'] != 'rec'} == {'sha256'}
        res = g.verify()
        assert res.returncode == 0, res.stderr.decode()
    finally:
        g.stop()


def test_caller_that_leaves_is_recorded(module_so, sim, redis):
    g = Audited(module_so, sim, redis, name='audit-leave')
    try:
        g.start()
        sim.fault('jiangsu.medical', 'delay', ms=1500)
        canon, body = build(sim, 'shanghai.medical', 'medical',
                            dest='jiangsu')
        with pytest.raises(OSError):
            g.post('/xr/medical/', body, caller='shanghai.medical',
                   timeout=0.5)
        wait_for(lambda: any(r['msg_id'] == canon['@msg_id']
                             for r in g.records()), 10, 'the record')
        # the destination settled: that is what the record says, though
        # the caller never heard it
        r = [r for r in g.records() if r['msg_id'] == canon['@msg_id']][0]
        assert (r['outcome'], r['error']) == ('ok', ''), r
        assert r['upstream_ms'] >= 1000 and r['latency_ms'] >= 1000
    finally:
        sim.clear_faults()
        g.stop()


# ---- configuration ----------------------------------------------------------

@pytest.mark.parametrize('params,words', [
    ('hash=md5', 'invalid parameter "hash=md5"'),
    ('sync=never', 'invalid parameter "sync=never"'),
    ('rotate=1k', 'a size of at least 256k'),
    ('checkpoint=0', 'invalid parameter "checkpoint=0"'),
    ('required=some', 'invalid parameter "required=some"'),
    ('instance=a"b', 'invalid parameter "instance=a"b"'),
])
def test_conf_errors(module_so, tmp_path, params, words):
    res, _, _ = nginx_t(module_so,
                        http='xregion_audit %s %s;' % (tmp_path, params))
    assert res.returncode != 0
    assert words in res.stderr, res.stderr


def test_conf_needs_a_key(module_so, tmp_path):
    res, _, _ = nginx_t(module_so, http='xregion_audit %s;' % tmp_path)
    assert res.returncode != 0
    assert 'needs a key to sign checkpoints' in res.stderr, res.stderr


# ---- tampering with what the gateway wrote ----------------------------------

INVALID = re.compile(r'^xregion: XR-AUDIT-INVALID: (.+?):(\d+): seq (\d+): '
                     r'([a-z ]+): \S.*\n$')


def tampered(g, tmp_path, change):
    """A copy of the gateway's log, changed by change(lines): the verifier's
    (line, seq, reason)."""
    lines = change(list(g.lines()))
    path = tmp_path / 'copy.jsonl'
    if isinstance(lines, tuple):        # (lines, cut): truncated
        data = b''.join(l + b'\n' for l in lines[0])[:lines[1]]
    else:
        data = b''.join(l + b'\n' for l in lines)
    path.write_bytes(data)
    res = subprocess.run([BIN, 'audit', 'verify', str(path), '--pubkey',
                          g.pub], capture_output=True, timeout=60)
    err = res.stderr.decode()
    assert res.returncode == 1, err
    m = INVALID.match(err)
    assert m, err
    return int(m.group(2)), int(m.group(3)), m.group(4)


def flip(line):
    i = line.index(b'"outcome":"') + len(b'"outcome":"')
    return line[:i] + bytes([line[i] ^ 0x01]) + line[i + 1:]


def forge_ckpt(line):
    e = json.loads(line)
    sig = base64.b64decode(e['sig'])
    bad = sig[:-3] + bytes([sig[-3] ^ 0x40]) + sig[-2:]
    return line.replace(e['sig'].encode(), base64.b64encode(bad))


def test_tampering_is_caught(audited, sim, tmp_path):
    g = audited
    traffic(g, sim, 60, workers=4)
    wait_checkpoint(g)
    es = g.entries()
    rec = [i for i, e in enumerate(es) if e['type'] == 'rec'][-10]
    ck = [i for i, e in enumerate(es) if e['type'] == 'ckpt'][-1]
    seq = es[rec]['seq']
    # line numbers are 1-based, seq == line in a single file from seq 1
    assert seq == rec + 1

    def edit(ls):
        ls[rec] = flip(ls[rec])
        return ls
    assert tampered(g, tmp_path, edit) == (rec + 1, seq, 'edited')

    def delete(ls):
        del ls[rec]
        return ls
    assert tampered(g, tmp_path, delete)[1:] == (seq, 'deleted')

    def swap(ls):
        ls[rec], ls[rec + 1] = ls[rec + 1], ls[rec]
        return ls
    line, s, why = tampered(g, tmp_path, swap)
    assert (line, why) == (rec + 1, 'reordered') and s in (seq, seq + 1)

    def truncate(ls):
        cut = sum(len(l) + 1 for l in ls[:rec]) + 40
        return (ls, cut)
    assert tampered(g, tmp_path, truncate) == (rec + 1, seq,
                                                'truncated line')

    def forge(ls):
        ls[ck] = forge_ckpt(ls[ck])
        return ls
    assert tampered(g, tmp_path, forge) == (ck + 1, es[ck]['seq'], 'edited')

    # an attacker without the key recomputes every hash after an edit: the
    # chain fits, no signature does
    def forge_relinked(ls):
        ls[ck] = forge_ckpt(ls[ck])
        return relink(ls, ck)
    assert tampered(g, tmp_path, forge_relinked) == (ck + 1, es[ck]['seq'],
                                                     'bad signature')

    def rewrite(ls):
        ls[rec] = flip(ls[rec])
        return relink(ls, rec)
    line, s, why = tampered(g, tmp_path, rewrite)
    assert why == 'rewritten' and s >= seq


def test_daily_rotation_after_midnight(module_so, sim, redis):
    """rotate=daily: a file last written on another day gets no more
    records; the next goes to a new file (here: the log is left, its file
    dated yesterday, and the gateway started again)."""
    g = Audited(module_so, sim, redis, 'rotate=daily', name='audit-daily')
    try:
        g.start()
        traffic(g, sim, 5, workers=1)
        g.stop()
        first = g.files()
        assert len(first) == 1
        yesterday = time.time() - 86400
        os.utime(first[0], (yesterday, yesterday))
        g.start()
        canon, a = settle(g, sim)
        assert a.status == 200
        files = g.files()
        assert len(files) == 2 and files[0] == first[0]
        with open(files[1], 'rb') as f:
            head = json.loads(f.readline())
        assert (head['type'], head['reason'], head['prev_file']) == \
            ('open', 'rotate', os.path.basename(first[0]))
        assert g.records()[-1]['msg_id'] == canon['@msg_id']
        res = g.verify()
        assert res.returncode == 0, res.stderr.decode()
    finally:
        g.stop()
