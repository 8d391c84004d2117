//! JSON Lines file sink: one record per line, appended and synced to disk.
//!
//! An event counts as delivered only once its line is on disk (`sync_data`), so a
//! crash after the acknowledgement of [`Sink::deliver`] cannot lose it.
//!
//! Batches: the worker hands this sink every job of it that one claim brought
//! ([`Sink::deliver_batch`]); their lines go out in one write and share one sync.
//!
//! Group sync: concurrent deliveries (single lines or batches) append one after the
//! other, then share syncs. Whoever finds its append not yet synced syncs everything
//! appended so far; the appends of the others waiting meanwhile are covered by that one
//! `sync_data`. A failed sync fails every line it covered (they are delivered again,
//! possibly twice, never lost): after a failed `fsync`, Linux may have dropped the
//! dirty pages, and a later successful sync would not bring them back.
//!
//! Crash safety: a kill in the middle of a write can leave a torn last line without
//! its newline. [`JsonlSink::open`] (and the next write after a failed one) ends
//! such a line with `\n`, so the torn line stays alone on its line and every later
//! record is a whole, parseable line. Readers should skip lines that do not parse.
//!
//! Rotation: the file is kept open. Rotate with `copytruncate` (appends go to the
//! new end) or restart hookwarden after moving the file.

use super::*;
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tokio::sync::Mutex;

/// How much of the file's end [`Sink::contains`] reads.
///
/// `contains` is asked only about jobs whose previous attempt was cut short by a
/// crash; such a line, if it was written at all, was written shortly before the
/// crash and is followed only by what was appended since. 8 MiB holds thousands
/// of typical records (a few KiB each), and reading it stays a matter of
/// milliseconds however large the file grows. If the line lies further back, the
/// answer is `false` and the event is written once more: a duplicate line, never
/// a lost event (delivery is at least once).
const CONTAINS_SCAN_BYTES: u64 = 8 * 1024 * 1024;

/// The open file and whether its end may be a torn line.
struct Writer {
    file: File,
    /// A write failed: the last line may lack its newline. Checked (and repaired)
    /// before the next write so that the next record starts on a line of its own.
    maybe_torn: bool,
    /// Appends (a line, or a batch of lines) since open: the sequence number of the last one.
    appended: u64,
}

/// How far the file is known to be on disk, in appended lines.
#[derive(Default)]
struct SyncState {
    /// Every append up to this one is synced.
    synced: u64,
    /// A sync covering appends up to this one failed: they count as not delivered.
    failed: u64,
}

/// Appends records to one file. Hooks that name the same file share one sink
/// (see [`SinkSet::build`]), so all writers of a file are serialised by one mutex.
pub struct JsonlSink {
    path: PathBuf,
    writer: Arc<Mutex<Writer>>,
    /// The last append whose `write_all` has returned (read by the syncer).
    appended: Arc<std::sync::atomic::AtomicU64>,
    /// Held by the one delivery syncing on behalf of the others (see the module docs).
    sync: Arc<Mutex<SyncState>>,
    /// A second handle on the file for `sync_data`, so appends go on during a sync.
    sync_file: Arc<File>,
    /// `sync_data` calls made, to see group sync work.
    syncs: Arc<std::sync::atomic::AtomicU64>,
}

impl JsonlSink {
    /// Opens (creating it if needed) the file for appending, and ends a torn last line
    /// left by a crash with a newline. Its folder must exist ([`JsonlSink::check`]).
    pub fn open(path: &Path) -> Result<Self, SetupError> {
        let open = |source| SetupError::Open {
            path: path.to_path_buf(),
            source,
        };
        Self::check_folder(path)?;
        // Events hold personal data: a new file is for hookwarden's user alone (an
        // existing file keeps the mode its owner gave it).
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .map_err(open)?;
        end_with_newline(&file).map_err(|source| SetupError::Repair {
            path: path.to_path_buf(),
            source,
        })?;
        let sync_file = file.try_clone().map_err(open)?;
        Ok(JsonlSink {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(Writer {
                file,
                maybe_torn: false,
                appended: 0,
            })),
            appended: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            sync: Arc::new(Mutex::new(SyncState::default())),
            sync_file: Arc::new(sync_file),
            syncs: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        })
    }

    /// What [`JsonlSink::open`] would refuse, without creating the file: its folder
    /// missing or not writable, the file itself not writable (`check-config`).
    pub fn check(path: &Path) -> Result<(), SetupError> {
        Self::check_folder(path)?;
        if path.exists() {
            OpenOptions::new()
                .append(true)
                .open(path)
                .map(drop)
                .map_err(|source| SetupError::Open {
                    path: path.to_path_buf(),
                    source,
                })
        } else {
            Ok(())
        }
    }

    /// The file's folder exists and can be written in. It is never created: a sink
    /// folder that is missing is a mistyped path far more often than a wish.
    fn check_folder(path: &Path) -> Result<(), SetupError> {
        let folder = path.parent().unwrap_or(Path::new(""));
        crate::files::writable_folder(folder, false).map_err(SetupError::Folder)
    }
}

