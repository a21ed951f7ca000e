-- wrk script: POST /api/tasks with a unique idempotency key (and order id) per request.
--
--   AWAITHUMANS_TOKEN=... wrk -t2 -c32 -d15s --latency -s bench/wrk/create.lua \
--       http://127.0.0.1:3001/api/tasks
--
-- The body is ~0.9 KB (920 bytes): task text, a refund payload, and the payload_schema and
-- response_schema pydantic emits for RefundRequest / RefundDecision. form_definition is
-- omitted, so the server derives it from response_schema (as for any non-Python client).
-- An optional first script argument tags the keys (e.g. "warmup"), so runs never collide.
-- BENCH_PRINT_BODY=1 prints each thread's first body (and its size) once.
-- At the end one line "BENCH_JSON {...}" carries the numbers for bench/create_throughput.py.

local token = os.getenv("AWAITHUMANS_TOKEN") or ""
local threads = {}
local counter = 0

local PAYLOAD_SCHEMA = '{"properties":{"order_id":{"title":"Order Id","type":"string"},'
  .. '"customer_id":{"title":"Customer Id","type":"string"},"amount_usd":{"title":'
  .. '"Amount Usd","type":"number"},"reason":{"title":"Reason","type":"string"}},"required":["order_id","customer_id","amount_usd","reason"],'
  .. '"title":"RefundRequest","type":"object"}'

local RESPONSE_SCHEMA = '{"properties":{"approved":{"description":"Send the money back?",'
  .. '"title":"Approved","type":"boolean"},"notes":{"anyOf":[{"type":"string"},{"type":"null"}],'
  .. '"default":null,"description":"Anything the agent should know","title":"Notes"}},'
  .. '"required":["approved"],"title":"RefundDecision","type":"object"}'

function setup(thread)
  -- Runs in the main Lua state, once per wrk thread: hand each thread its own id.
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  tag = args[1] or "run"
  -- Seed per thread; os.time() alone would give both threads the same sequence.
  math.randomseed(os.time() * 1000 + tid * 7919 + math.floor(os.clock() * 1e6))
  salt = string.format("%08x", math.random(0, 0x7fffffff))
  seq = 0
  print_body = os.getenv("BENCH_PRINT_BODY") ~= nil
  headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }
end

function request()
  seq = seq + 1
  local order = string.format("ord_%d%06d", tid, seq % 1000000)
  local key = string.format("bench-%s-%d-%s-%d-%04x", tag, tid, salt, seq, math.random(0, 0xffff))
  local amount = string.format("%d.%02d", math.random(5, 900), math.random(0, 99))
  local body = '{"task":"Refund $' .. amount .. ' for order ' .. order
    .. '? Customer says they were charged twice.",'
    .. '"payload":{"order_id":"' .. order .. '","customer_id":"cus_4f2a91","amount_usd":'
    .. amount .. ',"reason":"Duplicate charge"},'
    .. '"payload_schema":' .. PAYLOAD_SCHEMA .. ','
    .. '"response_schema":' .. RESPONSE_SCHEMA .. ','
    .. '"timeout_seconds":3600,"idempotency_key":"' .. key .. '"}'
  if print_body and seq == 1 then
    io.write(string.format("BENCH_BODY %d %s\n", #body, body))
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
