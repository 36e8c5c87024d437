"""xregion audit: verify, export, append and key, run as a regulator runs
them, on logs the tool writes as the gateway does.

The format is checked independently of the C code: the chain hash of every
line is recomputed here from docs/regulators.md (hashlib), and checkpoint
signatures are checked with the openssl command line.  Tampering is done
here too, including what an attacker without the key can do: recompute the
whole chain after an edit.
"""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = ROOT / "tests" / "fixtures" / "keys"
BIN = os.environ.get("XREGION_BIN", str(ROOT / "build" / "xregion"))

SM2_KEY = KEYS / "sm2-test-only-key.pem"
SM2_PUB = KEYS / "sm2-test-only-pub.pem"
P256_KEY = KEYS / "p256-test-only-key.pem"
P256_PUB = KEYS / "p256-test-only-pub.pem"
OTHER_SM2_KEY = KEYS / "sm2-gbt32918-5-key.pem"

ERROR_LINE = re.compile(r"^xregion: XR-[A-Z-]+: \S.*\n$")
INVALID = re.compile(r"^xregion: XR-AUDIT-INVALID: (.+?):(\d+): seq (\d+): "
                     r"([a-z ]+): \S.*\n$")
HEAD = re.compile(rb'^\{"seq":([1-9][0-9]*),"prev":"([0-9a-f]{64})",')
TRAILER = re.compile(rb',"hash":"([0-9a-f]{64})"\}$')

DOMAINS = ("medical", "transit", "gov")
REGIONS = ("310000", "320100", "330100", "340000", "110000")
OUTCOMES = ("ok", "rejected", "ok", "failed")


def xregion(*args, stdin=b""):
    return subprocess.run([BIN] + [str(a) for a in args], input=stdin,
                          capture_output=True, timeout=60)


def assert_usage(res, code="XR-USAGE"):
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert res.stdout == b""
    assert ERROR_LINE.match(err), err
    assert err.startswith("xregion: %s: " % code), err


def assert_invalid(res, name, line, seq, reason):
    """Exit 1, nothing on stdout, one line naming file:line, seq, reason."""
    err = res.stderr.decode()
    assert res.returncode == 1, err
    assert res.stdout == b""
    m = INVALID.match(err)
    assert m, err
    assert (Path(m.group(1)).name, int(m.group(2)), int(m.group(3)),
            m.group(4)) == (name, line, seq, reason), err
    return err


