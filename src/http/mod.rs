//! The HTTP side: listeners, guards, TLS, admin endpoints and error bodies.

pub mod admin;
pub mod admin_page;
pub mod auth;
pub mod body;
pub mod error;
pub mod guard;
pub mod network;
pub mod oauth;
pub mod server;
pub mod tls;
