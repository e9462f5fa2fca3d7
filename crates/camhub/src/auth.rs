//! Who is asking, and what they may see: the `[[user]]`s of the config (argon2id password
//! hashes), API tokens and login sessions (both kept in the SQLite store as SHA-256 hashes only,
//! and in memory for a lookup per request), a short cache of verified Basic credentials (so an
//! MJPEG `<img>` does not cost an argon2 hash per request), and the failed-login counter that slows
//! an address down and then bans it. Transport-free: the HTTP layer (`http::access`) asks it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use camhub_config::{Config, MetricsAccess, Role};
use camhub_store::{NewToken, SessionRecord, Store, TokenRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::{info, warn};

/// Every API token starts with this, so a leaked one is easy to recognise (and to grep for).
pub const TOKEN_PREFIX: &str = "chb_";
/// How long a verified Basic credential is trusted without hashing again.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(300);
/// Most cached Basic credentials (each a few dozen bytes).
const BASIC_CACHE_MAX: usize = 4096;
/// Most addresses with failed logins remembered; beyond, the oldest are forgotten.
const FAILURES_MAX: usize = 65_536;
/// Longest delay a failing address waits before its answer.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// How often a token's `last_used` is written (it is shown to admins, not used for access).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A real argon2id hash (with the parameters `camhub hash-password` uses) to verify unknown user
/// names against, so a wrong name costs as much as a wrong password (no user enumeration by
/// timing). Its password does not matter: an unknown name never logs in. A constant, so starting
/// camhub (login on or off) costs no hash and no 19 MiB allocation.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$KdtaI+J1KieNUzUDQqbhMQ$X6fxDPDm3lDdZpP4heFPEmMAIxBM+Ui86Tsr85rQhZA";

/// argon2id with OWASP's minimum parameters: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's limits.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Verifies `password` against a PHC string (any argon2 variant and parameters it names), hashing
/// in `memory` (resized to the parameters' block count, then kept by the caller). Compares in
/// constant time.
fn verify_in(password: &[u8], phc: &str, memory: &mut Vec<argon2::Block>) -> bool {
    use argon2::password_hash::Output;
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() != blocks {
        memory.clear();
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
        .is_ok()
        && Output::new(&out).is_ok_and(|o| o == expected)
}

/// Hashes a password for a `[[user]]`'s `password_hash` (what `camhub hash-password` prints).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything.
    Admin,
    /// Watch the allowed cameras.
    Viewer,
    /// Only read `/metrics` (a token made for Prometheus).
    Metrics,
}

impl Access {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Admin => "admin",
            Access::Viewer => "viewer",
            Access::Metrics => "metrics",
        }
    }

    fn parse(s: &str) -> Option<Access> {
        match s {
            "admin" => Some(Access::Admin),
            "viewer" => Some(Access::Viewer),
            "metrics" => Some(Access::Metrics),
            _ => None,
        }
    }
}

impl From<Role> for Access {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => Access::Admin,
            Role::Viewer => Access::Viewer,
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Nobody asked: login is off.
    Open,
    /// The session cookie of a login; state-changing requests must carry its CSRF token.
    Session {
        /// SHA-256 of the cookie (for logout).
        hash: [u8; 32],
        /// The session's CSRF token.
        csrf: String,
    },
    /// An API token (header or `?token=`).
    Token {
        /// The token's id in the store.
        id: i64,
    },
    /// HTTP Basic with a user's password.
    Basic,
}

/// Who is asking: a user, a token, or anyone (login off).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user name (for a token, the token's name; `""` when login is off).
    pub name: String,
    /// What they may do.
    pub access: Access,
    /// The only cameras they may see; `None` = all.
    pub cameras: Option<Arc<HashSet<String>>>,
    /// How they proved it.
    pub via: Via,
}

impl Principal {
    /// Anyone, when login is off: everything.
    pub fn open() -> Principal {
        Principal {
            name: String::new(),
            access: Access::Admin,
            cameras: None,
            via: Via::Open,
        }
    }