def record(i):
    """Record i: its fields follow i, so that filters can be predicted."""
    rec = {
        "time": "2024-12-29T14:%02d:%02d.000+08:00" % (i // 60, i % 60),
        "inst": "gw-sh-1",
        "caller": "%s.%s" % ("jiangsu" if i % 2 else "shanghai",
                             DOMAINS[i % 3]),
        "domain": DOMAINS[i % 3],
        "txn": "settle" if i % 3 == 0 else "card_status",
        "msg_id": "MSG%06d" % i,
        "origin": REGIONS[i % 5],
        "dest": REGIONS[(i + 1) % 5],
        "upstream": "dest_" + DOMAINS[i % 3],
        "peer": "127.0.0.1:8081",
        "outcome": OUTCOMES[i % 4],
        "error": "XR-FORBIDDEN" if i % 4 == 1 else "",
        "latency_ms": 10 + i,
        "upstream_ms": None if i % 4 == 1 else 5 + i,
        "amounts": {"total": 1000 * i + 1, "fund_pay": 700 * i}
        if i % 3 == 0 else {},
        "ids": {"psn_no": "3101**********%04d" % i, "name": "\u5f20*"},
    }
    if i == 7:
        # a value with everything CSV and JSON must escape
        rec["msg_id"] = 'a,"b"\nc\\d\u0001'
    return rec


def records(first, last):
    return b"".join(json.dumps(record(i)).encode() + b"\n"
                    for i in range(first, last + 1))


def append(log, first, last, key=SM2_KEY, *args):
    res = xregion("audit", "append", log, "--key", key, "--inst", "gw-sh-1",
                  "--time", "2024-12-29T15:00:00", *args,
                  stdin=records(first, last))
    assert res.returncode == 0, res.stderr.decode()
    assert re.match(r"^appended %d records and \d+ checkpoints to "
                    % (last - first + 1), res.stdout.decode()), res.stdout
    return res


def lines(log):
    return Path(log).read_bytes().split(b"\n")[:-1]


def write(log, ls, newline=True):
    Path(log).write_bytes(b"\n".join(ls) + (b"\n" if newline else b""))


def verify(*files, pub=SM2_PUB, extra=()):
    return xregion("audit", "verify", *files, "--pubkey", pub, *extra)


def entry(line):
    return json.loads(line)


def chain_hash(line, alg):
    """hash(N) = H(prev || be64(N) || H(content)), docs/regulators.md."""
    m = HEAD.match(line)
    t = TRAILER.search(line)
    assert m and t, line
    content = line[m.end():t.start()]
    inner = hashlib.new(alg, content).digest()
    return hashlib.new(alg, bytes.fromhex(m.group(2).decode())
                       + int(m.group(1)).to_bytes(8, "big")
                       + inner).hexdigest()


def relink(ls, start, alg="sm3"):
    """The attacker's tool: from line `start` on, renumber and recompute
    every seq, prev and hash so that the chain fits again."""
    prev = entry(ls[start - 1]) if start else None
    for i in range(start, len(ls)):
        line = ls[i]
        m = HEAD.match(line)
        t = TRAILER.search(line)
        content = line[m.end():t.start()]
        seq = prev["seq"] + 1 if prev else 1
        prev_hash = prev["hash"] if prev else "0" * 64
        head = b'{"seq":%d,"prev":"%s",' % (seq, prev_hash.encode())
        stub = head + content + b',"hash":"' + b"0" * 64 + b'"}'
        h = chain_hash(stub, alg)
        ls[i] = head + content + b',"hash":"' + h.encode() + b'"}'
        prev = entry(ls[i])
    return ls


@pytest.fixture
def log(tmp_path):
    """The reference log, one line per seq:
    1 open, 2-6 rec 1-5, 7 ckpt(1..6), 8-12 rec 6-10, 13 ckpt(7..12),
    14-15 rec 11-12 (not signed)."""
    path = tmp_path / "audit.log"
    append(path, 1, 12, SM2_KEY, "--every", "5", "--no-final-checkpoint")
    assert len(lines(path)) == 15
    return path


# The format, checked from the outside

def test_chain_recomputed_independently(log):
    prev = "0" * 64
    for n, line in enumerate(lines(log), 1):
        e = entry(line)
        assert e["seq"] == n
        assert e["prev"] == prev
        assert chain_hash(line, "sm3") == e["hash"]
        prev = e["hash"]
    types = [entry(x)["type"] for x in lines(log)]
    assert types == ["open"] + ["rec"] * 5 + ["ckpt"] + ["rec"] * 5 \
        + ["ckpt"] + ["rec"] * 2


@pytest.mark.parametrize("key,pub,dgst,alg", [
    (SM2_KEY, SM2_PUB, ["-sm3", "-sigopt", "distid:1234567812345678"],
     "sm3"),
    (P256_KEY, P256_PUB, ["-sha256"], "sha256"),
])
def test_checkpoint_verifies_with_openssl(tmp_path, key, pub, dgst, alg):
    """The signed text is the content up to ,"sig": and the signature is
    DER, as `openssl dgst -verify` takes it."""
    path = tmp_path / "a.log"
    append(path, 1, 3, key)
    ckpt = lines(path)[-1]
    e = entry(ckpt)
    assert e["type"] == "ckpt" and e["last"] == 4 and e["first"] == 1
    assert e["hash_alg"] == alg
    assert chain_hash(lines(path)[3], alg) == e["head"]

    content = ckpt[HEAD.match(ckpt).end():TRAILER.search(ckpt).start()]
    signed = content[:content.index(b',"sig":"')]
    (tmp_path / "signed").write_bytes(signed)
    import base64
    (tmp_path / "sig").write_bytes(base64.b64decode(e["sig"]))
    res = subprocess.run(["openssl", "dgst"] + dgst
                         + ["-verify", str(pub), "-signature",
                            str(tmp_path / "sig"), str(tmp_path / "signed")],
                         capture_output=True, timeout=30)
    assert res.stdout == b"Verified OK\n", res.stderr

    # the key id is SHA-256 of the public key's DER
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub),
                          "-outform", "DER"], capture_output=True,
                         timeout=30, check=True).stdout
    assert e["key_id"] == hashlib.sha256(der).hexdigest()

    res = xregion("audit", "key", key)
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert out.startswith("key_id %s\nsig_alg %s\n-----BEGIN PUBLIC KEY-----"
                          % (e["key_id"], e["sig_alg"])), out

    res = verify(path, pub=pub)
    assert res.returncode == 0, res.stderr


