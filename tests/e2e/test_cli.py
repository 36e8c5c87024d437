"""The xregion command-line tool, run as a user runs it.

The binary is $XREGION_BIN, else build/xregion.  Every failure must leave
stdout empty, print exactly one line "xregion: <XR-CODE>: <message>" on
stderr and exit with status 2.
"""

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
FIXTURES = ROOT / "tests" / "fixtures" / "messages"
BIN = os.environ.get("XREGION_BIN", str(ROOT / "build" / "xregion"))

ERROR_LINE = re.compile(r"^xregion: XR-[A-Z-]+: \S.*\n$")

# errors that mean "this region cannot take this message", not a bug
LEGIT_REFUSALS = tuple("xregion: %s:" % code for code in (
    "XR-TXN-UNSUPPORTED", "XR-CODE-UNMAPPED", "XR-FIELD-MISSING",
    "XR-FIELD-TOO-LONG"))


def xregion(*args, stdin=b"", config=CONFIG):
    cmd = [BIN]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=60)


def assert_fails(res, code):
    """Exit 2, nothing on stdout, one error line naming `code`."""
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 2, err
    assert res.stdout == b""
    assert ERROR_LINE.match(err), repr(err)
    assert err.startswith("xregion: %s: " % code), err
    return err


@functools.lru_cache(maxsize=None)
def profiles():
    """{name: (codec, charset)} from `xregion profiles`."""
    res = xregion("profiles")
    assert res.returncode == 0, res.stderr
    out = {}
    for line in res.stdout.decode().splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 3:
            out[cols[0]] = (cols[1], cols[2])
    return out


def domain_of(profile):
    return profile.split(".", 1)[1]


def request_fixtures():
    """(profile, txn, path) of every <txn>.request.<ext> fixture."""
    found = []
    for path in sorted(FIXTURES.glob("*/*/*.request.*")):
        txn = path.name.split(".", 1)[0]
        found.append(pytest.param(path.parent.name, txn, path,
                                  id="%s-%s" % (path.parent.name, path.name)))
    return found


def first_fixture(codec=None):
    known = profiles()
    for path in sorted(FIXTURES.glob("*/*/*.request.*")):
        p = path.parent.name
        if p in known and (codec is None or known[p][0] == codec):
            return p, path
    pytest.skip("no request fixture%s yet" % (" for " + codec if codec
                                                   else ""))


def test_help():
    res = xregion("--help", config=None)
    assert res.returncode == 0
    assert res.stderr == b""
    out = res.stdout.decode()
    assert out.startswith("usage: xregion")
    for cmd in ("translate", "check", "route", "profiles"):
        assert cmd in out


@pytest.mark.parametrize("cmd", ["translate", "check", "route", "profiles"])
def test_command_help(cmd):
    res = xregion(cmd, "--help", config=None)
    assert res.returncode == 0
    assert res.stdout.decode().startswith("usage: xregion " + cmd)


def test_version():
    res = xregion("--version", config=None)
    assert res.returncode == 0
    assert re.match(r"^xregion \d+\.\d+\.\d+\n$", res.stdout.decode())


def test_check_ok():
    res = xregion("check", CONFIG, config=None)
    assert res.returncode == 0, res.stderr
    assert re.match(r"^ok: \d+ profiles, \d+ schemas, \d+ regions\n$",
                    res.stdout.decode())


def test_check_takes_env(monkeypatch, tmp_path):
    monkeypatch.setenv("XREGION_CONFIG", str(tmp_path / "nowhere"))
    assert_fails(xregion("check", config=None), "XR-CONFIG")


def test_check_broken_profile(tmp_path):
    conf = tmp_path / "config"
    shutil.copytree(CONFIG, conf)
    victims = sorted((conf / "profiles").glob("*.conf"))
    if not victims:
        pytest.skip("no profile yet")
    victim = victims[0]
    text = victim.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    line = text.count("\n") + 1
    victim.write_text(text + "no_such_directive on;\n", encoding="utf-8")

    err = assert_fails(xregion("check", conf, config=None), "XR-CONFIG")
    assert re.search(r"%s:%d: " % (re.escape(victim.name), line), err), err


