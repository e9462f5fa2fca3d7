//! The store against a real SQLite file in a temporary directory.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use camhub_store::{
    NewToken, SessionRecord, Store, StoreError, TokenRecord, DB_FILE_NAME, SCHEMA_VERSION,
};

fn token(name: &str, fill: u8, cameras: Option<&[&str]>) -> NewToken {
    NewToken {
        name: name.to_owned(),
        hash: [fill; 32],
        role: "viewer".to_owned(),
        cameras: cameras.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
        created_by: "admin".to_owned(),
        created_ms: 1_700_000_000_000,
        expires_ms: Some(1_800_000_000_000),
    }
}

fn session(fill: u8, user: &str, created_ms: i64, expires_ms: i64) -> SessionRecord {
    SessionRecord {
        hash: [fill; 32],
        user: user.to_owned(),
        csrf: format!("csrf-{fill}"),
        created_ms,
        expires_ms,
    }
}

fn sqlite(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn migrations_create_the_schema_and_a_reopen_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested/data");
    let store = Store::open_dir(&data_dir).unwrap();
    let path = data_dir.join(DB_FILE_NAME);
    assert_eq!(store.path(), Some(path.as_path()));
    let inserted = store
        .insert_token(&token("ha", 1, Some(&["door"])))
        .unwrap();
    store
        .insert_session(&session(2, "alice", 10, i64::MAX))
        .unwrap();
    drop(store);

    // The file is a WAL database at the latest version, with the tables and indexes.
    let conn = sqlite(&path);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            "event_frames",
            "event_totals",
            "events",
            "events_camera_start",
            "events_end",
            "events_start",
            "sessions",
            "sessions_expires",
            "sessions_user",
            "tokens",
            "tokens_hash"
        ]
    );
    let unique: bool = conn
        .query_row(
            "SELECT \"unique\" FROM pragma_index_list('tokens') WHERE name = 'tokens_hash'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(unique);
    drop(conn);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "camhub.db is readable by others: {mode:o}");
    }

    let store = Store::open_dir(&data_dir).unwrap();
    assert_eq!(store.tokens().unwrap(), [inserted]);
    assert_eq!(
        store.sessions(0).unwrap(),
        [session(2, "alice", 10, i64::MAX)]
    );
}

#[test]
fn a_database_from_a_newer_camhub_is_refused_naming_the_version() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open_dir(dir.path()).unwrap());
    let path = dir.path().join(DB_FILE_NAME);
    sqlite(&path)
        .pragma_update(None, "user_version", 999)
        .unwrap();

    let err = Store::open_dir(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("999"), "{message}");
    assert!(message.contains(&SCHEMA_VERSION.to_string()), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("newer camhub"), "{message}");
    // Refusing left the file alone.
    let version: i64 = sqlite(&path)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 999);
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Store::open_dir(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_database_of_another_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let conn = sqlite(&path);
    conn.pragma_update(None, "application_id", 0x1234_5678)
        .unwrap();
    conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(conn);
    let err = Store::open_dir(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("another program"), "{err}");
}

#[test]
fn a_directory_that_cannot_be_created_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let data_dir = file.join("data");
    let err = Store::open_dir(&data_dir).unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&data_dir.display().to_string()),
        "{message}"
    );
    assert!(message.contains("permissions"), "{message}");
}

#[test]
fn tokens_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    assert_eq!(store.tokens().unwrap(), []);

    let all = store.insert_token(&token("all cameras", 1, None)).unwrap();
    let some = store
        .insert_token(&token("two cameras", 2, Some(&["door", "garage \"2\""])))
        .unwrap();
    let none = store
        .insert_token(&token("no cameras", 3, Some(&[])))
        .unwrap();
    // Names need not be unique.
    let twin = store.insert_token(&token("all cameras", 4, None)).unwrap();
    assert!(all.id < some.id && some.id < none.id && none.id < twin.id);
    assert_eq!(all.cameras, None);
    assert_eq!(
        some.cameras.as_deref(),
        Some(&["door".to_owned(), "garage \"2\"".to_owned()][..])
    );
    assert_eq!(none.cameras, Some(vec![]));
    assert_eq!((all.revoked_ms, all.last_used_ms), (None, None));

    let never_expires = store
        .insert_token(&NewToken {
            expires_ms: None,
            ..token("forever", 5, None)
        })
        .unwrap();
    assert_eq!(never_expires.expires_ms, None);

    let listed = store.tokens().unwrap();
    assert_eq!(
        listed,
        [all.clone(), some.clone(), none, twin, never_expires]
    );
    assert_eq!(listed[0].hash, [1; 32]);
    assert_eq!(listed[1].role, "viewer");
    assert_eq!(listed[1].created_by, "admin");
    assert_eq!(listed[1].created_ms, 1_700_000_000_000);
    assert_eq!(listed[1].expires_ms, Some(1_800_000_000_000));
}

