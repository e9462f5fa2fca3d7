//! Connection setup and schema migrations.
//!
//! `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`; the version is `PRAGMA user_version`
//! (0 in a new file). To change the schema, append a file to `src/migrations/` and to `MIGRATIONS`; never
//! edit one that has been released, since databases in the field already ran it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::{Store, StoreError};

/// The migrations, in order: `MIGRATIONS[i]` upgrades version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_tokens_sessions.sql"),
    include_str!("migrations/0002_motion_events.sql"),
];

/// The newest schema version this build knows.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of a camhub database ("camh"), so a file of another program is recognised.
const APPLICATION_ID: i32 = 0x6361_6d68;

/// How long a statement waits for another connection's lock before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The name used in errors for an in-memory store.
pub(crate) const MEMORY: &str = ":memory:";

/// Configures a freshly opened connection, refuses a foreign or too-new file, and migrates it.
pub(crate) fn prepare(mut conn: Connection, path: Option<PathBuf>) -> Result<Store, StoreError> {
    let shown = path.clone().unwrap_or_else(|| PathBuf::from(MEMORY));
    let open_err = |source: rusqlite::Error| open_error(&shown, source);

    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(open_err)?;

    // Read-only checks first: a file camhub must refuse is left exactly as it was.
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(open_err)?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(StoreError::Corrupt(format!(
            "{} belongs to another program (application_id {application_id:#x}), not camhub",
            shown.display()
        )));
    }
    let version = user_version(&conn).map_err(open_err)?;
    check_version(&shown, version)?;

    if path.is_some() {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                path = %shown.display(),
                journal_mode = %mode,
                "the store could not switch to WAL mode (a network file system?); it works, but readers and the writer now wait for each other"
            );
        }
    }

    if version < LATEST {
        migrate(&mut conn, &shown)?;
    }
    Ok(Store {
        conn: Mutex::new(conn),
        path,
    })
}

/// Applies every missing migration, each in its own `BEGIN IMMEDIATE` transaction that re-reads the version,
/// so two processes opening the same file at once cannot both apply one.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| open_error(path, source))?;
        let current = user_version(&tx).map_err(|source| open_error(path, source))?;
        check_version(path, current)?;
        if current == LATEST {
            return Ok(());
        }
        let version = current + 1;
        // In range: check_version made 0 <= current, and current < LATEST = MIGRATIONS.len().
        let sql = MIGRATIONS[current as usize];
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .and_then(|()| tx.pragma_update(None, "application_id", APPLICATION_ID))
            .and_then(|()| tx.commit())
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                version,
                source,
            })?;
        tracing::debug!(path = %path.display(), version, "store schema migrated");
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn check_version(path: &Path, found: i64) -> Result<(), StoreError> {
    if found > LATEST {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known: LATEST,
        });
    }
    if found < 0 {
        return Err(StoreError::Corrupt(format!(
            "{} has a negative schema version ({found}), which camhub never writes",
            path.display()
        )));
    }
    Ok(())
}

/// An error while opening: a file that is not a database is [`StoreError::Corrupt`] (permissions are not the
/// problem then), anything else [`StoreError::Open`].
fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt(format!(
            "{} is not a SQLite database or is damaged ({source})",
            path.display()
        )),
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_is_a_non_empty_file() {
        assert!(!MIGRATIONS.is_empty());
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            assert!(sql.contains("CREATE"), "migration {} is empty", i + 1);
        }
    }

    #[test]
    fn a_new_in_memory_store_is_at_the_latest_version() {
        let store = Store::open_in_memory().unwrap();
        let conn = store.conn();
        assert_eq!(user_version(&conn).unwrap(), LATEST);
        let id: i32 = conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
        let fk: bool = conn
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .unwrap();
        assert!(fk);
    }
}
