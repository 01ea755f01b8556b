-- One scope's sliding window in Redis, read and written atomically (see redis_rates.py).
--
-- KEYS[1]  the scope's hash: R, T (sums of the live buckets), o, n (oldest and newest
--          bucket holding usage), and r<i>, t<i> (requests and tokens of bucket i)
-- ARGV     mode ("admit" | "settle" | "add"), bucket length (µs), buckets per window,
--          clock offset (µs, tests only), then
--          admit:  rpm, tpm (-1: no such limit), tokens to reserve
--          settle: token delta, the ticket's bucket
--          add:    requests and tokens admitted elsewhere (a replica during a Redis outage)
-- Returns  admit:  {1, requests, tokens, bucket, reset µs}      admitted
--                  {0, requests, tokens, requests wait µs, tokens wait µs}  refused
--                  (wait -1: that limit was not hit; -2: waiting cannot help)
--          settle: the token change applied
--          add:    1 (counted in the current bucket, never refused)
-- Time is the Redis server's own, so every gateway replica shares one clock. Usage in
-- bucket i counts until bucket i + buckets + 1 starts: never less than one window.

local key = KEYS[1]
local mode = ARGV[1]
local bucket_us = tonumber(ARGV[2])
local buckets = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2]) + tonumber(ARGV[4])
local bucket = math.floor(now / bucket_us)
local oldest_live = bucket - buckets

local requests_field, tokens_field = 'r' .. bucket, 't' .. bucket
local state = redis.call('HMGET', key, 'R', 'T', 'o', 'n', requests_field, tokens_field)
local requests = tonumber(state[1]) or 0
local used = tonumber(state[2]) or 0
local oldest = tonumber(state[3])
local newest = tonumber(state[4])
local bucket_requests = tonumber(state[5]) or 0
local bucket_tokens = tonumber(state[6]) or 0
-- Drop the buckets that left the window. Bounded: o >= n - buckets always holds.
if newest and newest < oldest_live then
  redis.call('DEL', key)
  requests, used, oldest, newest, bucket_requests, bucket_tokens = 0, 0, nil, nil, 0, 0
elseif oldest and oldest < oldest_live then
  while oldest < oldest_live do
    local counts = redis.call('HMGET', key, 'r' .. oldest, 't' .. oldest)
    if counts[1] then
      requests = requests - tonumber(counts[1])
      used = used - tonumber(counts[2])
      redis.call('HDEL', key, 'r' .. oldest, 't' .. oldest)
    end
    oldest = oldest + 1
  end
  while oldest < newest and redis.call('HEXISTS', key, 'r' .. oldest) == 0 do
    oldest = oldest + 1
  end
  redis.call('HSET', key, 'R', requests, 'T', used, 'o', oldest)
end

local function record(request_count, token_count)
  requests = requests + request_count
  used = used + token_count
  bucket_requests = bucket_requests + request_count
  bucket_tokens = bucket_tokens + token_count
  if newest and newest >= bucket then
    redis.call('HSET', key, 'R', requests, 'T', used,
      requests_field, bucket_requests, tokens_field, bucket_tokens)
  else
    -- A new bucket: its usage leaves within (buckets + 1) bucket lengths, and so may the key.
    oldest = oldest or bucket
    newest = bucket
    redis.call('HSET', key, 'R', requests, 'T', used,
      requests_field, bucket_requests, tokens_field, bucket_tokens, 'o', oldest, 'n', bucket)
    redis.call('PEXPIRE', key, math.ceil((buckets + 1) * bucket_us / 1000) + 1000)
  end
end

if mode == 'add' then
  record(tonumber(ARGV[5]), tonumber(ARGV[6]))
  return 1
end

if mode == 'settle' then
  local delta = tonumber(ARGV[5])
  if delta > 0 then
    record(0, delta)
    return delta
  end
  local target = tonumber(ARGV[6])
  local reserved = tonumber(redis.call('HGET', key, 't' .. target))
  if target < oldest_live or not reserved then
    return 0
  end
  local refund = math.min(-delta, reserved)
  redis.call('HINCRBY', key, 't' .. target, -refund)
  redis.call('HINCRBY', key, 'T', -refund)
  return -refund
end

local rpm = tonumber(ARGV[5])
local tpm = tonumber(ARGV[6])
local tokens = tonumber(ARGV[7])

local function wait_until_freed(column, needed)
  if not oldest then
    return -2
  end
  local freed = 0
  for i = oldest, newest do
    local count = tonumber(redis.call('HGET', key, column .. i))
    if count then
      freed = freed + count
      if freed >= needed then
        return (i + buckets + 1) * bucket_us - now
      end
    end
  end
  return -2
end

local requests_over = rpm >= 0 and requests + 1 > rpm
local tokens_over = tpm >= 0 and used + tokens > tpm
if requests_over or tokens_over then
  local requests_wait, tokens_wait = -1, -1
  if requests_over then
    requests_wait = wait_until_freed('r', requests + 1 - rpm)
  end
  if tokens_over then
    tokens_wait = wait_until_freed('t', used + tokens - tpm)
  end
  return {0, requests, used, requests_wait, tokens_wait}
end

record(1, tokens)
return {1, requests, used, bucket, (oldest + buckets + 1) * bucket_us - now}
