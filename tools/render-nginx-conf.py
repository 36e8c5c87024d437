#!/usr/bin/env python3
"""Fills in an nginx.conf template (nginx.conf.example) for a local run.

    tools/render-nginx-conf.py --ports-file PORTS.json --module SO \\
        --config DIR --prefix DIR --gateway-port N --tls-port N
        --redis-port N --pki DIR [--template FILE] [--out F]

Replaces @XREGION_MODULE@, @XREGION_CONFIG@, @PREFIX@, @GATEWAY_PORT@,
@GATEWAY_TLS_PORT@, @REDIS_PORT@, @PKI@ and
@SIM_PORT_<profile>@ (ports from the simulator's ports file: {"control": N,
"profiles": {"shanghai.medical": N, ...}}).  Fails, naming the line, when a
placeholder is left that nothing fills.  tools/demo.sh and tests/e2e use it.
"""

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TOKEN = re.compile(r'@([A-Z_]+(?:_[a-z]+\.[a-z]+)?)@')


def render(text, values, ports):
    """Template text -> nginx.conf text.  values: token -> str."""

    def sub(m):
        name = m.group(1)
        if name.startswith('SIM_PORT_'):
            prof = name[len('SIM_PORT_'):]
            if prof not in ports:
                raise KeyError('no port for profile %s' % prof)
            return str(ports[prof])
        if name not in values:
            raise KeyError('no value for @%s@' % name)
        return str(values[name])

    out = []
    for n, line in enumerate(text.splitlines(True), 1):
        try:
            out.append(TOKEN.sub(sub, line))
        except KeyError as e:
            raise ValueError('line %d: %s' % (n, e.args[0]))
    return ''.join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--template', default=os.path.join(ROOT,
                                                       'nginx.conf.example'))
    ap.add_argument('--ports-file', required=True)
    ap.add_argument('--module', required=True)
    ap.add_argument('--config', required=True)
    ap.add_argument('--prefix', required=True)
    ap.add_argument('--gateway-port', required=True, type=int)
    ap.add_argument('--redis-port', required=True, type=int)
    ap.add_argument('--tls-port', required=True, type=int)
    ap.add_argument('--pki', required=True)
    ap.add_argument('--out', default='-')
    args = ap.parse_args(argv)

    with open(args.ports_file) as f:
        ports = json.load(f)['profiles']
    with open(args.template) as f:
        text = f.read()

    values = {
        'XREGION_MODULE': os.path.abspath(args.module),
        'XREGION_CONFIG': os.path.abspath(args.config),
        'PREFIX': os.path.abspath(args.prefix),
        'GATEWAY_PORT': args.gateway_port,
        'REDIS_PORT': args.redis_port,
        'GATEWAY_TLS_PORT': args.tls_port,
        'PKI': os.path.abspath(args.pki),
    }

    try:
        conf = render(text, values, ports)
    except ValueError as e:
        sys.stderr.write('render-nginx-conf: %s: %s\n' % (args.template, e))
        return 1

    if args.out == '-':
        sys.stdout.write(conf)
    else:
        with open(args.out, 'w') as f:
            f.write(conf)
    return 0


if __name__ == '__main__':
    sys.exit(main())
