-- Traffic for examples/portal/soak.sh, in one of two modes (wrk ... -s soak.lua URL -- MODE):
--   returning: each wrk thread is one returning visitor that keeps its cookies and asks for the
--              landing page, /register (the line's refresh, then the form) and /appointments
--              (a gated page) in turn;
--   new:       every request is a new visitor without cookies asking for /register, who never
--              comes back (the line keeps it until its check-in lapses).
-- Counts answers and 5xx answers; soak.sh prints them.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "returning"
  cookies = {}
  n = 0
  server_errors = 0
  answers = 0
end

local paths = { "/", "/register", "/register", "/appointments", "/register" }

function request()
  n = n + 1
  local headers = { ["Accept"] = "text/html" }
  if mode == "new" then
    return wrk.format("GET", "/register", headers)
  end
  local jar = {}
  for name, value in pairs(cookies) do
    table.insert(jar, name .. "=" .. value)
  end
  if #jar > 0 then
    headers["Cookie"] = table.concat(jar, "; ")
  end
  return wrk.format("GET", paths[(n % #paths) + 1], headers)
end

function response(status, headers, body)
  answers = answers + 1
  if status >= 500 then
    server_errors = server_errors + 1
  end
  if mode == "new" then
    return
  end
  -- wrk keeps one value per header name, as the server spelled it (the portal: lower case), so
  -- a response that sets two cookies shows the last; the next responses set the other again.
  local set = headers["set-cookie"] or headers["Set-Cookie"]
  if set then
    local name, value = set:match("^([^=;]+)=([^;]*)")
    if name then
      cookies[name] = value ~= "" and value or nil
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
