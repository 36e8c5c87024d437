// The njs peer of the benchmark (bench/compare_bench.py): what a user
// would write with nginx's JavaScript module instead of xregion, for one
// pair and one transaction.  Shanghai's 2207 settlement (SI12,
// pinyin-initial JSON) is decoded, checked and mapped into Jiangsu's
// platform JSON, sent to Jiangsu through an internal proxy location, and
// Jiangsu's answer is decoded and mapped back into Shanghai's format: the
// same fields, code tables, amount and time conversions as
// config/profiles/shanghai.medical.conf and jiangsu.medical.conf say, and
// the same answer bytes as xregion's (the bench compares them).
//
// Decoding is njs's JSON.parse.  Encoding is written out here: Jiangsu's
// amounts are numbers with two decimals ("0.00"), which JSON.stringify
// would write as 0; strings go through JSON.stringify.
//
//   js_import peer from settle.js;
//   location /njs/ { js_content peer.settle; }   (upstream: /_peer/...)

const UPSTREAM_URI = '/_peer/hxpt/api/transaction';

// Shanghai's region code: its messages carry no treatment place (@origin)
const SHANGHAI_CODE = '310000';

// code tables, wire value -> canonical name (Shanghai) and canonical
// name -> wire value (Jiangsu), and back for the answer
const sh = {
    cert_type: { '0': 'mag_card', '1': 'ss_card', '3': 'e_voucher' },
    med_type: { '0': 'registration', '1': 'outpatient', '2': 'emergency',
                '3': 'chronic_special', '4': 'inpatient', '5': 'pharmacy' },
    insutype: { '1': 'employee', '2': 'resident', '3': 'civil_servant_aid',
                '4': 'retired_cadre' },
    settle_way: { '1': 'by_item', '2': 'by_quota' },
    flag: { '0': 'no', '1': 'yes' },
    fund_type: { '01': 'employee_pool', '02': 'civil_servant_aid',
                 '03': 'large_aid', '04': 'resident_pool',
                 '05': 'resident_critical', '06': 'medical_assist' },
};
const js = {
    cert_type: { e_voucher: '01', id_card: '02', ss_card: '03' },
    med_type: { outpatient: '11', registration: '12', emergency: '13',
                chronic_special: '14', inpatient: '21', pharmacy: '41' },
    insutype: { employee: '310', civil_servant_aid: '320',
                retired_cadre: '340', resident: '390' },
    settle_way: { by_item: '01', by_quota: '02' },
    flag: { no: '0', yes: '1' },
    fund_type: { employee_pool: '310100', civil_servant_aid: '320100',
                 large_aid: '330100', resident_pool: '390100',
                 resident_critical: '390200', medical_assist: '610100' },
};

function invert(tables) {
    const r = {};
    for (const name in tables) {
        const t = tables[name], inv = {};
        for (const k in t) {
            inv[t[k]] = k;
        }
        r[name] = inv;
    }
    return r;
}

const shOut = invert(sh), jsIn = invert(js);

// Shanghai's failure codes (xxfhm), by canonical error
const SH_ERRORS = {
    'XR-SYNTAX': 'E001', 'XR-FIELD-MISSING': 'E002',
    'XR-FIELD-FORMAT': 'E003', 'XR-CODE-UNMAPPED': 'E004',
    'XR-TXN-UNKNOWN': 'E005', 'XR-NO-ROUTE': 'E101',
    'XR-UPSTREAM-ERROR': 'E103',
};

// The settlement request's fields in Jiangsu's order: canonical name,
// Shanghai key (inside xxnr), Jiangsu key (inside businessParams.data),
// kind (string, code table name, or amount), required, max length.
const REQ = [
    ['psn_no', 'personno', 'psn_no', 'string', true, 30],
    ['cert_type', 'cardtype', 'mdtrt_cert_type', 'cert_type', true],
    ['cert_no', 'carddata', 'mdtrt_cert_no', 'string', true, 50],
    ['med_type', 'yllb', 'med_type', 'med_type', true],
    ['total', 'totalexpense', 'medfee_sumamt', 'amount', true],
    ['settle_way', 'jsfs', 'psn_setlway', 'settle_way', true],
    ['mdtrt_id', 'jzdyh', 'mdtrt_id', 'string', true, 30],
    ['batch_no', 'mxzdh', 'chrg_bchno', 'string', true, 30],
    ['insutype', 'xzlx', 'insutype', 'insutype', true],
    ['acct_used', 'zhsybz', 'acct_used_flag', 'flag', true],
    ['invoice_no', 'fph', 'invono', 'string', false, 20],
    ['ownpay_amt', 'fybjsfwfyze', 'fulamt_ownpay_amt', 'amount'],
    ['overlmt_amt', 'cxjje', 'overlmt_selfpay', 'amount'],
    ['preselfpay_amt', 'xxzfje', 'preselfpay_amt', 'amount'],
    ['inscp_amt', 'ybjsfwfyze', 'inscp_scp_amt', 'amount'],
];

