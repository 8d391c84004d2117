//! Property tests (issue #7): for generated inputs, the real component agrees with a
//! small model written from the contract.
//!
//! - dedupe: any order, duplicates and batching of a set of events ingested into the
//!   real SQLite store gives one job per event and sink, each claimed and delivered once;
//! - trusted-proxy chains: the client is the rightmost untrusted address of the chain
//!   (the leftmost when all are trusted), or the peer when the peer is untrusted;
//! - token JSON Patch: `check` accepts a token hook answer iff every operation is one
//!   the contract allows (op, path, value, reserved claims, token requested);
//! - shared secrets: `Authenticator::check` accepts exactly the configured credentials.
//!
//! Each property runs a bounded number of cases (a few seconds each). Failures are not
//! persisted to files: a failure found here becomes a named regression test below.

use crate::util;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;
use hookwarden::config::{AuthConfig, BasicUser, Secret, StoreBackend, StoreConfig};
use hookwarden::http::auth::Authenticator;
use hookwarden::http::network::ClientIpResolver;
use hookwarden::okta::inline::check::check;
use hookwarden::okta::inline::{HookType, InlineResponse};
use hookwarden::store::sqlite::SqliteStore;
use hookwarden::store::{Delivery, Inspect, JobOutcome, NewEvent, Queue, Store};
use hookwarden::time::now_millis;
use ipnet::IpNet;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