#[test]
fn revoke_and_touch() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.path(), None);
    let t = store.insert_token(&token("t", 9, None)).unwrap();
    let other = store.insert_token(&token("other", 8, None)).unwrap();

    assert!(store.revoke_token(t.id, 100).unwrap());
    assert!(!store.revoke_token(t.id, 200).unwrap(), "revoking twice");
    assert!(!store.revoke_token(12345, 200).unwrap(), "no such token");

    store.touch_token(t.id, 300).unwrap();
    store.touch_token(t.id, 400).unwrap();
    store.touch_token(12345, 400).unwrap();

    let listed = store.tokens().unwrap();
    let expected = TokenRecord {
        revoked_ms: Some(100),
        last_used_ms: Some(400),
        ..t
    };
    assert_eq!(
        listed,
        [expected, other],
        "revoked tokens stay listed; the first revocation time is kept"
    );
}

#[test]
fn a_duplicate_token_hash_is_an_error_not_a_panic() {
    let store = Store::open_in_memory().unwrap();
    store.insert_token(&token("first", 7, None)).unwrap();
    let err = store
        .insert_token(&token("second", 7, Some(&["door"])))
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate("token")), "{err:?}");
    assert_eq!(store.tokens().unwrap().len(), 1);

    store.insert_session(&session(7, "alice", 0, 10)).unwrap();
    let err = store.insert_session(&session(7, "bob", 0, 10)).unwrap_err();
    assert!(matches!(err, StoreError::Duplicate("session")), "{err:?}");
}

#[test]
fn sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let a1 = session(1, "alice", 100, 1_000);
    let a2 = session(2, "alice", 200, 5_000);
    let b = session(3, "bob", 300, 2_000);
    let expired = session(4, "bob", 50, 500);
    for s in [&a1, &a2, &b, &expired] {
        store.insert_session(s).unwrap();
    }

    // Listed while now < expires_ms, oldest login first.
    assert_eq!(
        store.sessions(0).unwrap(),
        [expired.clone(), a1.clone(), a2.clone(), b.clone()]
    );
    assert_eq!(
        store.sessions(500).unwrap(),
        [a1.clone(), a2.clone(), b.clone()]
    );
    assert_eq!(store.sessions(1_000).unwrap(), [a2.clone(), b.clone()]);

    // Logout.
    assert!(store.delete_session(&a1.hash).unwrap());
    assert!(!store.delete_session(&a1.hash).unwrap());
    assert!(!store.delete_session(&[99; 32]).unwrap());
    assert_eq!(
        store.sessions(0).unwrap(),
        [expired.clone(), a2.clone(), b.clone()]
    );

    // Expired ones are purged, live ones kept.
    assert_eq!(store.delete_expired_sessions(500).unwrap(), 1);
    assert_eq!(store.delete_expired_sessions(500).unwrap(), 0);
    assert_eq!(store.sessions(0).unwrap(), [a2.clone(), b.clone()]);

    // Log a user out everywhere.
    store
        .insert_session(&session(5, "alice", 400, 9_000))
        .unwrap();
    assert_eq!(store.delete_sessions_of("alice").unwrap(), 2);
    assert_eq!(store.delete_sessions_of("alice").unwrap(), 0);
    assert_eq!(store.delete_sessions_of("nobody").unwrap(), 0);
    assert_eq!(store.sessions(0).unwrap(), [b]);
}

