//! The auth layer's tables: API tokens and login sessions. Only SHA-256 hashes of the secrets are stored.

use std::fmt;

use rusqlite::params;

use crate::{Store, StoreError};

/// A token to insert with [`Store::insert_token`]. The caller generates the random token, shows it once,
/// and passes only its SHA-256 here.
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    /// A label for people ("home-assistant"); need not be unique.
    pub name: String,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// The role the token grants (the auth layer defines the names).
    pub role: String,
    /// The camera ids the token may see; `None` = every camera.
    pub cameras: Option<Vec<String>>,
    /// The user who created it.
    pub created_by: String,
    /// Creation time, unix milliseconds.
    pub created_ms: i64,
    /// Expiry time, unix milliseconds; `None` = never expires.
    pub expires_ms: Option<i64>,
}

/// A stored API token, as listed by [`Store::tokens`].
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's id: assigned by the store, never reused.
    pub id: i64,
    /// A label for people; need not be unique.
    pub name: String,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// The role the token grants.
    pub role: String,
    /// The camera ids the token may see; `None` = every camera.
    pub cameras: Option<Vec<String>>,
    /// The user who created it.
    pub created_by: String,
    /// Creation time, unix milliseconds.
    pub created_ms: i64,
    /// Expiry time, unix milliseconds; `None` = never expires.
    pub expires_ms: Option<i64>,
    /// When it was revoked, unix milliseconds; `None` = not revoked.
    pub revoked_ms: Option<i64>,
    /// When it was last used, unix milliseconds ([`Store::touch_token`]); `None` = never.
    pub last_used_ms: Option<i64>,
}

/// A login session. The cookie itself stays with the browser; the store keeps its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session cookie.
    pub hash: [u8; 32],
    /// The user logged in.
    pub user: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Login time, unix milliseconds.
    pub created_ms: i64,
    /// Expiry time, unix milliseconds: the session is listed while `now_ms < expires_ms`.
    pub expires_ms: i64,
}

/// What `Debug` prints instead of a hash or a CSRF token.
const HIDDEN: &str = "***";

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("name", &self.name)
            .field("hash", &HIDDEN)
            .field("role", &self.role)
            .field("cameras", &self.cameras)
            .field("created_by", &self.created_by)
            .field("created_ms", &self.created_ms)
            .field("expires_ms", &self.expires_ms)
            .finish()
    }
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("hash", &HIDDEN)
            .field("role", &self.role)
            .field("cameras", &self.cameras)
            .field("created_by", &self.created_by)
            .field("created_ms", &self.created_ms)
            .field("expires_ms", &self.expires_ms)
            .field("revoked_ms", &self.revoked_ms)
            .field("last_used_ms", &self.last_used_ms)
            .finish()
    }
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("hash", &HIDDEN)
            .field("user", &self.user)
            .field("csrf", &HIDDEN)
            .field("created_ms", &self.created_ms)
            .field("expires_ms", &self.expires_ms)
            .finish()
    }
}

/// A `tokens` row as SQLite returns it, before the checks that turn it into a [`TokenRecord`].
struct TokenRow {
    id: i64,
    name: String,
    hash: Vec<u8>,
    role: String,
    cameras: Option<String>,
    created_by: String,
    created_ms: i64,
    expires_ms: Option<i64>,
    revoked_ms: Option<i64>,
    last_used_ms: Option<i64>,
}

impl TokenRow {
    fn into_record(self) -> Result<TokenRecord, StoreError> {
        let id = self.id;
        let hash = hash_from(self.hash, || format!("token {id}"))?;
        let cameras = match self.cameras {
            None => None,
            Some(json) => Some(serde_json::from_str::<Vec<String>>(&json).map_err(|e| {
                StoreError::Corrupt(format!(
                    "token {id}'s cameras are not a JSON list of camera ids ({e})"
                ))
            })?),
        };
        Ok(TokenRecord {
            id,
            name: self.name,
            hash,
            role: self.role,
            cameras,
            created_by: self.created_by,
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
            revoked_ms: self.revoked_ms,
            last_used_ms: self.last_used_ms,
        })
    }
}

fn hash_from(bytes: Vec<u8>, owner: impl FnOnce() -> String) -> Result<[u8; 32], StoreError> {
    let len = bytes.len();
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| StoreError::Corrupt(format!("{}'s hash is {len} bytes, not 32", owner())))
}