/// A bounded run: `cases` cases, no regression files, shrinking capped.
fn bounded(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

// Dedupe in the SQLite store.

const HOOKS: [&str; 2] = ["okta", "okta-b"];
const SINKS: [&str; 3] = ["jsonl", "http", "nats"];

/// One generated run: which `(hook, uuid)` events exist and their sinks, the order in
/// which copies of them are sent, how the copies are cut into deliveries, and after
/// which deliveries a worker drains the queue.
#[derive(Debug, Clone)]
struct DedupeRun {
    /// Per event key `(hook index, uuid index)`: its sinks (a sink may be listed twice).
    events: BTreeMap<(usize, usize), Vec<&'static str>>,
    /// Keys in sending order; every key at least once.
    sends: Vec<(usize, usize)>,
    /// Sizes of the deliveries, used in turn.
    batches: Vec<usize>,
    /// Per delivery (cycled): drain the queue right after it.
    drain_after: Vec<bool>,
    /// Jobs claimed at once by the worker.
    claim_max: usize,
}

fn dedupe_run() -> impl Strategy<Value = DedupeRun> {
    (1usize..8).prop_flat_map(|uuids| {
        (
            // Per key: present?, sink mask, sink listed twice?
            prop::collection::vec((any::<bool>(), 0u8..8, any::<bool>()), uuids * HOOKS.len()),
            prop::collection::vec(any::<Index>(), 0..24),
            prop::collection::vec(any::<Index>(), 1..48),
            prop::collection::vec(1usize..6, 1..8),
            prop::collection::vec(any::<bool>(), 1..6),
            1usize..8,
        )
            .prop_map(
                move |(keys, duplicates, swaps, batches, drain_after, claim_max)| {
                    let mut events = BTreeMap::new();
                    let none_present = keys.iter().all(|(present, _, _)| !present);
                    for (i, (present, mask, twice)) in keys.into_iter().enumerate() {
                        // At least one event: the first key when none is drawn.
                        if !(present || (none_present && i == 0)) {
                            continue;
                        }
                        let mut sinks: Vec<&str> = SINKS
                            .iter()
                            .enumerate()
                            .filter(|(s, _)| mask & (1 << s) != 0)
                            .map(|(_, s)| *s)
                            .collect();
                        if twice {
                            if let Some(first) = sinks.first().copied() {
                                sinks.push(first);
                            }
                        }
                        events.insert((i % HOOKS.len(), i / HOOKS.len()), sinks);
                    }
                    let keys: Vec<(usize, usize)> = events.keys().copied().collect();
                    let mut sends = keys.clone();
                    sends.extend(duplicates.iter().map(|d| *d.get(&keys)));
                    // Fisher-Yates with generated choices, so that shrinking simplifies the order.
                    for i in (1..sends.len()).rev() {
                        let j = swaps[i % swaps.len()].index(i + 1);
                        sends.swap(i, j);
                    }
                    DedupeRun {
                        events,
                        sends,
                        batches,
                        drain_after,
                        claim_max,
                    }
                },
            )
    })
}

fn store_config() -> StoreConfig {
    StoreConfig {
        backend: StoreBackend::Sqlite,
        path: None,
        max_backlog: 1_000_000,
        retention: Duration::from_secs(7 * 86_400),
        group_commit_max: 64,
        page_cache_kib: 1024,
        disk_reserve_mib: 0,
        postgres: None,
    }
}

fn uuid_of(key: (usize, usize)) -> String {
    format!("uuid-{}", key.1)
}

/// What the worker saw: per `(hook, sink, uuid)`, how many times it was delivered and
/// the payloads it carried.
type Delivered = BTreeMap<(String, String, String), Vec<String>>;

/// Claims and finishes every due job, as a worker does, until none is left.
async fn drain(store: &SqliteStore, max: usize, seen: &mut Delivered) -> Result<(), TestCaseError> {
    for _ in 0..1_000 {
        let jobs = store
            .claim(max, Duration::from_secs(60))
            .await
            .map_err(|e| TestCaseError::fail(format!("claim: {e}")))?;
        if jobs.is_empty() {
            return Ok(());
        }
        prop_assert!(
            jobs.len() <= max,
            "claimed {} jobs, asked for {max}",
            jobs.len()
        );
        for job in jobs {
            seen.entry((job.hook.clone(), job.sink.clone(), job.uuid.clone()))
                .or_default()
                .push(job.payload.clone());
            store
                .finish(&job, JobOutcome::Delivered)
                .await
                .map_err(|e| TestCaseError::fail(format!("finish: {e}")))?;
        }
    }
    Err(TestCaseError::fail("the queue never drained"))
}

async fn dedupe_property(run: DedupeRun) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let store = SqliteStore::open(&dir.path().join("props.db"), &store_config())
        .map_err(|e| TestCaseError::fail(format!("open: {e}")))?;
    let mut seen = Delivered::new();
    // The payload of the first copy of each key sent: the one the store must keep.
    let mut first_payload: BTreeMap<(usize, usize), String> = BTreeMap::new();
    let (mut stored, mut duplicates) = (0, 0);
    let mut rest = run.sends.as_slice();
    let mut delivery = 0usize;
    while !rest.is_empty() {
        let size = run.batches[delivery % run.batches.len()].min(rest.len());
        let (batch, after) = rest.split_at(size);
        rest = after;
        // A hook receives its own deliveries: group the batch's sends by hook, in order.
        for (h, hook) in HOOKS.iter().enumerate() {
            let events: Vec<NewEvent> = batch
                .iter()
                .filter(|key| key.0 == h)
                .map(|key| {
                    let payload = format!(
                        r#"{{"uuid":"{}","eventType":"user.session.start","copy":{delivery}}}"#,
                        uuid_of(*key)
                    );
                    first_payload.entry(*key).or_insert_with(|| payload.clone());
                    NewEvent {
                        uuid: uuid_of(*key),
                        event_type: "user.session.start".to_owned(),
                        published: None,
                        payload,
                        sinks: run.events[key].iter().map(|s| s.to_string()).collect(),
                    }
                })
                .collect();
            if events.is_empty() {
                continue;
            }
            let outcome = store
                .ingest(Delivery {
                    hook: (*hook).to_owned(),
                    event_id: format!("delivery-{delivery}"),
                    received_at: now_millis(),
                    events,
                    recovered: false,
                })
                .await
                .map_err(|e| TestCaseError::fail(format!("ingest: {e}")))?;
            stored += outcome.stored;
            duplicates += outcome.duplicates;
        }
        if run.drain_after[delivery % run.drain_after.len()] {
            drain(&store, run.claim_max, &mut seen).await?;
        }
        delivery += 1;
    }
    drain(&store, run.claim_max, &mut seen).await?;

    prop_assert_eq!(stored, run.events.len(), "events stored for the first time");
    prop_assert_eq!(
        duplicates,
        run.sends.len() - run.events.len(),
        "copies found duplicate"
    );
    let mut expected = BTreeMap::new();
    for (key, sinks) in &run.events {
        for sink in sinks.iter().collect::<BTreeSet<_>>() {
            expected.insert(
                (HOOKS[key.0].to_owned(), sink.to_string(), uuid_of(*key)),
                vec![first_payload[key].clone()],
            );
        }
    }
    prop_assert_eq!(
        &seen,
        &expected,
        "one delivery per event and sink, of the first copy"
    );
    let stats = store
        .stats()
        .await
        .map_err(|e| TestCaseError::fail(format!("stats: {e}")))?;
    prop_assert_eq!(stats.backlog, 0);
    prop_assert_eq!(stats.events, run.events.len() as u64);
    store.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(bounded(16))]

    /// Any order, any duplicates, any batching: one job per `(hook, uuid)` and sink,
    /// each claimed and delivered exactly once, carrying the first copy received.
    #[test]
    fn dedupe_gives_one_delivery_per_event_and_sink(run in dedupe_run()) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rt.block_on(dedupe_property(run))?;
    }
}

