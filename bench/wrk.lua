-- wrk script of the benchmark: each request picks a random user among BENCH_USERS (user0001 ...), and done() prints
-- one JSON line with the figures bench.py reads. With BENCH_PARTIAL=1 it also counts notigate's partial answers (an
-- x-partial header, or "partial":true in the body): wrk then hands every response to Lua, which costs the client a
-- little, so it is set for notigate's GET targets only. Every request carries the token a client would send (the gateway
-- runs with auth on): BENCH_TOKENS names a file with user i's token on line i and a publisher's on the last line.
--   BENCH_MODE=list    GET /v1/users/{user}/notifications
--   BENCH_MODE=hybrid  GET /hybrid/notifications?user_id={user}
--   BENCH_MODE=post    POST /v1/notifications {"user_id":user,"message":..,"kind":"bench"}
local mode = os.getenv("BENCH_MODE") or "hybrid"
local nusers = tonumber(os.getenv("BENCH_USERS") or "1000")
local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("thread_no", counter)
    table.insert(threads, thread)
end

local tokens = {}

function init(args)
    math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
    local f = assert(io.open(assert(os.getenv("BENCH_TOKENS"), "BENCH_TOKENS is not set"), "r"))
    for line in f:lines() do
        tokens[#tokens + 1] = line
    end
    f:close()
    assert(#tokens == nusers + 1, "BENCH_TOKENS: expected one token per user and a publisher's")
end

local post_headers = {["Content-Type"] = "application/json", ["Authorization"] = ""}
local get_headers = {["Authorization"] = ""}

function request()
    local i = math.random(1, nusers)
    local u = string.format("user%04d", i)
    if mode == "post" then
        post_headers["Authorization"] = "Bearer " .. tokens[nusers + 1]
        local body = '{"user_id":"' .. u .. '","message":"Benchmark notification for ' .. u .. ': your order has shipped","kind":"bench"}'
        return wrk.format("POST", "/v1/notifications", post_headers, body)
    end
    get_headers["Authorization"] = "Bearer " .. tokens[i]
    if mode == "list" then
        return wrk.format("GET", "/v1/users/" .. u .. "/notifications", get_headers)
    end
    return wrk.format("GET", "/hybrid/notifications?user_id=" .. u, get_headers)
end

if os.getenv("BENCH_PARTIAL") == "1" then
    partial = 0
    function response(status, headers, body)
        if headers["x-partial"] ~= nil or (body ~= nil and string.find(body, '"partial":true', 1, true)) then
            partial = partial + 1
        end
    end
end

function done(summary, latency, requests)
    local npartial = 0
    for _, t in ipairs(threads) do
        npartial = npartial + (t:get("partial") or 0)
    end
    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,' ..
        '"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"partial":%d}\n',
        summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
        latency:percentile(99.9), latency.max, e.connect, e.read, e.write, e.status, e.timeout, npartial))
end