def test_record_fields(tmp_path):
    path = tmp_path / "a.log"
    append(path, 1, 7, SM2_KEY, "--no-final-checkpoint")
    recs = [entry(x) for x in lines(path) if entry(x)["type"] == "rec"]
    for i, e in enumerate(recs, 1):
        want = record(i)
        for k in ("inst", "caller", "domain", "txn", "msg_id", "origin",
                  "dest", "upstream", "peer", "outcome", "error",
                  "latency_ms", "upstream_ms", "amounts", "ids"):
            assert e[k] == want[k], (i, k)
        assert e["time"] == want["time"]
    # key order is fixed
    assert list(recs[0]) == [
        "seq", "prev", "type", "time", "inst", "caller", "domain", "txn",
        "msg_id", "origin", "dest", "upstream", "peer", "outcome", "error",
        "latency_ms", "upstream_ms", "amounts", "ids", "hash"]
    # control characters escaped the one way
    assert b'"msg_id":"a,\\"b\\"\\nc\\\\d\\u0001"' in lines(path)[7]


# verify

def test_verify_ok_summary(log):
    res = verify(log)
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""
    assert res.stdout.decode().splitlines() == [
        "ok: 15 entries in 1 file: 12 records, 2 checkpoints, "
        "1 file starts or restarts",
        "chain: seq 1..15, sm3, from its start",
        "signed: up to seq 12, by the checkpoint at seq 13 "
        "(2024-12-29T15:00:00.000+08:00), key 3593a592238555ce... (sm2-sm3)",
        "unsigned: 2 records after seq 12 are chained but not yet signed",
    ]


def test_verify_flip_a_byte_in_a_field(log):
    ls = lines(log)
    edited = ls[3].replace(b'"latency_ms":13', b'"latency_ms":14')
    assert edited != ls[3]
    ls[3] = edited
    write(log, ls)
    assert_invalid(verify(log), "audit.log", 4, 4, "edited")


def test_verify_flip_a_byte_in_a_hash(log):
    ls = lines(log)
    e = entry(ls[8])
    flipped = ("0" if e["hash"][5] != "0" else "1")
    ls[8] = ls[8].replace(e["hash"].encode(),
                          (e["hash"][:5] + flipped + e["hash"][6:]).encode())
    write(log, ls)
    assert_invalid(verify(log), "audit.log", 9, 9, "edited")


def test_verify_delete_a_line(log):
    ls = lines(log)
    del ls[9]
    write(log, ls)
    err = assert_invalid(verify(log), "audit.log", 10, 10, "deleted")
    assert "seq 10 is missing" in err


def test_verify_insert_a_line(log):
    ls = lines(log)
    ls.insert(11, ls[2])
    write(log, ls)
    assert_invalid(verify(log), "audit.log", 12, 3, "inserted")


def test_verify_insert_a_forged_line(log):
    """A record made up with a fitting seq, prev and hash: the true line
    with that seq then comes again."""
    ls = lines(log)
    forged = ls[4].replace(b"MSG000004", b"MSG999999")
    assert forged != ls[4]
    ls.insert(5, forged)
    relink(ls, 5)
    ls[6:] = lines(log)[5:]
    write(log, ls)
    assert_invalid(verify(log), "audit.log", 7, 6, "inserted")


def test_verify_swap_two_lines(log):
    ls = lines(log)
    ls[3], ls[4] = ls[4], ls[3]
    write(log, ls)
    err = assert_invalid(verify(log), "audit.log", 4, 5, "reordered")
    assert "seq 4 is further on, at %s:5" % log in err


def test_verify_truncate_mid_line(log):
    data = Path(log).read_bytes()
    Path(log).write_bytes(data[:-100])
    err = assert_invalid(verify(log), "audit.log", 15, 15, "truncated line")
    assert "without a newline" in err


