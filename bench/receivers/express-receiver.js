// An Okta event hook receiver written the way Okta's event hook guide shows it
// (docs/guides/event-hook-implementation, Node.js): Express, the one-time verification GET
// echoing `x-okta-verification-challenge`, and a POST that checks the Authorization
// header, parses the JSON body and answers `sendStatus(200)`. It stores nothing: an ack
// here means "parsed", not "durable". What the benchmark compares hookwarden against.
//
// The guide's handler also prints a line per event; that is left out, so that the
// receiver does as little as an Express receiver can.
//
//   PORT=8445 TLS_CERT=cert.pem TLS_KEY=key.pem node express-receiver.js   (HTTPS)
//   PORT=8445 node express-receiver.js                                     (plain HTTP)
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const express = require("express");

const HOOK_PATH = process.env.HOOK_PATH || "/hooks/okta/events";
// The Authorization header value configured in Okta ("Authentication secret").
const SECRET = Buffer.from(
  process.env.OKTA_HOOK_AUTH || "Basic b2t0YTpjaGFuZ2UtbWUtYmVmb3JlLXByb2R1Y3Rpb24=",
);

function authorized(request) {
  const given = Buffer.from(request.headers.authorization || "");
  return given.length === SECRET.length && crypto.timingSafeEqual(given, SECRET);
}

const app = express();
app.disable("x-powered-by");

// One-time verification: echo the challenge header as {"verification": ...}.
app.get(HOOK_PATH, (request, response) => {
  if (!authorized(request)) return response.sendStatus(401);
  response.json({ verification: request.headers["x-okta-verification-challenge"] });
});

// Deliveries: authenticate, parse (express.json), acknowledge.
app.post(HOOK_PATH, express.json({ limit: "4mb" }), (request, response) => {
  if (!authorized(request)) return response.sendStatus(401);
  const events = request.body && request.body.data && request.body.data.events;
  if (!Array.isArray(events)) return response.sendStatus(400);
  response.sendStatus(200);
});

const port = Number(process.env.PORT || 8445);
const host = process.env.HOST || "127.0.0.1";
let server;
if (process.env.TLS_CERT && process.env.TLS_KEY) {
  const https = require("node:https");
  server = https.createServer(
    { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) },
    app,
  );
} else {
  server = require("node:http").createServer(app);
}
server.listen(port, host, () => {
  console.log(`express receiver on ${process.env.TLS_CERT ? "https" : "http"}://${host}:${port}${HOOK_PATH}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
