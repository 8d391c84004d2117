//! A minimal "user's own service" for the forward handler's overhead measurement:
//! answers every POST with `{}` (Okta's default action) on 127.0.0.1:8600.
//!
//! `cargo run --release --example forward_target`

use axum::routing::post;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/hook",
        post(|| async { ([("content-type", "application/json")], "{}") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8600").await?;
    axum::serve(listener, app).await
}