// The answer's fields in Shanghai's order: canonical name, Jiangsu key
// (inside businessResult.setlinfo), Shanghai key (inside xxnr), kind,
// required, max length.
const RESP = [
    ['setl_id', 'setl_id', 'translsh', 'string', true, 30],
    ['mdtrt_id', 'mdtrt_id', 'jzdyh', 'string', false, 30],
    ['psn_no', 'psn_no', 'personno', 'string', false, 30],
    ['insutype', 'insutype', 'xzlx', 'insutype'],
    ['med_type', 'med_type', 'yllb', 'med_type'],
    ['settled_at', 'setl_time', 'jssj', 'datetime'],
    ['total', 'medfee_sumamt', 'totalexpense', 'amount', true],
    ['inscp_amt', 'inscp_scp_amt', 'ybjsfwfyze', 'amount'],
    ['pool_pay', 'hifp_pay', 'tczfs', 'amount'],
    ['fund_pay', 'fund_pay_sumamt', 'jjzfze', 'amount', true],
    ['acct_pay', 'acct_pay', 'zhzfs', 'amount', true],
    ['cash_pay', 'psn_cash_pay', 'xjzfs', 'amount', true],
    ['balance', 'balc', 'curaccountamt', 'amount'],
    ['clr_optins', 'clr_optins', 'qsjg', 'string', false, 6],
];
const FUND = [
    ['fund_type', 'fund_pay_type', 'jjlx', 'fund_type', true],
    ['fund_name', 'fund_pay_type_name', 'jjmc', 'string', false, 200],
    ['scope_amt', 'inscp_scp_amt', 'fwnje', 'amount'],
    ['pay_amt', 'fund_payamt', 'zfje', 'amount', true],
];


// A failure: canonical code and text
function Failure(code, text) {
    this.code = code;
    this.text = text;
}

function fail(code, text) {
    throw new Failure(code, text);
}


const jstr = JSON.stringify;    // of a string: its JSON text

// Characters (the limits count characters): UTF-16 units are never
// fewer, so they are counted only when the units are over the limit
function tooLong(s, max) {
    if (s.length <= max) {
        return false;
    }
    let n = 0;
    for (let i = 0; i < s.length; i++) {
        n += (s.charCodeAt(i) & 0xfc00) == 0xdc00 ? 0 : 1;
    }
    return n > max;
}


// Amounts: integer fen, from yuan text ("458.63", "-1", "0.5") or a JSON
// number; to yuan text with two decimals
const AMOUNT = /^(-?)(\d{1,14})(?:\.(\d{1,2}))?$/;

function fenOf(v) {
    if (typeof v == 'string') {
        const m = AMOUNT.exec(v);
        if (!m) {
            return null;
        }
        const frac = m[3] === undefined ? 0
                     : m[3].length == 1 ? +m[3] * 10 : +m[3];
        const f = +m[2] * 100 + frac;
        return m[1] ? -f : f;
    }
    if (typeof v != 'number' || !isFinite(v) || Math.abs(v) > 1e14) {
        return null;
    }
    const f = Math.round(v * 100);
    if (Math.abs(v * 100 - f) > 1e-6) {
        return null;                        // more than two decimals
    }
    return f;
}

function pad2(n) {
    return n < 10 ? '0' + n : '' + n;
}

function yuan(f) {
    const sign = f < 0 ? '-' : '';
    f = Math.abs(f);
    return sign + Math.floor(f / 100) + '.' + pad2(f % 100);
}


// Times: "yyyy-MM-dd HH:mm:ss" into its parts, checked
const DATETIME = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/;

function parseDatetime(s) {
    const m = DATETIME.exec(s);
    if (!m) {
        return null;
    }
    const t = [+m[1], +m[2], +m[3], +m[4], +m[5], +m[6]];
    if (t[1] < 1 || t[1] > 12 || t[2] < 1 || t[2] > 31 || t[3] > 23
        || t[4] > 59 || t[5] > 60)
    {
        return null;
    }
    return t;
}

function datetimeText(t) {                  // both profiles' "datetime"
    return t[0] + '-' + pad2(t[1]) + '-' + pad2(t[2]) + ' ' + pad2(t[3])
           + ':' + pad2(t[4]) + ':' + pad2(t[5]);
}

function stampText(t) {                     // Shanghai's "stamp"
    return '' + t[0] + pad2(t[1]) + pad2(t[2]) + pad2(t[3]) + pad2(t[4])
           + pad2(t[5]);
}


