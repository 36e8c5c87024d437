-- The Lua peer of the benchmark (bench/compare_bench.py): what a user
-- would write with lua-nginx-module instead of xregion, for one pair and
-- one transaction.  Shanghai's 2207 settlement (SI12, pinyin-initial JSON)
-- is decoded, checked and mapped into Jiangsu's platform JSON, sent to
-- Jiangsu through an internal proxy location, and Jiangsu's answer is
-- decoded and mapped back into Shanghai's format: the same fields, code
-- tables, amount and time conversions as config/profiles/shanghai.medical
-- .conf and jiangsu.medical.conf say, and the same answer bytes as
-- xregion's (the bench compares them).
--
-- Decoding uses lua-cjson (C), as an OpenResty user would.  Encoding is
-- written out here: the answer's key order is the format's, which a Lua
-- table does not keep, and Jiangsu's amounts are numbers with two decimals
-- ("0.00"), which cjson would write as 0.
--
--   content_by_lua_block { require("settle").handle("/_peer/hxpt/api/transaction") }

local cjson = require "cjson.safe"

local concat, byte, find, format, gsub, match, sub, floor =
    table.concat, string.byte, string.find, string.format, string.gsub,
    string.match, string.sub, math.floor
local null = cjson.null

local M = {}

-- Shanghai's region code: its messages carry no treatment place (@origin)
local SHANGHAI_CODE = "310000"

-- code tables, wire value -> canonical name (Shanghai) and canonical
-- name -> wire value (Jiangsu), and back for the answer
local sh = {
    cert_type  = { ["0"] = "mag_card", ["1"] = "ss_card", ["3"] = "e_voucher" },
    med_type   = { ["0"] = "registration", ["1"] = "outpatient",
                   ["2"] = "emergency", ["3"] = "chronic_special",
                   ["4"] = "inpatient", ["5"] = "pharmacy" },
    insutype   = { ["1"] = "employee", ["2"] = "resident",
                   ["3"] = "civil_servant_aid", ["4"] = "retired_cadre" },
    settle_way = { ["1"] = "by_item", ["2"] = "by_quota" },
    flag       = { ["0"] = "no", ["1"] = "yes" },
    fund_type  = { ["01"] = "employee_pool", ["02"] = "civil_servant_aid",
                   ["03"] = "large_aid", ["04"] = "resident_pool",
                   ["05"] = "resident_critical", ["06"] = "medical_assist" },
}
local js = {
    cert_type  = { e_voucher = "01", id_card = "02", ss_card = "03" },
    med_type   = { outpatient = "11", registration = "12", emergency = "13",
                   chronic_special = "14", inpatient = "21", pharmacy = "41" },
    insutype   = { employee = "310", civil_servant_aid = "320",
                   retired_cadre = "340", resident = "390" },
    settle_way = { by_item = "01", by_quota = "02" },
    flag       = { no = "0", yes = "1" },
    fund_type  = { employee_pool = "310100", civil_servant_aid = "320100",
                   large_aid = "330100", resident_pool = "390100",
                   resident_critical = "390200", medical_assist = "610100" },
}

local function invert(t)
    local r = {}
    for k, v in pairs(t) do r[v] = k end
    return r
end

local sh_out, js_in = {}, {}
for name, t in pairs(sh) do sh_out[name] = invert(t) end
for name, t in pairs(js) do js_in[name] = invert(t) end

-- Shanghai's failure codes (xxfhm), by canonical error
local SH_ERRORS = {
    ["XR-SYNTAX"] = "E001", ["XR-FIELD-MISSING"] = "E002",
    ["XR-FIELD-FORMAT"] = "E003", ["XR-CODE-UNMAPPED"] = "E004",
    ["XR-TXN-UNKNOWN"] = "E005", ["XR-NO-ROUTE"] = "E101",
    ["XR-UPSTREAM-ERROR"] = "E103",
}

-- The settlement request's fields in Jiangsu's order: canonical name,
-- Shanghai key (inside xxnr), Jiangsu key (inside businessParams.data),
-- kind (string, code table name, or "amount"), required, max length.
local REQ = {
    { "psn_no",         "personno",     "psn_no",            "string", true, 30 },
    { "cert_type",      "cardtype",     "mdtrt_cert_type",   "cert_type", true },
    { "cert_no",        "carddata",     "mdtrt_cert_no",     "string", true, 50 },
    { "med_type",       "yllb",         "med_type",          "med_type", true },
    { "total",          "totalexpense", "medfee_sumamt",     "amount", true },
    { "settle_way",     "jsfs",         "psn_setlway",       "settle_way", true },
    { "mdtrt_id",       "jzdyh",        "mdtrt_id",          "string", true, 30 },
    { "batch_no",       "mxzdh",        "chrg_bchno",        "string", true, 30 },
    { "insutype",       "xzlx",         "insutype",          "insutype", true },
    { "acct_used",      "zhsybz",       "acct_used_flag",    "flag", true },
    { "invoice_no",     "fph",          "invono",            "string", false, 20 },
    { "ownpay_amt",     "fybjsfwfyze",  "fulamt_ownpay_amt", "amount" },
    { "overlmt_amt",    "cxjje",        "overlmt_selfpay",   "amount" },
    { "preselfpay_amt", "xxzfje",       "preselfpay_amt",    "amount" },
    { "inscp_amt",      "ybjsfwfyze",   "inscp_scp_amt",     "amount" },
}

