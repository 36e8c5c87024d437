#!/usr/bin/env python3
"""xrsim: regional system simulators for xregion (stdlib only).

One process plays the medical, transit and gov systems of every region in
config/profiles/, each in its own profile's wire format, with state.  It is an
independent Python reading of docs/profiles.md: it parses the same config
files and implements decode (wire bytes -> canonical dict) and encode
(canonical dict -> wire bytes) itself, so that a disagreement with the C
gateway points at a bug on one side.

    python3 tests/sim/xrsim.py --config config --host 127.0.0.1 \
        --ports-file /tmp/ports.json [--control-port 0]

    python3 tests/sim/xrsim.py --config config --decode FILE \
        --profile shanghai.medical --direction request [--txn settle]

See tests/sim/README.md for the control API and the state semantics.
"""

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET

MAX_BODY = 4 * 1024 * 1024
TZ8 = dt.timezone(dt.timedelta(hours=8))
EPOCH = dt.datetime(1970, 1, 1)
LOG_LIMIT = 20000


# ---------------------------------------------------------------------------
# errors and small value types

class XRError(Exception):
    """A canonical error: code (XR-* / BIZ-*) and message."""

    def __init__(self, code, message):
        Exception.__init__(self, '%s: %s' % (code, message))
        self.code = code
        self.message = message


class ConfigError(Exception):
    pass


class Fen(int):
    """A canonical amount: integer fen."""

    def __repr__(self):
        return 'Fen(%d)' % int(self)


class RawNum(str):
    """A JSON number kept as its exact lexeme."""


def now8():
    """Wall-clock time in UTC+8, naive, to the millisecond."""
    t = dt.datetime.now(TZ8).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def jsonable(v):
    """Canonical value -> JSON-able (amounts {"fen": n}, times ISO)."""
    if isinstance(v, Fen):
        return {'fen': int(v)}
    if isinstance(v, dt.datetime):
        if v.microsecond:
            return v.isoformat(timespec='milliseconds')
        return v.isoformat(timespec='seconds')
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, RawNum):
        return str(v)
    return v


# ---------------------------------------------------------------------------
# the nginx.conf-like syntax

class Tok:
    __slots__ = ('kind', 'value', 'line', 'quoted')

    def __init__(self, kind, value, line, quoted=False):
        self.kind, self.value, self.line, self.quoted = kind, value, line, quoted

    def __repr__(self):
        return 'Tok(%r,%r,%d)' % (self.kind, self.value, self.line)


ESCAPES = {'"': '"', "'": "'", '\\': '\\', 'n': '\n', 't': '\t',
           'r': '\r'}   # \r is not in docs/profiles.md; hebei.transit uses it


def tokenize(text, fname):
    toks = []
    i, n, line = 0, len(text), 1

    def quoted(i, line):
        q = text[i]
        i += 1
        out = []
        while True:
            if i >= n:
                raise ConfigError('%s:%d: unterminated string' % (fname, line))
            c = text[i]
            if c == q:
                return ''.join(out), i + 1, line
            if c == '\\' and i + 1 < n:
                e = text[i + 1]
                if e in ESCAPES:
                    out.append(ESCAPES[e])
                else:
                    out.append('\\' + e)
                i += 2
                continue
            if c == '\n':
                line += 1
            out.append(c)
            i += 1

    while i < n:
        c = text[i]
        if c == '\n':
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == '#':
            while i < n and text[i] != '\n':
                i += 1
        elif c in ';{}':
            toks.append(Tok(c, c, line))
            i += 1
        elif c in '"\'':
            start = line
            s, i, line = quoted(i, line)
            toks.append(Tok('word', s, start, True))
        else:
            start = line
            out = []
            while i < n and not text[i].isspace() and text[i] not in ';{}':
                if text[i] in '"\'':
                    s, i, line = quoted(i, line)
                    out.append(s)
                else:
                    out.append(text[i])
                    i += 1
            toks.append(Tok('word', ''.join(out), start, False))
    return toks


class Directive:
    def __init__(self, name, args, block, line, fname):
        self.name, self.block, self.line, self.fname = name, block, line, fname
        self.args = []      # positional words
        self.opts = {}      # key=value options
        self.flags = set()  # not used by the syntax itself; see schema flags
        for t in args:
            if not t.quoted and '=' in t.value and not t.value.startswith('='):
                k, v = t.value.split('=', 1)
                self.opts[k] = v
            else:
                self.args.append(t.value)

    def where(self):
        return '%s:%d' % (self.fname, self.line)

    def fail(self, msg):
        raise ConfigError('%s: %s' % (self.where(), msg))


def parse_conf(text, fname):
    toks = tokenize(text, fname)
    pos = [0]

    def block(top):
        out = []
        while True:
            if pos[0] >= len(toks):
                if top:
                    return out
                raise ConfigError('%s: unexpected end of file: "}" missing'
                                  % fname)
            t = toks[pos[0]]
            if t.kind == '}':
                if top:
                    raise ConfigError('%s:%d: unexpected "}"' % (fname, t.line))
                pos[0] += 1
                return out
            if t.kind in ';{':
                raise ConfigError('%s:%d: unexpected "%s"' % (fname, t.line, t.kind))
            name, line = t.value, t.line
            pos[0] += 1
            args = []
            while True:
                if pos[0] >= len(toks):
                    raise ConfigError('%s:%d: directive "%s" is not terminated '
                                      'by ";"' % (fname, line, name))
                t = toks[pos[0]]
                if t.kind == 'word':
                    args.append(t)
                    pos[0] += 1
                elif t.kind == ';':
                    pos[0] += 1
                    out.append(Directive(name, args, None, line, fname))
                    break
                elif t.kind == '{':
                    pos[0] += 1
                    sub = block(False)
                    out.append(Directive(name, args, sub, line, fname))
                    break
                else:
                    raise ConfigError('%s:%d: directive "%s" is not terminated '
                                      'by ";"' % (fname, line, name))
        return out

    return block(True)


def read_conf(path):
    with open(path, 'rb') as f:
        data = f.read()
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise ConfigError('%s: not UTF-8' % path)
    return parse_conf(text, path)


# ---------------------------------------------------------------------------
# schemas

TYPES = ('string', 'int', 'amount', 'bool', 'date', 'datetime', 'code', 'list')
ENVELOPE = ('@domain', '@txn', '@msg_id', '@origin', '@dest', '@time',
            '@caller', '@version', '@status', '@err_code', '@err_msg',
            '@ref_msg_id')


# kinds of personal values (pii=, core/xr_mask.h) and the types they go on
PII_KINDS = ('id', 'card', 'name', 'phone', 'birth')
PII_TYPES = ('string', 'int', 'date', 'datetime')


class Field:
    def __init__(self, name, ftype, max_=None, required=False, negative=False,
                 values=None, children=None, pii=None):
        self.name, self.type, self.max = name, ftype, max_
        self.required, self.negative = required, negative
        self.values = values
        self.children = children or {}   # list: name -> Field (ordered)
        self.pii = pii                   # a PII_KINDS word, or None

    def __repr__(self):
        return 'Field(%s %s)' % (self.name, self.type)


ENV_FIELDS = {n: Field(n, 'datetime' if n == '@time' else 'string')
              for n in ENVELOPE}


def parse_fields(block):
    out = {}
    for d in block:
        if d.name != 'field':
            d.fail('unknown directive "%s" in a field list' % d.name)
        if len(d.args) < 2:
            d.fail('field needs a name and a type')
        name, ftype = d.args[0], d.args[1]
        if ftype not in TYPES:
            d.fail('unknown field type "%s"' % ftype)
        flags = set(d.args[2:])
        for fl in flags:
            if fl not in ('required', 'negative'):
                d.fail('unknown field option "%s"' % fl)
        pii = d.opts.get('pii')
        if pii is not None:
            if pii not in PII_KINDS:
                d.fail('unknown pii="%s"' % pii)
            if ftype not in PII_TYPES:
                d.fail('pii= applies to string, int, date and datetime '
                       'fields')
        f = Field(name, ftype,
                  max_=int(d.opts['max']) if 'max' in d.opts else None,
                  required='required' in flags,
                  negative='negative' in flags,
                  values=d.opts['values'].split(',') if 'values' in d.opts else None,
                  pii=pii)
        if ftype == 'list':
            if d.block is None:
                d.fail('list field "%s" needs a block' % name)
            f.children = parse_fields(d.block)
        if name in out:
            d.fail('duplicate field "%s"' % name)
        out[name] = f
    return out


class SchemaTxn:
    def __init__(self, name):
        self.name = name
        self.kind = 'query'
        self.key = []
        self.cache = False
        self.invalidates = []
        self.request = {}
        self.response = {}


class Schema:
    def __init__(self, path):
        self.path = path
        self.domain = None
        self.route = None
        self.txns = {}
        for d in read_conf(path):
            if d.name == 'domain':
                self.domain = d.args[0]
            elif d.name == 'route':
                self.route = (d.args, d.opts)
            elif d.name == 'txn':
                t = SchemaTxn(d.args[0])
                for s in d.block or []:
                    if s.name == 'kind':
                        t.kind = s.args[0]
                    elif s.name == 'key':
                        t.key = list(s.args)
                    elif s.name == 'cache':
                        t.cache = True
                    elif s.name == 'invalidates':
                        t.invalidates = list(s.args)
                    elif s.name == 'request':
                        t.request = parse_fields(s.block or [])
                    elif s.name == 'response':
                        t.response = parse_fields(s.block or [])
                    else:
                        s.fail('unknown directive "%s" in txn' % s.name)
                self.txns[t.name] = t
            else:
                d.fail('unknown directive "%s"' % d.name)
        if not self.domain:
            raise ConfigError('%s: no domain' % path)


# ---------------------------------------------------------------------------
# time patterns

