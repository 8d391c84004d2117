//! The embedded store's disk waits, kept off its writer thread.
//!
//! The writer ([`super`]) is the one serial stage of every acknowledgement, so
//! whatever it waits for, every queued delivery waits for too. Profiling under load
//! (64 connections, see docs/benchmarks-log.md) showed it spent 70% of its time in `COMMIT`,
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
    /// A checkpoint every 250 pages (1 MB), a quarter of SQLite's own automatic
    /// threshold: the acks' WAL syncs queue behind each pass's writes, and smaller passes
    /// make shorter stalls (harness at the maximum: p99 21 against 25 ms over HTTPS, 17
    /// against 22 over HTTP, the same throughput within the noise; docs/benchmarks-log.md, "The
    /// million-event store"). A restart at 64 Ki pages (256 MB at 4 kB pages), which a
    /// sustained full load reaches every few seconds (restarts stall the writer for a
    /// few ms, so not too often); 256 pages (1 MB) left for the writer to copy.
    pub const DEFAULT: WalPolicy = WalPolicy {
        checkpoint_pages: 250,
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
                // A disk that stays full fails every retry: say so once, and again
                // when checkpoints work again.
                let mut failing = false;
                for () in rx {
                    match checkpoint(&conn, "PASSIVE") {
                        Ok(complete) => {
                            if std::mem::take(&mut failing) {
                                tracing::info!("store checkpoints work again");
                            }
                            if let Some(frames) = complete {
                                done.store(frames, Ordering::Release);
                            }
                        }
                        Err(e) if failing => {
                            tracing::debug!(error = %e, "store checkpoint failed again");
                        }
                        Err(e) => {
                            failing = true;
                            tracing::warn!(error = %e, "store checkpoint failed; the WAL keeps the data and it is tried again after the next commit or failed write");
                        }
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

    /// Asks for a checkpoint soon; never blocks. The writer asks each time the WAL has
    /// grown by [`WalPolicy::checkpoint_pages`], and after every write that failed: on a
    /// full disk, the WAL can only start over (and commits succeed again without growing
    /// it) once a checkpoint has completed, and a WAL that no longer grows would never
    /// ask again.
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

/// How much WAL growth between two checks of the free space, in frames (1 MB at 4 kB
/// pages)...
const SPACE_CHECK_FRAMES: i32 = 256;
/// ...and how long at most: the database file grows too, and a WAL that started over
/// does not. Each check is a `statvfs` and a `stat`, a few microseconds.
const SPACE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Keeps the store from taking the last of its disk, which it could not come back from.
///
/// A commit needs the WAL to grow unless the WAL has started over, which needs a
/// completed checkpoint, which needs the database file to grow by the pages the WAL
/// added. Once the disk is full, none of them can happen: the store answers 503 and
/// the worker cannot even record a delivery, until an operator frees more than the
/// WAL would take again. (The tmpfs test in `tests/it/faults.rs` found this: after the
/// space came back, the WAL took 16 MB of it in a second and everything stalled for
/// good.) Two limits keep the disk from getting there:
///
/// - The space that counts is what is free on the filesystem less what the database
///   file still owes: the pages the WAL added past the file's end, which the next
///   checkpoint writes there.
/// - Under a load that never pauses, the WAL only starts over at
///   [`WalPolicy::restart_pages`] (256 MB), every commit appending the pages it changed,
///   many times the size of the rows it adds. Here the WAL may grow past the size of
///   its file by at most half the space that counts: past that the writer starts it
///   over (reusing the file), which leaves the rest for the database file.
/// - Below `store.disk_reserve_mib` of space that counts, deliveries that add events
///   are refused ([`super::StoreError::DiskLow`], a 503 that Okta retries) while the
///   worker goes on delivering what is stored: the reserve is what its writes and the
///   checkpoints need.
pub struct DiskSpace {
    db: PathBuf,
    wal: PathBuf,
    page_bytes: u64,
    reserve: u64,
    /// When, and at how many WAL frames, the space was last measured.
    checked: Option<(std::time::Instant, i32)>,
    wal_limit: i32,
    low: Option<u64>,
}

impl DiskSpace {
    /// For the database at `db`, whose pages are `page_size` bytes, keeping
    /// `reserve_bytes` free. Measures once now.
    pub fn new(db: &Path, page_size: u64, reserve_bytes: u64) -> DiskSpace {
        let mut space = DiskSpace {
            db: db.to_path_buf(),
            wal: wal_path(db),
            page_bytes: page_size,
            reserve: reserve_bytes,
            checked: None,
            wal_limit: i32::MAX,
            low: None,
        };
        space.refresh(0, || None);
        space
    }

    /// Called after each commit with the WAL's length in frames; measures again when
    /// [`SPACE_CHECK_FRAMES`] or [`SPACE_CHECK_EVERY`] have passed, then asking
    /// `pages` for the database's length in pages (with what the WAL added).
    pub fn refresh(&mut self, frames: i32, pages: impl FnOnce() -> Option<u64>) {
        let now = std::time::Instant::now();
        let due = self.checked.is_none_or(|(at, at_frames)| {
            frames < at_frames
                || frames - at_frames >= SPACE_CHECK_FRAMES
                || now.duration_since(at) >= SPACE_CHECK_EVERY
        });
        if !due {
            return;
        }
        self.checked = Some((now, frames));
        let (in_file, free) = match self.measure(pages()) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "cannot measure the space left on the store's disk");
                return;
            }
        };
        self.wal_limit = i32::try_from(in_file.saturating_add(free / 2 / self.frame_bytes()))
            .unwrap_or(i32::MAX);
        let low = (free < self.reserve).then_some(free);
        match (self.low, low) {
            (None, Some(free)) => tracing::warn!(
                free_mib = free / (1024 * 1024),
                reserve_mib = self.reserve / (1024 * 1024),
                db = %self.db.display(),
                "the store's disk is almost full (less free than store.disk_reserve_mib): \
                 deliveries of new events are answered 503 until space is freed; stored events are still delivered"
            ),
            (Some(_), None) => tracing::info!(
                free_mib = free / (1024 * 1024),
                "the store's disk has room again: deliveries are accepted"
            ),
            _ => {}
        }
        self.low = low;
    }

    /// Each WAL frame is a 24-byte header and a page.
    fn frame_bytes(&self) -> u64 {
        self.page_bytes + 24
    }

    /// The number of frames past which the WAL should start over to leave the disk room.
    pub fn wal_limit(&self) -> i32 {
        self.wal_limit
    }

    /// The free bytes, when fewer than the reserve.
    pub fn low(&self) -> Option<u64> {
        self.low
    }

    /// Frames the WAL file has room for, and the bytes free on the filesystem less what
    /// the database file (`pages` long with the WAL's pages) still has to grow by.
    fn measure(&self, pages: Option<u64>) -> std::io::Result<(u64, u64)> {
        // The file's own 32-byte header, then frames.
        let in_file = std::fs::metadata(&self.wal)?.len().saturating_sub(32) / self.frame_bytes();
        let owed = pages.map_or(0, |p| {
            let file = std::fs::metadata(&self.db).map_or(0, |m| m.len());
            p.saturating_mul(self.page_bytes).saturating_sub(file)
        });
        // Any path on the filesystem will do: the database file's own.
        let fs = rustix::fs::statvfs(&self.db)?;
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        Ok((in_file, free.saturating_sub(owed)))
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`: `Some(frames)` when every frame of the WAL was
/// copied back, `None` when a reader kept some back. A failure is not fatal (the WAL
/// keeps the data) but must be tried again: see [`Checkpointer::nudge`].
pub fn checkpoint(conn: &rusqlite::Connection, mode: &str) -> rusqlite::Result<Option<i32>> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    let started = std::time::Instant::now();
    let (busy, log, done) = conn.query_row(&sql, [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i32>(1)?,
            r.get::<_, i32>(2)?,
        ))
    })?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    tracing::debug!(mode, busy, log, done, ms, "store checkpoint");
    Ok((busy == 0).then_some(done))
}
