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
from test_gateway import XR_STATUS, build, decode_answer, nginx_t
from test_audit_cli import BIN

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
                 extra=''):
        self.prefix = make_workdir(name)
        self.dir = os.path.join(self.prefix, 'audit')
        self.key, self.pub = make_key(self.prefix)
        self.port = free_port()
        http = '''
    xregion_sign_key  %s;
    xregion_audit  %s instance=gw-e2e %s;
%s''' % (self.key, self.dir, params, extra)
        self.conf = render_example(module_so, sim.ports, self.prefix,
                                   self.port, extra_http=http,
                                   redis_port=redis.port)
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