// Trusted-proxy chains.

/// The addresses the chains are made of: few, so that trusted ones recur.
const ADDRS: [&str; 12] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "10.0.0.9",
    "192.0.2.1",
    "192.0.2.7",
    "198.51.100.4",
    "203.0.113.5",
    "2001:db8::1",
    "2001:db8::2",
    "fd00::1",
    "fd00::2",
];

/// Trusted-proxy entries as an operator writes them, each with what it covers (the
/// model's own reading, not the resolver's).
type TrustEntry = (&'static str, fn(IpAddr) -> bool);

fn trust_entries() -> Vec<TrustEntry> {
    vec![
        ("10.0.0.1/32", |ip| ip == v4(10, 0, 0, 1)),
        (
            "10.0.0.0/30",
            |ip| matches!(ip, IpAddr::V4(a) if a.octets()[..3] == [10, 0, 0] && a.octets()[3] < 4),
        ),
        // An IPv4-mapped IPv6 network covers the IPv4 addresses it maps.
        (
            "::ffff:192.0.2.0/120",
            |ip| matches!(ip, IpAddr::V4(a) if a.octets()[..3] == [192, 0, 2]),
        ),
        ("192.0.2.7/32", |ip| ip == v4(192, 0, 2, 7)),
        ("2001:db8::1/128", |ip| {
            ip == "2001:db8::1".parse::<IpAddr>().unwrap()
        }),
        (
            "fd00::/64",
            |ip| matches!(ip, IpAddr::V6(a) if a.segments()[..4] == [0xfd00, 0, 0, 0]),
        ),
        ("203.0.113.5/32", |ip| ip == v4(203, 0, 113, 5)),
    ]
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::from([a, b, c, d])
}

/// One hop as a proxy may write it: which address, and in which spelling.
#[derive(Debug, Clone, Copy)]
struct Hop {
    addr: usize,
    /// IPv4 written IPv4-mapped (`::ffff:a.b.c.d`).
    mapped: bool,
    port: Option<u16>,
    /// IPv6 in brackets (always in `Forwarded`, where RFC 7239 requires them).
    brackets: bool,
}

impl Hop {
    /// The address the model expects back: plain IPv4 for a mapped one.
    fn ip(&self) -> IpAddr {
        ADDRS[self.addr].parse().expect("address")
    }

    fn node(&self, forwarded: bool) -> String {
        let ip = self.ip();
        let text = match ip {
            IpAddr::V4(a) if self.mapped => format!("::ffff:{a}"),
            _ => ip.to_string(),
        };
        let v6 = text.contains(':');
        match (v6, self.port, self.brackets || forwarded) {
            (false, Some(p), _) => format!("{text}:{p}"),
            (false, None, _) => text,
            (true, Some(p), _) => format!("[{text}]:{p}"),
            (true, None, true) => format!("[{text}]"),
            (true, None, false) => text,
        }
    }
}

#[derive(Debug, Clone)]
struct ChainCase {
    trusted: Vec<usize>,
    peer: Hop,
    chain: Vec<Hop>,
    /// Use `Forwarded` (else `X-Forwarded-For`).
    forwarded: bool,
    /// Where the chain is cut into separate header lines (indexes into the chain).
    line_breaks: Vec<Index>,
    /// With `Forwarded`, also send an `X-Forwarded-For` naming this address (it must not count).
    decoy: Option<usize>,
    /// Add an empty list element (`a, , b`), which RFC 9110 says to ignore.
    empty_element: bool,
}

fn hop() -> impl Strategy<Value = Hop> {
    (
        0..ADDRS.len(),
        any::<bool>(),
        prop::option::of(1u16..=65535),
        any::<bool>(),
    )
        .prop_map(|(addr, mapped, port, brackets)| Hop {
            addr,
            mapped,
            port,
            brackets,
        })
}

fn chain_case() -> impl Strategy<Value = ChainCase> {
    (
        prop::sample::subsequence((0..trust_entries().len()).collect::<Vec<_>>(), 0..=7),
        hop(),
        prop::collection::vec(hop(), 0..8),
        any::<bool>(),
        prop::collection::vec(any::<Index>(), 0..3),
        prop::option::of(0..ADDRS.len()),
        any::<bool>(),
    )
        .prop_map(
            |(trusted, peer, chain, forwarded, line_breaks, decoy, empty_element)| ChainCase {
                trusted,
                peer,
                chain,
                forwarded,
                line_breaks,
                decoy,
                empty_element,
            },
        )
}

fn chain_headers(case: &ChainCase) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let name = if case.forwarded {
        axum::http::header::FORWARDED
    } else {
        HeaderName::from_static("x-forwarded-for")
    };
    let mut breaks: Vec<usize> = case
        .line_breaks
        .iter()
        .filter(|_| !case.chain.is_empty())
        .map(|i| i.index(case.chain.len()))
        .collect();
    breaks.push(case.chain.len());
    breaks.sort_unstable();
    breaks.dedup();
    let mut start = 0;
    for end in breaks {
        if end == start || case.chain.is_empty() {
            continue;
        }
        let mut elements: Vec<String> = case.chain[start..end]
            .iter()
            .map(|h| {
                if case.forwarded {
                    let node = h.node(true);
                    // Quoted when it holds ":" or "[" (RFC 7239 §6), with other parameters.
                    if node.contains(':') {
                        format!("for=\"{node}\";proto=https")
                    } else {
                        format!("for={node};proto=https")
                    }
                } else {
                    h.node(false)
                }
            })
            .collect();
        if case.empty_element {
            elements.insert(elements.len() / 2, String::new());
        }
        headers.append(
            name.clone(),
            HeaderValue::from_str(&elements.join(", ")).expect("header value"),
        );
        start = end;
    }
    // Only next to a `Forwarded` that is sent: `Forwarded` wins when present, so an
    // `X-Forwarded-For` beside it is what a proxy passed through from the client.
    if let (Some(decoy), true, false) = (case.decoy, case.forwarded, case.chain.is_empty()) {
        headers.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_str(ADDRS[decoy]).expect("header value"),
        );
    }
    headers
}

