//! Stored motion events: their records in the SQLite store ([`camhub_store`]) and their JPEG files
//! under `data_dir/events/{camera}/{YYYY-MM-DD}/`. This module owns the files: it writes them
//! (atomically, so a crash never leaves half a JPEG behind a record), serves them by the relative
//! paths the records hold (never a path outside the directory), and deletes them with their
//! records, by hand or by retention (`[events] retention` by age, `max_size` by total bytes,
//! oldest first). At start an event left open by a crash is closed at the time of its last frame.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use camhub_store::{EventRecord, Store};
use tracing::{debug, info, warn};

/// The directory inside `data_dir`.
pub const EVENTS_DIR: &str = "events";
/// How often retention runs besides after each event.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The event store of one camhub process.
pub struct Events {
    /// The records.
    pub store: Arc<Store>,
    dir: PathBuf,
    retention: Duration,
    max_size: u64,
}

impl Events {
    /// Opens the events of `data_dir` (creating `events/`), sharing `store` when login already
    /// opened it, and closes the events a crash left open.
    pub fn open(
        data_dir: &Path,
        config: &camhub_config::Events,
        store: Option<Arc<Store>>,
    ) -> Result<Arc<Events>, String> {
        let store = match store {
            Some(s) => s,
            None => Arc::new(Store::open_dir(data_dir).map_err(|e| e.to_string())?),
        };
        let dir = data_dir.join(EVENTS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the events directory {}: {e}", dir.display()))?;
        match store.close_open_events() {
            Ok(0) => {}
            Ok(n) => info!("closed {n} motion event(s) left open by the last run"),
            Err(e) => warn!("cannot close the motion events left open: {e}"),
        }
        Ok(Arc::new(Events {
            store,
            dir,
            retention: config.retention,
            max_size: config.max_size,
        }))
    }

    /// Writes one JPEG of event `id` as `{camera}/{date}/{id}-{name}.jpg`; returns its relative
    /// path and size.
    pub fn write(
        &self,
        camera: &str,
        id: i64,
        name: &str,
        unix_ms: i64,
        jpeg: &[u8],
    ) -> std::io::Result<(String, i64)> {
        let (y, m, d) = camhub_media::civil::utc_date(unix_ms);
        let rel = format!("{camera}/{y:04}-{m:02}-{d:02}/{id}-{name}.jpg");
        let path = self.dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Written aside and renamed: a reader or a crash sees the whole file or none.
        let tmp = path.with_extension("jpg.tmp");
        std::fs::write(&tmp, jpeg)?;
        std::fs::rename(&tmp, &path)?;
        Ok((rel, i64::try_from(jpeg.len()).unwrap_or(i64::MAX)))
    }

    /// The file a record's relative path names; None for a path that would leave the directory.
    pub fn file(&self, rel: &str) -> Option<PathBuf> {
        let p = Path::new(rel);
        (!rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_))))
            .then(|| self.dir.join(p))
    }

    /// Deletes a file of an event (a missing file is fine: it is gone either way).
    pub fn remove_file(&self, rel: &str) {
        if let Some(path) = self.file(rel) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!("cannot delete {}: {e}", path.display()),
            }
        }
    }

    /// Deletes the files of deleted records.
    fn remove_files(&self, records: &[EventRecord]) {
        for r in records {
            for f in r.snapshot.iter().chain(&r.frames) {
                self.remove_file(f);
            }
        }
    }

    /// Deletes one event and its files; None when there is no such event.
    pub fn delete(&self, id: i64) -> Result<Option<EventRecord>, String> {
        let gone = self.store.delete_event(id).map_err(|e| e.to_string())?;
        if let Some(r) = &gone {
            self.remove_files(std::slice::from_ref(r));
        }
        Ok(gone)
    }

    /// Retention: deletes ended events older than `retention`, then the oldest while all events
    /// take more than `max_size`. Returns how many were deleted.
    pub fn prune(&self, now_ms: i64) -> usize {
        let older_than =
            now_ms.saturating_sub(i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX));
        match self.store.prune_events(older_than, self.max_size) {
            Ok(gone) => {
                self.remove_files(&gone);
                if !gone.is_empty() {
                    debug!("retention deleted {} motion event(s)", gone.len());
                }
                gone.len()
            }
            Err(e) => {
                warn!("motion event retention failed: {e}");
                0
            }
        }
    }

    /// Runs retention now and every [`PRUNE_EVERY`], off the async threads.
    pub fn spawn_retention(self: &Arc<Self>) {
        let events = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PRUNE_EVERY);
            loop {
                every.tick().await;
                let e = events.clone();
                let now = i64::try_from(crate::hub::unix_ms()).unwrap_or(i64::MAX);
                let _ = tokio::task::spawn_blocking(move || e.prune(now)).await;
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use camhub_store::EventUpdate;

    const DAY: i64 = 86_400_000;

    /// An ended event of `camera` at `start` with one frame file of `bytes` bytes; its file path.
    fn event(events: &Events, camera: &str, start: i64, bytes: usize) -> String {
        let id = events.store.event_start(camera, start, 1.0, None).unwrap();
        let file = events
            .write(camera, id, "frame-0", start, &vec![0xFF; bytes])
            .unwrap();
        let rel = file.0.clone();
        events
            .store
            .event_update(
                id,
                &EventUpdate {
                    last_ms: start + 1000,
                    add_frames: vec![file],
                    ..EventUpdate::default()
                },
            )
            .unwrap();
        events.store.event_end(id, start + 1000).unwrap();
        rel
    }

    #[test]
    fn retention_deletes_the_oldest_files_by_age_then_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let config = camhub_config::Events {
            retention: Duration::from_secs(7 * 86_400),
            max_size: 25_000,
        };
        let events = Events::open(dir.path(), &config, None).unwrap();
        let now = 1_796_180_645_678;
        let ancient = event(&events, "door", now - 30 * DAY, 1_000);
        let old = event(&events, "door", now - 3 * DAY, 10_000);
        let newer = event(&events, "yard", now - 2 * DAY, 10_000);
        let newest = event(&events, "door", now - DAY, 10_000);
        for rel in [&ancient, &old, &newer, &newest] {
            assert!(events.file(rel).unwrap().exists(), "{rel}");
        }
        // By age the 30-day-old one goes; then 30 000 bytes are over 25 000: the oldest goes too.
        assert_eq!(events.prune(now), 2);
        assert!(!events.file(&ancient).unwrap().exists());
        assert!(!events.file(&old).unwrap().exists());
        assert!(events.file(&newer).unwrap().exists());
        assert!(events.file(&newest).unwrap().exists());
        assert_eq!(events.store.events_bytes().unwrap(), 20_000);
        assert_eq!(events.prune(now), 0);
    }

    #[test]
    fn files_are_named_by_camera_and_utc_date_and_never_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::open(dir.path(), &camhub_config::Events::default(), None).unwrap();
        let (rel, size) = events
            .write("door", 7, "snapshot-1", 1_796_180_645_678, b"jpeg")
            .unwrap();
        assert_eq!(rel, "door/2026-12-02/7-snapshot-1.jpg");
        assert_eq!(size, 4);
        assert_eq!(
            std::fs::read(dir.path().join("events").join(&rel)).unwrap(),
            b"jpeg"
        );
        for bad in ["../camhub.db", "/etc/passwd", "door/../../x", ""] {
            assert!(events.file(bad).is_none(), "{bad}");
        }
        events.remove_file(&rel);
        assert!(!dir.path().join("events").join(&rel).exists());
    }
}
