-- The one wrk script of the benchmarks (driven by benchmarks/wrk.py). Read from the environment:
--   WRK_METHOD   the request method (GET when unset)
--   WRK_HEADERS  header lines "Name: value", separated by newlines (the key stays out of argv)
--   WRK_BODIES   a file of request bodies, one per line (compact JSON has no raw newline); each thread
--                sends them in turn, starting at its own offset. No body when unset.
-- Counts every response's status per thread; done() prints one line, "WRK_JSON {...}", with the totals,
-- the latency percentiles (microseconds) and the status counts, which wrk.py parses. Non-2xx responses are
-- errors there (wrk's own summary counts only status > 399).

local method = os.getenv("WRK_METHOD") or "GET"

local headers = {}
for line in (os.getenv("WRK_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.-)%s*$")
  if name then
    headers[name] = value
  end
end

local prepared = {}
local next_request = 1

local function with_headers()
  local copy = {}
  for k, v in pairs(headers) do
    copy[k] = v
  end
  return copy
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  local path = os.getenv("WRK_BODIES")
  if path and path ~= "" then
    for line in io.lines(path) do
      if #line > 0 then
        table.insert(prepared, wrk.format(method, nil, with_headers(), line))
      end
    end
    if #prepared == 0 then
      error("WRK_BODIES: no body in " .. path)
    end
  else
    table.insert(prepared, wrk.format(method, nil, with_headers(), nil))
  end
  next_request = ((thread_number or 1) - 1) % #prepared + 1
end

function request()
  local r = prepared[next_request]
  next_request = next_request % #prepared + 1
  return r
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local got = thread:get("statuses") or {}
    for status, n in pairs(got) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"wrk_status_errors":%d,' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, table.concat(parts, ",")
  ))
end
