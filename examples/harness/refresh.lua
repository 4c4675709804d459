-- Refresh-token chains for wrk (examples/load.rs --wrk): every request presents the newest
-- refresh token of one chain and the answer's new token goes back to that thread's pool, so
-- a chain is never presented twice at once and a lost rotation shows as a non-2xx answer.
-- Arguments after `--`: a file of starting tokens (one per line, one per connection), the
-- number of wrk threads, and the Authorization header's value.

local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

local tokens = {}
local headers = {}
-- wrk builds one request on its first thread before it connects, to check the script, and
-- never sends it: that call must not take a chain's token.
local checked = true

local function body(token)
   return "grant_type=refresh_token&refresh_token=" .. token
end

function init(args)
   local threads = tonumber(args[2])
   local n = 0
   for line in io.lines(args[1]) do
      if n % threads == id then
         tokens[#tokens + 1] = line
      end
      n = n + 1
   end
   checked = id ~= 0
   headers["Authorization"] = args[3]
   headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
   if not checked then
      checked = true
      return wrk.format("POST", "/token", headers, body(tokens[#tokens] or "none"))
   end
   -- Each connection has one request in flight and its answer is read before the next
   -- request is written, so a thread holds as many tokens as connections.
   local token = table.remove(tokens) or "none"
   return wrk.format("POST", "/token", headers, body(token))
end

function response(status, headers, answer)
   local token = answer:match('"refresh_token":"([^"]+)"')
   if token then
      tokens[#tokens + 1] = token
   end
end
