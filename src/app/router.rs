//! The public router of one configuration generation.

use super::RunError;
use crate::activity::Activity;
use crate::config::Config;
use crate::event_hooks::{self, HookState};
use crate::http::error::ApiError;
use crate::http::guard::{self, DeadlineAnswer, DoorAuth, Guard, Tracked};
use crate::http::network::{ClientIpResolver, IpAllowlist};
use crate::metrics::Metrics;
use crate::store::{AnswerStore, Store};
use crate::worker;
use axum::response::IntoResponse;
use axum::Router;
use std::sync::Arc;

/// What the routers of every generation share: made once at start, kept across reloads.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    /// The inline hooks' idempotent answers shared by replicas (PostgreSQL only).
    pub answers: Option<Arc<dyn AnswerStore>>,
    pub waker: worker::Waker,
    pub metrics: Arc<Metrics>,
    pub activity: Arc<Activity>,
}

/// Builds the public router of one configuration generation: one route per hook, each
/// behind its guard.
pub fn public_router(
    config: &Config,
    shared: &Shared,
    generation: u64,
) -> Result<Router, RunError> {
    let Shared {
        store,
        answers,
        waker,
        metrics,
        activity,
    } = shared;
    let resolver = Arc::new(ClientIpResolver::new(
        config.network.trusted_proxies.clone(),
    ));
    let mut router = Router::new();
    // Every hook's route gets the same two layers: the guard (allowlist, then auth) and,
    // outermost, the request timeout and the one place where answers are counted. An
    // inline hook's guard also has its budget and fallback (`deadline`).
    let guarded = |routes: Router,
                   name: &str,
                   auth: &crate::config::AuthConfig,
                   allow_ips: &Option<Vec<ipnet::IpNet>>,
                   verify_requires_auth: bool,
                   deadline: Option<Arc<dyn DeadlineAnswer>>|
     -> Result<Router, RunError> {
        let guard_state = Arc::new(Guard {
            hook: name.to_owned(),
            auth: DoorAuth::from_config(auth).map_err(|source| RunError::Door {
                hook: name.to_owned(),
                source,
            })?,
            allow: IpAllowlist::new(
                allow_ips
                    .clone()
                    .unwrap_or_else(|| config.network.allow_ips.clone()),
            ),
            resolver: resolver.clone(),
            verify_requires_auth,
            deadline,
        });
        let tracked = Tracked {
            hook: name.into(),
            metrics: metrics.clone(),
            activity: activity.clone(),
            request_timeout: config.server.request_timeout,
            generation,
        };
        Ok(routes
            .layer(axum::middleware::from_fn_with_state(
                guard_state,
                guard::guard,
            ))
            .layer(axum::middleware::from_fn_with_state(tracked, guard::track)))
    };
    for hook in &config.event_hooks {
        let state = Arc::new(HookState::new(
            hook,
            store.clone(),
            waker.clone(),
            metrics.clone(),
            config.server.max_body_bytes,
        ));
        router = router.merge(guarded(
            event_hooks::routes(&hook.path, state),
            &hook.name,
            &hook.auth,
            &hook.allow_ips,
            hook.verify_requires_auth,
            None,
        )?);
    }
    let inline =
        crate::inline_hooks::build(config, metrics, answers.clone()).map_err(|problems| {
            RunError::Hook(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    for ((path, hook), cfg) in inline.into_iter().zip(&config.inline_hooks) {
        // Inline hooks take POST only: there is no verification GET to exempt.
        let deadline: Arc<dyn DeadlineAnswer> = hook.clone();
        router = router.merge(guarded(
            crate::inline_hooks::routes(&path, hook),
            &cfg.name,
            &cfg.auth,
            &cfg.allow_ips,
            true,
            Some(deadline),
        )?);
    }
    let fallback_metrics = metrics.clone();
    Ok(router.fallback(move || {
        let metrics = fallback_metrics.clone();
        async move {
            let res = ApiError::not_found().into_response();
            guard::count(&metrics, "-", &res);
            res
        }
    }))
}