/// Appends `\n` (and syncs) when the file is not empty and does not end with one.
fn end_with_newline(mut file: &File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        // The file is in append mode: this goes to the end whatever the read position.
        file.write_all(b"\n")?;
        file.sync_data()?;
    }
    Ok(())
}

/// Appends one line or a batch of lines (each with its newline, in one buffer, one
/// `write_all`), not synced yet; returns the append's sequence number. A kill in the
/// middle of it leaves the lines before the cut whole and one torn line (see the
/// module docs), as a single line's write does.
fn append(writer: &mut Writer, lines: &[u8]) -> std::io::Result<u64> {
    if writer.maybe_torn {
        end_with_newline(&writer.file)?;
        writer.maybe_torn = false;
    }
    match writer.file.write_all(lines) {
        Ok(()) => {
            writer.appended += 1;
            Ok(writer.appended)
        }
        Err(e) => {
            writer.maybe_torn = true;
            Err(e)
        }
    }
}

/// The fields of a record that identify it; everything else in the line is skipped.
#[derive(Deserialize)]
struct RecordKey {
    hook: String,
    uuid: String,
}

/// Looks for a line of `hook` with `uuid` in the last `max_bytes` of the file.
fn scan_tail(mut file: &File, hook: &str, uuid: &str, max_bytes: u64) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    let window = len.saturating_sub(max_bytes);
    // Read from one byte before the window: if that byte is a newline, the window
    // starts with a whole line; otherwise the first line in the window is cut.
    let start = window.saturating_sub(1);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.take(len - start).read_to_end(&mut tail)?;
    // Bytes that are not UTF-8 can only be in a torn line, which is not JSON anyway.
    let text = String::from_utf8_lossy(&tail);
    // Empty when the window starts on a line boundary, else a line cut by the window
    // (which cannot be judged). Skipped either way.
    let first = if window > 0 {
        text.find('\n').map_or(text.len(), |i| i + 1)
    } else {
        0
    };
    let text = &text[first..];
    // Find candidates with the (fast) substring search of std: the uuid as serde_json
    // writes it, quotes included, which is how this sink wrote it. Then parse each
    // candidate line to compare hook and uuid exactly.
    let needle = serde_json::to_string(uuid).unwrap_or_default();
    if needle.is_empty() {
        return Ok(false);
    }
    Ok(text.match_indices(needle.as_str()).any(|(at, _)| {
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        serde_json::from_str::<RecordKey>(&text[start..end])
            .is_ok_and(|key| key.hook == hook && key.uuid == uuid)
    }))
}

impl JsonlSink {
    /// Returns once append `seq` is on disk: covered by a sync that started after it was
    /// appended, this caller's own or another's.
    async fn sync_through(&self, seq: u64) -> Result<(), SinkError> {
        let mut state = self.sync.clone().lock_owned().await;
        let failed = || {
            SinkError::transient(format!(
                "cannot sync {}: the line may not be on disk",
                self.path.display()
            ))
        };
        if seq <= state.failed {
            return Err(failed());
        }
        if seq <= state.synced {
            return Ok(());
        }
        // Everything appended until now, this line included, is covered by this sync.
        let target = self.appended.load(std::sync::atomic::Ordering::Acquire);
        let file = self.sync_file.clone();
        self.syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
        match synced {
            Ok(Ok(())) => {
                state.synced = state.synced.max(target);
                Ok(())
            }
            Ok(Err(e)) => {
                state.failed = state.failed.max(target);
                tracing::warn!(path = %self.path.display(), error = %e, "sync failed; the lines it covered will be delivered again");
                Err(failed())
            }
            Err(e) => {
                state.failed = state.failed.max(target);
                Err(SinkError::transient(format!("jsonl sync task failed: {e}")))
            }
        }
    }

    /// Appends `lines` (whole lines, each with its newline; see [`append`]) and
    /// returns once they are on disk.
    async fn append_synced(&self, lines: Vec<u8>) -> Result<(), SinkError> {
        // The guard moves into the blocking task: if this future is dropped mid-write,
        // the write still finishes under the lock and the next writer starts after it.
        let mut guard = self.writer.clone().lock_owned().await;
        let appended = self.appended.clone();
        let seq = tokio::task::spawn_blocking(move || {
            let seq = append(&mut guard, &lines)?;
            appended.store(seq, std::sync::atomic::Ordering::Release);
            Ok::<u64, std::io::Error>(seq)
        })
        .await
        .map_err(|e| SinkError::transient(format!("jsonl writer task failed: {e}")))?
        .map_err(|e| {
            SinkError::transient(format!("cannot append to {}: {e}", self.path.display()))
        })?;
        self.sync_through(seq).await
    }
}

