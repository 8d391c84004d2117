-- bench/okta-delivery-quiet.lua with a pause before each request on every connection, for
-- the ack latency at a load below the maximum: 64 connections that each wait
-- HOOKWARDEN_BENCH_DELAY_MS (default 10) between an answer and the next request offer
-- about 64 / (0.010 s + the latency) requests a second. wrk's latency does not include
-- the pause. Run wrk from the repository root.
dofile("bench/okta-delivery-quiet.lua")
local pause = tonumber(os.getenv("HOOKWARDEN_BENCH_DELAY_MS") or "10")
delay = function()
  return pause
end
