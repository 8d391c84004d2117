-- bench/okta-delivery.lua without its per-response check, for bench/run.py: nginx answers
-- 204 (which that check would print for every request), and a `response` function makes
-- wrk hand every answer to Lua, which costs the load generator CPU that the receivers
-- need. wrk still counts non-2xx answers and socket errors itself.
-- Run wrk from the repository root (the path below is relative to it).
dofile("bench/okta-delivery.lua")
response = nil