#[test]
fn debug_never_prints_hashes_or_csrf() {
    // Bytes whose decimal and hex forms cannot come from the other fields.
    let hash: [u8; 32] = std::array::from_fn(|i| 0xd0 + i as u8);
    let forbidden: Vec<String> = vec![
        hash.iter().map(|b| format!("{b:02x}")).collect(),
        hash.iter().map(|b| format!("{b:02X}")).collect(),
        format!("{hash:?}"),
        format!("{:?}", &hash[..4]).trim_end_matches(']').to_owned(),
        "208, 209".to_owned(),
        "d0d1".to_owned(),
        "0xd0".to_owned(),
        "secret-csrf-value".to_owned(),
    ];

    let store = Store::open_in_memory().unwrap();
    let new = NewToken {
        hash,
        ..token("t", 0, Some(&["door"]))
    };
    let record = store.insert_token(&new).unwrap();
    let s = SessionRecord {
        hash,
        user: "alice".to_owned(),
        csrf: "secret-csrf-value".to_owned(),
        created_ms: 1,
        expires_ms: 2,
    };
    store.insert_session(&s).unwrap();
    let listed_token = store.tokens().unwrap();
    let listed_session = store.sessions(0).unwrap();

    for text in [
        format!("{new:?}"),
        format!("{new:#?}"),
        format!("{record:?}"),
        format!("{record:#?}"),
        format!("{listed_token:?}"),
        format!("{s:?}"),
        format!("{s:#?}"),
        format!("{listed_session:?}"),
        format!("{store:?}"),
    ] {
        for secret in &forbidden {
            assert!(
                !text.to_lowercase().contains(&secret.to_lowercase()),
                "{secret:?} in {text}"
            );
        }
    }
    let text = format!("{s:?}");
    assert!(
        text.contains("hash: \"***\"") && text.contains("csrf: \"***\"") && text.contains("alice"),
        "{text}"
    );
    let text = format!("{record:?}");
    assert!(
        text.contains("hash: \"***\"") && text.contains("door"),
        "{text}"
    );
}

#[test]
fn the_store_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();

    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open_dir(dir.path()).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25u8 {
                    store
                        .insert_session(&session(t * 25 + i, "alice", 0, 10))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.sessions(0).unwrap().len(), 100);
}

#[test]
fn two_stores_on_one_file_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open_dir(dir.path()).unwrap();
    let b = Store::open_dir(dir.path()).unwrap();
    let t = a.insert_token(&token("t", 1, None)).unwrap();
    assert!(b.revoke_token(t.id, 5).unwrap());
    assert_eq!(a.tokens().unwrap()[0].revoked_ms, Some(5));
}

#[test]
fn an_old_database_is_migrated_in_place() {
    // A version-0 file (as left by a camhub before the store existed, or a new empty file) is brought up to date.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    drop(sqlite(&path));
    let store = Store::open_dir(dir.path()).unwrap();
    store.insert_token(&token("t", 1, None)).unwrap();
    drop(store);
    let version: i64 = sqlite(&path)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);

    // A version-1 file (tokens and sessions only, as the first camhub with a store wrote it) gains the
    // motion events and keeps its rows.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let conn = sqlite(&path);
    conn.execute_batch(include_str!("../src/migrations/0001_tokens_sessions.sql"))
        .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.pragma_update(None, "application_id", 0x6361_6d68)
        .unwrap();
    conn.execute(
        "INSERT INTO tokens (name, hash, role, cameras, created_by, created_ms) VALUES ('old', ?1, 'viewer', '[\"door\"]', 'admin', 5)",
        [&[3u8; 32][..]],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO sessions (hash, user, csrf, created_ms, expires_ms) VALUES (?1, 'alice', 'csrf-4', 10, 20)",
        [&[4u8; 32][..]],
    )
    .unwrap();
    drop(conn);
    let store = Store::open_dir(dir.path()).unwrap();
    let tokens = store.tokens().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        (
            tokens[0].name.as_str(),
            tokens[0].hash,
            tokens[0].cameras.as_deref()
        ),
        ("old", [3; 32], Some(&["door".to_owned()][..]))
    );
    assert_eq!(store.sessions(0).unwrap(), [session(4, "alice", 10, 20)]);
    let id = store.event_start("door", 100, 0.5, None).unwrap();
    assert_eq!(store.event(id).unwrap().unwrap().camera, "door");
    drop(store);
    let version: i64 = sqlite(&path)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_damaged_row_is_reported_as_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    let t = store.insert_token(&token("t", 1, None)).unwrap();
    sqlite(&dir.path().join(DB_FILE_NAME))
        .execute(
            "UPDATE tokens SET cameras = 'door,garage' WHERE id = ?1",
            [t.id],
        )
        .unwrap();
    let err = store.tokens().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(
        err.to_string().contains(&format!("token {}", t.id)),
        "{err}"
    );
}