    /// Whether they may see camera `id`.
    pub fn can_see(&self, id: &str) -> bool {
        self.access != Access::Metrics && self.cameras.as_ref().is_none_or(|c| c.contains(id))
    }
}

/// A `[[user]]` as login needs it.
struct UserEntry {
    hash: String,
    access: Access,
    cameras: Option<Arc<HashSet<String>>>,
}

/// An active token, by hash.
struct TokenEntry {
    record: TokenRecord,
    cameras: Option<Arc<HashSet<String>>>,
    access: Access,
    last_touch: Option<Instant>,
}

/// Failed logins from one address.
struct Failures {
    count: usize,
    last: Instant,
    banned_until: Option<Instant>,
}

/// A new login: the cookie value to set (shown once) and its CSRF token.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie value.
    pub cookie: String,
    /// The CSRF token state-changing requests must send in `X-CSRF-Token`.
    pub csrf: String,
    /// The user.
    pub principal: Principal,
    /// How long the cookie lasts.
    pub lifetime: Duration,
}

/// A token request from an admin.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// A label for people ("prometheus", "kitchen tablet").
    pub name: String,
    /// `admin`, `viewer` or `metrics`.
    pub access: Access,
    /// Only these cameras (`None` = all).
    pub cameras: Option<Vec<String>>,
    /// Expiry, if any.
    pub expires_in: Option<Duration>,
}

/// The access state of a running camhub.
pub struct Auth {
    enforced: bool,
    /// `auth = "none"` written in the config: said in the UI as a banner.
    explicitly_open: bool,
    store: Option<Arc<Store>>,
    tokens: RwLock<HashMap<[u8; 32], TokenEntry>>,
    sessions: RwLock<HashMap<[u8; 32], SessionRecord>>,
    basic_cache: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    /// Random per process: cached Basic credentials are keyed by a hash nobody can precompute.
    cache_key: [u8; 32],
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// argon2 takes 19 MiB and tens of milliseconds: at most two at a time (2 cores), so a flood of
    /// logins queues instead of eating memory.
    hashing: Semaphore,
    /// argon2's working memory, one buffer per `hashing` permit, kept between verifications.
    argon2_memory: Mutex<Vec<Vec<argon2::Block>>>,
    /// Users and settings: replaced whole when the config is reloaded.
    policy: RwLock<Arc<Policy>>,
}

/// What the config says about access, replaced whole by a reload.
pub struct Policy {
    users: HashMap<String, UserEntry>,
    /// How long a login lasts.
    pub session_lifetime: Duration,
    /// Failed logins before a ban.
    pub login_attempts: usize,
    /// How long a ban lasts.
    pub ban_time: Duration,
    /// `/metrics` open to anyone.
    pub metrics_open: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<camhub_config::IpNet>,
    /// Other web origins allowed to open WebSockets and send changes.
    pub allowed_origins: Vec<String>,
}

impl Policy {
    fn of(config: &Config) -> Policy {
        let users = config
            .users
            .iter()
            .map(|u| {
                let entry = UserEntry {
                    hash: u.password_hash.clone(),
                    access: u.role.into(),
                    cameras: camera_set(&u.cameras),
                };
                (u.name.clone(), entry)
            })
            .collect();
        let server = &config.server;
        Policy {
            users,
            session_lifetime: server.session_lifetime,
            login_attempts: server.login_attempts,
            ban_time: server.ban_time,
            metrics_open: server.metrics == MetricsAccess::Open,
            trusted_proxies: server.trusted_proxies.clone(),
            allowed_origins: server.allowed_origins.clone(),
        }
    }
}

/// Unix time in milliseconds.
fn now_ms() -> i64 {
    i64::try_from(crate::hub::unix_ms()).unwrap_or(i64::MAX)
}

/// 32 random bytes, base64url.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn camera_set(list: &Option<Vec<String>>) -> Option<Arc<HashSet<String>>> {
    list.as_ref()
        .map(|l| Arc::new(l.iter().cloned().collect::<HashSet<_>>()))
}

