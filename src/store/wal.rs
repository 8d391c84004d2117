//! The embedded store's disk waits, kept off its writer thread.
//!
//! The writer ([`super::sqlite`]) is the one serial stage of every acknowledgement, so
//! whatever it waits for, every queued delivery waits for too. Profiling under load
//! (64 connections, see BENCHMARKS.md) showed it spent 70% of its time in `COMMIT`,
//! mostly not working but waiting for the disk: the WAL's fsync (about 1.3 ms under
//! load) on every commit, and every thousand pages an automatic checkpoint that wrote
//! the pages back into the database file and fsynced it (about 12 ms, the p99 spikes).
//! Two threads take those waits over:
//!
//! - [`WalSync`] syncs the WAL after each commit. The writer commits with
//!   `synchronous = NORMAL` (which writes the WAL without syncing it) and hands the
//!   batch's answers to this thread, which runs `fdatasync` on the WAL file and only
//!   then sends them. Meanwhile the writer already runs the next batch: the sync of one
//!   batch overlaps the work of the next. One sync covers every batch queued by then.
//!   Nothing is answered before the WAL holding it, and everything committed before it,
//!   is on disk, which is exactly what `synchronous = FULL` guaranteed; the only thing
//!   that changes is that other connections may read a commit a millisecond before it
//!   is durable (the admin pages' listings; the workers' claims are writer commands,
//!   answered after the sync like everything else).
//! - [`Checkpointer`] copies the WAL back into the database file on a connection of its
//!   own (`PRAGMA wal_checkpoint(PASSIVE)`, which never blocks the writer), each time
//!   the writer says the WAL grew by [`WalPolicy::checkpoint_pages`]. Under sustained
//!   load a passive checkpoint never catches up with the end of the WAL, which then only
//!   grows; past [`WalPolicy::restart_pages`] the writer checkpoints itself between two
//!   commits (cheap: the checkpointer has already copied all but
//!   [`WalPolicy::restart_slack`] pages), and the WAL starts over.
//!
//! `fdatasync` on our own descriptor of the WAL syncs the file, not the descriptor
//! (POSIX: "all modified data of the file"), so it covers what SQLite wrote through
//! its own. The file must stay the same one: SQLite deletes a WAL only when its last
//! connection closes, and the writer's stays open until after the syncer has stopped.
//! If the path ever names another file, or a sync fails, the store stops taking
//! writes: after a failed fsync the kernel may have dropped the data, so no answer can
//! be trusted until a restart recovers from what is really on disk.

use std::cell::Cell;
use std::ffi::c_int;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// When checkpoints happen; see the module docs. Tests use small values to reach the
/// thresholds quickly.
#[derive(Debug, Clone, Copy)]
pub struct WalPolicy {
    /// The writer asks for a background checkpoint each time the WAL has grown by this
    /// many pages.
    pub checkpoint_pages: i32,
    /// Past this many pages the writer checkpoints itself, so that the WAL can start
    /// over even under a load that never pauses...
    pub restart_pages: i32,
    /// ...but only once the checkpointer has copied all but this many pages back, so
    /// that what is left to do on the writer's thread is small.
    pub restart_slack: i32,
}

impl WalPolicy {
    /// SQLite's own automatic checkpoint threshold (1,000 pages, about 4 MB); a restart
    /// at 64 Ki pages (256 MB at 4 kB pages), which a sustained full load reaches every
    /// few seconds (restarts stall the writer for a few ms, so not too often); 256 pages
    /// (1 MB) left for the writer to copy.
    pub const DEFAULT: WalPolicy = WalPolicy {
        checkpoint_pages: 1000,
        restart_pages: 65_536,
        restart_slack: 256,
    };
}

/// Sends a command's answer once the fate of its transaction is known: given `None`
/// (committed and durable) it sends the command's own result; given `Some(reason)`
/// (the transaction was lost, or may have been) a success becomes `Unavailable(reason)`.
pub type Responder = Box<dyn FnOnce(Option<&str>) + Send>;

thread_local! {
    /// Pages in the WAL after the last commit on this thread's connection, set by
    /// [`on_commit`]. A thread-local because SQLite's WAL hook is a plain function:
    /// each store's writer is a thread of its own, so each sees its own value.
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// The WAL hook (`sqlite3_wal_hook`), run by SQLite on the committing thread after each
/// commit. Registering it also turns SQLite's automatic checkpoints off, which is the point.
pub fn on_commit(_: &rusqlite::hooks::Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// Pages in the WAL as of the last commit on this thread (0 before the first).
pub fn pages_after_commit() -> i32 {
    WAL_PAGES.with(Cell::get)
}

/// The WAL file of the database at `db`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// The thread that makes commits durable, then answers them. See the module docs.
pub struct WalSync {
    tx: Option<mpsc::Sender<Vec<Responder>>>,
    thread: Option<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
    #[cfg(test)]
    fail_next: Arc<AtomicBool>,
}

impl WalSync {
    /// Opens the WAL file (it must exist: the database is in WAL mode and the writer's
    /// connection is open) and starts the thread.
    /// `synced(n)` is called after each sync with the number of commits it covered.
    pub fn start(db: &Path, synced: impl Fn(usize) + Send + 'static) -> std::io::Result<WalSync> {
        let path = wal_path(db);
        let file = File::options().read(true).write(true).open(&path)?;
        let failed = Arc::new(AtomicBool::new(false));
        #[cfg(test)]
        let fail_next = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Vec<Responder>>();
        let syncer = Syncer {
            file,
            path,
            failed: failed.clone(),
            #[cfg(test)]
            fail_next: fail_next.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("hookwarden-sync".into())
            .spawn(move || syncer.run(rx, synced))?;
        Ok(WalSync {
            tx: Some(tx),
            thread: Some(thread),
            failed,
            #[cfg(test)]
            fail_next,
        })
    }

    /// True once a sync has failed: the store must take no more writes.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Hands over the answers of a committed batch; they are sent once the WAL is
    /// synced. False if the thread is gone (then they were answered as lost).
    pub fn submit(&self, done: Vec<Responder>) -> bool {
        let sent = match &self.tx {
            Some(tx) => tx.send(done).map_err(|mpsc::SendError(done)| done),
            None => Err(done),
        };
        match sent {
            Ok(()) => true,
            Err(done) => {
                // The thread is gone (it cannot panic on its own, but be sure):
                // durability is unknown, so nothing is reported stored.
                self.failed.store(true, Ordering::Release);
                let msg = "the store's sync thread has stopped";
                done.into_iter().for_each(|r| r(Some(msg)));
                false
            }
        }
    }

    /// A switch that makes the next sync fail, as a failing disk would.
    #[cfg(test)]
    pub fn fail_switch(&self) -> Arc<AtomicBool> {
        self.fail_next.clone()
    }

    /// Answers everything handed over so far, then stops the thread.
    pub fn stop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store's sync thread panicked");
            }
        }
    }
}