#[async_trait]
impl Sink for JsonlSink {
    async fn deliver(&self, record: &SinkRecord<'_>) -> Result<(), SinkError> {
        self.append_synced(json_lines(std::slice::from_ref(record)))
            .await
    }

    fn batches(&self) -> bool {
        true
    }

    /// One buffer, one write, one sync for the whole batch. A failed write may
    /// leave some of its lines in the file (delivered again on retry: duplicates,
    /// never losses) and a torn last line, ended before the next write.
    async fn deliver_batch(&self, records: &[SinkRecord<'_>]) -> Result<(), SinkError> {
        self.append_synced(json_lines(records)).await
    }

    /// Scans the last [`CONTAINS_SCAN_BYTES`] of the file for a line of this hook
    /// with this uuid. Any read error answers `false` (the event is written again).
    async fn contains(&self, hook: &str, uuid: &str) -> bool {
        let guard = self.writer.clone().lock_owned().await;
        let (hook, uuid) = (hook.to_owned(), uuid.to_owned());
        let path = self.path.clone();
        let found = tokio::task::spawn_blocking(move || {
            scan_tail(&guard.file, &hook, &uuid, CONTAINS_SCAN_BYTES)
        })
        .await;
        match found {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot scan the JSONL file; the event will be written again");
                false
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "JSONL scan task failed; the event will be written again");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Job;

    fn job(hook: &str, uuid: &str) -> Job {
        Job {
            id: 1,
            lease_token: 1,
            hook: hook.into(),
            sink: "file".into(),
            uuid: uuid.into(),
            event_id: "e-1".into(),
            event_type: "user.session.start".into(),
            received_at: 1_700_000_000_000,
            attempts: 0,
            interrupted: false,
            recovered: false,
            payload: format!(r#"{{"uuid":"{uuid}","eventType":"user.session.start"}}"#),
        }
    }

    async fn deliver(sink: &JsonlSink, hook: &str, uuid: &str) {
        let job = job(hook, uuid);
        let record = SinkRecord::from_job(&job).expect("record");
        sink.deliver(&record).await.expect("delivered");
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn a_new_file_is_for_its_owner_alone_and_an_old_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let new = dir.path().join("new.jsonl");
        let sink = JsonlSink::open(&new).expect("open");
        deliver(&sink, "okta", "u-1").await;
        assert_eq!(mode(&new), 0o600);
        let old = dir.path().join("old.jsonl");
        std::fs::write(&old, "").expect("write");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        JsonlSink::open(&old).expect("open");
        assert_eq!(mode(&old), 0o640);
    }

    #[tokio::test]
    async fn one_line_per_record_and_a_missing_folder_is_refused_not_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/events.jsonl");
        let Err(SetupError::Folder(crate::files::FolderError::Missing(missing))) =
            JsonlSink::open(&path)
        else {
            panic!("a missing folder must be refused");
        };
        assert_eq!(missing, dir.path().join("a/b"));
        assert!(!dir.path().join("a").exists(), "nothing created");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        let sink = JsonlSink::open(&path).expect("open");
        deliver(&sink, "okta", "u-1").await;
        deliver(&sink, "okta", "u-2").await;
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with('\n'));
        let lines = lines(&path);
        assert_eq!(lines.len(), 2);
        for (line, uuid) in lines.iter().zip(["u-1", "u-2"]) {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            assert_eq!(v["hook"], "okta");
            assert_eq!(v["uuid"], uuid);
            assert_eq!(v["event"]["uuid"], uuid);
            assert_eq!(v["attempt"], 1);
        }
    }

    #[tokio::test]
    async fn a_pretty_printed_event_still_makes_one_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let sink = JsonlSink::open(&path).expect("open");
        let mut job = job("okta", "u-1");
        job.payload = "{\r\n  \"uuid\": \"u-1\",\n  \"text\": \"a\\nb\"\n}".into();
        let record = SinkRecord::from_job(&job).expect("record");
        sink.deliver(&record).await.expect("delivered");
        let lines = lines(&path);
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        let sent: serde_json::Value = serde_json::from_str(&job.payload).expect("json");
        assert_eq!(v["event"], sent);
        assert_eq!(v["event"]["text"], "a\nb");
        assert!(sink.contains("okta", "u-1").await);
    }