impl Auth {
    /// Builds the access state for `config`; with login on, loads tokens and sessions from
    /// `store` (which must then be given).
    pub fn new(config: &Config, store: Option<Arc<Store>>) -> Result<Auth, String> {
        let enforced = config.auth_enforced();
        let policy = Policy::of(config);
        let mut cache_key = [0u8; 32];
        rand::rng().fill_bytes(&mut cache_key);
        let auth = Auth {
            enforced,
            explicitly_open: config.server.auth == camhub_config::AuthMode::None,
            store: if enforced { store } else { None },
            tokens: RwLock::default(),
            sessions: RwLock::default(),
            basic_cache: Mutex::default(),
            cache_key,
            failures: Mutex::default(),
            hashing: Semaphore::new(2),
            argon2_memory: Mutex::default(),
            policy: RwLock::new(Arc::new(policy)),
        };
        if enforced {
            let Some(store) = &auth.store else {
                return Err("login is on but there is no store for tokens and sessions".into());
            };
            let now = now_ms();
            let tokens = store.tokens().map_err(|e| e.to_string())?;
            let mut map = HashMap::new();
            for record in tokens {
                if record.revoked_ms.is_some() {
                    continue;
                }
                if let Some(entry) = TokenEntry::new(record) {
                    map.insert(entry.record.hash, entry);
                }
            }
            let sessions = store.sessions(now).map_err(|e| e.to_string())?;
            let policy = auth.policy();
            let known: HashSet<&str> = policy.users.keys().map(String::as_str).collect();
            let sessions: HashMap<_, _> = sessions
                .into_iter()
                // A user taken out of the config is logged out.
                .filter(|s| known.contains(s.user.as_str()))
                .map(|s| (s.hash, s))
                .collect();
            info!(
                "login required: {} user(s), {} token(s), {} open session(s)",
                policy.users.len(),
                map.len(),
                sessions.len()
            );
            *write(&auth.tokens) = map;
            *write(&auth.sessions) = sessions;
        }
        Ok(auth)
    }

    /// The current users and settings (one `Arc` clone: take it once per request).
    pub fn policy(&self) -> Arc<Policy> {
        read(&self.policy).clone()
    }

    /// Applies a reloaded config's users and access settings: a removed user's sessions end, a
    /// changed password is verified afresh (the Basic cache is emptied). Turning login on or off
    /// needs a restart: the error says so and nothing changes.
    pub fn reload(&self, config: &Config) -> Result<(), String> {
        if config.auth_enforced() != self.enforced {
            return Err(if self.enforced {
                "turning login off needs a restart of camhub".to_owned()
            } else {
                "turning login on needs a restart of camhub".to_owned()
            });
        }
        let policy = Arc::new(Policy::of(config));
        let gone: Vec<String> = read(&self.sessions)
            .values()
            .filter(|s| !policy.users.contains_key(&s.user))
            .map(|s| s.user.clone())
            .collect();
        *write(&self.policy) = policy.clone();
        lock(&self.basic_cache).clear();
        write(&self.sessions).retain(|_, s| policy.users.contains_key(&s.user));
        if let Some(store) = self.store.clone() {
            if !gone.is_empty() {
                tokio::task::spawn_blocking(move || {
                    for user in gone {
                        if let Err(e) = store.delete_sessions_of(&user) {
                            warn!("cannot end the sessions of removed user {user}: {e}");
                        }
                    }
                });
            }
        }
        Ok(())
    }

    /// Whether requests must say who they are.
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    /// Whether the config says `auth = "none"` (the UI shows a banner).
    pub fn explicitly_open(&self) -> bool {
        self.explicitly_open
    }

    fn principal_of_user(&self, name: &str, via: Via) -> Option<Principal> {
        let policy = self.policy();
        let user = policy.users.get(name)?;
        Some(Principal {
            name: name.to_owned(),
            access: user.access,
            cameras: user.cameras.clone(),
            via,
        })
    }