def test_verify_truncate_after_checkpoint(log, tmp_path):
    """Whole lines cut after a checkpoint: the log alone still verifies
    (the summary says how far it is signed); with a later checkpoint the
    regulator pulled before, the cut is caught."""
    held = tmp_path / "held.jsonl"
    res = xregion("audit", "export", log, "--type", "ckpt")
    assert res.returncode == 0
    held.write_bytes(res.stdout)
    assert len(res.stdout.splitlines()) == 2

    ls = lines(log)
    write(log, ls[:7])
    res = verify(log)
    assert res.returncode == 0, res.stderr
    assert "signed: up to seq 6, by the checkpoint at seq 7" \
        in res.stdout.decode()

    err = assert_invalid(verify(log, extra=("--checkpoints", held)),
                         "audit.log", 8, 8, "truncated log")
    assert "reaches seq 13" in err

    write(log, ls)
    res = verify(log, extra=("--checkpoints", held))
    assert res.returncode == 0, res.stderr


def test_verify_rewritten_chain(log):
    """An edit with every hash after it recomputed: the chain fits, the
    next checkpoint's head does not."""
    ls = lines(log)
    edited = ls[9].replace(b"MSG000008", b"MSG000108")
    assert edited != ls[9]
    ls[9] = edited
    write(log, relink(ls, 9))
    err = assert_invalid(verify(log), "audit.log", 13, 13, "rewritten")
    assert "between seq 7 and 12" in err


def test_verify_forged_checkpoint_other_key(log):
    res = xregion("audit", "append", log, "--key", OTHER_SM2_KEY,
                  stdin=b"")
    assert res.returncode == 0, res.stderr
    # open(restart) at 16, the forged checkpoint at 17
    assert_invalid(verify(log), "audit.log", 17, 17, "foreign key")


def test_verify_forged_checkpoint_our_key_id(log):
    """Another key's signature under our key id."""
    ls = lines(log)
    theirs = Path(log).with_suffix(".theirs")
    append(theirs, 1, 1, OTHER_SM2_KEY)
    forged = entry(lines(theirs)[-1])
    ours = entry(ls[12])
    ls[12] = ls[12].replace(ours["sig"].encode(), forged["sig"].encode())
    write(log, relink(ls, 12))
    assert_invalid(verify(log), "audit.log", 13, 13, "bad signature")


def test_verify_replayed_checkpoint(log):
    ls = lines(log)
    ls.append(ls[6])
    write(log, relink(ls, 15))
    err = assert_invalid(verify(log), "audit.log", 16, 16,
                         "replayed checkpoint")
    assert "seq 12 was signed already (%s:13)" % log in err


def test_verify_wrong_pubkey(log):
    assert_invalid(verify(log, pub=P256_PUB), "audit.log", 7, 7,
                   "foreign key")


def test_verify_garbage_line(log):
    ls = lines(log)
    ls[5] = b"hello"
    write(log, ls)
    assert_invalid(verify(log), "audit.log", 6, 6, "malformed")


def test_verify_usage_and_io(log, tmp_path):
    assert_usage(xregion("audit", "verify", log))
    assert_usage(xregion("audit", "verify", "--pubkey", SM2_PUB))
    assert_usage(xregion("audit", "frobnicate"))
    assert_usage(xregion("audit"))
    assert_usage(verify(tmp_path / "none"), "XR-IO")
    assert_usage(verify(log, pub=tmp_path / "none"), "XR-IO")
    (tmp_path / "bad.pem").write_text("not a key")
    assert_usage(verify(log, pub=tmp_path / "bad.pem"), "XR-CONFIG")
    (tmp_path / "empty.pem").write_text("")
    assert_usage(verify(log, pub=tmp_path / "empty.pem"), "XR-CONFIG")
    (tmp_path / "empty").write_bytes(b"")
    assert_usage(verify(tmp_path / "empty"), "XR-BODY-EMPTY")
    for sub in ("verify", "export", "append", "key"):
        res = xregion("audit", sub, "--help")
        assert res.returncode == 0
        assert res.stdout.decode().startswith("usage: xregion audit " + sub)


def test_verify_stdin(log):
    res = xregion("audit", "verify", "-", "--pubkey", SM2_PUB,
                  stdin=Path(log).read_bytes())
    assert res.returncode == 0, res.stderr
    ls = lines(log)
    del ls[2]
    res = xregion("audit", "verify", "-", "--pubkey", SM2_PUB,
                  stdin=b"\n".join(ls) + b"\n")
    assert_invalid(res, "stdin", 3, 3, "deleted")


# Files: rotation, restart