/// The model: the peer when it is untrusted or nothing was forwarded; else walking the
/// chain from the right, the first untrusted address; the leftmost when all are trusted.
fn model_client(case: &ChainCase) -> IpAddr {
    let entries = trust_entries();
    let trusted = |ip: IpAddr| case.trusted.iter().any(|&t| (entries[t].1)(ip));
    let peer = case.peer.ip();
    if !trusted(peer) || case.chain.is_empty() {
        return peer;
    }
    case.chain
        .iter()
        .rev()
        .map(Hop::ip)
        .find(|ip| !trusted(*ip))
        .unwrap_or_else(|| case.chain[0].ip())
}

fn resolve(case: &ChainCase) -> Option<IpAddr> {
    let entries = trust_entries();
    let nets: Vec<IpNet> = case
        .trusted
        .iter()
        .map(|&t| entries[t].0.parse().expect("net"))
        .collect();
    let peer = match (case.peer.ip(), case.peer.mapped) {
        (IpAddr::V4(a), true) => IpAddr::V6(a.to_ipv6_mapped()),
        (ip, _) => ip,
    };
    ClientIpResolver::new(nets).client_ip(peer, &chain_headers(case))
}

proptest! {
    #![proptest_config(bounded(2_000))]

    /// For any chain and trusted set, in either header, split over any lines, in any
    /// spelling: the resolver names the model's client.
    #[test]
    fn client_is_the_rightmost_untrusted_hop(case in chain_case()) {
        prop_assert_eq!(resolve(&case), Some(model_client(&case)), "headers: {:?}", chain_headers(&case));
    }
}

