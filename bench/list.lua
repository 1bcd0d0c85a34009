-- wrk script: listTasks (default listing: open tasks by due date, 20 a page),
-- rotating through the bench users.
local tokens = {}
for line in io.lines(os.getenv("ERRAND_BENCH_TOKENS")) do
  tokens[#tokens + 1] = line
end
local i = math.random(#tokens)

request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/v1/tasks", { ["Authorization"] = "Bearer " .. tokens[i] })
end