def test_check_missing_dir(tmp_path):
    assert_fails(xregion("check", tmp_path / "missing", config=None),
                 "XR-CONFIG")


def test_profiles_lists_codec_and_charset():
    for name, (codec, charset) in profiles().items():
        assert re.match(r"^[a-z0-9_]+\.[a-z]+$", name)
        assert codec in ("json", "xml", "fixed")
        assert charset in ("UTF-8", "GBK")


@pytest.mark.parametrize("profile,txn,path", request_fixtures())
def test_translate_fixture(profile, txn, path):
    known = profiles()
    if profile not in known:
        pytest.skip("profile %s not configured" % profile)

    res = xregion("translate", "--from", profile, "--canonical", path)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stderr == b""
    msg = json.loads(res.stdout)
    assert json.dumps(msg, ensure_ascii=False).find(txn) >= 0

    # to every other region of the domain that offers the transaction
    for to in sorted(known):
        if to == profile or domain_of(to) != domain_of(profile):
            continue
        res = xregion("translate", "--from", profile, "--to", to, path)
        err = res.stderr.decode("utf-8", "replace")
        if res.returncode == 2 and err.startswith(LEGIT_REFUSALS):
            # the target cannot carry this message: a clean refusal
            assert res.stdout == b"" and ERROR_LINE.match(err), err
            continue
        assert res.returncode == 0, "%s -> %s: %s" % (profile, to, err)
        assert res.stdout
        assert res.stderr == b""


def response_fixtures():
    found = []
    for path in sorted(FIXTURES.glob("*/*/*.response.*")):
        txn = path.name.split(".", 1)[0]
        found.append(pytest.param(path.parent.name, txn, path,
                                  id="%s-%s" % (path.parent.name, path.name)))
    return found


@pytest.mark.parametrize("profile,txn,path", response_fixtures())
def test_translate_response_fixture(profile, txn, path):
    """Answers decode given the request's transaction, and go back to
    every region of the domain that offers it."""
    known = profiles()
    if profile not in known:
        pytest.skip("profile %s not configured" % profile)

    res = xregion("translate", "--from", profile, "--response", "--txn", txn,
                  "--canonical", path)
    assert res.returncode == 0, res.stderr.decode()
    msg = json.loads(res.stdout)
    assert msg.get("@txn") == txn, msg

    for to in sorted(known):
        if to == profile or domain_of(to) != domain_of(profile):
            continue
        res = xregion("translate", "--from", profile, "--response", "--txn",
                      txn, "--to", to, path)
        err = res.stderr.decode("utf-8", "replace")
        if res.returncode == 2 and err.startswith(LEGIT_REFUSALS):
            assert res.stdout == b"" and ERROR_LINE.match(err), err
            continue
        assert res.returncode == 0, "%s -> %s: %s" % (profile, to, err)
        assert res.stdout


def test_response_without_txn_says_how():
    """An answer that does not carry its transaction needs --txn."""
    for path in sorted(FIXTURES.glob("*/*/*.response.*")):
        profile = path.parent.name
        if profile not in profiles():
            continue
        res = xregion("translate", "--from", profile, "--response",
                      "--canonical", path)
        if res.returncode == 0:
            continue
        err = assert_fails(res, "XR-FIELD-MISSING")
        assert "--txn" in err
        return
    pytest.skip("every answer carries its transaction code")


def test_fixed_output_is_byte_exact():
    """stdout carries binary records untouched (NUL bytes, BCD, GBK):
    a fixed-width request encoded again for its own region is the same
    bytes."""
    known = profiles()
    tried = 0
    for path in sorted(FIXTURES.glob("*/*/*.request.*")):
        profile = path.parent.name
        if known.get(profile, ("",))[0] != "fixed":
            continue
        res = xregion("translate", "--from", profile, "--to", profile, path)
        assert res.returncode == 0, res.stderr.decode()
        assert res.stdout == path.read_bytes(), path
        tried += 1
    if not tried:
        pytest.skip("no fixed-width request fixture yet")


def test_translate_reads_stdin():
    profile, path = first_fixture()
    data = path.read_bytes()
    a = xregion("translate", "--from", profile, "--canonical", path)
    b = xregion("translate", "--from", profile, "--canonical", "-",
                stdin=data)
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    assert a.stdout == b.stdout