// Token hook JSON Patch.

/// Claim segments, escaped, with what the model knows of each.
const SEGMENTS: [&str; 20] = [
    "email",
    "groups",
    "uid",
    "idp",
    "cnf",
    "http:~1~1example.com~1claims~1dept",
    "a~0b",
    "bad~2escape",
    "trailing~",
    "",
    "-",
    "0",
    "iss",
    "exp",
    "scp",
    "auth_time",
    "nonce",
    "sub",
    "aud",
    "ver",
];
const MEMBERS: [&str; 6] = ["0", "3", "-", "member", "", "x~1y"];

/// Okta's table "Reserved claims for Token Hooks" ([REF-token], contract §4.1), written
/// out again here as the model's own copy, plus `nbf`, which hookwarden reserves in both.
const RESERVED_IN_BOTH: [&str; 13] = [
    "acr",
    "auth_time",
    "cid",
    "cnf",
    "exp",
    "groups",
    "iat",
    "iss",
    "jti",
    "sid",
    "token_type",
    "ver",
    "nbf",
];
const RESERVED_IN_ACCESS_TOKEN: [&str; 7] = [
    "as_uri",
    "authorization_details",
    "rpt",
    "rsi",
    "scp",
    "uid",
    "username",
];
#[rustfmt::skip]
const RESERVED_IN_ID_TOKEN: [&str; 43] = [
    "active", "aid", "amr", "app_id", "app_type", "at_hash", "aud", "c_hash", "client_id",
    "client_ip", "client_req_id", "client_type", "client_user_agent", "device_compliance",
    "device_id", "device_known", "device_managed", "device_name", "device_trust", "did", "dst",
    "group", "hotk", "idp", "idp_iss", "mac_key", "may_act", "nonce", "oid",
    "okta_emailVerified", "okta_lastUpdated", "orig", "permissions", "purpose", "pwd_exp_days",
    "pwd_exp_time", "rid", "role", "scope", "scopes", "sub", "term", "user_ip",
];
const LIFETIME: &str = "/token/lifetime/expiration";

#[derive(Debug, Clone)]
enum OpValue {
    Absent,
    Null,
    Int(i64),
    Text,
    Object,
}

#[derive(Debug, Clone)]
struct Op {
    op: &'static str,
    path: String,
    value: OpValue,
}