-- The answer's fields in Shanghai's order: canonical name, Jiangsu key
-- (inside businessResult.setlinfo), Shanghai key (inside xxnr), kind,
-- required, max length.
local RESP = {
    { "setl_id",    "setl_id",         "translsh",      "string", true, 30 },
    { "mdtrt_id",   "mdtrt_id",        "jzdyh",         "string", false, 30 },
    { "psn_no",     "psn_no",          "personno",      "string", false, 30 },
    { "insutype",   "insutype",        "xzlx",          "insutype" },
    { "med_type",   "med_type",        "yllb",          "med_type" },
    { "settled_at", "setl_time",       "jssj",          "datetime" },
    { "total",      "medfee_sumamt",   "totalexpense",  "amount", true },
    { "inscp_amt",  "inscp_scp_amt",   "ybjsfwfyze",    "amount" },
    { "pool_pay",   "hifp_pay",        "tczfs",         "amount" },
    { "fund_pay",   "fund_pay_sumamt", "jjzfze",        "amount", true },
    { "acct_pay",   "acct_pay",        "zhzfs",         "amount", true },
    { "cash_pay",   "psn_cash_pay",    "xjzfs",         "amount", true },
    { "balance",    "balc",            "curaccountamt", "amount" },
    { "clr_optins", "clr_optins",      "qsjg",          "string", false, 6 },
}
local FUND = {
    { "fund_type", "fund_pay_type",      "jjlx",  "fund_type", true },
    { "fund_name", "fund_pay_type_name", "jjmc",  "string", false, 200 },
    { "scope_amt", "inscp_scp_amt",      "fwnje", "amount" },
    { "pay_amt",   "fund_payamt",        "zfje",  "amount", true },
}


-- A failure: canonical code and text, thrown to handle()
local function fail(code, text)
    error({ code = code, text = text }, 0)
end


-- JSON text of a string
local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b',
              ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function esc(c)
    return ESC[c] or format("\\u%04x", byte(c))
end
local function jstr(s)
    if find(s, '[%z\1-\31"\\]') then
        s = gsub(s, '[%z\1-\31"\\]', esc)
    end
    return '"' .. s .. '"'
end