// A wire value as a string: JSON strings, and integers written as text
function textOf(v, name) {
    if (typeof v == 'string') {
        return v;
    }
    if (typeof v == 'number' && Number.isInteger(v)) {
        return '' + v;
    }
    fail('XR-FIELD-FORMAT', name + ': not a string');
}

// One field by its spec: wire object -> canonical value
function decodeField(spec, wire, key, tables, canon) {
    const name = spec[0], kind = spec[3];
    const v = wire[key];
    if (v === undefined || v === null || v === '') {
        if (spec[4]) {
            fail('XR-FIELD-MISSING', name + ' is missing');
        }
        return;
    }
    if (kind == 'amount') {
        const f = fenOf(v);
        if (f === null) {
            fail('XR-FIELD-FORMAT', name + ': not an amount');
        }
        if (f < 0) {                    // no settle amount may be
            fail('XR-AMOUNT-NEGATIVE', name + ' is below zero');
        }
        canon[name] = f;
    } else if (kind == 'datetime') {
        const t = parseDatetime(textOf(v, name));
        if (!t) {
            fail('XR-FIELD-FORMAT', name + ': not a time');
        }
        canon[name] = t;
    } else if (kind == 'string') {
        const s = textOf(v, name);
        if (spec[5] && tooLong(s, spec[5])) {
            fail('XR-FIELD-TOO-LONG', name + ': too long');
        }
        canon[name] = s;
    } else {
        const c = tables[kind][textOf(v, name)];
        if (c === undefined) {
            fail('XR-CODE-UNMAPPED', name + ': unknown code');
        }
        canon[name] = c;
    }
}

// One canonical value written by its spec into a list of JSON members
function encodeField(spec, key, tables, canon, out, amountAs) {
    const name = spec[0], kind = spec[3];
    const v = canon[name];
    if (v === undefined) {
        return;
    }
    let text;
    if (kind == 'amount') {
        text = amountAs(v);
    } else if (kind == 'datetime') {
        text = jstr(stampText(v));
    } else if (kind == 'string') {
        text = jstr(v);
    } else {
        const w = tables[kind][v];
        if (w === undefined) {
            fail('XR-CODE-UNMAPPED', name + ': no code for ' + v);
        }
        text = jstr(w);
    }
    out.push(jstr(key) + ':' + text);
}

function amountNumber(f) { return yuan(f); }
function amountString(f) { return '"' + yuan(f) + '"'; }


function parseJson(text, code, what) {
    let doc;
    try {
        doc = JSON.parse(text);
    } catch (e) {
        fail(code, what + ' is not JSON');
    }
    if (typeof doc != 'object' || doc === null || Array.isArray(doc)) {
        fail(code, what + ' is not a JSON object');
    }
    return doc;
}

// Shanghai's request -> canonical message
function decodeRequest(body) {
    const doc = parseJson(body, 'XR-SYNTAX', 'the body');
    const env = (key, name, max) => {
        const v = doc[key];
        if (typeof v != 'string' || v == '') {
            fail('XR-FIELD-MISSING', name + ' is missing');
        }
        if (max && tooLong(v, max)) {
            fail('XR-FIELD-TOO-LONG', name + ': too long');
        }
        return v;
    };
    const m = {};
    m.msg_id = env('msgid', '@msg_id', 30);
    if (env('xxlxm', '@txn') != 'SI12') {
        fail('XR-TXN-UNKNOWN', 'only SI12 (settle) is served here');
    }
    m.time = parseDatetime(env('jysj', '@time'));
    if (!m.time) {
        fail('XR-FIELD-FORMAT', '@time: not a time');
    }
    m.dest = env('xzqhdm', '@dest', 6);
    m.caller = env('jgdm', '@caller');
    if (!/^32\d{4}$/.test(m.dest)) {
        fail('XR-NO-ROUTE', 'only Jiangsu is served here');
    }
    const xxnr = doc.xxnr;
    if (typeof xxnr != 'object' || xxnr === null) {
        fail('XR-FIELD-MISSING', 'xxnr is missing');
    }
    const c = {};
    for (let i = 0; i < REQ.length; i++) {
        decodeField(REQ[i], xxnr, REQ[i][1], sh, c);
    }
    m.body = c;
    return m;
}

// canonical request -> Jiangsu's request
function encodeRequest(m) {
    const data = [];
    for (let i = 0; i < REQ.length; i++) {
        encodeField(REQ[i], REQ[i][2], js, m.body, data, amountNumber);
    }
    return '{"action":"transaction","transactionName":"2207","serialNo":'
           + jstr(m.msg_id) + ',"transTime":' + jstr(datetimeText(m.time))
           + ',"areaCode":' + jstr(m.dest)
           + ',"businessParams":{"mdtrtarea_admvs":' + jstr(SHANGHAI_CODE)
           + ',"data":{' + data.join(',') + '}},"orgId":' + jstr(m.caller)
           + ',"identifyMode":"1","operatorId":"XR0001","operatorName":'
           + jstr('跨区域互通网关') + '}';
}

