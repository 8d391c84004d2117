//! `serve --watch-config`: reloads when the configuration file changes, as SIGHUP does.
//!
//! Polling the file's content rather than file-system events, for the same reasons as
//! the certificate reloader: it sees every way a file is replaced (written in place,
//! renamed over, a Kubernetes ConfigMap's symlink swap), on every file system, with no
//! watch limits. A change is applied only once the content has stayed the same for one
//! more interval, so a file caught half-written is not read; and even if one were, the
//! reload's checks would refuse it and keep the running configuration.
//!
//! Only the configuration file is watched. Secret files, rule files and scripts it names
//! are read again by every reload, but a change to them alone needs SIGHUP or
//! `POST /reload`.

use super::reload::Live;
use crate::admin::state::Reload;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type Fingerprint = [u8; 32];

async fn fingerprint(path: &PathBuf) -> Option<Fingerprint> {
    tokio::fs::read(path)
        .await
        .ok()
        .map(|bytes| Sha256::digest(&bytes).into())
}

/// Polls `path` every `every` until `shutdown`; reloads after a change that held still.
pub async fn reload_on_change(
    live: Arc<Live>,
    path: PathBuf,
    every: Duration,
    shutdown: CancellationToken,
) {
    tracing::info!(file = %path.display(), every = %humantime::format_duration(every), "watching the configuration file: a change is reloaded in place");
    let mut served = fingerprint(&path).await;
    let mut settling: Option<Fingerprint> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        // Unreadable for a moment (being replaced): look again next time.
        let Some(now) = fingerprint(&path).await else {
            continue;
        };
        if Some(now) == served {
            settling = None;
        } else if settling == Some(now) {
            live.reload("file change").await;
            served = Some(now);
            settling = None;
        } else {
            settling = Some(now);
        }
    }
}