/// `cameras` as stored: a JSON array of strings.
fn cameras_json(cameras: &[String]) -> String {
    serde_json::Value::Array(
        cameras
            .iter()
            .cloned()
            .map(serde_json::Value::String)
            .collect(),
    )
    .to_string()
}

/// A UNIQUE / PRIMARY KEY violation becomes [`StoreError::Duplicate`]; anything else stays an SQLite error.
fn duplicate(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match e.sqlite_error() {
        Some(err)
            if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Duplicate(what)
        }
        _ => StoreError::Sqlite(e),
    }
}

const TOKEN_COLUMNS: &str =
    "id, name, hash, role, cameras, created_by, created_ms, expires_ms, revoked_ms, last_used_ms";

impl Store {
    /// Stores a new API token and returns it with its id. A token whose hash is already stored is refused
    /// with [`StoreError::Duplicate`].
    pub fn insert_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO tokens (name, hash, role, cameras, created_by, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            token.name,
            &token.hash[..],
            token.role,
            token.cameras.as_deref().map(cameras_json),
            token.created_by,
            token.created_ms,
            token.expires_ms,
        ])
        .map_err(duplicate("token"))?;
        Ok(TokenRecord {
            id: conn.last_insert_rowid(),
            name: token.name.clone(),
            hash: token.hash,
            role: token.role.clone(),
            cameras: token.cameras.clone(),
            created_by: token.created_by.clone(),
            created_ms: token.created_ms,
            expires_ms: token.expires_ms,
            revoked_ms: None,
            last_used_ms: None,
        })
    }

    /// Every token, revoked and expired ones included, by id.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"))?;
        let rows = statement
            .query_map([], |row| {
                Ok(TokenRow {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    hash: row.get(2)?,
                    role: row.get(3)?,
                    cameras: row.get(4)?,
                    created_by: row.get(5)?,
                    created_ms: row.get(6)?,
                    expires_ms: row.get(7)?,
                    revoked_ms: row.get(8)?,
                    last_used_ms: row.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(TokenRow::into_record).collect()
    }

    /// Marks token `id` revoked at `at_ms`. Returns false if there is no such token or it was already
    /// revoked (the first revocation time is kept).
    pub fn revoke_token(&self, id: i64, at_ms: i64) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
            )?
            .execute(params![id, at_ms])?;
        Ok(changed > 0)
    }

    /// Sets token `id`'s `last_used_ms` to `at_ms` (nothing happens if there is no such token).
    ///
    /// Each call is a durable write: callers should touch a token at most every minute or so, not on
    /// every request.
    pub fn touch_token(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE tokens SET last_used_ms = ?2 WHERE id = ?1")?
            .execute(params![id, at_ms])?;
        Ok(())
    }

    /// Stores a new login session. A session whose hash is already stored is refused with
    /// [`StoreError::Duplicate`].
    pub fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO sessions (hash, user, csrf, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![&session.hash[..], session.user, session.csrf, session.created_ms, session.expires_ms])
            .map_err(duplicate("session"))?;
        Ok(())
    }

    /// The sessions not expired at `now_ms` (`now_ms < expires_ms`), oldest login first.
    pub fn sessions(&self, now_ms: i64) -> Result<Vec<SessionRecord>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT hash, user, csrf, created_ms, expires_ms FROM sessions
             WHERE expires_ms > ?1 ORDER BY created_ms, hash",
        )?;
        let rows = statement
            .query_map([now_ms], |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<(Vec<u8>, String, String, i64, i64)>>>()?;
        rows.into_iter()
            .map(|(hash, user, csrf, created_ms, expires_ms)| {
                let hash = hash_from(hash, || format!("a session of {user:?}"))?;
                Ok(SessionRecord {
                    hash,
                    user,
                    csrf,
                    created_ms,
                    expires_ms,
                })
            })
            .collect()
    }

    /// Deletes the session with this hash (logout). Returns false if there was none.
    pub fn delete_session(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let deleted = self
            .conn()
            .prepare_cached("DELETE FROM sessions WHERE hash = ?1")?
            .execute([&hash[..]])?;
        Ok(deleted > 0)
    }

    /// Deletes every session of `user` (log out everywhere, password change, user removed). Returns how many.
    pub fn delete_sessions_of(&self, user: &str) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM sessions WHERE user = ?1")?
            .execute([user])?)
    }

    /// Deletes the sessions expired at `now_ms` (`expires_ms <= now_ms`). Returns how many.
    pub fn delete_expired_sessions(&self, now_ms: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM sessions WHERE expires_ms <= ?1")?
            .execute([now_ms])?)
    }
}
