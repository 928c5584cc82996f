-- wrk script for capture.sh: cycle through two 200s and a 404 and stop early so
-- the capture stays small.  Usage: wrk -t1 -c2 -d1s -s wrk.lua URL
local paths = { "/data.json", "/missing.json", "/small.txt" }
local sent = 0
local done = 0
local LIMIT = 20

request = function()
  sent = sent + 1
  return wrk.format("GET", paths[(sent - 1) % 3 + 1])
end

response = function(status, headers, body)
  done = done + 1
  if done >= LIMIT then
    wrk.thread:stop()
  end
end
