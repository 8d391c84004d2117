//! The HTTP side: listeners, guards, TLS and error bodies.

pub mod auth;
pub mod body;
pub mod error;
pub mod guard;
pub mod network;
pub mod oauth;
pub mod server;
pub mod tls;