-- Amounts: integer fen, from yuan text ("458.63", "-1", "0.5") or a JSON
-- number; to yuan text with two decimals
local function fen_of_text(s)
    local sign, int, frac = match(s, "^(%-?)(%d+)%.?(%d?%d?)$")
    if not int or #int > 14 or (frac == "" and find(s, "%.$")) then
        return nil
    end
    local v = tonumber(int) * 100 + tonumber(frac .. sub("00", #frac + 1))
    return sign == "-" and -v or v
end

local function fen_of(v)
    if type(v) == "string" then
        return fen_of_text(v)
    end
    if type(v) ~= "number" or v ~= v or v > 1e14 or v < -1e14 then
        return nil
    end
    local f = floor(v * 100 + 0.5)
    if v * 100 - f > 1e-6 or f - v * 100 > 1e-6 then
        return nil                          -- more than two decimals
    end
    return f
end

local function yuan(f)
    local sign = ""
    if f < 0 then sign, f = "-", -f end
    return format("%s%d.%02d", sign, floor(f / 100), f % 100)
end


-- Times: "yyyy-MM-dd HH:mm:ss" into its parts, checked
local function parse_datetime(s)
    local y, mo, d, h, mi, se =
        match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)$")
    if not y then
        return nil
    end
    y, mo, d, h, mi, se = tonumber(y), tonumber(mo), tonumber(d),
                          tonumber(h), tonumber(mi), tonumber(se)
    if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59
       or se > 60 then
        return nil
    end
    return { y, mo, d, h, mi, se }
end

local function datetime_text(t)          -- both profiles' "datetime"
    return format("%04d-%02d-%02d %02d:%02d:%02d",
                  t[1], t[2], t[3], t[4], t[5], t[6])
end

local function stamp_text(t)             -- Shanghai's "stamp"
    return format("%04d%02d%02d%02d%02d%02d",
                  t[1], t[2], t[3], t[4], t[5], t[6])
end


-- Characters of UTF-8 text (the limits count characters), only when its
-- bytes are over the limit
local function too_long(s, max)
    if #s <= max then
        return false
    end
    local _, n = gsub(s, "[^\128-\191]", "")
    return n > max
end


-- A wire value as a string: JSON strings, and numbers written as text
local function text_of(v, name)
    if type(v) == "string" then
        return v
    end
    if type(v) == "number" and v == floor(v) then
        return format("%d", v)
    end
    fail("XR-FIELD-FORMAT", name .. ": not a string")
end

-- One field by its spec: wire table -> canonical value
local function decode_field(spec, wire, key, tables, canon)
    local name, kind, required, max = spec[1], spec[4], spec[5], spec[6]
    local v = wire[key]
    if v == nil or v == null or v == "" then
        if required then
            fail("XR-FIELD-MISSING", name .. " is missing")
        end
        return
    end
    if kind == "amount" then
        local f = fen_of(v)
        if not f then
            fail("XR-FIELD-FORMAT", name .. ": not an amount")
        end
        if f < 0 then                   -- no settle amount may be
            fail("XR-AMOUNT-NEGATIVE", name .. " is below zero")
        end
        canon[name] = f
    elseif kind == "datetime" then
        local t = parse_datetime(text_of(v, name))
        if not t then
            fail("XR-FIELD-FORMAT", name .. ": not a time")
        end
        canon[name] = t
    elseif kind == "string" then
        v = text_of(v, name)
        if max and too_long(v, max) then
            fail("XR-FIELD-TOO-LONG", name .. ": too long")
        end
        canon[name] = v
    else
        local c = tables[kind][text_of(v, name)]
        if not c then
            fail("XR-CODE-UNMAPPED", name .. ": unknown code")
        end
        canon[name] = c
    end
end

-- One canonical value written by its spec into a list of JSON members
local function encode_field(spec, key, tables, canon, out, amount_as)
    local name, kind = spec[1], spec[4]
    local v = canon[name]
    if v == nil then
        return
    end
    local text
    if kind == "amount" then
        text = amount_as(v)
    elseif kind == "datetime" then
        text = jstr(stamp_text(v))
    elseif kind == "string" then
        text = jstr(v)
    else
        local w = tables[kind][v]
        if not w then
            fail("XR-CODE-UNMAPPED", name .. ": no code for " .. v)
        end
        text = jstr(w)
    end
    out[#out + 1] = jstr(key) .. ":" .. text
end

local function amount_number(f) return yuan(f) end
local function amount_string(f) return '"' .. yuan(f) .. '"' end


-- Shanghai's request -> canonical message
local function decode_request(body)
    local doc = cjson.decode(body)
    if type(doc) ~= "table" then
        fail("XR-SYNTAX", "the body is not a JSON object")
    end
    local m = {}
    local function env(key, name, max)
        local v = doc[key]
        if type(v) ~= "string" or v == "" then
            fail("XR-FIELD-MISSING", name .. " is missing")
        end
        if max and too_long(v, max) then
            fail("XR-FIELD-TOO-LONG", name .. ": too long")
        end
        return v
    end
    m.msg_id = env("msgid", "@msg_id", 30)
    if env("xxlxm", "@txn") ~= "SI12" then
        fail("XR-TXN-UNKNOWN", "only SI12 (settle) is served here")
    end
    m.time = parse_datetime(env("jysj", "@time"))
    if not m.time then
        fail("XR-FIELD-FORMAT", "@time: not a time")
    end
    m.dest = env("xzqhdm", "@dest", 6)
    m.caller = env("jgdm", "@caller")
    if not find(m.dest, "^32%d%d%d%d$") then
        fail("XR-NO-ROUTE", "only Jiangsu is served here")
    end
    local body_in = doc.xxnr
    if type(body_in) ~= "table" then
        fail("XR-FIELD-MISSING", "xxnr is missing")
    end
    local c = {}
    for i = 1, #REQ do
        local spec = REQ[i]
        decode_field(spec, body_in, spec[2], sh, c)
    end
    m.body = c
    return m
end

-- canonical request -> Jiangsu's request
local function encode_request(m)
    local data = {}
    for i = 1, #REQ do
        local spec = REQ[i]
        encode_field(spec, spec[3], js, m.body, data, amount_number)
    end
    return concat({
        '{"action":"transaction","transactionName":"2207","serialNo":',
        jstr(m.msg_id), ',"transTime":', jstr(datetime_text(m.time)),
        ',"areaCode":', jstr(m.dest),
        ',"businessParams":{"mdtrtarea_admvs":', jstr(SHANGHAI_CODE),
        ',"data":{', concat(data, ","), '}},"orgId":', jstr(m.caller),
        ',"identifyMode":"1","operatorId":"XR0001","operatorName":',
        jstr("跨区域互通网关"), '}' })
end

-- Jiangsu's answer -> canonical answer
local function decode_answer(body)
    local doc = cjson.decode(body)
    if type(doc) ~= "table" then
        fail("XR-UPSTREAM-ERROR", "Jiangsu's answer is not JSON")
    end
    if doc.transactionName ~= "2207" then
        fail("XR-UPSTREAM-ERROR", "Jiangsu answered another transaction")
    end
    local a = { time = parse_datetime(text_of(doc.transTime or "", "@time")) }
    if not a.time then
        fail("XR-UPSTREAM-ERROR", "Jiangsu's answer has no time")
    end
    local msg = doc.resultMsg
    a.message = type(msg) == "string" and msg or ""
    local rc = doc.resultCode
    if rc == nil or rc == null then
        fail("XR-UPSTREAM-ERROR", "Jiangsu's answer has no result code")
    end
    a.ok = text_of(rc, "resultCode") == "0"
    if not a.ok then
        return a                        -- a refusal: passed on as such
    end
    local res = doc.businessResult
    local info = type(res) == "table" and res.setlinfo
    if type(info) ~= "table" then
        fail("XR-UPSTREAM-ERROR", "Jiangsu's answer has no setlinfo")
    end
    local c = {}
    for i = 1, #RESP do
        local spec = RESP[i]
        decode_field(spec, info, spec[2], js_in, c)
    end
    local detail = res.setldetail
    if type(detail) == "table" then
        local items = {}
        for i = 1, #detail do
            local item = {}
            for j = 1, #FUND do
                local spec = FUND[j]
                decode_field(spec, detail[i], spec[2], js_in, item)
            end
            items[i] = item
        end
        c.fund_items = items
    end
    a.body = c
    return a
end

-- canonical answer -> Shanghai's answer
local function encode_answer(m, a)
    local out = {
        '{"jysj":', jstr(datetime_text(a.time)),
        ',"xxlxm":"SI12","bbh":"0001","msgid":', jstr(m.msg_id),
        ',"xxfhm":', jstr(a.ok and "P001" or "E999"),
        ',"fhxx":', jstr(a.message) }
    if a.body then
        local xxnr = {}
        for i = 1, #RESP do
            local spec = RESP[i]
            encode_field(spec, spec[3], sh_out, a.body, xxnr, amount_string)
        end
        local items = a.body.fund_items
        if items then
            local list = {}
            for i = 1, #items do
                local f = {}
                for j = 1, #FUND do
                    local spec = FUND[j]
                    encode_field(spec, spec[3], sh_out, items[i], f,
                                 amount_string)
                end
                list[i] = "{" .. concat(f, ",") .. "}"
            end
            xxnr[#xxnr + 1] = '"jjzfmx":[' .. concat(list, ",") .. "]"
        end
        out[#out + 1] = ',"xxnr":{' .. concat(xxnr, ",") .. "}"
    end
    out[#out + 1] = "}"
    return concat(out)
end

-- A failure in Shanghai's format
local function error_answer(m, err)
    local now = os.date("*t", ngx.time())
    return concat({
        '{"jysj":', jstr(datetime_text({ now.year, now.month, now.day,
                                         now.hour, now.min, now.sec })),
        ',"xxlxm":"SI12","bbh":"0001","msgid":', jstr(m and m.msg_id or ""),
        ',"xxfhm":', jstr(SH_ERRORS[err.code] or "E999"),
        ',"fhxx":', jstr(err.code .. ": " .. err.text), '}' })
end


function M.handle(upstream_uri)
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    local m, status
    local ok, answer = pcall(function()
        if not body then
            fail("XR-SYNTAX", "no body, or one larger than the buffer")
        end
        m = decode_request(body)
        local res = ngx.location.capture(upstream_uri, {
            method = ngx.HTTP_POST, body = encode_request(m) })
        if res.status ~= 200 then
            fail("XR-UPSTREAM-ERROR", "Jiangsu answered " .. res.status)
        end
        return encode_answer(m, decode_answer(res.body))
    end)
    if not ok then
        if type(answer) ~= "table" then
            error(answer)
        end
        -- like xregion's profiles (error_status 200), but the bench counts
        -- failures by status, so they are not 2xx here
        status = answer.code == "XR-UPSTREAM-ERROR" and 502 or 400
        answer = error_answer(m, answer)
    end
    ngx.status = status or 200
    ngx.header["Content-Type"] = "application/json; charset=UTF-8"
    ngx.header["Content-Length"] = #answer  -- as xregion: not chunked
    ngx.print(answer)
end

return M