impl Drop for WalSync {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Syncer {
    file: File,
    path: PathBuf,
    failed: Arc<AtomicBool>,
    #[cfg(test)]
    fail_next: Arc<AtomicBool>,
}

impl Syncer {
    fn run(self, rx: mpsc::Receiver<Vec<Responder>>, synced: impl Fn(usize)) {
        while let Ok(first) = rx.recv() {
            let mut answers = first;
            let mut commits = 1;
            // Everything queued while the last sync ran is covered by this one.
            while let Ok(more) = rx.try_recv() {
                answers.extend(more);
                commits += 1;
            }
            let lost = match self.sync() {
                Ok(()) => None,
                Err(e) => {
                    if !self.failed.swap(true, Ordering::AcqRel) {
                        tracing::error!(error = %e, path = %self.path.display(),
                            "cannot sync the store's WAL to disk: the store takes no more writes until a restart");
                    }
                    Some(format!("the store could not sync its WAL to disk: {e}"))
                }
            };
            answers.into_iter().for_each(|r| r(lost.as_deref()));
            synced(commits);
        }
    }

    fn sync(&self) -> std::io::Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(std::io::Error::other("an earlier sync failed"));
        }
        #[cfg(test)]
        if self.fail_next.swap(false, Ordering::AcqRel) {
            return Err(std::io::Error::other("injected sync failure"));
        }
        let (ours, named) = (self.file.metadata()?, std::fs::metadata(&self.path)?);
        if (ours.dev(), ours.ino()) != (named.dev(), named.ino()) {
            return Err(std::io::Error::other(
                "the WAL file was replaced behind the store's back",
            ));
        }
        self.file.sync_data()
    }
}

/// The thread that copies the WAL back into the database file. See the module docs.
pub struct Checkpointer {
    tx: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// WAL frames copied back by the last checkpoint that completed.
    backfilled: Arc<AtomicI32>,
}

impl Checkpointer {
    /// Opens a connection of its own to `db` and starts the thread.
    pub fn start(db: &Path, busy_timeout: std::time::Duration) -> std::io::Result<Checkpointer> {
        let conn = rusqlite::Connection::open(db)
            .and_then(|c| {
                c.busy_timeout(busy_timeout)?;
                // The checkpoint syncs the WAL before copying and the database after.
                c.pragma_update(None, "synchronous", "FULL")?;
                Ok(c)
            })
            .map_err(std::io::Error::other)?;
        // Capacity 1: one waiting request says all there is to say.
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let backfilled = Arc::new(AtomicI32::new(0));
        let done = backfilled.clone();
        let thread = std::thread::Builder::new()
            .name("hookwarden-ckpt".into())
            .spawn(move || {
                for () in rx {
                    if let Some(frames) = checkpoint(&conn, "PASSIVE") {
                        done.store(frames, Ordering::Release);
                    }
                }
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(error = %e, "closing the checkpoint connection failed");
                }
            })?;
        Ok(Checkpointer {
            tx: Some(tx),
            thread: Some(thread),
            backfilled,
        })
    }

    /// WAL frames already copied back by the last completed checkpoint.
    pub fn backfilled(&self) -> i32 {
        self.backfilled.load(Ordering::Acquire)
    }

    /// Forgets the count of frames copied back (the WAL started over).
    pub fn restarted(&self) {
        self.backfilled.store(0, Ordering::Release);
    }

    /// Asks for a checkpoint soon; never blocks.
    pub fn nudge(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(());
        }
    }

    /// Stops the thread after its current checkpoint and closes its connection.
    pub fn stop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store's checkpoint thread panicked");
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`; returns the WAL frames copied back when every
/// one of them was. Failures are logged, not fatal: the WAL keeps the data, and a later
/// checkpoint retries.
pub fn checkpoint(conn: &rusqlite::Connection, mode: &str) -> Option<i32> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    let started = std::time::Instant::now();
    match conn.query_row(&sql, [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i32>(1)?,
            r.get::<_, i32>(2)?,
        ))
    }) {
        Ok((busy, log, done)) => {
            let ms = started.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(mode, busy, log, done, ms, "store checkpoint");
            (busy == 0).then_some(done)
        }
        Err(e) => {
            tracing::warn!(mode, error = %e, "store checkpoint failed; the WAL keeps the data and a later one retries");
            None
        }
    }
}
