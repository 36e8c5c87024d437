"""End-to-end: metrics (xregion_metrics) read before and after known
traffic, with the exact counts asserted; counted across workers."""

import re
import urllib.request

import pytest

from conftest import Nginx, free_port, make_workdir, render_example
from test_gateway import build

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def scrape(g):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % g.port,
                                timeout=10) as r:
        assert r.status == 200
        assert r.headers['Content-Type'].startswith('text/plain; version=0.0.4')
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith('#') or not line:
            continue
        m = SAMPLE.match(line)
        assert m, line
        out[(m.group(1), m.group(2) or '')] = float(m.group(3))
    return out


def delta(before, after, name, **labels):
    """The change of one sample, labels given in any order."""
    def key(d):
        tot = 0.0
        for (n, l), v in d.items():
            if n != name:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', l))
            if all(got.get(k) == v2 for k, v2 in labels.items()):
                tot += v
        return tot
    return key(after) - key(before)


@pytest.fixture(scope='module')
def metered(module_so, sim, redis):
    prefix = make_workdir('metrics')
    port = free_port()
    conf = render_example(module_so, sim.ports, prefix, port,
                          redis_port=redis.port)
    g = Nginx(prefix, conf, port).start()
    yield g
    g.stop()


def post(g, sim, caller, domain, dest, tweak=None):
    canon, body = build(sim, caller, domain, dest=dest, tweak=tweak)
    return canon, g.post('/xr/%s/' % domain, body, caller=caller)


def test_requests_by_labels(metered, sim):
    g = metered
    b = scrape(g)
    for _ in range(5):
        post(g, sim, 'shanghai.medical', 'medical', 'jiangsu')
    for _ in range(3):
        post(g, sim, 'beijing.gov', 'gov', 'hebei')
    post(g, sim, 'shanghai.medical', 'medical', 'jiangsu',
         tweak=lambda c: c.update({'@dest': '990000'}))
    a = scrape(g)
    assert delta(b, a, 'xregion_requests_total', domain='medical',
                 txn='settle', origin='shanghai', dest='jiangsu',
                 outcome='ok') == 5
    assert delta(b, a, 'xregion_requests_total', domain='gov',
                 origin='beijing', dest='hebei') == 3
    assert delta(b, a, 'xregion_requests_total', domain='medical',
                 dest='unknown', outcome='rejected') == 1
    assert delta(b, a, 'xregion_errors_total',
                 code='XR-REGION-UNKNOWN') == 1
    assert delta(b, a, 'xregion_request_duration_seconds_count',
                 domain='medical') == 6
    assert delta(b, a, 'xregion_upstream_duration_seconds_count',
                 domain='medical') == 5
    assert delta(b, a, 'xregion_request_duration_seconds_bucket',
                 domain='gov', le='+Inf') == 3
    assert delta(b, a, 'xregion_idempotency_total', result='NEW') == 5
    assert delta(b, a, 'xregion_audit_records_total') == 9


def test_cache_and_replay(metered, sim):
    g = metered
    b = scrape(g)
    canon, first = post(g, sim, 'shanghai.medical', 'medical', 'jiangsu')
    again = g.post('/xr/medical/', sim.codec('shanghai.medical').encode(
        'request', canon, 'settle'), caller='shanghai.medical')
    assert again.status == 200
    for _ in range(3):
        post(g, sim, 'zhejiang.transit', 'transit', 'anhui')
    a = scrape(g)
    assert delta(b, a, 'xregion_idempotency_total', result='REPLAY') == 1
    assert delta(b, a, 'xregion_requests_total', domain='medical',
                 outcome='replayed') == 1
    hits = delta(b, a, 'xregion_cache_total', result='HIT')
    misses = delta(b, a, 'xregion_cache_total', result='MISS') + \
        delta(b, a, 'xregion_cache_total', result='EXPIRED')
    assert hits + misses == 3 and hits >= 2
    assert delta(b, a, 'xregion_requests_total', domain='transit',
                 outcome='cached') == hits


def test_counted_across_workers(metered, sim):
    """Many connections reach both workers; one scrape sees them all."""
    import concurrent.futures as cf
    g = metered
    b = scrape(g)

    def one(_):
        return post(g, sim, 'anhui.medical', 'medical', 'zhejiang')[1].status
    with cf.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(one, range(40)))
    assert got == [200] * 40
    a = scrape(g)
    assert delta(b, a, 'xregion_requests_total', origin='anhui',
                 dest='zhejiang', outcome='ok') == 40
    # every scrape is the same sum, whichever worker answers it
    for _ in range(4):
        assert delta(b, scrape(g), 'xregion_requests_total',
                     origin='anhui', dest='zhejiang') == 40
    assert a[('xregion_audit_writable', '')] == 1
    assert any(n == 'xregion_redis_up' and v == 1 for (n, _), v in a.items())
    assert delta(b, a, 'xregion_audit_append_seconds_count') >= 40


def test_metrics_location_only_get(metered):
    a = metered.post('/metrics', b'x')
    assert a.status == 405
