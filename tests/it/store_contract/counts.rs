//! The gauges' counts ([`Queue::job_counts`]) per hook and sink, on every backend.

use super::{delivery_at, event, Backend, LEASE};
use hookwarden::store::*;
use hookwarden::time::now_millis;

contract!(job_counts_are_per_hook_and_sink_with_the_oldest_pending);

fn jobs(hook: &str, sink: &str, backlog: u64, dead: u64, oldest: Option<Millis>) -> SinkJobs {
    SinkJobs {
        hook: hook.to_owned(),
        sink: sink.to_owned(),
        backlog,
        dead,
        oldest_pending: oldest,
    }
}

async fn job_counts_are_per_hook_and_sink_with_the_oldest_pending(backend: Backend) {
    let store = backend.open(1000).await;
    let counts = store.job_counts().await.expect("counts");
    assert!(counts.sinks.is_empty(), "an empty store: {counts:?}");

    let t0 = now_millis() - 60_000;
    for (hook, at, events) in [
        ("okta", t0, vec![event("a", "t", &["archive", "siem"])]),
        ("okta", t0 + 1000, vec![event("b", "t", &["archive"])]),
        (
            "audit",
            t0 + 2000,
            vec![event("c", "t", &["archive"]), event("d", "t", &[])],
        ),
    ] {
        store
            .ingest(delivery_at(hook, at, events))
            .await
            .expect("ingest");
    }
    let counts = store.job_counts().await.expect("counts");
    assert_eq!(
        counts.sinks,
        vec![
            jobs("audit", "archive", 1, 0, Some(t0 + 2000)),
            jobs("okta", "archive", 2, 0, Some(t0)),
            jobs("okta", "siem", 1, 0, Some(t0)),
        ],
        "a sink's oldest is its first stored job; an event for no sink counts nowhere"
    );
    assert_eq!((counts.backlog(), counts.dead()), (4, 0));

    // okta/archive: `a` dead, `b` delivered; okta/siem: delivered; audit: retried later.
    let claimed = store.claim(10, LEASE).await.expect("claim");
    assert_eq!(claimed.len(), 4);
    for job in &claimed {
        let outcome = match (job.hook.as_str(), job.sink.as_str(), job.uuid.as_str()) {
            ("okta", "archive", "a") => JobOutcome::Dead {
                error: "gone".into(),
            },
            ("okta", _, _) => JobOutcome::Delivered,
            _ => JobOutcome::Retry {
                at: now_millis() + 60_000,
                error: "down".into(),
            },
        };
        store.finish(job, outcome).await.expect("finish");
    }
    let counts = store.job_counts().await.expect("counts");
    assert_eq!(
        counts.sinks,
        vec![
            jobs("audit", "archive", 1, 0, Some(t0 + 2000)),
            jobs("okta", "archive", 0, 1, None),
        ],
        "a sink with nothing pending or dead is not listed"
    );
    assert_eq!((counts.backlog(), counts.dead()), (1, 1));

    // A replayed dead letter waits since its event first arrived.
    store
        .replay(&ReplayTarget::AllDead { hook: None })
        .await
        .expect("replay");
    let counts = store.job_counts().await.expect("counts");
    assert_eq!(
        counts.sinks,
        vec![
            jobs("audit", "archive", 1, 0, Some(t0 + 2000)),
            jobs("okta", "archive", 1, 0, Some(t0)),
        ]
    );
}
