//! The public listener: connection cap, TLS, HTTP timeouts, graceful shutdown.

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use axum::Router;
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Caps the connections served at once. Runs before the TLS handshake, so a flood of
/// connections costs a file descriptor each for an instant, never a handshake.
///
/// Over the cap the connection is closed at once rather than queued: a queued
/// connection would hold a descriptor and time out at the client anyway, while a
/// closed one tells a well-behaved client (Okta retries once) to come back.
#[derive(Clone)]
pub struct LimitAcceptor<A> {
    inner: A,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl<A> LimitAcceptor<A> {
    pub fn new(inner: A, max_connections: usize, metrics: Arc<Metrics>) -> Self {
        LimitAcceptor {
            inner,
            permits: Arc::new(Semaphore::new(max_connections)),
            metrics,
        }
    }
}

/// Held for as long as the connection's service lives; frees the slot on drop.
struct Slot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

/// The connection's service, carrying the connection's slot.
#[derive(Clone)]
pub struct SlotService<S> {
    inner: S,
    _slot: Arc<Slot>,
}

impl<S, R> tower::Service<R> for SlotService<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.inner.call(req)
    }
}

impl<I, S, A> Accept<I, S> for LimitAcceptor<A>
where
    A: Accept<I, S> + Clone + Send + 'static,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = SlotService<A::Service>;
    type Future = BoxFuture<std::io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.metrics.connections_refused.inc();
            drop(stream);
            return Box::pin(std::future::ready(Err(std::io::Error::other(
                "connection limit reached",
            ))));
        };
        self.metrics.connections_open.inc();
        let slot = Arc::new(Slot {
            _permit: permit,
            metrics: self.metrics.clone(),
        });
        let accepted = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, inner) = accepted.await?;
            Ok((stream, SlotService { inner, _slot: slot }))
        })
    }
}

/// Serves `router` on `listener` until `handle` is told to shut down.
/// `tls` is `None` for plain HTTP (TLS ended at a load balancer).
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    tls: Option<RustlsConfig>,
    config: &ServerConfig,
    metrics: Arc<Metrics>,
    handle: Handle<SocketAddr>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    let limit = LimitAcceptor::new(DefaultAcceptor, config.max_connections, metrics);
    match tls {
        Some(tls) => {
            let acceptor = RustlsAcceptor::new(tls)
                .handshake_timeout(config.tls_handshake_timeout)
                .acceptor(limit);
            let mut server = axum_server::from_tcp(listener)?
                .http1_only()
                .acceptor(acceptor)
                .handle(handle)
                .first_request_timeout(config.header_read_timeout)
                .accept_error_handler(|_, _| {});
            tune(server.http_builder(), config);
            server.serve(make).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?
                .http1_only()
                .acceptor(limit)
                .handle(handle)
                .first_request_timeout(config.header_read_timeout)
                .accept_error_handler(|_, _| {});
            tune(server.http_builder(), config);
            server.serve(make).await
        }
    }
}

/// HTTP settings that bound what a slow or hostile client can hold.
///
/// HTTP/1.1 only (TLS offers only `http/1.1` too). Okta's hook client needs nothing more,
/// and HTTP/2 cost a correctness problem: a request refused before its body is read (401,
/// 403, 413) has its stream reset while the client is still sending, and about half of
/// such clients then never see the status. It also brings stream floods and rapid resets
/// that a webhook receiver gains nothing from.
fn tune(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    config: &ServerConfig,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(64 * 1024);
}
