-- POST a small OpenAI chat body; at the end print one JSON line with the figures.
-- Usage: wrk -t1 -c32 -d10s -s bench/wrk/chat.lua URL/v1/chat/completions -- MODEL [API_KEY]

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local body_template = '{"model":"%s","messages":[{"role":"system","content":"You are terse."},'
  .. '{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'

function init(args)
  wrk.body = string.format(body_template, args[1] or "gpt-4o-mini")
  wrk.headers["Authorization"] = "Bearer " .. (args[2] or "bench")
end

local function percentile_ms(latency, p)
  return latency:percentile(p) / 1000.0
end

function done(summary, latency, requests)
  local errors = summary.errors
  local seconds = summary.duration / 1000000.0
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"seconds":%.6f,"rps":%.3f,'
      .. '"p50_ms":%.4f,"p90_ms":%.4f,"p99_ms":%.4f,"mean_ms":%.4f,"max_ms":%.4f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, seconds, summary.requests / seconds,
    percentile_ms(latency, 50), percentile_ms(latency, 90), percentile_ms(latency, 99),
    latency.mean / 1000.0, latency.max / 1000.0,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