#[derive(Debug, Clone)]
struct PatchCase {
    has_identity: bool,
    has_access: bool,
    /// (ID token?, operations)
    commands: Vec<(bool, Vec<Op>)>,
}

fn path() -> impl Strategy<Value = String> {
    let seg = prop::sample::select(SEGMENTS.to_vec());
    let member = prop::sample::select(MEMBERS.to_vec());
    prop_oneof![
        2 => Just(LIFETIME.to_owned()),
        1 => prop::sample::select(vec!["/token/lifetime", "/claims", "/claims/", "", "claims/email", "/identity/claims/email", "/token/lifetime/expiration/x"])
            .prop_map(str::to_owned),
        6 => seg.clone().prop_map(|s| format!("/claims/{s}")),
        3 => (seg.clone(), member.clone()).prop_map(|(s, m)| format!("/claims/{s}/{m}")),
        1 => (seg, member.clone(), member).prop_map(|(s, m, n)| format!("/claims/{s}/{m}/{n}")),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (
        prop_oneof![
            6 => prop::sample::select(vec!["add", "replace", "remove"]),
            1 => prop::sample::select(vec!["move", "copy", "test", "ADD", ""]),
        ],
        path(),
        prop_oneof![
            Just(OpValue::Absent),
            Just(OpValue::Null),
            prop::sample::select(vec![-1i64, 0, 299, 300, 3_600, 86_400, 86_401])
                .prop_map(OpValue::Int),
            Just(OpValue::Text),
            Just(OpValue::Object),
        ],
    )
        .prop_map(|(op, path, value)| Op { op, path, value })
}

fn patch_case() -> impl Strategy<Value = PatchCase> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((any::<bool>(), prop::collection::vec(op(), 0..4)), 0..3),
    )
        .prop_map(|(has_identity, has_access, commands)| PatchCase {
            has_identity,
            has_access,
            commands,
        })
}

/// RFC 6901 segment: not empty here, and `~` only as `~0` or `~1`.
fn segment_ok(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    !segment.is_empty()
        && bytes
            .iter()
            .enumerate()
            .all(|(i, &b)| b != b'~' || matches!(bytes.get(i + 1), Some(b'0' | b'1')))
}

/// The contract (§4.1) as a predicate on one operation of a patch of the ID token
/// (`identity`) or the access token.
fn model_op_ok(identity: bool, op: &Op) -> bool {
    if !["add", "replace", "remove"].contains(&op.op) {
        return false;
    }
    let has_value = !matches!(op.value, OpValue::Absent);
    if op.path == LIFETIME {
        return op.op == "replace"
            && matches!(op.value, OpValue::Int(s) if (300..=86_400).contains(&s));
    }
    let Some(rest) = op.path.strip_prefix("/claims/") else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() > 2 || !segments.iter().all(|s| segment_ok(s)) {
        return false;
    }
    if segments.get(1) == Some(&"-") && op.op != "add" {
        return false;
    }
    let claim = segments[0].replace("~1", "/").replace("~0", "~");
    let reserved_here = if identity {
        RESERVED_IN_ID_TOKEN.as_slice()
    } else {
        RESERVED_IN_ACCESS_TOKEN.as_slice()
    };
    if RESERVED_IN_BOTH.contains(&claim.as_str()) || reserved_here.contains(&claim.as_str()) {
        return false;
    }
    match op.op {
        "remove" => matches!(op.value, OpValue::Absent | OpValue::Null),
        _ => has_value,
    }
}

fn model_patch_ok(case: &PatchCase) -> bool {
    case.commands.iter().all(|(identity, ops)| {
        let requested = if *identity {
            case.has_identity
        } else {
            case.has_access
        };
        requested && ops.iter().all(|op| model_op_ok(*identity, op))
    })
}

