//! [`StoreError`]: every way the store can fail, each message saying what to do about it.

use std::path::PathBuf;

/// An error from the store. The `Display` text is meant for the operator: it names the file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory that holds the database could not be created.
    #[error("cannot create the store's directory {}: {source} — data_dir must be a directory that camhub's user can create and write; check the path and its parents' permissions", path.display())]
    CreateDir {
        /// The directory (`data_dir`).
        path: PathBuf,
        /// Why it could not be created.
        source: std::io::Error,
    },

    /// The database file could not be opened or set up (permissions, disk full, a read-only file system...).
    #[error("cannot open the store {}: {source} — check data_dir's permissions and free space", path.display())]
    Open {
        /// The database file (`data_dir/camhub.db`).
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },

    /// The database was written by a newer camhub whose schema this build does not know.
    #[error(
        "the store {} has schema version {found}, but this camhub only knows versions up to {known}: it was written by a newer camhub — run that newer camhub, or restore a backup of camhub.db made by this version",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },

    /// A schema migration failed; the transaction was rolled back, so the file is still at the previous version.
    #[error("cannot upgrade the store {} to schema version {version}: {source} — the file is unchanged; check data_dir's free space and permissions, then restart camhub", path.display())]
    Migrate {
        /// The database file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// The schema version that failed to apply.
        version: i64,
        /// SQLite's reason.
        source: rusqlite::Error,
    },

    /// A row with the same hash already exists (`what` is "token" or "session"). Hashes come from random
    /// values, so this means the caller reused one.
    #[error("a {0} with this hash already exists — generate a new random value")]
    Duplicate(&'static str),

    /// [`Store::event_update`](crate::Store::event_update) on a motion event that does not exist (deleted,
    /// e.g. by a user while it was ongoing) or has already ended. Nothing was recorded: the caller deletes
    /// the files it meant to add, and starts a new event if the motion goes on.
    #[error("motion event {0} does not exist or has already ended — its new files were not recorded; start a new event")]
    EventNotOpen(i64),

    /// A request the store refuses because an argument is out of range (a histogram of too many buckets,
    /// a negative file size, a score that is not a number...). It names the argument and the limit.
    #[error("invalid request to the store: {0}")]
    Invalid(String),

    /// The file is not a camhub database, or holds values camhub never writes.
    #[error("the store is corrupt: {0} — move camhub.db aside (camhub then starts a fresh one) or restore it from a backup")]
    Corrupt(String),

    /// Any other SQLite failure while reading or writing.
    #[error("the store failed: {0} — check data_dir's free space and permissions; if it persists, restart camhub")]
    Sqlite(#[from] rusqlite::Error),
}