    /// Checks a user's password (argon2id, off the async threads, two at a time).
    pub async fn verify_password(&self, name: &str, password: &str) -> bool {
        let policy = self.policy();
        let hash = policy
            .users
            .get(name)
            .map_or_else(|| DUMMY_HASH.to_owned(), |u| u.hash.clone());
        let known = policy.users.contains_key(name);
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        // One of the pool's buffers (as many as permits): argon2's 19 MiB are reused, never
        // freed and allocated again, which left one freed buffer per malloc arena in RSS
        // (~470 MB after parallel logins, wrong passwords included).
        let mut memory = lock(&self.argon2_memory).pop().unwrap_or_default();
        let password = password.to_owned();
        let (ok, memory) = tokio::task::spawn_blocking(move || {
            let ok = verify_in(password.as_bytes(), &hash, &mut memory);
            (ok, memory)
        })
        .await
        .unwrap_or((false, Vec::new()));
        lock(&self.argon2_memory).push(memory);
        ok && known
    }

    /// HTTP Basic: a user and password, verified or found in the short cache.
    pub async fn basic(&self, name: &str, password: &str) -> Option<Principal> {
        let key: [u8; 32] = Sha256::new()
            .chain_update(self.cache_key)
            .chain_update(name.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        let now = Instant::now();
        let cached = lock(&self.basic_cache)
            .get(&key)
            .filter(|(_, until)| *until > now)
            .map(|(user, _)| user.clone());
        if let Some(user) = cached {
            return self.principal_of_user(&user, Via::Basic);
        }
        if !self.verify_password(name, password).await {
            return None;
        }
        let mut cache = lock(&self.basic_cache);
        if cache.len() >= BASIC_CACHE_MAX {
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= BASIC_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (name.to_owned(), now + BASIC_CACHE_TTL));
        drop(cache);
        self.principal_of_user(name, Via::Basic)
    }

    /// An `Authorization` header's value: `Bearer` with an API token, or `Basic` with a user's
    /// password (HTTP, and RTSP clients). None when it proves nothing.
    pub async fn authorization(&self, value: &str) -> Option<Principal> {
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            self.token(rest)
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())?;
            let (user, password) = decoded.split_once(':')?;
            self.basic(user, password).await
        } else {
            None
        }
    }

    /// An API token (from `Authorization: Bearer` or `?token=`).
    pub fn token(&self, token: &str) -> Option<Principal> {
        if !token.starts_with(TOKEN_PREFIX) {
            return None;
        }
        let hash = sha256(token.as_bytes());
        let now = now_ms();
        let mut touch = None;
        let principal = {
            let tokens = read(&self.tokens);
            let entry = tokens.get(&hash)?;
            if entry.record.expires_ms.is_some_and(|e| e <= now) {
                return None;
            }
            if entry.last_touch.is_none_or(|t| t.elapsed() >= TOUCH_EVERY) {
                touch = Some(entry.record.id);
            }
            Principal {
                name: entry.record.name.clone(),
                access: entry.access,
                cameras: entry.cameras.clone(),
                via: Via::Token {
                    id: entry.record.id,
                },
            }
        };
        if let Some(id) = touch {
            if let Some(entry) = write(&self.tokens).get_mut(&hash) {
                entry.last_touch = Some(Instant::now());
                entry.record.last_used_ms = Some(now);
            }
            if let Some(store) = self.store.clone() {
                // Bookkeeping for the admin's token list: never on the request's path.
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = store.touch_token(id, now) {
                        warn!("cannot record a token's use: {e}");
                    }
                });
            }
        }
        Some(principal)
    }

    /// A session cookie's value.
    pub fn session(&self, cookie: &str) -> Option<Principal> {
        let hash = sha256(cookie.as_bytes());
        let (user, csrf) = {
            let sessions = read(&self.sessions);
            let s = sessions.get(&hash)?;
            if s.expires_ms <= now_ms() {
                return None;
            }
            (s.user.clone(), s.csrf.clone())
        };
        self.principal_of_user(&user, Via::Session { hash, csrf })
    }

    /// Logs a user in: checks the password, stores a new session.
    pub async fn login(&self, name: &str, password: &str) -> Option<NewSession> {
        if !self.verify_password(name, password).await {
            return None;
        }
        let cookie = random_secret();
        let csrf = random_secret();
        let hash = sha256(cookie.as_bytes());
        let now = now_ms();
        let lifetime = self.policy().session_lifetime;
        let lifetime_ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
        let record = SessionRecord {
            hash,
            user: name.to_owned(),
            csrf: csrf.clone(),
            created_ms: now,
            expires_ms: now.saturating_add(lifetime_ms),
        };
        if let Some(store) = self.store.clone() {
            let r = record.clone();
            let stored = tokio::task::spawn_blocking(move || {
                let _ = store.delete_expired_sessions(now);
                store.insert_session(&r)
            })
            .await;
            match stored {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    warn!("cannot store the session (it lasts until camhub restarts): {e}")
                }
                Err(e) => warn!("cannot store the session: {e}"),
            }
        }
        {
            // Sessions nobody logged out of would stay in memory until a restart.
            let mut sessions = write(&self.sessions);
            sessions.retain(|_, s| s.expires_ms > now);
            sessions.insert(hash, record);
        }
        let principal = self.principal_of_user(
            name,
            Via::Session {
                hash,
                csrf: csrf.clone(),
            },
        )?;
        Some(NewSession {
            cookie,
            csrf,
            principal,
            lifetime,
        })
    }

    /// Ends a session.
    pub async fn logout(&self, hash: [u8; 32]) {
        write(&self.sessions).remove(&hash);
        if let Some(store) = self.store.clone() {
            let _ = tokio::task::spawn_blocking(move || store.delete_session(&hash)).await;
        }
    }

    /// Makes a token; the secret is returned once and only its hash is kept.
    pub async fn create_token(
        &self,
        by: &Principal,
        request: TokenRequest,
    ) -> Result<(String, TokenRecord), String> {
        let Some(store) = self.store.clone() else {
            return Err("tokens need login to be on (add a [[user]])".into());
        };
        let secret = format!("{TOKEN_PREFIX}{}", random_secret());
        let now = now_ms();
        let new = NewToken {
            name: request.name,
            hash: sha256(secret.as_bytes()),
            role: request.access.as_str().to_owned(),
            cameras: request.cameras,
            created_by: by.name.clone(),
            created_ms: now,
            expires_ms: request
                .expires_in
                .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
        };
        let record = tokio::task::spawn_blocking(move || store.insert_token(&new))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let entry =
            TokenEntry::new(record.clone()).ok_or("the stored token has an unknown role")?;
        write(&self.tokens).insert(record.hash, entry);
        Ok((secret, record))
    }

    /// Every token ever made (revoked and expired included), without secrets.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, String> {
        let Some(store) = self.store.clone() else {
            return Ok(Vec::new());
        };
        tokio::task::spawn_blocking(move || store.tokens())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Revokes a token at once; `false` if there is no such active token.
    pub async fn revoke_token(&self, id: i64) -> Result<bool, String> {
        let Some(store) = self.store.clone() else {
            return Ok(false);
        };
        let revoked = tokio::task::spawn_blocking(move || store.revoke_token(id, now_ms()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        write(&self.tokens).retain(|_, t| t.record.id != id);
        Ok(revoked)
    }

    /// If `ip` is banned, for how much longer.
    pub fn banned(&self, ip: IpAddr) -> Option<Duration> {
        let failures = lock(&self.failures);
        let until = failures.get(&ip)?.banned_until?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failed login from `ip`; returns how long to wait before answering (the slow-down
    /// that starts at half of `login_attempts`), and bans the address at `login_attempts`.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let policy = self.policy();
        let (ban_time, login_attempts) = (policy.ban_time, policy.login_attempts);
        let mut failures = lock(&self.failures);
        if failures.len() >= FAILURES_MAX {
            failures.retain(|_, f| now.duration_since(f.last) < ban_time);
            if failures.len() >= FAILURES_MAX {
                failures.clear();
            }
        }
        let f = failures.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            banned_until: None,
        });
        // Failures long ago (or a ban that ran out) no longer count.
        if now.duration_since(f.last) >= ban_time || f.banned_until.is_some_and(|u| u <= now) {
            f.count = 0;
            f.banned_until = None;
        }
        f.count += 1;
        f.last = now;
        if f.count >= login_attempts {
            f.banned_until = Some(now + ban_time);
            f.count = 0;
            warn!(
                %ip,
                "banned for {:?} after {} failed logins",
                ban_time,
                login_attempts
            );
            return Duration::ZERO;
        }
        let free = login_attempts / 2;
        let over = u32::try_from(f.count.saturating_sub(free)).unwrap_or(u32::MAX);
        (Duration::from_millis(500) * over).min(MAX_DELAY)
    }

    /// A successful login from `ip` clears its failures.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut failures = lock(&self.failures);
        if failures.get(&ip).is_some_and(|f| f.banned_until.is_none()) {
            failures.remove(&ip);
        }
    }
}