fn patch_answer(case: &PatchCase) -> InlineResponse {
    let commands: Vec<Value> = case
        .commands
        .iter()
        .map(|(identity, ops)| {
            let ops: Vec<Value> = ops
                .iter()
                .map(|op| {
                    let mut o = Map::new();
                    o.insert("op".into(), json!(op.op));
                    o.insert("path".into(), json!(op.path));
                    let value = match op.value {
                        OpValue::Absent => None,
                        OpValue::Null => Some(Value::Null),
                        OpValue::Int(i) => Some(json!(i)),
                        OpValue::Text => Some(json!("engineering")),
                        OpValue::Object => Some(json!({"level": 3})),
                    };
                    if let Some(v) = value {
                        o.insert("value".into(), v);
                    }
                    Value::Object(o)
                })
                .collect();
            let kind = if *identity {
                "com.okta.identity.patch"
            } else {
                "com.okta.access.patch"
            };
            json!({"type": kind, "value": ops})
        })
        .collect();
    serde_json::from_value(json!({ "commands": commands })).expect("an answer")
}

fn patch_request(case: &PatchCase) -> Value {
    let mut request: Value =
        serde_json::from_str(&util::fixture("token-hook-request.json")).expect("sample");
    let data = request["data"].as_object_mut().expect("data");
    if !case.has_identity {
        data.remove("identity");
    }
    if !case.has_access {
        data.remove("access");
    }
    request
}

proptest! {
    #![proptest_config(bounded(2_000))]

    /// A token answer passes the check iff every operation is one the contract allows.
    #[test]
    fn token_patch_is_accepted_iff_the_contract_allows_it(case in patch_case()) {
        let verdict = check(HookType::Token, &patch_answer(&case), &patch_request(&case));
        prop_assert_eq!(verdict.is_ok(), model_patch_ok(&case), "check said {:?}", verdict);
    }
}

// Shared-secret comparison.

#[derive(Debug, Clone)]
enum Presented {
    Exact(Index),
    /// A proper, non-empty prefix of a valid value.
    Prefix(Index, Index),
    Extension(Index, String),
    /// A valid value with one ASCII letter's case changed.
    CaseFlip(Index, Index),
    Other(String),
}

#[derive(Debug, Clone)]
struct SecretCase {
    /// Basic auth with these (user, password), else header auth with `secrets`.
    basic: bool,
    users: Vec<(String, String)>,
    secrets: Vec<String>,
    presented: Presented,
    /// Sent twice (a second header line): refused whatever it holds.
    twice: bool,
    /// Sent under another header name: refused.
    wrong_header: bool,
}

fn presented() -> impl Strategy<Value = Presented> {
    prop_oneof![
        3 => any::<Index>().prop_map(Presented::Exact),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, n)| Presented::Prefix(i, n)),
        2 => (any::<Index>(), "[ -~]{1,4}").prop_map(|(i, s)| Presented::Extension(i, s)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(i, n)| Presented::CaseFlip(i, n)),
        1 => "[ -~]{1,30}".prop_map(Presented::Other),
    ]
}

fn secret_case() -> impl Strategy<Value = SecretCase> {
    (
        any::<bool>(),
        prop::collection::vec(("[a-z0-9]{1,8}", "[!-~]{1,16}"), 1..4),
        prop::collection::vec("[!-~]{1,24}", 1..4),
        presented(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(basic, users, secrets, presented, twice, wrong_header)| SecretCase {
                basic,
                users,
                secrets,
                presented,
                twice,
                wrong_header,
            },
        )
}

/// The header values the configuration accepts, as the contract says Okta sends them.
fn accepted_values(case: &SecretCase) -> Vec<String> {
    if case.basic {
        case.users
            .iter()
            .map(|(u, p)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            })
            .collect()
    } else {
        case.secrets.clone()
    }
}

