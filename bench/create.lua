-- wrk script: createTask, rotating through one token per bench user so that
-- concurrent creates do not all queue on one user's number counter.
local tokens = {}
for line in io.lines(os.getenv("ERRAND_BENCH_TOKENS")) do
  tokens[#tokens + 1] = line
end
local body = '{"title":"Benchmark task","due_at":"2026-12-01T09:00:00Z","priority":"high","tags":["bench"]}'
local i = math.random(#tokens)

request = function()
  i = i % #tokens + 1
  return wrk.format("POST", "/v1/tasks", {
    ["Authorization"] = "Bearer " .. tokens[i],
    ["Content-Type"] = "application/json",
  }, body)
end

