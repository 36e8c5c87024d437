"""End-to-end: who may call what (xregion_allow).

A gateway of its own whose rules are narrower than the example's: the
example's xregion_allow lines are replaced by the ones under test.  Every
refusal is answered in the caller's format with XR-FORBIDDEN, logged with
the caller's name, and nothing reaches the destination.
"""

import re

import pytest

from conftest import Nginx, free_port, make_workdir, render_example
from test_gateway import build, expect_error, nginx_t

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
