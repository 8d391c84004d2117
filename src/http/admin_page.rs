//! The admin page on the admin listener (`/ui`). (Being built.)

use super::admin::AdminState;
use axum::Router;
use std::sync::Arc;

/// The page's routes, merged into the admin router.
pub fn routes() -> Router<Arc<AdminState>> {
    Router::new()
}