def test_rotation_and_directory(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    append(d / "audit.log.1", 1, 4, SM2_KEY, "--every", "2")
    append(d / "audit.log", 5, 8, SM2_KEY, "--every", "2", "--continue",
           d / "audit.log.1")

    first = entry(lines(d / "audit.log")[0])
    last = entry(lines(d / "audit.log.1")[-1])
    assert first["type"] == "open" and first["reason"] == "rotate"
    assert first["prev_file"] == "audit.log.1"
    assert first["seq"] == last["seq"] + 1
    assert first["prev"] == last["hash"]

    # files in any order, or the directory: sorted by their first seq
    for args in ((d / "audit.log", d / "audit.log.1"), (d,)):
        res = verify(*args)
        assert res.returncode == 0, res.stderr
        assert res.stdout.decode().startswith(
            "ok: %d entries in 2 files: 8 records, 4 checkpoints, "
            "2 file starts or restarts\n"
            % (len(lines(d / "audit.log")) + len(lines(d / "audit.log.1"))))

    # the newer file alone continues a chain it does not show
    res = verify(d / "audit.log")
    assert res.returncode == 0, res.stderr
    assert "continuing a chain whose earlier lines were not given" \
        in res.stdout.decode()

    # the older file lost its last line: caught at the newer file's first
    ls = lines(d / "audit.log.1")
    write(d / "audit.log.1", ls[:-1])
    assert_invalid(verify(d), "audit.log", 1, last["seq"], "deleted")


def test_restart_after_torn_line(tmp_path):
    path = tmp_path / "audit.log"
    append(path, 1, 3, P256_KEY, "--every", "2")
    whole = Path(path).read_bytes()
    Path(path).write_bytes(whole + b'{"seq":7,"prev":"ab')
    assert_invalid(verify(path, pub=P256_PUB), "audit.log", 7, 7,
                   "truncated line")

    append(path, 4, 5, P256_KEY)
    data = Path(path).read_bytes()
    assert data.startswith(whole)
    restart = entry(lines(path)[len(whole.splitlines())])
    assert restart["type"] == "open" and restart["reason"] == "restart"
    assert restart["torn"] == 19
    assert restart["hash_alg"] == "sha256"
    res = verify(path, pub=P256_PUB)
    assert res.returncode == 0, res.stderr
    assert "5 records" in res.stdout.decode()


def test_append_refuses_what_it_cannot_chain_on(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(b"not an audit log\n")
    res = xregion("audit", "append", path, "--key", SM2_KEY, stdin=b"")
    assert res.returncode == 1
    assert res.stderr.decode().startswith(
        "xregion: XR-AUDIT-INVALID: %s: cannot continue this log: " % path)
    assert path.read_bytes() == b"not an audit log\n"

    path.unlink()
    res = xregion("audit", "append", path, "--key", SM2_PUB, stdin=b"")
    assert_usage(res, "XR-CONFIG")
    res = xregion("audit", "append", path, "--key", SM2_KEY,
                  stdin=b'{"nope":1}\n')
    assert_usage(res, "XR-SYNTAX")
    assert "stdin:1: " in res.stderr.decode()
    res = xregion("audit", "append", path, "--key", SM2_KEY,
                  stdin=b'{"latency_ms":"x"}\n')
    assert_usage(res, "XR-FIELD-TYPE")


# export

@pytest.fixture
def big(tmp_path):
    path = tmp_path / "big.log"
    append(path, 1, 60, SM2_KEY, "--every", "25")
    return path


def export(*args):
    res = xregion("audit", "export", *args)
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""
    return res.stdout


def msg_ids(out):
    return [json.loads(x)["msg_id"] for x in out.splitlines()]


def want_ids(pred):
    return [record(i)["msg_id"] for i in range(1, 61) if pred(record(i))]


@pytest.mark.parametrize("args,pred", [
    ((), lambda r: True),
    (("--domain", "medical"), lambda r: r["domain"] == "medical"),
    (("--txn", "settle"), lambda r: r["txn"] == "settle"),
    (("--origin", "32"), lambda r: r["origin"].startswith("32")),
    (("--origin", "320100"), lambda r: r["origin"] == "320100"),
    (("--dest", "110000"), lambda r: r["dest"] == "110000"),
    (("--caller", "jiangsu.transit"),
     lambda r: r["caller"] == "jiangsu.transit"),
    (("--outcome", "failed"), lambda r: r["outcome"] == "failed"),
    (("--from", "2024-12-29T14:00:30", "--to", "2024-12-29T14:00:40"),
     lambda r: "14:00:30" <= r["time"][11:19] < "14:00:40"),
    (("--from", "2024-12-29T06:00:50Z"),
     lambda r: r["time"][11:19] >= "14:00:50"),
    (("--to", "2024-12-29"), lambda r: False),
    (("--scope", "33,34"),
     lambda r: r["origin"][:2] in ("33", "34") or r["dest"][:2] in ("33",
                                                                   "34")),
    (("--domain", "gov", "--scope", "11", "--outcome", "ok"),
     lambda r: r["domain"] == "gov" and r["outcome"] == "ok"
     and "110000" in (r["origin"], r["dest"])),
])
def test_export_filters(big, args, pred):
    assert msg_ids(export(big, *args)) == want_ids(pred)


def test_export_jsonl_is_the_lines(big):
    out = export(big, "--type", "all")
    assert out == Path(big).read_bytes()
    ck = export(big, "--type", "ckpt")
    assert [json.loads(x)["type"] for x in ck.splitlines()] == ["ckpt"] * 3


def test_export_paging_by_seq(big):
    pages, after = [], 0
    while True:
        out = export(big, "--from-seq", after + 1, "--limit", 7)
        if not out:
            break
        page = [json.loads(x) for x in out.splitlines()]
        assert len(page) <= 7
        pages += page
        after = page[-1]["seq"]
    assert [e["msg_id"] for e in pages] == want_ids(lambda r: True)
    assert msg_ids(export(big, "--from-seq", 5, "--to-seq", 6)) == \
        ["MSG000004", "MSG000005"]


def test_export_csv(big):
    out = export(big, "--format", "csv", "--domain", "medical")
    assert out.startswith(b"seq,time,inst,caller,domain,txn,msg_id,origin,"
                          b"dest,upstream,peer,outcome,error,latency_ms,"
                          b"upstream_ms,amounts,ids,hash\r\n")
    assert out.endswith(b"\r\n")
    rows = list(csv.DictReader(io.StringIO(out.decode(), newline="")))
    by_seq = {entry(x)["seq"]: entry(x) for x in lines(big)}
    assert [r["msg_id"] for r in rows] == \
        want_ids(lambda r: r["domain"] == "medical")
    for row in rows:
        e = by_seq[int(row["seq"])]
        for k in ("time", "inst", "caller", "domain", "txn", "msg_id",
                  "origin", "dest", "upstream", "peer", "outcome", "error",
                  "hash"):
            assert row[k] == e[k], k
        assert int(row["latency_ms"]) == e["latency_ms"]
        assert row["upstream_ms"] == ("" if e["upstream_ms"] is None
                                      else str(e["upstream_ms"]))
        assert json.loads(row["amounts"]) == e["amounts"]
        assert json.loads(row["ids"]) == e["ids"]

    # the record with quotes, a comma and a newline in a value
    rows = list(csv.DictReader(io.StringIO(
        export(big, "--format", "csv", "--caller",
               "jiangsu.transit").decode(), newline="")))
    assert record(7)["msg_id"] in [r["msg_id"] for r in rows]


def test_export_errors(big, tmp_path):
    assert_usage(xregion("audit", "export", big, "--format", "xml"))
    assert_usage(xregion("audit", "export", big, "--format", "csv",
                         "--type", "ckpt"))
    assert_usage(xregion("audit", "export", big, "--type", "nope"))
    assert_usage(xregion("audit", "export", big, "--from", "yesterday"),
                 "XR-FIELD-FORMAT")
    assert_usage(xregion("audit", "export", big, "--limit", "x"))

    # a line that does not parse: what came before was written
    ls = lines(big)
    ls[10] = b"garbage"
    bad = tmp_path / "bad.log"
    write(bad, ls)
    res = xregion("audit", "export", bad)
    assert res.returncode == 2
    assert res.stderr.decode().startswith("xregion: XR-SYNTAX: %s:11: "
                                          "audit line: " % bad)
    assert len(res.stdout.splitlines()) == 9

    # a last line without its newline is left out
    write(bad, lines(big), newline=False)
    assert len(export(bad, "--type", "all").splitlines()) == len(ls) - 1
