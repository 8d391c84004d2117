-- wrk script: POSTs Okta's real event hook delivery sample (tests/fixtures/okta/event-hook-delivery.json)
-- with a fresh event uuid and eventId per request, so every request is a new durable write,
-- and the time of the request as the event's `published` time.
-- Usage: wrk -t2 -c64 -d10s -s bench/okta-delivery.lua --latency https://127.0.0.1:8443/hooks/okta/events
-- Set HOOKWARDEN_BENCH_AUTH to the Authorization header value (default: the example config's).
local template = [==[{"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1", "source": "https://{yourOktaDomain}/api/v1/eventHooks/who7hphp39JoHLni81d7", "eventId": "@@EID@@", "data": {"events": [{"uuid": "@@UUID@@", "published": "@@PUBLISHED@@", "eventType": "user.session.start", "version": "0", "displayMessage": "User login to Okta", "severity": "INFO", "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/111.0.0.0 Safari/537.36", "os": "Mac OS X", "browser": "CHROME"}, "zone": "null", "device": "Computer", "id": null, "ipAddress": "142.126.158.61", "geographicalContext": {"city": "Toronto", "state": "Ontario", "country": "Canada", "postalCode": "M4M", "geolocation": {"lat": 43.6567, "lon": -79.34}}, "ipChain": [{"ip": "142.126.158.61", "geographicalContext": {"city": "Toronto", "state": "Ontario", "country": "Canada", "postalCode": "M4M", "geolocation": {"lat": 43.6567, "lon": -79.34}}, "version": "V4", "source": null}]}, "device": null, "actor": {"id": "00uz9fj5aT69fHVro1d6", "type": "User", "alternateId": "admin@okta.com", "displayName": "Admin Name", "detailEntry": null}, "outcome": {"result": "SUCCESS", "reason": null}, "target": [{"id": "lae42mkdc9i9cbw3U1d6", "type": "AuthenticatorEnrollment", "alternateId": "unknown", "displayName": "Password", "detailEntry": null}, {"id": "0oaz9fj21WKqTeaqs1d6", "type": "AppInstance", "alternateId": "Okta Admin Console", "displayName": "Okta Admin Console", "detailEntry": null}], "transaction": {"type": "WEB", "id": "ZCCzm8j2wTvzwele2NwLnwAADSc", "detail": {}}, "debugContext": {"debugData": {"authnRequestId": "ZCCzlCoZuOyo8RfASqHmPAAAAc8", "deviceFingerprint": "3411ee4c591b2229f3bea251e12e0c1a", "requestId": "ZCCzm8j2wTvzwele2NwLnwAADSc", "dtHash": "f59d98b2e02f1319ef4ca651f57c36e3f25507f67dd6daf0408f753896b7e8dc", "origin": "https://{yourOktaDomain}", "requestUri": "/idp/idx/identify", "threatSuspected": "false", "url": "/idp/idx/identify?"}}, "legacyEventType": "core.user_auth.login_success", "authenticationContext": {"authenticationProvider": null, "credentialProvider": null, "credentialType": null, "issuer": null, "authenticationStep": 0, "externalSessionId": "idxyNcxVX2ESsSL0u462548Qg", "interface": null}, "securityContext": {"asNumber": null, "asOrg": null, "isp": null, "domain": null, "isProxy": null}, "insertionTimestamp": null}]}, "eventTime": "2023-03-28T17:03:37.093Z", "contentType": "application/json"}]==]
local auth = os.getenv("HOOKWARDEN_BENCH_AUTH") or "Basic b2t0YTpjaGFuZ2UtbWUtYmVmb3JlLXByb2R1Y3Rpb24="
local next_thread = 0
-- The random generator's seed differs across threads (thread_id), runs (start time) and
-- concurrent wrk processes (HOOKWARDEN_BENCH_TAG, a small number: give each its own).
thread_id = 0
local start = os.time()
local tag = tonumber(os.getenv("HOOKWARDEN_BENCH_TAG") or "0") % 4096

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end

-- Random version 4 uuids, like Okta's: each new event lands at a random place of the
-- receiver's uuid index, as in production (sequential ones would always append to its end).
-- The generator is seeded per thread and per process, so threads and concurrent wrk
-- processes draw different sequences; 122 random bits make a repeat negligible.
local seeded = false
local function uuid()
  if not seeded then
    math.randomseed(start * 65536 + thread_id * 4096 + tag)
    seeded = true
  end
  local r = math.random
  return string.format("%08x-%04x-4%03x-%04x-%04x%08x",
    r(0, 0xffffffff), r(0, 0xffff), r(0, 0xfff), 0x8000 + r(0, 0x3fff), r(0, 0xffff), r(0, 0xffffffff))
end

-- The event's `published` time is now, as in production, where Okta delivers an event
-- seconds after it happened (hookwarden's store keys events by their hour, see
-- src/store/sqlite.rs, SCHEMA_V4; a fixed time would put a whole run in one hour of 2023).
local published_at, published = nil, nil
local function now_published()
  local t = os.time()
  if t ~= published_at then
    published_at, published = t, os.date("!%Y-%m-%dT%H:%M:%S.000Z", t)
  end
  return published
end

request = function()
  local body = template:gsub("@@UUID@@", uuid()):gsub("@@EID@@", uuid())
    :gsub("@@PUBLISHED@@", now_published())
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = auth,
  }, body)
end

response = function(status, headers, body)
  if status ~= 200 then
    print("unexpected status " .. status .. " " .. body)
  end
end