    #[tokio::test]
    async fn concurrent_writers_keep_lines_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let sink = Arc::new(JsonlSink::open(&path).expect("open"));
        let mut tasks = Vec::new();
        for i in 0..32 {
            let sink = sink.clone();
            tasks.push(tokio::spawn(async move {
                deliver(&sink, "okta", &format!("u-{i}")).await;
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let lines = lines(&path);
        assert_eq!(lines.len(), 32);
        for line in &lines {
            serde_json::from_str::<serde_json::Value>(line).expect("whole line");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deliveries_share_syncs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let sink = Arc::new(JsonlSink::open(&path).expect("open"));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let sink = sink.clone();
                tokio::spawn(async move { deliver(&sink, "okta", &format!("u-{i}")).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(lines(&path).len(), 64);
        let syncs = sink.syncs.load(std::sync::atomic::Ordering::Relaxed);
        assert!(syncs < 64, "{syncs} syncs for 64 concurrent deliveries");
    }

    #[tokio::test]
    async fn a_batch_is_one_write_and_one_sync_after_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let sink = JsonlSink::open(&path).expect("open");
        deliver(&sink, "okta", "u-0").await;
        // A crash tore the next line; the batch must start on a line of its own.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"hook\":\"ok"))
            .expect("tear");
        sink.writer.lock().await.maybe_torn = true;
        let syncs_before = sink.syncs.load(std::sync::atomic::Ordering::Relaxed);
        let jobs: Vec<Job> = (1..=5).map(|i| job("okta", &format!("u-{i}"))).collect();
        let records: Vec<SinkRecord> = jobs
            .iter()
            .map(|j| SinkRecord::from_job(j).expect("record"))
            .collect();
        sink.deliver_batch(&records).await.expect("delivered");
        let syncs = sink.syncs.load(std::sync::atomic::Ordering::Relaxed) - syncs_before;
        assert_eq!(syncs, 1, "one sync for the batch");
        let lines = lines(&path);
        assert_eq!(lines.len(), 7, "{lines:?}");
        assert_eq!(lines[1], "{\"hook\":\"ok");
        let uuids: Vec<String> = lines[2..]
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("whole line");
                v["uuid"].as_str().expect("uuid").to_owned()
            })
            .collect();
        assert_eq!(uuids, ["u-1", "u-2", "u-3", "u-4", "u-5"]);
        assert!(sink.contains("okta", "u-5").await);
    }

    #[tokio::test]
    async fn a_torn_last_line_stays_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        std::fs::write(
            &path,
            "{\"hook\":\"okta\",\"uuid\":\"u-0\"}\n{\"hook\":\"ok",
        )
        .expect("seed");
        let sink = JsonlSink::open(&path).expect("open");
        deliver(&sink, "okta", "u-1").await;
        let lines = lines(&path);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "{\"hook\":\"ok");
        let v: serde_json::Value = serde_json::from_str(&lines[2]).expect("json");
        assert_eq!(v["uuid"], "u-1");
        // Reopening a healthy file adds nothing.
        drop(sink);
        let _sink = JsonlSink::open(&path).expect("reopen");
        assert_eq!(self::lines(&path).len(), 3);
    }

    #[tokio::test]
    async fn contains_finds_what_was_written_for_that_hook() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let sink = JsonlSink::open(&path).expect("open");
        assert!(!sink.contains("okta", "u-1").await);
        deliver(&sink, "okta", "u-1").await;
        deliver(&sink, "other", "u-2").await;
        assert!(sink.contains("okta", "u-1").await);
        assert!(sink.contains("other", "u-2").await);
        assert!(!sink.contains("other", "u-1").await);
        assert!(!sink.contains("okta", "u-3").await);
        // Garbage and torn lines are skipped, not fatal.
        {
            let mut f = OpenOptions::new().append(true).open(&path).expect("open");
            f.write_all(b"not json u-9\n{\"hook\":\"okta\",\"uuid\":\"u-9\"")
                .expect("write");
        }
        assert!(!sink.contains("okta", "u-9").await);
    }

    #[tokio::test]
    async fn scan_is_bounded_to_the_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let sink = JsonlSink::open(&path).expect("open");
        deliver(&sink, "okta", "u-old").await;
        deliver(&sink, "okta", "u-new").await;
        let lines = lines(&path);
        let old_len = lines[0].len() as u64 + 1;
        let new_len = lines[1].len() as u64 + 1;
        let file = File::open(&path).expect("open");
        // A window that starts exactly on a line boundary sees that line whole.
        assert!(scan_tail(&file, "okta", "u-new", new_len).expect("scan"));
        assert!(!scan_tail(&file, "okta", "u-old", new_len).expect("scan"));
        // A window that starts inside the older line does not judge it...
        assert!(!scan_tail(&file, "okta", "u-old", new_len + old_len - 1).expect("scan"));
        // ...and one that holds it whole finds it, at the start of the file or not.
        assert!(scan_tail(&file, "okta", "u-old", new_len + old_len).expect("scan"));
        assert!(scan_tail(&file, "okta", "u-old", 1 << 20).expect("scan"));
    }
}