// Jiangsu's answer -> canonical answer
function decodeAnswer(body) {
    const doc = parseJson(body, 'XR-UPSTREAM-ERROR', "Jiangsu's answer");
    if (doc.transactionName !== '2207') {
        fail('XR-UPSTREAM-ERROR', 'Jiangsu answered another transaction');
    }
    const a = { time: parseDatetime(textOf(doc.transTime || '', '@time')) };
    if (!a.time) {
        fail('XR-UPSTREAM-ERROR', "Jiangsu's answer has no time");
    }
    a.message = typeof doc.resultMsg == 'string' ? doc.resultMsg : '';
    if (doc.resultCode === undefined || doc.resultCode === null) {
        fail('XR-UPSTREAM-ERROR', "Jiangsu's answer has no result code");
    }
    a.ok = textOf(doc.resultCode, 'resultCode') === '0';
    if (!a.ok) {
        return a;                       // a refusal: passed on as such
    }
    const res = doc.businessResult;
    const info = typeof res == 'object' && res !== null && res.setlinfo;
    if (typeof info != 'object' || info === null) {
        fail('XR-UPSTREAM-ERROR', "Jiangsu's answer has no setlinfo");
    }
    const c = {};
    for (let i = 0; i < RESP.length; i++) {
        decodeField(RESP[i], info, RESP[i][1], jsIn, c);
    }
    if (Array.isArray(res.setldetail)) {
        c.fund_items = res.setldetail.map(d => {
            const item = {};
            for (let j = 0; j < FUND.length; j++) {
                decodeField(FUND[j], d, FUND[j][1], jsIn, item);
            }
            return item;
        });
    }
    a.body = c;
    return a;
}

// canonical answer -> Shanghai's answer
function encodeAnswer(m, a) {
    let out = '{"jysj":' + jstr(datetimeText(a.time))
              + ',"xxlxm":"SI12","bbh":"0001","msgid":' + jstr(m.msg_id)
              + ',"xxfhm":' + jstr(a.ok ? 'P001' : 'E999')
              + ',"fhxx":' + jstr(a.message);
    if (a.body) {
        const xxnr = [];
        for (let i = 0; i < RESP.length; i++) {
            encodeField(RESP[i], RESP[i][2], shOut, a.body, xxnr,
                        amountString);
        }
        if (a.body.fund_items) {
            const list = a.body.fund_items.map(item => {
                const f = [];
                for (let j = 0; j < FUND.length; j++) {
                    encodeField(FUND[j], FUND[j][2], shOut, item, f,
                                amountString);
                }
                return '{' + f.join(',') + '}';
            });
            xxnr.push('"jjzfmx":[' + list.join(',') + ']');
        }
        out += ',"xxnr":{' + xxnr.join(',') + '}';
    }
    return out + '}';
}

// A failure in Shanghai's format
function errorAnswer(m, err) {
    const d = new Date();
    const now = [d.getFullYear(), d.getMonth() + 1, d.getDate(),
                 d.getHours(), d.getMinutes(), d.getSeconds()];
    return '{"jysj":' + jstr(datetimeText(now))
           + ',"xxlxm":"SI12","bbh":"0001","msgid":'
           + jstr(m ? m.msg_id : '')
           + ',"xxfhm":' + jstr(SH_ERRORS[err.code] || 'E999')
           + ',"fhxx":' + jstr(err.code + ': ' + err.text) + '}';
}


function answer(r, status, text) {
    r.headersOut['Content-Type'] = 'application/json; charset=UTF-8';
    r.return(status, text);
}

// like xregion's profiles (error_status 200), but the bench counts
// failures by status, so they are not 2xx here
function refuse(r, m, e) {
    if (!(e instanceof Failure)) {
        throw e;
    }
    answer(r, e.code == 'XR-UPSTREAM-ERROR' ? 502 : 400, errorAnswer(m, e));
}

function settle(r) {
    let m, out;
    try {
        if (!r.requestText) {
            fail('XR-SYNTAX', 'no body, or one larger than the buffer');
        }
        m = decodeRequest(r.requestText);
        out = encodeRequest(m);
    } catch (e) {
        refuse(r, m, e);
        return;
    }
    r.subrequest(UPSTREAM_URI, { method: 'POST', body: out },
        reply => {
            try {
                if (reply.status != 200) {
                    fail('XR-UPSTREAM-ERROR', 'Jiangsu answered '
                         + reply.status);
                }
                answer(r, 200, encodeAnswer(m,
                                            decodeAnswer(reply.responseText)));
            } catch (e) {
                refuse(r, m, e);
            }
        });
}

export default { settle };
