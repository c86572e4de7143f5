-- Mixed traffic for examples/portal/soak.sh: each wrk thread is one returning visitor with
-- its cookies (landing page, waiting refreshes and gated pages), and every tenth request is a
-- new visitor without cookies. Counts 5xx answers; soak.sh prints them.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  cookies = {}
  n = 0
  server_errors = 0
  answers = 0
end

local paths = { "/", "/register", "/register", "/appointments", "/register" }

function request()
  n = n + 1
  local path = paths[(n % #paths) + 1]
  local headers = { ["Accept"] = "text/html" }
  if n % 10 ~= 0 then
    local jar = {}
    for name, value in pairs(cookies) do
      table.insert(jar, name .. "=" .. value)
    end
    if #jar > 0 then
      headers["Cookie"] = table.concat(jar, "; ")
    end
  end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  answers = answers + 1
  if status >= 500 then
    server_errors = server_errors + 1
  end
  -- wrk gives one value per header name: the last Set-Cookie is enough to keep a visitor.
  local set = headers["Set-Cookie"]
  if set and n % 10 ~= 0 then
    local name, value = set:match("^([^=;]+)=([^;]*)")
    if name and value ~= "" then
      cookies[name] = value
    end
  end
end

function done(summary, latency, requests)
  local errors, total = 0, 0
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("server_errors")
    total = total + thread:get("answers")
  end
  io.write(string.format("answers %d\n5xx %d\n", total, errors))
  io.write(string.format("latency p50 %.1f ms, p99 %.1f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