impl TokenEntry {
    fn new(record: TokenRecord) -> Option<TokenEntry> {
        let access = Access::parse(&record.role)?;
        Some(TokenEntry {
            cameras: camera_set(&record.cameras),
            access,
            record,
            last_touch: None,
        })
    }
}

/// Parses an access name from the API.
pub fn parse_access(s: &str) -> Option<Access> {
    Access::parse(s)
}

/// A lock that survives a panicked holder: the data (caches, counters) stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    #[test]
    fn hashes_verify_and_use_owasp_parameters() {
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(argon2().verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon2().verify_password(b"wrong", &parsed).is_err());
        // The pooled verification agrees, and keeps its buffer at the hash's size (19 MiB).
        let mut memory = Vec::new();
        assert!(verify_in(b"correct horse", &hash, &mut memory));
        assert_eq!(memory.len(), 19 * 1024);
        assert!(!verify_in(b"wrong", &hash, &mut memory));
        assert!(!verify_in(
            b"correct horse",
            "$argon2id$v=19$garbage",
            &mut memory
        ));
        // Hashes made elsewhere with other parameters (argon2i, m=4096) verify too.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(4096, 3, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = other.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_in(b"pw", &phc, &mut memory));
        assert_eq!(memory.len(), 4096);
        // A new salt every time.
        assert_ne!(hash, hash_password("correct horse").unwrap());
    }

    fn config(extra: &str) -> Config {
        let hash = hash_password("pw").unwrap();
        let text = format!(
            "[server]\nlogin_attempts = 4\nban_time = \"1h\"\n{extra}\n\n[[camera]]\nid = \"a\"\nurl = \"demo:\"\n\n[[camera]]\nid = \"b\"\nurl = \"demo:\"\n\n\
             [[user]]\nname = \"admin\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n\n\
             [[user]]\nname = \"viewer\"\npassword_hash = \"{hash}\"\ncameras = [\"a\"]\n"
        );
        camhub_config::parse(&text, "t.toml").unwrap()
    }

    fn auth() -> Auth {
        let store = Arc::new(Store::open_in_memory().unwrap());
        Auth::new(&config(""), Some(store)).unwrap()
    }

    #[tokio::test]
    async fn basic_is_cached_and_wrong_passwords_fail() {
        let auth = auth();
        let p = auth.basic("viewer", "pw").await.unwrap();
        assert_eq!(p.access, Access::Viewer);
        assert!(p.can_see("a") && !p.can_see("b"));
        assert_eq!(lock(&auth.basic_cache).len(), 1);
        assert!(auth.basic("viewer", "pw").await.is_some());
        assert!(auth.basic("viewer", "nope").await.is_none());
        assert!(auth.basic("nobody", "pw").await.is_none());
        assert_eq!(lock(&auth.basic_cache).len(), 1, "failures are not cached");
    }

    #[tokio::test]
    async fn sessions_and_tokens() {
        let auth = auth();
        assert!(auth.login("admin", "bad").await.is_none());
        let s = auth.login("admin", "pw").await.unwrap();
        let p = auth.session(&s.cookie).unwrap();
        assert_eq!(p.access, Access::Admin);
        let Via::Session { hash, csrf } = &p.via else {
            panic!("{p:?}")
        };
        assert_eq!(csrf, &s.csrf);
        auth.logout(*hash).await;
        assert!(auth.session(&s.cookie).is_none());

        let (secret, record) = auth
            .create_token(
                &p,
                TokenRequest {
                    name: "cam-a".into(),
                    access: Access::Viewer,
                    cameras: Some(vec!["a".into()]),
                    expires_in: None,
                },
            )
            .await
            .unwrap();
        assert!(
            secret.starts_with(TOKEN_PREFIX) && secret.len() == 4 + 43,
            "{secret}"
        );
        assert_ne!(record.hash, [0; 32]);
        let t = auth.token(&secret).unwrap();
        assert!(t.can_see("a") && !t.can_see("b"));
        assert!(auth.token("chb_wrong").is_none());
        assert!(auth.revoke_token(record.id).await.unwrap());
        assert!(auth.token(&secret).is_none());
        assert!(!auth.revoke_token(record.id).await.unwrap());
    }

    #[tokio::test]
    async fn a_reload_replaces_users_and_forgets_cached_passwords() {
        let auth = auth();
        assert!(auth.basic("viewer", "pw").await.is_some());
        let s = auth.login("admin", "pw").await.unwrap();
        // The viewer gets a new password and the admin is removed.
        let hash = hash_password("new").unwrap();
        let text = format!(
            "[[camera]]\nid = \"a\"\nurl = \"demo:\"\n\n[[user]]\nname = \"viewer\"\npassword_hash = \"{hash}\"\n"
        );
        let config = camhub_config::parse(&text, "t.toml").unwrap();
        auth.reload(&config).unwrap();
        assert!(
            auth.basic("viewer", "pw").await.is_none(),
            "the old password was cached"
        );
        assert!(auth.basic("viewer", "new").await.is_some());
        assert!(
            auth.session(&s.cookie).is_none(),
            "a removed user stays logged in"
        );
        assert_eq!(auth.policy().login_attempts, 10);
        // Turning login off needs a restart.
        let open =
            camhub_config::parse("[[camera]]\nid = \"a\"\nurl = \"demo:\"\n", "t.toml").unwrap();
        let e = auth.reload(&open).unwrap_err();
        assert!(e.contains("restart"), "{e}");
        assert!(
            auth.basic("viewer", "new").await.is_some(),
            "a refused reload changed nothing"
        );
    }

    #[test]
    fn failures_slow_down_then_ban_then_expire() {
        let auth = auth();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        // login_attempts = 4: two free, then slower, the fourth bans.
        assert_eq!(auth.failed(ip), Duration::ZERO);
        assert_eq!(auth.failed(ip), Duration::ZERO);
        assert_eq!(auth.failed(ip), Duration::from_millis(500));
        assert!(auth.banned(ip).is_none());
        auth.failed(ip);
        let left = auth.banned(ip).unwrap();
        assert!(left > Duration::from_secs(3500), "{left:?}");
        // Another address is not affected.
        assert!(auth.banned("192.0.2.8".parse().unwrap()).is_none());
        // Success does not lift a ban.
        auth.succeeded(ip);
        assert!(auth.banned(ip).is_some());
        // A ban that ran out is lifted.
        lock(&auth.failures).get_mut(&ip).unwrap().banned_until = Some(Instant::now());
        assert!(auth.banned(ip).is_none());
        assert_eq!(auth.failed(ip), Duration::ZERO, "counting starts over");
    }
}
