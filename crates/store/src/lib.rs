//! camhub's persistent state, in one SQLite file: `camhub.db` in the config's `data_dir`.
//!
//! What it owns: the **API tokens** and **login sessions** of the auth layer, and the **motion events**
//! (their times, peak score and box, and the paths and sizes of their JPEG files, which camhub keeps under
//! `data_dir/events/`; see [`Store::event_start`]). Each feature adds its tables as a new numbered
//! migration (`src/migrations/NNNN_*.sql`), never by editing a released one. The schema version lives in
//! `PRAGMA user_version`; [`Store::open_dir`] applies every missing migration, each in its own
//! transaction, and refuses a file from a newer camhub rather than guess at a schema it does not know.
//!
//! Secrets are never stored: a token or a session cookie is kept only as its SHA-256 (computed by the
//! caller), so a copied `camhub.db` does not let anyone in. The record types' `Debug` prints `***` instead
//! of hashes and CSRF values, so they cannot leak through logs either.
//!
//! The database runs in WAL mode: readers never block the writer, and a crash loses at most the
//! transaction in flight, never the file. `busy_timeout` is 5 s and foreign keys are enforced.
//!
//! It links the **system** SQLite (`libsqlite3-dev` to build, Debian's `libsqlite3-0` at run time) instead
//! of compiling a bundled copy: the `.deb` then gets SQLite's security fixes from the distribution's
//! updates, without a camhub release, and the build skips compiling a 250 000-line C file.
//!
//! The API is synchronous and every operation is a single small statement, or one short transaction when it
//! touches several rows (an event and its frames), behind one mutex: async callers use
//! `tokio::task::spawn_blocking` (or just call it; the operations take microseconds to a few milliseconds),
//! threads call it directly. [`Store`] is `Send + Sync`; share it in an `Arc`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

mod auth;
mod error;
mod events;
mod schema;

pub use auth::{NewToken, SessionRecord, TokenRecord};
pub use error::StoreError;
pub use events::{
    Bucket, EventBox, EventQuery, EventRecord, EventUpdate, MAX_EVENTS_PER_QUERY,
    MAX_HISTOGRAM_BUCKETS,
};

/// The database file's name inside `data_dir`.
pub const DB_FILE_NAME: &str = "camhub.db";

/// The newest schema version (`PRAGMA user_version`) this build knows: the number of migrations.
pub const SCHEMA_VERSION: i64 = schema::LATEST;

/// camhub's SQLite store: one connection behind a mutex. Cheap operations only; see the crate docs.
pub struct Store {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl Store {
    /// Opens (creating the directory and file if needed) `dir/camhub.db`, WAL mode, busy_timeout 5 s,
    /// foreign_keys on, and runs migrations (PRAGMA user_version; each migration in a transaction).
    /// A database from a NEWER camhub (user_version above what this build knows) is refused with a clear error.
    ///
    /// A new file is created readable by its owner only (it holds hashes of credentials).
    pub fn open_dir(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE_NAME);
        create_private(&path);
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        schema::prepare(conn, Some(path))
    }

    /// Opens a fresh, empty store in memory (for tests, and for running without a `data_dir`), fully migrated.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(schema::MEMORY),
            source,
        })?;
        schema::prepare(conn, None)
    }

    /// The path of the database file (None in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection. A panic while it was held cannot have left it mid-transaction (an unfinished
    /// `Transaction` rolls back when dropped), so a poisoned lock is simply taken over.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Creates `path` empty with mode 0600 if it does not exist yet, so that SQLite (which keeps an existing
/// file's mode, and gives `-wal` / `-shm` the same) never creates it world-readable. Failures are left to
/// SQLite's open, which reports them with the path.
fn create_private(path: &Path) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _ = options.open(path);
}