def test_translate_same_profile_is_stable():
    """Encoding what was decoded gives the same canonical message back."""
    profile, path = first_fixture()
    once = xregion("translate", "--from", profile, "--to", profile, path)
    assert once.returncode == 0, once.stderr
    a = xregion("translate", "--from", profile, "--canonical", path)
    b = xregion("translate", "--from", profile, "--canonical", "-",
                stdin=once.stdout)
    assert b.returncode == 0, b.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_malformed_json():
    known = profiles()
    json_profiles = [p for p, (codec, _) in known.items() if codec == "json"]
    if not json_profiles:
        pytest.skip("no json profile yet")
    res = xregion("translate", "--from", json_profiles[0], "--canonical",
                  "-", stdin=b'{"infno": "2207",, "input": {}}')
    assert_fails(res, "XR-SYNTAX")
    res = xregion("translate", "--from", json_profiles[0], "--canonical",
                  "-", stdin=b'{"infno": "2207", "input": {')
    assert_fails(res, "XR-TRUNCATED")


def test_malformed_xml():
    known = profiles()
    xml_profiles = [p for p, (codec, _) in known.items() if codec == "xml"]
    if not xml_profiles:
        pytest.skip("no xml profile yet")
    res = xregion("translate", "--from", xml_profiles[0], "--canonical",
                  "-", stdin=b"<a><b></a>")
    assert_fails(res, "XR-SYNTAX")


def test_empty_input():
    known = profiles()
    if not known:
        pytest.skip("no profile yet")
    res = xregion("translate", "--from", sorted(known)[0], "--canonical",
                  "-", stdin=b"")
    assert_fails(res, "XR-BODY-EMPTY")


def test_input_too_large():
    profile, path = first_fixture()
    res = xregion("translate", "--from", profile, "--canonical",
                  "--max-body", "8", path)
    assert_fails(res, "XR-BODY-TOO-LARGE")


def test_missing_file(tmp_path):
    known = profiles()
    if not known:
        pytest.skip("no profile yet")
    res = xregion("translate", "--from", sorted(known)[0], "--canonical",
                  tmp_path / "none.json")
    assert_fails(res, "XR-IO")


def test_unknown_profile(tmp_path):
    src = tmp_path / "m.json"
    src.write_text("{}")
    res = xregion("translate", "--from", "atlantis.medical", "--to",
                  "atlantis.medical", src)
    assert "atlantis.medical" in assert_fails(res, "XR-PROFILE-UNKNOWN")


def test_domain_mismatch(tmp_path):
    known = profiles()
    by_domain = {}
    for p in sorted(known):
        by_domain.setdefault(domain_of(p), p)
    if len(by_domain) < 2:
        pytest.skip("profiles of two domains needed")
    a, b = list(by_domain.values())[:2]
    src = tmp_path / "m"
    src.write_text("{}")
    res = xregion("translate", "--from", a, "--to", b, src)
    assert_fails(res, "XR-DOMAIN-MISMATCH")


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["translate"],
    ["translate", "--from"],
    ["translate", "--from", "x.medical"],
    ["translate", "--from", "x.medical", "--to", "y.medical", "--bogus"],
    ["translate", "--from", "x.medical", "--canonical", "a", "b"],
    ["translate", "--from", "x.medical", "--canonical", "--max-body", "lots"],
    ["route"],
])
def test_usage_errors(args):
    assert_fails(xregion(*args), "XR-USAGE")


def first_request_per_profile():
    seen = {}
    for path in sorted(FIXTURES.glob("*/*/*.request.*")):
        seen.setdefault(path.parent.name, path)
    return [pytest.param(p, path, id=p) for p, path in sorted(seen.items())]


@pytest.mark.parametrize("profile,path", first_request_per_profile())
def test_route_prints_region(profile, path):
    if profile not in profiles():
        pytest.skip("profile %s not configured" % profile)
    res = xregion("route", "--from", profile, path)
    assert res.returncode == 0, "%s: %s" % (path, res.stderr.decode())
    assert res.stderr == b""
    assert re.match(r"^\d{6} [a-z]+\n$", res.stdout.decode()), res.stdout
