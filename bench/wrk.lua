-- wrk script of the benchmark: each request picks a random user among BENCH_USERS (user0001 ...), and done() prints
-- one JSON line with the figures bench.py reads. It has no response() hook (wrk would then hand every answer to Lua, a
-- cost of the client's that the ceiling's run would not pay): bench.py counts notigate's partial answers in its
-- /metrics. Every request carries the token a client would send (the gateway runs with auth on): BENCH_TOKENS names a
-- file with user i's token on line i and a publisher's on the last line.
--   BENCH_MODE=list    GET /v1/users/{user}/notifications
--   BENCH_MODE=hybrid  GET /hybrid/notifications?user_id={user}
--   BENCH_MODE=post    POST /v1/notifications {"user_id":user,"message":..,"kind":"bench"}
local mode = os.getenv("BENCH_MODE") or "hybrid"
local nusers = tonumber(os.getenv("BENCH_USERS") or "1000")
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("thread_no", counter)
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

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,' ..
        '"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
        summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
        latency:percentile(99.9), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