class TimeFmt:
    """%Y %m %d %H %M %S %L, literal characters, or epoch / epoch_ms."""

    WIDTH = {'Y': 4, 'm': 2, 'd': 2, 'H': 2, 'M': 2, 'S': 2, 'L': 3}

    def __init__(self, pattern):
        self.pattern = pattern
        self.epoch = pattern if pattern in ('epoch', 'epoch_ms') else None
        self.parts = []
        if self.epoch:
            return
        i = 0
        rx = []
        while i < len(pattern):
            c = pattern[i]
            if c == '%':
                if i + 1 >= len(pattern) or pattern[i + 1] not in self.WIDTH:
                    raise ConfigError('bad time pattern "%s"' % pattern)
                k = pattern[i + 1]
                self.parts.append(('%', k))
                rx.append('(\\d{%d})' % self.WIDTH[k])
                i += 2
            else:
                self.parts.append(('lit', c))
                rx.append(re.escape(c))
                i += 1
        self.rx = re.compile('^' + ''.join(rx) + '$')
        self.keys = [k for kind, k in self.parts if kind == '%']

    def parse(self, text, want):
        """text -> datetime (want 'datetime') or date (want 'date')."""
        if self.epoch:
            if not re.fullmatch(r'-?\d{1,16}', text):
                raise ValueError('not an integer')
            v = int(text)
            if self.epoch == 'epoch_ms':
                t = EPOCH + dt.timedelta(milliseconds=v) + dt.timedelta(hours=8)
            else:
                t = EPOCH + dt.timedelta(seconds=v) + dt.timedelta(hours=8)
            return t.date() if want == 'date' else t
        m = self.rx.match(text)
        if not m:
            raise ValueError('does not match "%s"' % self.pattern)
        vals = dict(Y=1900, m=1, d=1, H=0, M=0, S=0, L=0)
        for k, g in zip(self.keys, m.groups()):
            vals[k] = int(g)
        t = dt.datetime(vals['Y'], vals['m'], vals['d'], vals['H'], vals['M'],
                        vals['S'], vals['L'] * 1000)   # range-checked here
        return t.date() if want == 'date' else t

    def format(self, v):
        if not isinstance(v, dt.datetime):
            v = dt.datetime(v.year, v.month, v.day)
        if self.epoch:
            delta = v - dt.timedelta(hours=8) - EPOCH
            if self.epoch == 'epoch_ms':
                return str((delta.days * 86400 + delta.seconds) * 1000
                           + delta.microseconds // 1000)
            return str(delta.days * 86400 + delta.seconds)
        out = []
        for kind, k in self.parts:
            if kind == 'lit':
                out.append(k)
            else:
                n = {'Y': v.year, 'm': v.month, 'd': v.day, 'H': v.hour,
                     'M': v.minute, 'S': v.second,
                     'L': v.microsecond // 1000}[k]
                out.append('%0*d' % (self.WIDTH[k], n))
        return ''.join(out)


# ---------------------------------------------------------------------------
# code tables

class Table:
    def __init__(self, name):
        self.name = name
        self.entries = []        # (canonical, wire) in file order

    def add(self, canon, wire):
        self.entries.append((canon, wire))

    def to_wire(self, canon):
        for c, w in self.entries:
            if c == canon:
                return w
        return None

    def to_canon(self, wire):
        for c, w in self.entries:        # reading picks the first
            if w == wire:
                return c
        return None


def parse_table(d):
    t = Table(d.args[0] if d.args else '?')
    for e in d.block or []:
        if len(e.args) != 1 or e.block is not None or e.opts:
            e.fail('table entry needs a canonical value and a wire value')
        t.add(e.name, e.args[0])
    return t


# ---------------------------------------------------------------------------
# profiles

class MapOp:
    kind = 'map'

    def __init__(self, canon, wire, opts, field, children, line):
        self.canon, self.wire, self.opts = canon, wire, opts
        self.field, self.children, self.line = field, children, line
        self.path = wire.split('.')
        self.slice = None
        if 'slice' in opts:
            a, b = opts['slice'].split(':')
            self.slice = (int(a), int(b))
        self.max = int(opts['max']) if 'max' in opts else None
        self.required = 'required' in opts or False
        self.table = None        # resolved Table
        self.time = None         # resolved TimeFmt
        self.unit = None         # amount unit override
        self.as_ = opts.get('as')


class SetOp:
    kind = 'set'

    def __init__(self, wire, value, opts, line):
        self.wire, self.value, self.opts, self.line = wire, value, opts, line
        self.path = wire.split('.')
        self.as_ = opts.get('as')


class FixedField:
    def __init__(self, name, off, length, enc, fill):
        self.name, self.off, self.len, self.enc, self.fill = \
            name, off, length, enc, fill


class Records:
    def __init__(self, name, count, fields):
        self.name, self.count, self.fields = name, count, fields
        self.size = max([f.off + f.len for f in fields] or [0])


class Layout:
    def __init__(self, fields, records):
        self.fields = fields
        self.records = records      # list of Records
        self.size = max([f.off + f.len for f in fields] or [0])

    def all_names(self):
        return {f.name for f in self.fields}


ENCODINGS = ('text', 'num', 'bcd', 'bin', 'hex')


def parse_layout(d):
    fields, recs = [], []
    for f in d.block or []:
        if f.name == 'field':
            if len(f.args) != 4 or f.args[3] not in ENCODINGS:
                f.fail('field needs: name offset length encoding')
            fields.append(FixedField(f.args[0], int(f.args[1]), int(f.args[2]),
                                     f.args[3], f.opts.get('fill')))
        elif f.name == 'records':
            sub = parse_layout(f)
            recs.append(Records(f.args[0], f.opts.get('count'), sub.fields))
        else:
            f.fail('unknown directive "%s" in a fixed layout' % f.name)
    return Layout(fields, recs)


class ProfileTxn:
    def __init__(self, name, code):
        self.name, self.code = name, code
        self.path = None
        self.ops = {'request': [], 'response': []}
        self.layouts = {'request': None, 'response': None}
        self.schema = None


class Profile:
    def __init__(self, path, regions, schemas, shared_tables):
        self.file = path
        self.name = self.region = self.codec = None
        self.charset = 'utf-8'
        self.content_type = None
        self.amount = 'yuan'
        self.description = ''
        self.times = {}
        self.tables = {}
        self.result = None          # (path, ok, fail, as)
        self.message = None
        self.errors = None
        self.error_status = None
        self.env = {'request': [], 'response': []}
        self.headers = {'request': None, 'response': None}
        self.txns = {}
        self.shared_tables = shared_tables
        ds = read_conf(path)
        pending_env, pending_txns = [], []
        for d in ds:
            n = d.name
            if n == 'profile':
                self.name = d.args[0]
            elif n == 'region':
                self.region = d.args[0]
            elif n == 'description':
                self.description = d.args[0] if d.args else ''
            elif n == 'codec':
                self.codec = d.args[0]
                if self.codec not in ('json', 'xml', 'fixed'):
                    d.fail('unknown codec "%s"' % self.codec)
            elif n == 'charset':
                self.charset = d.args[0].lower()
                if self.charset not in ('utf-8', 'gbk'):
                    d.fail('unknown charset "%s"' % self.charset)
            elif n == 'content_type':
                self.content_type = d.args[0]
            elif n == 'amount':
                self.amount = d.args[0]
                if self.amount not in ('yuan', 'fen'):
                    d.fail('amount must be yuan or fen')
            elif n == 'time':
                try:
                    self.times[d.args[0]] = TimeFmt(d.args[1])
                except (ConfigError, IndexError) as e:
                    d.fail('bad time format: %s' % e)
            elif n == 'table':
                self.tables[d.args[0]] = parse_table(d)
            elif n == 'result':
                if 'ok' not in d.opts:
                    d.fail('result needs ok=')
                # ok=00,OK: several success values, the first is written
                self.result = (d.args[0], d.opts['ok'].split(','),
                               d.opts.get('fail'), d.opts.get('as'))
            elif n == 'message':
                self.message = d.args[0]
            elif n == 'errors':
                self.errors = d.args[0]
            elif n == 'error_status':
                self.error_status = int(d.args[0])
            elif n in ('request', 'response'):
                pending_env.append(d)
            elif n == 'header':
                self.headers[d.args[0]] = parse_layout(d)
            elif n == 'txn':
                pending_txns.append(d)
            else:
                d.fail('unknown directive "%s"' % n)
        base = os.path.basename(path)
        if self.name is None or base != self.name + '.conf':
            raise ConfigError('%s: profile name "%s" does not match the file '
                              'name' % (path, self.name))
        if self.region not in regions:
            raise ConfigError('%s: unknown region "%s"' % (path, self.region))
        self.region_code = regions[self.region]
        self.domain = self.name.split('.', 1)[1]
        if self.domain not in schemas:
            raise ConfigError('%s: no schema for domain "%s"' % (path, self.domain))
        self.schema = schemas[self.domain]
        if self.codec is None:
            raise ConfigError('%s: no codec' % path)
        if self.result is None:
            raise ConfigError('%s: no result directive' % path)
        if self.errors is not None and self.table(self.errors) is None:
            raise ConfigError('%s: unknown errors table "%s"' % (path, self.errors))
        for d in pending_env:
            self.env[d.name] = self.parse_ops(d.block or [], ENV_FIELDS)
        for d in pending_txns:
            if len(d.args) != 2:
                d.fail('txn needs a canonical name and a code')
            name, code = d.args
            if name not in self.schema.txns:
                d.fail('unknown txn "%s" in domain %s' % (name, self.domain))
            t = ProfileTxn(name, code)
            t.schema = self.schema.txns[name]
            for s in d.block or []:
                if s.name == 'path':
                    t.path = s.args[0]
                elif s.name in ('request', 'response'):
                    fields = dict(ENV_FIELDS)
                    fields.update(getattr(t.schema, s.name))
                    t.ops[s.name] = self.parse_ops(s.block or [], fields,
                                                   txn=name)
                elif s.name == 'layout':
                    t.layouts[s.args[0]] = parse_layout(s)
                else:
                    s.fail('unknown directive "%s" in txn' % s.name)
            if name in self.txns:
                d.fail('duplicate txn "%s"' % name)
            self.txns[name] = t
        self.by_code = {}
        for t in self.txns.values():
            if t.code in self.by_code:
                raise ConfigError('%s: duplicate txn code %s' % (path, t.code))
            self.by_code[t.code] = t
        self.by_path = {}
        for t in self.txns.values():
            if t.path:
                self.by_path.setdefault(t.path, []).append(t)

    # -- helpers

    def table(self, name):
        return self.tables.get(name) or self.shared_tables.get(name)

    def errors_table(self):
        return self.table(self.errors) if self.errors else None

    def err_wire(self, code):
        """The wire result code for a canonical error code."""
        t = self.errors_table()
        if t is not None:
            w = t.to_wire(code)
            if w is not None:
                return w
            w = t.to_wire('default')
            if w is not None:
                return w
        if self.result[2] is not None:
            return self.result[2]
        return 'ERR'

    def err_canon(self, wire):
        t = self.errors_table()
        if t is not None:
            for c, w in t.entries:
                if w == wire and c != 'default':
                    return c
        return 'BIZ-' + wire

    def parse_ops(self, block, fields, txn=None):
        ops = []
        for d in block:
            if d.name == 'map':
                extra = d.args[2:]
                if len(d.args) < 2 or any(a != 'required' for a in extra):
                    d.fail('map needs a canonical field and a wire path')
                canon, wire = d.args[:2]
                if extra:
                    d.opts['required'] = 'required'
                f = fields.get(canon)
                if f is None:
                    d.fail('unknown canonical field "%s"%s' % (
                        canon, ' in txn %s' % txn if txn else ''))
                children = None
                if f.type == 'list':
                    if d.block is None:
                        d.fail('list field "%s" needs a block' % canon)
                    children = self.parse_ops(d.block, f.children, txn)
                op = MapOp(canon, wire, d.opts, f, children, d.where())
                for k in d.opts:
                    if k not in ('max', 'required', 'table', 'time', 'amount',
                                 'as', 'slice'):
                        d.fail('unknown option "%s"' % k)
                if 'table' in d.opts:
                    op.table = self.table(d.opts['table'])
                    if op.table is None:
                        d.fail('unknown table "%s"' % d.opts['table'])
                if 'time' in d.opts:
                    tn = d.opts['time']
                    if tn in self.times:
                        op.time = self.times[tn]
                    elif '%' in tn or tn in ('epoch', 'epoch_ms'):
                        try:
                            op.time = TimeFmt(tn)
                        except ConfigError as e:
                            d.fail(str(e))
                    else:
                        d.fail('unknown time format "%s"' % tn)
                elif f.type in ('date', 'datetime'):
                    d.fail('"%s" needs time=' % canon)
                if 'amount' in d.opts:
                    op.unit = d.opts['amount']
                ops.append(op)
            elif d.name == 'set':
                if len(d.args) != 2:
                    d.fail('set needs a wire path and a value')
                ops.append(SetOp(d.args[0], d.args[1], d.opts, d.where()))
            else:
                d.fail('unknown directive "%s" in a mapping block' % d.name)
        return ops

    def content_type_header(self):
        ct = self.content_type or {'json': 'application/json',
                                   'xml': 'application/xml',
                                   'fixed': 'application/octet-stream'}[self.codec]
        if 'charset=' not in ct and (self.codec in ('json', 'xml')
                                     or ct.startswith('text/')):
            ct += '; charset=' + ('GBK' if self.charset == 'gbk' else 'UTF-8')
        return ct


class Config:
    def __init__(self, cdir, only=None):
        self.dir = cdir
        self.regions = {}
        for d in read_conf(os.path.join(cdir, 'regions.conf')):
            if d.name != 'region' or len(d.args) < 2:
                d.fail('expected: region NAME CODE "LABEL";')
            self.regions[d.args[0]] = d.args[1]
        self.schemas = {}
        sdir = os.path.join(cdir, 'schema')
        for fn in sorted(os.listdir(sdir)):
            if fn.endswith('.conf'):
                s = Schema(os.path.join(sdir, fn))
                self.schemas[s.domain] = s
        self.tables = {}
        tdir = os.path.join(cdir, 'tables')
        if os.path.isdir(tdir):
            for fn in sorted(os.listdir(tdir)):
                if fn.endswith('.conf'):
                    for d in read_conf(os.path.join(tdir, fn)):
                        if d.name != 'table':
                            d.fail('unknown directive "%s"' % d.name)
                        self.tables[d.args[0]] = parse_table(d)
        self.profiles = {}
        pdir = os.path.join(cdir, 'profiles')
        for fn in sorted(os.listdir(pdir)):
            if not fn.endswith('.conf'):
                continue
            name = fn[:-5]
            if only and name not in only:
                continue
            p = Profile(os.path.join(pdir, fn), self.regions, self.schemas,
                        self.tables)
            self.profiles[p.name] = p


# ---------------------------------------------------------------------------
# wire trees: JSON

def json_dumps(v):
    """Compact JSON that writes RawNum lexemes verbatim."""
    if isinstance(v, RawNum):
        return str(v)
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if v is None:
        return 'null'
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return '{' + ','.join(json.dumps(k, ensure_ascii=False) + ':' + json_dumps(x)
                              for k, x in v.items()) + '}'
    if isinstance(v, list):
        return '[' + ','.join(json_dumps(x) for x in v) + ']'
    raise TypeError(repr(v))


def _bad_const(s):
    raise ValueError('%s is not JSON' % s)


class JsonWire:
    def __init__(self, root=None):
        self.root = {} if root is None else root

    def get(self, path):
        """-> (text, jtype) or None."""
        cur = self.root
        for i, p in enumerate(path):
            if not isinstance(cur, dict):
                raise XRError('XR-FIELD-TYPE', '%s is not an object'
                              % '.'.join(path[:i]))
            if p not in cur:
                return None
            cur = cur[p]
        if cur is None:
            return None
        if isinstance(cur, RawNum):
            return str(cur), 'number'
        if isinstance(cur, bool):
            return ('true' if cur else 'false'), 'bool'
        if isinstance(cur, str):
            return cur, 'string'
        raise XRError('XR-FIELD-TYPE', '%s is an %s where a value belongs'
                      % ('.'.join(path), 'object' if isinstance(cur, dict)
                         else 'array'))

    def get_list(self, path):
        cur = self.root
        for i, p in enumerate(path):
            if not isinstance(cur, dict):
                raise XRError('XR-FIELD-TYPE', '%s is not an object'
                              % '.'.join(path[:i]))
            if p not in cur:
                return []
            cur = cur[p]
        if cur is None:
            return []
        if isinstance(cur, dict):
            cur = [cur]       # an object where an array was expected
        if not isinstance(cur, list):
            raise XRError('XR-FIELD-TYPE', '%s is not an array' % '.'.join(path))
        out = []
        for x in cur:
            if not isinstance(x, dict):
                raise XRError('XR-FIELD-TYPE', '%s[] is not an object'
                              % '.'.join(path))
            out.append(JsonWire(x))
        return out

    def _parent(self, path):
        cur = self.root
        for p in path[:-1]:
            nxt = cur.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                cur[p] = nxt
            cur = nxt
        return cur

    def put(self, path, text, jtype):
        if jtype == 'number':
            v = RawNum(text)
        elif jtype == 'bool':
            v = text in ('true', '1')
        else:
            v = text
        self._parent(path)[path[-1]] = v

    def put_list(self, path, n):
        par = self._parent(path)
        items = [{} for _ in range(n)]
        par[path[-1]] = items
        return [JsonWire(x) for x in items]


def json_parse(text):
    try:
        v = json.loads(text, parse_float=RawNum, parse_int=RawNum,
                       parse_constant=_bad_const)
    except RecursionError:
        raise XRError('XR-DEPTH', 'JSON nested too deeply')
    except ValueError as e:
        raise XRError('XR-SYNTAX', 'not well-formed JSON: %s' % e)
    if not isinstance(v, dict):
        raise XRError('XR-SYNTAX', 'the JSON document is not an object')
    return JsonWire(v)


# ---------------------------------------------------------------------------
# wire trees: XML

def localname(tag):
    if '}' in tag:
        tag = tag.split('}', 1)[1]
    if ':' in tag:
        tag = tag.split(':', 1)[1]
    return tag


class XmlWire:
    """An element; paths start with the root name when top is set."""

    def __init__(self, elem=None, top=True):
        self.elem, self.top = elem, top

    def _steps(self, path):
        if self.top:
            if self.elem is None:
                return None, path
            if localname(self.elem.tag) != path[0]:
                raise XRError('XR-SYNTAX', 'root element <%s>, expected <%s>'
                              % (localname(self.elem.tag), path[0]))
            return self.elem, path[1:]
        return self.elem, path

    @staticmethod
    def _child(e, name):
        for c in e:
            if isinstance(c.tag, str) and localname(c.tag) == name:
                return c
        return None

    def get(self, path):
        e, rest = self._steps(path)
        if e is None:
            return None
        for p in rest[:-1] if rest else []:
            e = self._child(e, p)
            if e is None:
                return None
        if rest:
            last = rest[-1]
            if last.startswith('@'):
                for k, v in e.attrib.items():
                    if localname(k) == last[1:]:
                        return v, None
                return None
            e = self._child(e, last)
            if e is None:
                return None
        if len(e):
            raise XRError('XR-FIELD-TYPE', '<%s> has elements where a value '
                          'belongs' % '.'.join(path))
        return (e.text or ''), None

    def get_list(self, path):
        e, rest = self._steps(path)
        if e is None or not rest:
            return []
        for p in rest[:-1]:
            e = self._child(e, p)
            if e is None:
                return []
        return [XmlWire(c, False) for c in e
                if isinstance(c.tag, str) and localname(c.tag) == rest[-1]]

    def _make(self, path):
        if self.top:
            if self.elem is None:
                self.elem = ET.Element(path[0])
            elif self.elem.tag != path[0]:
                raise XRError('XR-INTERNAL', 'two roots: <%s> and <%s>'
                              % (self.elem.tag, path[0]))
            e, rest = self.elem, path[1:]
        else:
            e, rest = self.elem, path
        for p in rest[:-1]:
            c = self._child(e, p)
            if c is None:
                c = ET.SubElement(e, p)
            e = c
        return e, (rest[-1] if rest else None)

    def put(self, path, text, jtype):
        e, last = self._make(path)
        if last is None:
            e.text = text
        elif last.startswith('@'):
            e.set(last[1:], text)
        else:
            c = self._child(e, last)
            if c is None:
                c = ET.SubElement(e, last)
            c.text = text

    def put_list(self, path, n):
        e, last = self._make(path)
        return [XmlWire(ET.SubElement(e, last), False) for _ in range(n)]


XML_DECL = re.compile(r'^\s*<\?xml[^>]*\?>')


def xml_parse(text):
    text = XML_DECL.sub('', text, count=1)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise XRError('XR-SYNTAX', 'not well-formed XML: %s' % e)
    except RecursionError:
        raise XRError('XR-DEPTH', 'XML nested too deeply')
    return XmlWire(root, True)


def xml_serialize(w, charset):
    root = w.elem if w.elem is not None else ET.Element('EMPTY')
    ET.indent(root, '  ')
    s = ET.tostring(root, encoding='unicode')
    decl = '<?xml version="1.0" encoding="%s"?>\n' % (
        'GBK' if charset == 'gbk' else 'UTF-8')
    return encode_text(decl + s + '\n', charset)


# ---------------------------------------------------------------------------
# wire trees: fixed

class BadField:
    """A fixed field that did not decode: an error only if something reads it
    (an unmapped field, e.g. a constant version byte, is ignored)."""

    def __init__(self, err):
        self.err = err


class FixedWire:
    def __init__(self, values=None, lists=None):
        self.values = {} if values is None else values   # name -> text
        self.lists = {} if lists is None else lists       # name -> [FixedWire]

    def get(self, path):
        v = self.values.get('.'.join(path))
        if v is None:
            return None
        if isinstance(v, BadField):
            raise v.err
        return v, None

    def get_list(self, path):
        return self.lists.get('.'.join(path), [])

    def put(self, path, text, jtype):
        self.values['.'.join(path)] = text

    def put_list(self, path, n):
        items = [FixedWire() for _ in range(n)]
        self.lists['.'.join(path)] = items
        return items


def decode_text(b, charset, what='body'):
    try:
        if charset == 'gbk':
            return b.decode('gb18030')
        return b.decode('utf-8')
    except UnicodeDecodeError as e:
        raise XRError('XR-CHARSET', '%s is not valid %s: %s'
                      % (what, charset.upper(), e.reason))


def encode_text(s, charset, what='answer'):
    try:
        return s.encode('gbk' if charset == 'gbk' else 'utf-8')
    except UnicodeEncodeError as e:
        raise XRError('XR-CHARSET', '%s: a character cannot be written in %s'
                      ' (%r)' % (what, charset.upper(), s[e.start:e.end]))


def fixed_get_lazy(f, buf, base, charset):
    """fixed_get, with a decoding error kept for whoever reads the field."""
    try:
        return fixed_get(f, buf, base, charset)
    except XRError as e:
        return BadField(e)


def fixed_get(f, buf, base, charset):
    b = buf[base + f.off: base + f.off + f.len]
    if f.enc == 'text':
        return decode_text(b, charset, 'field %s' % f.name).rstrip(' ')
    if f.enc == 'num':
        s = b.decode('latin-1')
        if s.strip(' ') == '':
            return ''
        if not s.isdigit() or not s.isascii():
            raise XRError('XR-FIELD-FORMAT', 'field %s: "%s" is not digits'
                          % (f.name, s))
        return s
    if f.enc == 'bcd':
        s = b.hex()
        if not s.isdigit():
            raise XRError('XR-FIELD-FORMAT', 'field %s: %s is not packed BCD'
                          % (f.name, s.upper()))
        return s
    if f.enc == 'bin':
        return str(int.from_bytes(b, 'big'))
    return b.hex().upper()                         # hex


def fixed_put(f, val, charset):
    n = f.len
    if val is None:
        return b' ' * n if f.enc == 'text' else (b'0' * n if f.enc == 'num'
                                                  else bytes(n))
    if f.enc == 'text':
        b = encode_text(val, charset, 'field %s' % f.name)
        if len(b) > n:
            raise XRError('XR-FIELD-TOO-LONG', 'field %s: %d bytes, the column '
                          'has %d' % (f.name, len(b), n))
        return b + b' ' * (n - len(b))
    if f.enc == 'num':
        if not (val.isdigit() and val.isascii()):
            raise XRError('XR-FIELD-FORMAT', 'field %s: "%s" is not digits'
                          % (f.name, val))
        if len(val) > n:
            raise XRError('XR-FIELD-TOO-LONG', 'field %s: %d digits, the column'
                          ' has %d' % (f.name, len(val), n))
        return val.rjust(n, '0').encode('ascii')
    if f.enc == 'bcd':
        if not (val.isdigit() and val.isascii()):
            raise XRError('XR-FIELD-FORMAT', 'field %s: "%s" is not digits'
                          % (f.name, val))
        if len(val) > 2 * n:
            raise XRError('XR-FIELD-TOO-LONG', 'field %s: %d digits, BCD %d'
                          % (f.name, len(val), n))
        return bytes.fromhex(val.rjust(2 * n, '0'))
    if f.enc == 'bin':
        if not (val.isdigit() and val.isascii()):
            raise XRError('XR-FIELD-FORMAT', 'field %s: "%s" is not an unsigned'
                          ' integer' % (f.name, val))
        v = int(val)
        if v >= 256 ** n:
            raise XRError('XR-FIELD-TOO-LONG', 'field %s: %d does not fit in %d'
                          ' bytes' % (f.name, v, n))
        return v.to_bytes(n, 'big')
    # hex
    if not re.fullmatch(r'[0-9A-Fa-f]*', val) or len(val) % 2:
        raise XRError('XR-FIELD-FORMAT', 'field %s: "%s" is not hex'
                      % (f.name, val))
    if len(val) > 2 * n:
        raise XRError('XR-FIELD-TOO-LONG', 'field %s: %d hex digits for %d '
                      'bytes' % (f.name, len(val), n))
    return bytes.fromhex(val.rjust(2 * n, '0'))


def fixed_fill(fields, values, buf, base, charset):
    for f in fields:
        v = values.get(f.name)
        if v is None and f.fill is not None:
            v = f.fill
        b = fixed_put(f, v, charset)
        buf[base + f.off: base + f.off + f.len] = b


# ---------------------------------------------------------------------------
# values: wire text <-> canonical

YUAN_RX = re.compile(r'^(-?)(\d+)(?:\.(\d+))?$')


def amount_from_wire(text, unit, f, what):
    m = YUAN_RX.match(text)
    if not m:
        raise XRError('XR-FIELD-FORMAT', '%s: "%s" is not an amount' % (what, text))
    sign, whole, frac = m.groups()
    if unit == 'fen':
        if frac is not None:
            raise XRError('XR-AMOUNT-PRECISION', '%s: a fen amount with '
                          'decimals: "%s"' % (what, text))
        v = int(whole)
    else:
        frac = frac or ''
        if len(frac) > 2:
            raise XRError('XR-AMOUNT-PRECISION', '%s has more than two '
                          'decimals: "%s"' % (what, text))
        if len(whole.lstrip('0')) > 16:
            raise XRError('XR-AMOUNT-RANGE', '%s: beyond 16 digits of yuan'
                          % what)
        v = int(whole) * 100 + int((frac + '00')[:2])
    if sign:
        v = -v
    if v < 0 and not f.negative:
        raise XRError('XR-AMOUNT-NEGATIVE', '%s is negative: "%s"' % (what, text))
    return Fen(v)


def amount_to_wire(v, unit):
    v = int(v)
    if unit == 'fen':
        return str(v)
    sign = '-' if v < 0 else ''
    v = abs(v)
    return '%s%d.%02d' % (sign, v // 100, v % 100)


def default_jtype(op, f, unit):
    if op.as_:
        return op.as_
    if f.type == 'int':
        return 'number'
    if f.type == 'amount' and unit == 'fen':
        return 'number'
    if f.type == 'bool':
        return 'bool'
    return 'string'


class Codec:
    """Decoding and encoding of whole messages with one profile."""

    def __init__(self, profile, strict_json_types=True):
        self.p = profile
        self.strict = strict_json_types

    # -- scalar values

    def what(self, op):
        return 'field %s (wire %s)' % (op.canon, op.wire)

    def value_from_wire(self, op, text, jtype):
        p, f = self.p, op.field
        what = self.what(op)
        unit = op.unit or p.amount
        if jtype is not None and self.strict and f.type != 'list':
            want = default_jtype(op, f, unit)
            if jtype != want:
                raise XRError('XR-FIELD-TYPE', '%s is a JSON %s, the profile '
                              'says %s' % (what, jtype, want))
        if op.slice:
            a, n = op.slice
            if len(text) < a + n:
                raise XRError('XR-FIELD-FORMAT', '%s: "%s" is too short for '
                              'slice=%d:%d' % (what, text, a, n))
            text = text[a:a + n]
        if op.max is not None and not op.slice:
            ln = len(text.encode('gbk' if p.charset == 'gbk' else 'utf-8')) \
                if p.codec == 'fixed' else len(text)
            if ln > op.max:
                raise XRError('XR-FIELD-TOO-LONG', '%s is longer than %d'
                              % (what, op.max))
        if op.table is not None:
            c = op.table.to_canon(text)
            if c is None:
                raise XRError('XR-CODE-UNMAPPED', '%s: "%s" is not in table %s'
                              % (what, text, op.table.name))
            text = c
        t = f.type
        if op.canon == '@txn':
            tx = p.by_code.get(text)
            if tx is None:
                raise XRError('XR-TXN-UNKNOWN', 'transaction code "%s" is not '
                              'one %s knows' % (text, p.name))
            return tx.name
        if t in ('string', 'code'):
            v = text
            if f.max is not None and len(v) > f.max:
                raise XRError('XR-FIELD-TOO-LONG', '%s is longer than %d '
                              'characters' % (what, f.max))
            if t == 'code' and f.values and v not in f.values:
                raise XRError('XR-CODE-UNMAPPED', '%s: "%s" is not one of %s'
                              % (what, v, ','.join(f.values)))
            return v
        if t == 'int':
            if not re.fullmatch(r'-?\d{1,18}', text):
                # docs/errors.md: "text where an integer belongs" is a type
                raise XRError('XR-FIELD-TYPE', '%s: "%s" is not an integer'
                              % (what, text))
            return int(text)
        if t == 'amount':
            return amount_from_wire(text, unit, f, what)
        if t == 'bool':
            if text in ('true', '1'):
                return True
            if text in ('false', '0'):
                return False
            raise XRError('XR-FIELD-FORMAT', '%s: "%s" is not a boolean'
                          % (what, text))
        if t in ('date', 'datetime'):
            if op.time is None:
                raise XRError('XR-CONFIG', '%s has no time format' % what)
            try:
                return op.time.parse(text, t)
            except ValueError as e:
                raise XRError('XR-FIELD-FORMAT', '%s: "%s" %s' % (what, text, e))
        raise XRError('XR-INTERNAL', 'type %s' % t)

    def value_to_wire(self, op, v):
        p, f = self.p, op.field
        what = self.what(op)
        unit = op.unit or p.amount
        t = f.type
        if op.canon == '@txn':
            tx = p.txns.get(v)
            if tx is None:
                raise XRError('XR-TXN-UNSUPPORTED', '%s does not offer %s'
                              % (p.name, v))
            text = tx.code
        elif t in ('string', 'code'):
            text = str(v)
            if f.max is not None and len(text) > f.max:
                raise XRError('XR-FIELD-TOO-LONG', '%s is longer than %d '
                              'characters' % (what, f.max))
        elif t == 'int':
            text = str(int(v))
        elif t == 'amount':
            if int(v) < 0 and not f.negative:
                raise XRError('XR-AMOUNT-NEGATIVE', '%s is negative' % what)
            text = amount_to_wire(v, unit)
        elif t == 'bool':
            text = 'true' if v else 'false'
        elif t in ('date', 'datetime'):
            text = op.time.format(v)
        else:
            raise XRError('XR-INTERNAL', 'type %s' % t)
        if op.table is not None:
            w = op.table.to_wire(text)
            if w is None:
                raise XRError('XR-CODE-UNMAPPED', '%s: "%s" has no entry in '
                              'table %s of %s' % (what, text, op.table.name,
                                                  p.name))
            text = w
        if op.max is not None:
            ln = len(text.encode('gbk' if p.charset == 'gbk' else 'utf-8')) \
                if p.codec == 'fixed' else len(text)
            if ln > op.max:
                raise XRError('XR-FIELD-TOO-LONG', '%s is longer than %d'
                              % (what, op.max))
        return text, default_jtype(op, f, unit)

    # -- mapping blocks

    def decode_ops(self, ops, wire, canon):
        for op in ops:
            if op.kind != 'map':
                continue
            if op.field.type == 'list':
                items = wire.get_list(op.path)
                if not items:
                    continue
                out = []
                for it in items:
                    c = {}
                    self.decode_ops(op.children, it, c)
                    out.append(c)
                canon[op.canon] = out
                continue
            r = wire.get(op.path)
            if r is None or r[0] == '':
                continue
            canon[op.canon] = self.value_from_wire(op, r[0], r[1])
        return canon

    def encode_ops(self, ops, canon, wire):
        for op in ops:
            if op.kind == 'set':
                wire.put(op.path, op.value, op.as_ or 'string')
                continue
            if op.slice:
                continue                      # decode only
            v = canon.get(op.canon)
            if v is None or (op.field.type == 'list' and not v):
                if op.required:
                    raise XRError('XR-FIELD-MISSING', '%s is required by %s'
                                  % (self.what(op), self.p.name))
                continue
            if op.field.type == 'list':
                if isinstance(v, dict):
                    v = [v]
                subs = wire.put_list(op.path, len(v))
                for item, sub in zip(v, subs):
                    self.encode_ops(op.children, item, sub)
                continue
            text, jtype = self.value_to_wire(op, v)
            wire.put(op.path, text, jtype)

    @staticmethod
    def check_required(fields, canon, where=''):
        for name, f in fields.items():
            v = canon.get(name)
            if v is None or (f.type == 'list' and not v):
                if f.required:
                    raise XRError('XR-FIELD-MISSING', 'required field %s%s is '
                                  'absent' % (where, name))
                continue
            if f.type == 'list':
                for i, item in enumerate(v):
                    Codec.check_required(f.children, item,
                                         '%s%s[%d].' % (where, name, i))

    # -- whole messages

    def parse(self, body):
        """json/xml: bytes -> wire tree."""
        p = self.p
        if not body:
            raise XRError('XR-BODY-EMPTY', 'the body is empty')
        if p.codec == 'xml':
            up = body.upper()
            if b'<!DOCTYPE' in up or b'<!ENTITY' in up:
                raise XRError('XR-XML-DTD', 'the XML has a DOCTYPE or an entity '
                              'declaration: refused')
        text = decode_text(body, p.charset)
        if text.startswith('\ufeff'):
            text = text[1:]
        if p.codec == 'json':
            return json_parse(text)
        return xml_parse(text)

    def _env_op(self, direction, canon_name):
        for op in self.p.env[direction]:
            if op.kind == 'map' and op.canon == canon_name:
                return op
        return None

    def _read_result(self, wire):
        path, ok, fail, _ = self.p.result
        r = wire.get(path.split('.'))
        code = r[0] if r else None
        msg = None
        if self.p.message:
            m = wire.get(self.p.message.split('.'))
            msg = m[0] if m and m[0] != '' else None
        return code, msg

    def decode(self, direction, body, txn=None, partial=None):
        """bytes -> canonical dict.  txn: the expected transaction name (an
        answer whose envelope does not carry it).  partial: a dict that
        receives what was decoded before an error."""
        p = self.p
        canon = partial if partial is not None else {}
        canon['@domain'] = p.domain
        if p.codec == 'fixed':
            return self._decode_fixed(direction, body, txn, canon)
        wire = self.parse(body)
        tx = self._find_txn(direction, wire, txn, canon)
        self.decode_ops(p.env[direction], wire, canon)
        return self._finish(direction, wire, tx, canon)

    def _find_txn(self, direction, wire, txn, canon):
        p = self.p
        op = self._env_op(direction, '@txn')
        tx = None
        if op is not None:
            r = wire.get(op.path)
            if r is not None and r[0] != '':
                name = self.value_from_wire(op, r[0], r[1])
                tx = p.txns[name]
                if txn is not None and name != txn:
                    raise XRError('XR-TXN-UNKNOWN', 'transaction %s where %s was'
                                  ' expected' % (name, txn))
        if tx is None and txn is not None:
            tx = p.txns.get(txn)
            if tx is None:
                raise XRError('XR-TXN-UNSUPPORTED', '%s does not offer %s'
                              % (p.name, txn))
        if tx is None:
            raise XRError('XR-FIELD-MISSING', 'the transaction code (@txn) is '
                          'absent')
        canon['@txn'] = tx.name
        return tx

    def _finish(self, direction, wire, tx, canon):
        p = self.p
        if '@origin' not in canon and direction == 'request' and p.region_code:
            canon['@origin'] = p.region_code
        if direction == 'response':
            code, msg = self._read_result(wire)
            if code is None:
                raise XRError('XR-FIELD-MISSING', 'the result field %s is '
                              'absent' % p.result[0])
            if code in p.result[1]:
                canon['@status'] = 'ok'
            else:
                canon['@status'] = 'error'
                canon['@err_code'] = p.err_canon(code)
                canon['@err_wire'] = code
                if msg is not None:
                    canon['@err_msg'] = msg
                return canon          # a refusal carries no body
        self.decode_ops(tx.ops[direction], wire, canon)
        self.check_required(getattr(tx.schema, direction), canon)
        return canon

    def _decode_fixed(self, direction, body, txn, canon):
        p = self.p
        if not body:
            raise XRError('XR-BODY-EMPTY', 'the body is empty')
        hdr = p.headers[direction]
        if hdr is None:
            raise XRError('XR-CONFIG', '%s has no %s header' % (p.name, direction))
        hsize = hdr.size
        if len(body) < hsize:
            raise XRError('XR-TRUNCATED', 'the body has %d bytes, the %s header'
                          ' %d' % (len(body), direction, hsize))
        hvals = {f.name: fixed_get_lazy(f, body, 0, p.charset) for f in hdr.fields}
        wire = FixedWire(dict(hvals))
        tx = self._find_txn(direction, wire, txn, canon)
        self.decode_ops(p.env[direction], wire, canon)
        if direction == 'response':
            code, _ = self._read_result(wire)
            if code is not None and code not in p.result[1]:
                return self._finish(direction, wire, tx, canon)
        lay = tx.layouts[direction] or Layout([], [])
        need = hsize + lay.size
        if len(body) < need:
            raise XRError('XR-TRUNCATED', 'the body has %d bytes, %s %s needs %d'
                          % (len(body), tx.name, direction, need))
        for f in lay.fields:
            wire.values[f.name] = fixed_get_lazy(f, body, hsize, p.charset)
        pos = need
        for rec in lay.records:
            if rec.count:
                cv = wire.values.get(rec.count, '')
                if isinstance(cv, BadField):
                    raise cv.err
                if not cv.isdigit():
                    raise XRError('XR-FIELD-FORMAT', 'record count %s is "%s"'
                                  % (rec.count, cv))
                n = int(cv)
                if len(body) < pos + n * rec.size:
                    raise XRError('XR-TRUNCATED', '%d %s records of %d bytes '
                                  'need %d bytes, the body has %d'
                                  % (n, rec.name, rec.size, pos + n * rec.size,
                                     len(body)))
            else:
                rem = len(body) - pos
                if rec.size == 0 or rem % rec.size:
                    raise XRError('XR-TRUNCATED', 'the %s records end in the '
                                  'middle of a record' % rec.name)
                n = rem // rec.size
            items = []
            for i in range(n):
                base = pos + i * rec.size
                items.append(FixedWire({f.name: fixed_get_lazy(f, body, base, p.charset)
                                        for f in rec.fields}))
            wire.lists[rec.name] = items
            pos += n * rec.size
        if len(body) > pos:
            raise XRError('XR-SYNTAX', '%d trailing bytes after the %s %s'
                          % (len(body) - pos, tx.name, direction))
        return self._finish(direction, wire, tx, canon)

    def encode(self, direction, canon, txn=None):
        """canonical dict -> bytes.  An answer with @status 'error' is a
        refusal: result = the errors table's code, message = @err_msg."""
        p = self.p
        txn = txn or canon.get('@txn')
        tx = p.txns.get(txn) if txn else None
        is_err = direction == 'response' and canon.get('@status') == 'error'
        if tx is None and not is_err:
            raise XRError('XR-TXN-UNSUPPORTED', '%s does not offer %s'
                          % (p.name, txn))
        wire = FixedWire() if p.codec == 'fixed' else (
            JsonWire() if p.codec == 'json' else XmlWire())
        env = dict(canon)
        if tx is None:
            env.pop('@txn', None)
        self.encode_ops(p.env[direction], env, wire)
        if direction == 'response':
            path, ok, fail, as_ = p.result
            if is_err:
                code = canon.get('@err_wire') or p.err_wire(canon.get('@err_code', 'default'))
            else:
                code = ok[0]
            jt = 'number' if as_ == 'number' and re.fullmatch(r'-?\d+', code) \
                else 'string'
            wire.put(path.split('.'), code, jt)
            msg = canon.get('@err_msg') if is_err else canon.get('@err_msg', '成功')
            if p.message and msg:
                if p.codec == 'fixed':
                    msg = self._fit(p.headers['response'], p.message, msg)
                wire.put(p.message.split('.'), msg, 'string')
        if not is_err:
            self.encode_ops(tx.ops[direction], canon, wire)
        if p.codec == 'json':
            return encode_text(json_dumps(wire.root), p.charset)
        if p.codec == 'xml':
            return xml_serialize(wire, p.charset)
        return self._serialize_fixed(direction, wire, tx, header_only=is_err)

    def _fit(self, hdr, name, msg):
        for f in hdr.fields:
            if f.name == name and f.enc == 'text':
                cs = 'gbk' if self.p.charset == 'gbk' else 'utf-8'
                while len(msg.encode(cs, 'replace')) > f.len:
                    msg = msg[:-1]
        return msg

    def _serialize_fixed(self, direction, wire, tx, header_only=False):
        p = self.p
        hdr = p.headers[direction]
        lay = (tx.layouts[direction] if tx else None) or Layout([], [])
        out = bytearray(hdr.size + (0 if header_only else lay.size))
        for rec in lay.records:                 # counts default to the lists
            if rec.count and rec.count not in wire.values:
                wire.values[rec.count] = str(len(wire.lists.get(rec.name, [])))
        known = {f.name for f in hdr.fields} | lay.all_names()
        for k in wire.values:
            if k not in known:
                raise XRError('XR-CONFIG', '%s: no fixed field "%s"' % (p.name, k))
        fixed_fill(hdr.fields, wire.values, out, 0, p.charset)
        if header_only:
            return bytes(out)
        fixed_fill(lay.fields, wire.values, out, hdr.size, p.charset)
        for rec in lay.records:
            for item in wire.lists.get(rec.name, []):
                rb = bytearray(rec.size)
                fixed_fill(rec.fields, item.values, rb, 0, p.charset)
                out += rb
        return bytes(out)


# ---------------------------------------------------------------------------
# deterministic fake data

def h(*parts):
    d = hashlib.sha256('|'.join(str(x) for x in parts).encode()).digest()
    return int.from_bytes(d[:8], 'big')


NAMES = ['测试甲', '测试乙', '测试丙', '测试丁', '测试戊', '测试己']
UNKNOWN_SUFFIX = '9999'     # card / person / certificate numbers ending so
                            # are unknown to every simulated system


def id_birth(id_no):
    if id_no and re.fullmatch(r'\d{17}[\dXx]', id_no):
        try:
            return dt.date(int(id_no[6:10]), int(id_no[10:12]), int(id_no[12:14]))
        except ValueError:
            return None
    return None


def id_gender(id_no, seed):
    if id_no and re.fullmatch(r'\d{17}[\dXx]', id_no):
        return 'male' if int(id_no[16]) % 2 else 'female'
    return 'male' if h('g', seed) % 2 else 'female'


def fake_id(seed, place='110101'):
    b = dt.date(1960, 1, 1) + dt.timedelta(days=h('b', seed) % 15000)
    body = '%s%s%03d' % (place[:6], b.strftime('%Y%m%d'), h('s', seed) % 1000)
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * k for c, k in zip(body, w)) % 11
    return body + '10X98765432'[s]


def age_on(b, today):
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


# ---------------------------------------------------------------------------
# the simulator

class Biz(Exception):
    """A business refusal of the simulated system."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code, self.message = code, message


class State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.seq = 0
        self.settlements = {}      # profile -> key -> record
        self.setl_index = {}       # profile -> setl_id -> key
        self.reversals = {}        # profile -> key -> record
        self.duplicates = {}       # profile -> n
        self.visits = {}           # profile -> mdtrt_id -> record
        self.balances = {}         # profile -> psn_no -> fen
        self.transit_lost = {}     # profile -> card_no -> record
        self.trips = {}            # profile -> issuer -> {count,total,batches}
        self.batches = {}          # profile -> key -> record
        self.gov_cards = {}        # profile -> card_no -> record
        self.gov_records = {}      # profile -> list of writes

    def next(self):
        self.seq += 1
        return self.seq

    def snapshot(self):
        out = {'settlements': {}, 'reversals': {}, 'duplicates': dict(self.duplicates),
               'lost_cards': {}, 'trips': {}, 'gov_cards': {}, 'visits': {},
               'gov_records': {}}
        for pn, d in self.settlements.items():
            out['settlements'][pn] = [
                {k: jsonable(v) for k, v in r.items() if k not in ('answer',)}
                for r in d.values()]
        for pn, d in self.reversals.items():
            out['reversals'][pn] = [
                {k: jsonable(v) for k, v in r.items() if k not in ('answer',)}
                for r in d.values()]
        for pn, d in self.transit_lost.items():
            out['lost_cards'][pn] = {c: jsonable(r) for c, r in d.items()}
        for pn, d in self.gov_cards.items():
            out['gov_cards'][pn] = {c: jsonable(r) for c, r in d.items()}
            out['lost_cards'].setdefault(pn, {})
            for c, r in d.items():
                if r['status'] in ('lost_temp', 'lost_formal'):
                    out['lost_cards'][pn][c] = jsonable(r)
        for pn, d in self.trips.items():
            out['trips'][pn] = {
                iss: {'count': r['count'], 'total': {'fen': r['total']},
                      'batches': r['batches']} for iss, r in d.items()}
        for pn, d in self.visits.items():
            out['visits'][pn] = {k: jsonable(v) for k, v in d.items()}
        for pn, d in self.gov_records.items():
            out['gov_records'][pn] = jsonable(d)
        return out


FAULT_MODES = ('delay', 'http500', 'garbage', 'drop', 'business_error', 'none')


class Sim:
    def __init__(self, config, strict_json_types=True):
        self.config = config
        self.codecs = {n: Codec(p, strict_json_types)
                       for n, p in config.profiles.items()}
        self.lock = threading.RLock()
        self.state = State()
        self.faults = {}           # profile -> {mode, ms, count}
        self.signatures = {}       # profile -> what it requires of requests
        self.logs = {}             # profile -> [entry]
        self.log_seq = 0

    # -- control

    def reset(self):
        with self.lock:
            self.state.reset()
            self.faults.clear()
            self.signatures.clear()
            self.logs.clear()

    def set_signature(self, spec):
        """Make a profile require a signed request, or no longer (scheme
        null).  Zhejiang's scheme (DOMAIN.md 1.4): HMAC-SM3 keyed with the
        secret over "{unix_timestamp}\\n{body}", uppercase hex; the header
        names are the deployment's, given here."""
        prof = spec.get('profile')
        if prof not in self.config.profiles:
            raise ValueError('no profile %r' % prof)
        scheme = spec.get('scheme')
        if scheme is None:
            with self.lock:
                self.signatures.pop(prof, None)
            return
        if scheme != 'zhejiang-hmac-sm3':
            raise ValueError('scheme must be zhejiang-hmac-sm3 or null')
        secret = spec.get('secret')
        if not isinstance(secret, str) or not secret:
            raise ValueError('secret must be a non-empty string')
        h = dict({'timestamp': 'X-Xregion-Timestamp',
                  'signature': 'X-Xregion-Signature',
                  'access_key': 'X-Access-Key'}, **(spec.get('headers') or {}))
        with self.lock:
            self.signatures[prof] = {
                'scheme': scheme, 'secret': secret.encode('utf-8'),
                'access_key': spec.get('access_key'), 'headers': h,
                'window': int(spec.get('window', 300))}

    def check_signature(self, pname, headers, body):
        """None when the request is acceptable, else why not."""
        with self.lock:
            req = self.signatures.get(pname)
        if req is None:
            return None
        h = req['headers']
        stamp = headers.get(h['timestamp']) or ''
        sig = headers.get(h['signature']) or ''
        if not stamp or not sig:
            return 'unsigned request (%s, %s)' % (h['timestamp'],
                                                  h['signature'])
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > req['window']:
            return 'timestamp %r outside the window' % stamp[:20]
        if req['access_key'] is not None and \
                headers.get(h['access_key']) != req['access_key']:
            return 'unknown access key'
        want = hmac.new(req['secret'], stamp.encode() + b'\n' + body,
                        'sm3').hexdigest().upper()
        if not hmac.compare_digest(want, sig.upper()):
            return 'signature does not verify'
        return None

    def set_fault(self, spec):
        prof = spec.get('profile')
        mode = spec.get('mode')
        if mode not in FAULT_MODES:
            raise ValueError('mode must be one of %s' % ', '.join(FAULT_MODES))
        names = list(self.config.profiles) if prof in ('*', 'all') else [prof]
        for n in names:
            if n not in self.config.profiles:
                raise ValueError('no profile %r' % prof)
        count = spec.get('count')
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError('count must be a positive integer')
        ms = spec.get('ms', 3000)
        if not isinstance(ms, int) or ms < 0 or ms > 600000:
            raise ValueError('ms must be an integer 0..600000')
        with self.lock:
            for n in names:
                if mode == 'none':
                    self.faults.pop(n, None)
                else:
                    self.faults[n] = {'mode': mode, 'ms': ms, 'count': count}
        return names

    def take_fault(self, pname):
        with self.lock:
            f = self.faults.get(pname)
            if not f:
                return None
            if f['count'] is not None:
                f['count'] -= 1
                if f['count'] <= 0:
                    del self.faults[pname]
            return dict(f)

    def log(self, pname, entry):
        with self.lock:
            self.log_seq += 1
            entry['seq'] = self.log_seq
            lst = self.logs.setdefault(pname, [])
            lst.append(entry)
            if len(lst) > LOG_LIMIT:
                del lst[:len(lst) - LOG_LIMIT]

    def get_log(self, pname=None):
        with self.lock:
            if pname:
                return list(self.logs.get(pname, []))
            out = []
            for lst in self.logs.values():
                out.extend(lst)
            return sorted(out, key=lambda e: e['seq'])

    # -- requests

    def handle(self, pname, path, ctype, body, headers=None):
        """-> dict(status, ctype, body, drop, delay_ms)."""
        p = self.config.profiles[pname]
        codec = self.codecs[pname]
        headers = headers or {}
        entry = {'profile': pname, 'path': path, 'content_type': ctype,
                 'headers': {k: v for k, v in headers.items()
                             if k.lower().startswith('x-')},
                 'raw_b64': base64.b64encode(body).decode('ascii'),
                 'received': now8().isoformat(timespec='milliseconds'),
                 'txn': None, 'msg_id': None, 'canonical': None}
        txns = p.by_path.get(path)
        if not txns:
            entry['error'] = {'code': 'HTTP-404', 'message': 'no txn at %s' % path}
            entry['answer_status'] = 404
            self.log(pname, entry)
            return dict(status=404, ctype='text/plain; charset=UTF-8',
                        body=('%s: no transaction at %s\n' % (pname, path)).encode())
        fault = self.take_fault(pname)
        entry['fault'] = fault['mode'] if fault else None
        partial = {}
        req, err = None, None
        try:
            req = codec.decode('request', body, partial=partial)
            if req['@txn'] not in [t.name for t in txns]:
                raise XRError('XR-TXN-UNKNOWN', 'transaction %s is not served at'
                              ' %s' % (req['@txn'], path))
            entry['canonical'] = jsonable(req)
        except XRError as e:
            err = e
            entry['canonical'] = jsonable(partial) if partial else None
            entry['error'] = {'code': e.code, 'message': e.message}
        src = req if req is not None else partial
        entry['txn'] = src.get('@txn') or (txns[0].name if len(txns) == 1 else None)
        entry['msg_id'] = src.get('@msg_id')
        why = self.check_signature(pname, headers, body) if err is None \
            else None
        if why is not None:
            # refused before anything is done: no state changes
            entry['error'] = {'code': 'XR-BAD-SIGNATURE', 'message': why}
            res = self._error_answer(p, codec, src, entry['txn'],
                                     'XR-BAD-SIGNATURE', why)
            entry['answer_status'] = res['status']
            entry['answer_b64'] = base64.b64encode(res['body']).decode('ascii')
            self.log(pname, entry)
            return res
        res = self._answer(p, codec, txns, src, req, err, fault, entry)
        entry['answer_status'] = res['status']
        if res.get('body') is not None:
            entry['answer_b64'] = base64.b64encode(res['body']).decode('ascii')
        self.log(pname, entry)
        return res

    def _envelope(self, p, src, txn):
        with self.lock:
            seq = self.state.next()
        t = now8()
        ref = '%s%s%010d' % (p.region_code or '000000', t.strftime('%Y%m%d%H%M%S'),
                             seq)
        env = {'@domain': p.domain, '@ref_msg_id': ref, '@time': t,
               '@origin': p.region_code or None}
        if txn:
            env['@txn'] = txn
        for k in ('@msg_id', '@caller'):
            if src.get(k) is not None:
                env[k] = src[k]
        if src.get('@origin'):
            env['@dest'] = src['@origin']
        return {k: v for k, v in env.items() if v is not None}

    def _error_answer(self, p, codec, src, txn, code, message):
        env = self._envelope(p, src, txn)
        env.update({'@status': 'error', '@err_code': code, '@err_msg': message})
        try:
            body = codec.encode('response', env, txn)
        except XRError as e:
            # the echoed envelope does not fit this profile (a message id
            # too long for its column...): answer with the error alone
            sys.stderr.write('xrsim %s: error answer without envelope: %s\n'
                             % (p.name, e))
            bare = {k: env[k] for k in ('@status', '@err_code', '@err_msg',
                                        '@time')}
            try:
                body = codec.encode('response', dict(bare, **(
                    {'@txn': txn} if txn else {})), txn)
            except XRError:
                body = codec.encode('response', bare, None)
        return dict(status=p.error_status or 200, ctype=p.content_type_header(),
                    body=body)

    def _answer(self, p, codec, txns, src, req, err, fault, entry):
        txn = src.get('@txn') or (txns[0].name if len(txns) == 1 else None)
        if fault:
            mode = fault['mode']
            if mode == 'delay':
                time.sleep(fault['ms'] / 1000.0)
            elif mode == 'http500':
                return dict(status=500, ctype='text/plain; charset=UTF-8',
                            body=b'simulated internal server error\n')
            elif mode == 'garbage':
                g = {'json': b'{"garbage": ', 'xml': b'<garbage><',
                     'fixed': b'\xff\xfeGARBAGE'}[p.codec]
                return dict(status=200, ctype=p.content_type_header(), body=g)
            elif mode == 'drop':
                return dict(status=None, drop=True)
            elif mode == 'business_error':
                return self._error_answer(p, codec, src, txn, 'BIZ-REFUSED',
                                          '模拟业务拒绝 (simulated refusal)')
        if err is not None:
            return self._error_answer(p, codec, src, txn, err.code, err.message)
        with self.lock:             # domain logic + encoding, atomically
            try:
                return self._business(p, codec, req, entry)
            except Biz as b:
                entry['business_error'] = {'code': b.code, 'message': b.message}
                return self._error_answer(p, codec, req, req['@txn'], b.code,
                                          b.message)
            except XRError as e:
                entry['answer_error'] = {'code': e.code, 'message': e.message}
                return self._error_answer(p, codec, req, req['@txn'], e.code,
                                          e.message)

    # -- domain logic (called with the lock held)

    def _ok(self, p, codec, req, body):
        env = self._envelope(p, req, req['@txn'])
        env['@status'] = 'ok'
        msg = dict(env)
        msg.update(body)
        data = codec.encode('response', msg, req['@txn'])
        return dict(status=200, ctype=p.content_type_header(), body=data)

    def _key(self, p, req):
        st = p.schema.txns[req['@txn']]
        keys = st.key or ['@msg_id']
        vals = tuple(req.get(k) for k in keys)
        if any(v is None for v in vals):
            raise XRError('XR-FIELD-MISSING', 'the business key (%s) is absent'
                          % ' '.join(keys))
        return '|'.join(str(v) for v in vals)

    def _business(self, p, codec, req, entry):
        fn = getattr(self, 'do_%s_%s' % (p.domain, req['@txn']))
        return fn(p, codec, req)

    def _repeat(self, p, store, key):
        rec = store.get(p.name, {}).get(key)
        if rec is None:
            return None
        rec['receipts'] += 1
        self.state.duplicates[p.name] = self.state.duplicates.get(p.name, 0) + 1
        return dict(status=200, ctype=rec['answer_ctype'], body=rec['answer'])

    # medical

    def _balance(self, p, psn_no):
        b = self.state.balances.setdefault(p.name, {})
        if psn_no not in b:
            b[psn_no] = 100000 + h('bal', p.name, psn_no) % 100000
        return b[psn_no]

    def _place(self, p, req):
        if p.region_code:
            return p.region_code
        d = req.get('@dest') or ''
        return d if re.fullmatch(r'\d{6}', d) else None

    def do_medical_person_info(self, p, codec, req):
        cert = req['cert_no']
        if cert.endswith(UNKNOWN_SUFFIX):
            raise Biz('BIZ-NOT-FOUND', '查无此人 (no such person)')
        place = self._place(p, req) or '000000'
        psn_no = '%s%014d' % (place, h('psn', cert) % 10 ** 14)
        id_no = req.get('id_no') or (cert if id_birth(cert) else fake_id(cert))
        birth = id_birth(id_no) or dt.date(1980, 1, 1)
        today = now8().date()
        ins = {'insutype': 'employee', 'psn_type': '11', 'insu_status': 'normal',
               'balance': Fen(self._balance(p, psn_no)),
               'insu_date': dt.date(2010, 1 + h('m', cert) % 12, 1),
               'civil_servant': 'no', 'emp_name': '测试单位有限公司'}
        if self._place(p, req):
            ins['insured_place'] = self._place(p, req)
        body = {'psn_no': psn_no, 'id_type': 'resident_id', 'id_no': id_no,
                'name': req.get('name') or NAMES[h('n', cert) % len(NAMES)],
                'gender': id_gender(id_no, cert), 'nation': '01',
                'birth_date': birth, 'age': age_on(birth, today),
                'insurances': [ins]}
        return self._ok(p, codec, req, body)

    def do_medical_register(self, p, codec, req):
        seq = self.state.next()
        mdtrt_id = 'MD%s%012d' % (p.region_code or '000000', seq)
        self.state.visits.setdefault(p.name, {})[mdtrt_id] = {
            'psn_no': req['psn_no'], 'visit_no': req['visit_no'],
            'msg_id': req.get('@msg_id'), 'begin_time': req['begin_time']}
        return self._ok(p, codec, req, {'mdtrt_id': mdtrt_id,
                                        'psn_no': req['psn_no'],
                                        'visit_no': req['visit_no']})

    def _split(self, p, req):
        total = int(req['total'])
        fund = (total * 7 + 5) // 10            # 70 %, half up, integer fen
        rest = total - fund
        bal = self._balance(p, req['psn_no'])
        acct = min(rest, bal) if req.get('acct_used') == 'yes' else 0
        cash = rest - acct
        ft = {'resident': 'resident_pool',
              'civil_servant_aid': 'civil_servant_aid'}.get(req.get('insutype'),
                                                           'employee_pool')
        body = {'mdtrt_id': req['mdtrt_id'], 'psn_no': req['psn_no'],
                'insutype': req.get('insutype'), 'med_type': req.get('med_type'),
                'settled_at': now8().replace(microsecond=0),
                'total': Fen(total),
                'inscp_amt': Fen(int(req.get('inscp_amt', total))),
                'pool_pay': Fen(fund), 'fund_pay': Fen(fund),
                'acct_pay': Fen(acct), 'cash_pay': Fen(cash),
                'balance': Fen(bal - acct),
                'fund_items': [{'fund_type': ft, 'fund_name': '基本医疗保险统筹基金',
                                'scope_amt': Fen(total), 'pay_amt': Fen(fund)}]}
        place = self._place(p, req)
        if place:
            body['clr_optins'] = place
        return body

    def do_medical_pre_settle(self, p, codec, req):
        return self._ok(p, codec, req, self._split(p, req))

    def do_medical_settle(self, p, codec, req):
        key = self._key(p, req)
        rep = self._repeat(p, self.state.settlements, key)
        if rep:
            return rep
        body = self._split(p, req)
        seq = self.state.next()
        setl_id = 'ST%s%012d' % (p.region_code or '000000', seq)
        body['setl_id'] = setl_id
        res = self._ok(p, codec, req, body)
        self.state.balances[p.name][req['psn_no']] -= int(body['acct_pay'])
        self.state.settlements.setdefault(p.name, {})[key] = {
            'key': key, 'msg_id': req.get('@msg_id'), 'setl_id': setl_id,
            'receipts': 1, 'psn_no': req['psn_no'], 'mdtrt_id': req['mdtrt_id'],
            'total': body['total'], 'fund_pay': body['fund_pay'],
            'acct_pay': body['acct_pay'], 'cash_pay': body['cash_pay'],
            'fund_items': body['fund_items'], 'reversed_by': None,
            'answer': res['body'], 'answer_ctype': res['ctype']}
        self.state.setl_index.setdefault(p.name, {})[setl_id] = key
        return res

    def do_medical_settle_reversal(self, p, codec, req):
        key = self._key(p, req)
        rep = self._repeat(p, self.state.reversals, key)
        if rep:
            return rep
        skey = self.state.setl_index.get(p.name, {}).get(req['setl_id'])
        if skey is None:
            raise Biz('BIZ-NOT-FOUND', 'no such settlement')
        s = self.state.settlements[p.name][skey]
        if s['reversed_by']:
            raise Biz('BIZ-ALREADY', 'settlement already reversed by %s'
                      % s['reversed_by'])
        seq = self.state.next()
        rid = 'RV%s%012d' % (p.region_code or '000000', seq)
        bal = self._balance(p, s['psn_no']) + int(s['acct_pay'])
        neg = lambda v: Fen(-int(v))
        body = {'setl_id': rid, 'mdtrt_id': s['mdtrt_id'], 'psn_no': s['psn_no'],
                'settled_at': now8().replace(microsecond=0),
                'total': neg(s['total']), 'fund_pay': neg(s['fund_pay']),
                'acct_pay': neg(s['acct_pay']), 'cash_pay': neg(s['cash_pay']),
                'balance': Fen(bal),
                'fund_items': [dict(it, scope_amt=neg(it['scope_amt']),
                                    pay_amt=neg(it['pay_amt']))
                               for it in s['fund_items']]}
        res = self._ok(p, codec, req, body)
        self.state.balances[p.name][s['psn_no']] = bal
        s['reversed_by'] = rid
        self.state.reversals.setdefault(p.name, {})[key] = {
            'key': key, 'msg_id': req.get('@msg_id'), 'setl_id': rid,
            'reverses': req['setl_id'], 'receipts': 1, 'total': body['total'],
            'answer': res['body'], 'answer_ctype': res['ctype']}
        return res

    # transit

    def _card_known(self, card):
        if card.endswith(UNKNOWN_SUFFIX):
            raise Biz('BIZ-CARD-UNKNOWN', '无此卡 (unknown card %s)' % card)

    def do_transit_card_status(self, p, codec, req):
        card = req['card_no']
        self._card_known(card)
        lost = card in self.state.transit_lost.get(p.name, {})
        body = {'status': 'lost' if lost else 'normal',
                'balance': Fen(h('tbal', card) % 20000),
                'expiry': dt.date(2028 + h('exp', card) % 5, 6, 30)}
        return self._ok(p, codec, req, body)

    def do_transit_card_loss(self, p, codec, req):
        card = req['card_no']
        self._card_known(card)
        lost = self.state.transit_lost.setdefault(p.name, {})
        if card in lost:
            raise Biz('BIZ-CARD-STATE', '卡片已挂失 (card already reported lost)')
        seq = self.state.next()
        t = now8().replace(microsecond=0)
        body = {'accept_no': 'GS%012d' % seq, 'effective_at': t}
        res = self._ok(p, codec, req, body)
        lost[card] = {'msg_id': req.get('@msg_id'), 'reason': req.get('reason'),
                      'reported_at': req.get('reported_at'),
                      'issuer_city': req.get('issuer_city'),
                      'accept_no': body['accept_no'], 'effective_at': t}
        return res

    def do_transit_trip_upload(self, p, codec, req):
        key = self._key(p, req)
        rep = self._repeat(p, self.state.batches, key)
        if rep:
            return rep
        trips = req.get('trips', [])
        total = sum(int(t['amount']) for t in trips)
        if 'trip_count' in req and req['trip_count'] != len(trips):
            raise Biz('BIZ-BATCH-REJECTED', '笔数不符: %d declared, %d records'
                      % (req['trip_count'], len(trips)))
        if 'total' in req and int(req['total']) != total:
            raise Biz('BIZ-BATCH-REJECTED', '金额不符: %d declared, %d summed'
                      % (int(req['total']), total))
        seq = self.state.next()
        batch_id = 'B%s%012d' % (req['issuer_city'], seq)
        body = {'accepted': len(trips), 'rejected': 0, 'batch_id': batch_id}
        res = self._ok(p, codec, req, body)
        iss = self.state.trips.setdefault(p.name, {}).setdefault(
            req['issuer_city'], {'count': 0, 'total': 0, 'batches': []})
        iss['count'] += len(trips)
        iss['total'] += total
        iss['batches'].append(batch_id)
        self.state.batches.setdefault(p.name, {})[key] = {
            'key': key, 'batch_id': batch_id, 'receipts': 1, 'count': len(trips),
            'total': total, 'answer': res['body'], 'answer_ctype': res['ctype']}
        return res

    def do_transit_clearing_summary(self, p, codec, req):
        iss = self.state.trips.get(p.name, {}).get(req['issuer_city'])
        body = {'count': iss['count'] if iss else 0,
                'total': Fen(iss['total'] if iss else 0)}
        return self._ok(p, codec, req, body)

    # gov

    def _gov_card(self, p, card):
        if card.endswith(UNKNOWN_SUFFIX):
            raise Biz('BIZ-NOT-FOUND', '无此卡 (no such card %s)' % card)
        cards = self.state.gov_cards.setdefault(p.name, {})
        return cards.setdefault(card, {'status': 'active'})

    def _gov_write(self, p, req, what):
        self.state.gov_records.setdefault(p.name, []).append(
            {'txn': req['@txn'], 'msg_id': req.get('@msg_id'), 'what': what})

    def _biz_no(self, p):
        return 'YW%s%012d' % (p.region_code or '000000', self.state.next())

    def do_gov_card_status(self, p, codec, req):
        card = req['card_no']
        c = self._gov_card(p, card)
        id_no = req.get('id_no') or c.get('id_no') or fake_id(card)
        issue = dt.date(2015 + h('iss', card) % 8, 1 + h('im', card) % 12, 18)
        body = {'card_no': card, 'status': c['status'], 'id_no': id_no,
                'name': req.get('name') or c.get('name')
                or NAMES[h('n', card) % len(NAMES)],
                'gender': id_gender(id_no, card), 'issue_date': issue,
                'expire_date': issue.replace(year=issue.year + 10),
                'issuer': p.region_code, 'bank': '测试银行'}
        return self._ok(p, codec, req, body)

    def do_gov_card_loss(self, p, codec, req):
        c = self._gov_card(p, req['card_no'])
        if c['status'] in ('lost_temp', 'lost_formal'):
            raise Biz('BIZ-ALREADY', '该卡已挂失 (already reported lost)')
        if c['status'] != 'active':
            raise Biz('BIZ-STATE', '卡状态不允许挂失 (%s)' % c['status'])
        st = 'lost_formal' if req.get('loss_type') == 'formal' else 'lost_temp'
        t = now8().replace(microsecond=0)
        body = {'card_no': req['card_no'], 'status': st, 'loss_time': t,
                'biz_no': self._biz_no(p)}
        if st == 'lost_temp':
            body['valid_until'] = t.date() + dt.timedelta(days=7)
        res = self._ok(p, codec, req, body)
        c.update(status=st, id_no=req.get('id_no'), name=req.get('name'),
                 loss_time=t)
        self._gov_write(p, req, {'card_no': req['card_no'], 'status': st})
        return res

    def do_gov_card_unfreeze(self, p, codec, req):
        c = self._gov_card(p, req['card_no'])
        if c['status'] not in ('lost_temp', 'lost_formal'):
            raise Biz('BIZ-STATE', '该卡未挂失 (card is not reported lost)')
        t = now8().replace(microsecond=0)
        body = {'card_no': req['card_no'], 'status': 'active',
                'unfreeze_time': t, 'biz_no': self._biz_no(p)}
        res = self._ok(p, codec, req, body)
        c.update(status='active', unfreeze_time=t)
        self._gov_write(p, req, {'card_no': req['card_no'], 'status': 'active'})
        return res

    def do_gov_card_progress(self, p, codec, req):
        id_no = req['id_no']
        if id_no.endswith(UNKNOWN_SUFFIX):
            raise Biz('BIZ-NOT-FOUND', '无制卡申请 (no card application)')
        apply = dt.date(2025, 1 + h('am', id_no) % 12, 1 + h('ad', id_no) % 28)
        t0 = dt.datetime(apply.year, apply.month, apply.day, 9, 30)
        body = {'id_no': id_no,
                'name': req.get('name') or NAMES[h('n', id_no) % len(NAMES)],
                'card_no': 'T%08d' % (h('card', id_no) % 10 ** 8),
                'status': 'to_collect', 'apply_date': apply,
                'outlet': '测试社保服务中心',
                'steps': [{'stage': 'initial', 'time': t0, 'note': '申请受理'},
                          {'stage': 'making', 'time': t0 + dt.timedelta(days=2),
                           'note': '制卡中'},
                          {'stage': 'to_collect',
                           'time': t0 + dt.timedelta(days=6), 'note': '待领卡'}]}
        return self._ok(p, codec, req, body)

    def do_gov_pension_transfer(self, p, codec, req):
        t = now8().replace(microsecond=0)
        body = {'biz_no': self._biz_no(p), 'status': 'accepted',
                'accept_time': t, 'expected_date': t.date() + dt.timedelta(days=63)}
        if 'amount' in req:
            body['amount'] = req['amount']
        if 'months' in req:
            body['months'] = req['months']
        res = self._ok(p, codec, req, body)
        self._gov_write(p, req, {'id_no': req['id_no'],
                                 'letter_no': req['letter_no']})
        return res

    def do_gov_unemployment_reg(self, p, codec, req):
        body = {'reg_no': 'SY%s%010d' % (p.region_code or '000000',
                                         self.state.next()),
                'status': 'registered', 'reg_date': req['reg_date'],
                'biz_no': self._biz_no(p)}
        res = self._ok(p, codec, req, body)
        self._gov_write(p, req, {'id_no': req['id_no'], 'reg_no': body['reg_no']})
        return res

    def do_gov_skills_cert_query(self, p, codec, req):
        cert = req['cert_no']
        if cert.endswith(UNKNOWN_SUFFIX):
            raise Biz('BIZ-NOT-FOUND', '查无此证书 (no such certificate)')
        levels = ['junior', 'intermediate', 'senior', 'technician',
                  'senior_technician']
        body = {'cert_no': cert, 'id_no': req['id_no'],
                'name': req.get('name') or NAMES[h('n', req['id_no']) % len(NAMES)],
                'occupation': '电工', 'occupation_code': '6-31-01-03',
                'level': levels[h('lv', cert) % len(levels)],
                'issue_date': dt.date(2018 + h('cy', cert) % 6, 1 + h('cm', cert) % 12, 10),
                'issuer': '测试职业技能鉴定中心'}
        return self._ok(p, codec, req, body)


# ---------------------------------------------------------------------------
# HTTP

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class ProfileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    timeout = 30
    server_version = 'xrsim/1'
    sys_version = ''

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write('xrsim %s: %s\n' % (self.server.pname, fmt % args))

    def _send(self, status, ctype, body, close=False):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        if close:
            self.send_header('Connection', 'close')
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        te = (self.headers.get('Transfer-Encoding') or '').lower()
        if 'chunked' in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ValueError('truncated chunked body')
                n = int(line.split(b';')[0].strip() or b'0', 16)
                if n == 0:
                    while self.rfile.readline(1024) not in (b'\r\n', b'\n', b''):
                        pass
                    return bytes(out)
                if len(out) + n > MAX_BODY:
                    return None
                out += self.rfile.read(n)
                self.rfile.readline(1024)
        cl = self.headers.get('Content-Length')
        if cl is None:
            return b''
        n = int(cl)
        if n < 0:
            raise ValueError('negative Content-Length')
        if n > MAX_BODY:
            return None
        data = self.rfile.read(n)
        if len(data) != n:
            raise ValueError('short body')
        return data

    def do_POST(self):
        try:
            try:
                body = self.read_body()
            except (ValueError, OSError) as e:
                self._send(400, 'text/plain; charset=UTF-8',
                           ('bad request body: %s\n' % e).encode(), close=True)
                return
            if body is None:
                self._send(413, 'text/plain; charset=UTF-8',
                           b'request body over 4 MiB\n', close=True)
                return
            path = urllib.parse.urlsplit(self.path).path
            res = self.server.sim.handle(self.server.pname, path,
                                         self.headers.get('Content-Type'), body,
                                         headers=self.headers)
            if res.get('drop'):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self._send(res['status'], res['ctype'], res['body'])
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception:
            sys.stderr.write('xrsim %s: internal error on %s\n%s'
                             % (self.server.pname, self.path, traceback.format_exc()))
            try:
                self._send(500, 'text/plain; charset=UTF-8',
                           b'xrsim internal error\n', close=True)
            except Exception:
                self.close_connection = True

    def _not_allowed(self):
        try:
            self.read_body()
        except Exception:
            pass
        self._send(405, 'text/plain; charset=UTF-8', b'POST only\n', close=True)

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed


class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    timeout = 30
    server_version = 'xrsim-control/1'
    sys_version = ''

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write('xrsim control: %s\n' % (fmt % args))

    def _json(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', 'application/json; charset=UTF-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get('Content-Length') or 0)
        if n > MAX_BODY:
            raise ValueError('body too large')
        return self.rfile.read(n) if n else b''

    def _wrap(self, fn):
        try:
            fn()
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception:
            sys.stderr.write('xrsim control: internal error on %s\n%s'
                             % (self.path, traceback.format_exc()))
            try:
                self._json(500, {'error': 'internal error'})
            except Exception:
                self.close_connection = True

    def do_GET(self):
        self._wrap(self._get)

    def do_POST(self):
        self._wrap(self._post)

    def _get(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        sim = self.server.sim
        if u.path == '/_sim/health':
            self._json(200, {'ok': True, 'profiles': sorted(sim.config.profiles)})
        elif u.path == '/_sim/log':
            prof = q.get('profile', [None])[0]
            if prof and prof not in sim.config.profiles:
                self._json(404, {'error': 'no profile %s' % prof})
                return
            entries = sim.get_log(prof)
            txn = q.get('txn', [None])[0]
            if txn:
                entries = [e for e in entries if e.get('txn') == txn]
            self._json(200, entries)
        elif u.path == '/_sim/state':
            with sim.lock:
                snap = sim.state.snapshot()
                snap['faults'] = {k: dict(v) for k, v in sim.faults.items()}
            self._json(200, snap)
        else:
            self._json(404, {'error': 'unknown endpoint %s' % u.path})

    def _post(self):
        u = urllib.parse.urlsplit(self.path)
        sim = self.server.sim
        body = self._body()
        if u.path == '/_sim/reset':
            sim.reset()
            self._json(200, {'ok': True})
        elif u.path == '/_sim/fault':
            try:
                spec = json.loads(body.decode('utf-8') or '{}')
                if not isinstance(spec, dict):
                    raise ValueError('expected a JSON object')
                names = sim.set_fault(spec)
            except (ValueError, UnicodeDecodeError) as e:
                self._json(400, {'error': str(e)})
                return
            self._json(200, {'ok': True, 'profiles': names})
        elif u.path == '/_sim/signature':
            try:
                spec = json.loads(body.decode('utf-8') or '{}')
                if not isinstance(spec, dict):
                    raise ValueError('expected a JSON object')
                sim.set_signature(spec)
            except (ValueError, UnicodeDecodeError) as e:
                self._json(400, {'error': str(e)})
                return
            self._json(200, {'ok': True})
        else:
            self._json(404, {'error': 'unknown endpoint %s' % u.path})


LOOPBACK = ('127.0.0.1', 'localhost', '::1')


def serve(args):
    if args.host not in LOOPBACK and not args.host.startswith('127.'):
        sys.stderr.write('xrsim: refusing to listen on %s (loopback only)\n'
                         % args.host)
        return 2
    try:
        cfg = Config(args.config, only=args.profiles)
    except ConfigError as e:
        sys.stderr.write('xrsim: %s\n' % e)
        return 2
    sim = Sim(cfg, strict_json_types=not args.lenient)
    servers = []
    ports = {}
    for name in sorted(cfg.profiles):
        s = Server((args.host, 0), ProfileHandler)
        s.sim, s.pname, s.verbose = sim, name, args.verbose
        servers.append(s)
        ports[name] = s.server_address[1]
    ctl = Server((args.host, args.control_port), ControlHandler)
    ctl.sim, ctl.verbose = sim, args.verbose
    servers.append(ctl)
    threads = []
    for s in servers:
        t = threading.Thread(target=s.serve_forever, kwargs={'poll_interval': 0.2},
                             daemon=True)
        t.start()
        threads.append(t)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    info = {'control': ctl.server_address[1], 'profiles': ports,
            'pid': os.getpid()}
    if args.ports_file:
        tmp = args.ports_file + '.tmp.%d' % os.getpid()
        with open(tmp, 'w') as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, args.ports_file)
    else:
        print(json.dumps(info), flush=True)
    while not stop.wait(0.5):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()
    return 0


def decode_cli(args):
    cfg = Config(args.config)
    p = cfg.profiles[args.profile]
    with open(args.decode, 'rb') as f:
        body = f.read()
    c = Codec(p, strict_json_types=not args.lenient)
    try:
        canon = c.decode(args.direction, body, txn=args.txn)
    except XRError as e:
        print('xrsim: %s: %s' % (e.code, e.message), file=sys.stderr)
        return 2
    print(json.dumps(jsonable(canon), ensure_ascii=False, indent=1))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--config', default='config')
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--ports-file')
    ap.add_argument('--control-port', type=int, default=0)
    ap.add_argument('--profiles', nargs='*', help='serve only these profiles')
    ap.add_argument('--lenient', action='store_true',
                    help='accept any JSON type for a field (default: the type '
                         'the profile says: as=, else fen amounts and ints are '
                         'numbers, the rest strings)')
    ap.add_argument('--verbose', action='store_true')
    ap.add_argument('--decode', metavar='FILE',
                    help='decode FILE with --profile and print the canonical')
    ap.add_argument('--profile')
    ap.add_argument('--direction', default='request',
                    choices=('request', 'response'))
    ap.add_argument('--txn')
    args = ap.parse_args(argv)
    if args.decode:
        return decode_cli(args)
    return serve(args)


if __name__ == '__main__':
    sys.exit(main())