fn presented_value(case: &SecretCase) -> String {
    let valid = accepted_values(case);
    match &case.presented {
        Presented::Exact(i) => i.get(&valid).clone(),
        Presented::Prefix(i, n) => {
            let v = i.get(&valid);
            if v.len() < 2 {
                return v.clone();
            }
            v[..1 + n.index(v.len() - 1)].to_owned()
        }
        Presented::Extension(i, s) => format!("{}{s}", i.get(&valid)),
        Presented::CaseFlip(i, n) => {
            let v = i.get(&valid);
            let letters: Vec<usize> = v
                .char_indices()
                .filter(|(_, c)| c.is_ascii_alphabetic())
                .map(|(at, _)| at)
                .collect();
            if letters.is_empty() {
                return format!("{v}x");
            }
            let at = *n.get(&letters);
            let mut bytes = v.clone().into_bytes();
            bytes[at] ^= 0x20;
            String::from_utf8(bytes).expect("ASCII")
        }
        Presented::Other(s) => s.clone(),
    }
}

const SECRET_HEADER: &str = "X-Okta-Hook-Secret";

fn authenticator(case: &SecretCase) -> Authenticator {
    Authenticator::from_config(&if case.basic {
        AuthConfig::Basic {
            header: "Authorization".into(),
            users: case
                .users
                .iter()
                .map(|(u, p)| BasicUser {
                    username: u.clone(),
                    password: Secret::literal(p.clone()),
                })
                .collect(),
        }
    } else {
        AuthConfig::Header {
            header: SECRET_HEADER.into(),
            secrets: case
                .secrets
                .iter()
                .map(|s| Secret::literal(s.clone()))
                .collect(),
        }
    })
}

fn secret_headers(case: &SecretCase, value: &str) -> HeaderMap {
    let configured = if case.basic {
        "authorization"
    } else {
        SECRET_HEADER
    };
    let name = if case.wrong_header {
        "x-other"
    } else {
        configured
    };
    let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
    let value = HeaderValue::from_str(value).expect("visible ASCII");
    let mut headers = HeaderMap::new();
    headers.append(name.clone(), value.clone());
    if case.twice {
        headers.append(name, value);
    }
    headers
}

proptest! {
    #![proptest_config(bounded(1_000))]

    /// Accepted iff the header is sent once, under its name, and its whole value is one
    /// of the configured credentials: prefixes, extensions and case changes are not.
    #[test]
    fn auth_accepts_exactly_the_configured_credentials(case in secret_case()) {
        let value = presented_value(&case);
        let expected = !case.twice && !case.wrong_header && accepted_values(&case).contains(&value);
        let got = authenticator(&case).check(&secret_headers(&case, &value));
        prop_assert_eq!(got, expected, "presented {:?}", value);
    }
}

// The generators themselves: a property is only worth its cases if they reach both
// verdicts (a model that always says "refused" would pass against a checker that always
// refuses).

/// Runs `verdict` on `n` cases drawn from `strategy` and counts the true ones.
fn count_true<S: Strategy>(strategy: S, n: usize, verdict: impl Fn(&S::Value) -> bool) -> usize {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    (0..n)
        .filter(|_| verdict(&strategy.new_tree(&mut runner).expect("a case").current()))
        .count()
}

#[test]
fn generated_cases_reach_both_verdicts() {
    let n = 500;
    let accepted = count_true(patch_case(), n, model_patch_ok);
    assert!(
        accepted > n / 20 && accepted < n - n / 20,
        "token patches accepted: {accepted} of {n}"
    );
    let let_in = count_true(secret_case(), n, |c| {
        !c.twice && !c.wrong_header && accepted_values(c).contains(&presented_value(c))
    });
    assert!(
        let_in > n / 20 && let_in < n - n / 20,
        "credentials let in: {let_in} of {n}"
    );
    let forwarded = count_true(chain_case(), n, |c| model_client(c) != c.peer.ip());
    assert!(
        forwarded > n / 20 && forwarded < n - n / 20,
        "clients from the chain: {forwarded} of {n}"
    );
    let duplicated = count_true(dedupe_run(), 100, |r| r.sends.len() > r.events.len());
    assert!(duplicated > 10, "runs with duplicates: {duplicated} of 100");
}
