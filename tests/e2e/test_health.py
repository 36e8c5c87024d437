"""End-to-end: the health endpoint (xregion_health) as a load balancer
sees it: Redis stopping and coming back, the audit log unable to take
records, and the maintenance drain."""

import http.client
import json
import os
import re

import pytest

from conftest import (Nginx, Redis, free_port, make_workdir, render_example,
                      wait_for)
from test_gateway import build


def health(g):
    c = http.client.HTTPConnection('127.0.0.1', g.port, timeout=10)
    try:
        c.request('GET', '/health')
        r = c.getresponse()
        return r.status, json.loads(r.read()), r.getheader('Connection')
    finally:
        c.close()


@pytest.fixture
def watched(module_so, sim):
    prefix = make_workdir('health')
    redis = Redis(os.path.join(prefix, 'redis')).start()
    port = free_port()
    conf = render_example(module_so, sim.ports, prefix, port,
                          redis_port=redis.port)
    g = Nginx(prefix, conf, port).start()
    g.redis = redis
    g.maintenance = os.path.join(prefix, 'maintenance')
    wait_for(lambda: health(g)[0] == 200, 10, 'healthy')
    yield g
    g.stop()
    redis.stop()


def test_healthy(watched):
    status, body, _ = health(watched)
    assert status == 200
    assert body == {'status': 'ok', 'checks': {
        'config': 'loaded', 'redis': 'up', 'audit': 'writable',
        'sign_key': 'none', 'maintenance': 'off'}}


def test_redis_stops_and_comes_back(watched):
    g = watched
    g.redis.stop()
    # each worker has its own connection: every one must have seen it
    wait_for(lambda: all(health(g)[0] == 503 for _ in range(4)), 10,
             'unhealthy')
    status, body, _ = health(g)
    assert body['status'] == 'unhealthy'
    assert body['checks']['redis'] == 'down'
    g.redis.start()
    wait_for(lambda: all(health(g)[0] == 200 for _ in range(4)), 20,
             'healthy again')
    assert health(g)[1]['checks']['redis'] == 'up'


def test_maintenance_drains(watched, sim):
    g = watched
    open(g.maintenance, 'w').close()
    wait_for(lambda: health(g)[0] == 503, 5, 'draining')
    status, body, _ = health(g)
    assert body['status'] == 'draining'
    assert body['checks']['maintenance'] == 'on'
    # still answering what it is sent, closing the connection after
    canon, raw = build(sim, 'shanghai.medical', 'medical', dest='jiangsu')
    a = g.post('/xr/medical/', raw, caller='shanghai.medical')
    assert a.status == 200
    assert (a.header('Connection') or '').lower() == 'close'
    assert 'maintenance on' in g.log()
    os.unlink(g.maintenance)
    wait_for(lambda: health(g)[0] == 200, 5, 'back')
    a = g.post('/xr/medical/', build(sim, 'shanghai.medical', 'medical',
                                     dest='jiangsu')[1],
               caller='shanghai.medical')
    assert (a.header('Connection') or '').lower() != 'close'


def test_audit_unable_is_unhealthy(module_so, sim, redis):
    prefix = make_workdir('health-audit')
    port = free_port()

    def low_reserve(text):
        return re.sub(r'reserve=\w+', 'reserve=999999999m', text)
    conf = render_example(module_so, sim.ports, prefix, port,
                          redis_port=redis.port, edit=low_reserve)
    g = Nginx(prefix, conf, port).start()
    try:
        wait_for(lambda: health(g)[0] == 503, 5, 'unhealthy')
        assert health(g)[1]['checks']['audit'] == 'low_space'
    finally:
        g.stop()


def test_health_conf_errors(module_so):
    from test_gateway import nginx_t
    res, _, _ = nginx_t(module_so, location='''
            xregion_caller_profile shanghai.medical;
        }
        location = /h {
            xregion_health redis=sometimes;''')
    assert res.returncode != 0
    assert 'invalid parameter "redis=sometimes"' in res.stderr, res.stderr
