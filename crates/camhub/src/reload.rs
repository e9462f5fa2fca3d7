//! Applying a changed config file while camhub runs (`SIGHUP`, `systemctl reload camhub`,
//! `POST /api/config/reload`): the file is checked like `camhub check`; an invalid one is refused
//! with its errors and the running config stays. A valid one is applied live where it can be —
//! cameras (only the changed ones restart), users and access settings — and the `[server]` keys
//! that only a restart applies are named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use camhub_config::{Config, ConfigErrors, Probe, Server};
use serde::Serialize;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::auth::Auth;
use crate::hub::{Applied, Hub};

/// Why a reload or an edit changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// camhub runs the built-in demo config: there is no file.
    NoFile,
    /// The file has errors (each `file:line:column: key: message — fix`).
    Invalid(Vec<String>),
    /// The change needs a restart (turning login on or off).
    NeedsRestart(String),
    /// The edit cannot be made (no such camera, a duplicate id, a bad value).
    Edit(camhub_config::edit::EditError),
    /// The file cannot be read or written.
    Io(String),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::NoFile => f.write_str(
                "camhub runs the built-in demo config (no --config): there is no file to reload",
            ),
            ReloadError::Invalid(errors) => {
                write!(
                    f,
                    "the config has errors, nothing changed: {}",
                    errors.join("; ")
                )
            }
            ReloadError::NeedsRestart(why) => write!(f, "{why}; nothing changed"),
            ReloadError::Edit(e) => write!(f, "{e}; nothing changed"),
            ReloadError::Io(e) => write!(f, "{e}; nothing changed"),
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// What happened to each camera.
    pub cameras: Applied,
    /// `[server]` keys (and the `mqtt` and `events` tables) whose new values apply only after a
    /// restart.
    pub restart_needed: Vec<&'static str>,
    /// The file's warnings (as `camhub check` shows them).
    pub warnings: Vec<String>,
}

/// The config file and the config camhub runs now; reloads and edits are one at a time.
pub struct Reloader {
    /// The file; `None` while camhub runs the built-in demo (the first web edit creates one).
    path: std::sync::Mutex<Option<PathBuf>>,
    running: Mutex<Config>,
}

/// The `[server]` keys a reload cannot apply, with whether they differ.
fn restart_keys(old: &Server, new: &Server) -> Vec<&'static str> {
    let keys = [
        ("listen", old.listen != new.listen),
        ("data_dir", old.data_dir != new.data_dir),
        (
            "snapshot_timeout",
            old.snapshot_timeout != new.snapshot_timeout,
        ),
        ("max_variants", old.max_variants != new.max_variants),
        ("max_raw_sizes", old.max_raw_sizes != new.max_raw_sizes),
        ("stall_timeout", old.stall_timeout != new.stall_timeout),
        ("auth", old.auth != new.auth),
        ("tls_cert", old.tls_cert != new.tls_cert),
        ("tls_key", old.tls_key != new.tls_key),
        (
            "max_connections",
            old.max_connections != new.max_connections,
        ),
        (
            "max_connections_per_ip",
            old.max_connections_per_ip != new.max_connections_per_ip,
        ),
        (
            "max_viewers_per_camera",
            old.max_viewers_per_camera != new.max_viewers_per_camera,
        ),
        ("base_path", old.base_path != new.base_path),
        ("rtsp_listen", old.rtsp_listen != new.rtsp_listen),
        ("webrtc_listen", old.webrtc_listen != new.webrtc_listen),
        (
            "webrtc_candidates",
            old.webrtc_candidates != new.webrtc_candidates,
        ),
        ("ice_servers", old.ice_servers != new.ice_servers),
    ];
    keys.into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(k, _)| k)
        .collect()
}

/// What only the running program can tell the config crate: FFmpeg says which input formats
/// exist.
fn probe() -> Probe<'static> {
    Probe {
        has_input_format: &camhub_codec::demux::has_input_format,
    }
}

/// Reads and checks a config file the way `camhub check` does.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    camhub_config::load_with(path, &probe())
}

/// Checks a config text the way `camhub check` does; `origin` names it in messages.
pub fn check(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    camhub_config::parse_with(text, origin, &probe())
}

impl Reloader {
    /// `path` is the `--config` file (`None` for the built-in demo), `running` what camhub started
    /// with.
    pub fn new(path: Option<PathBuf>, running: Config) -> Reloader {
        Reloader {
            path: std::sync::Mutex::new(path),
            running: Mutex::new(running),
        }
    }

    /// The config file, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The config file's text (`""` with no file yet).
    pub async fn text(&self) -> Result<String, ReloadError> {
        let Some(path) = self.path() else {
            return Ok(String::new());
        };
        tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| ReloadError::Io(format!("cannot read {}: {e}", path.display())))
    }

    /// Edits the config file (`edit` turns its text into the new text), checks the result like
    /// `camhub check`, writes it atomically (the previous file kept as `camhub.toml.bak`) and
    /// applies it like a reload. With no file yet, the first edit creates `camhub.toml` in
    /// `data_dir` and camhub uses it from then on. An invalid result is neither written nor
    /// applied.
    pub async fn edit<F>(&self, hub: &Hub, auth: &Auth, edit: F) -> Result<Outcome, ReloadError>
    where
        F: FnOnce(&str) -> Result<String, camhub_config::edit::EditError>,
    {
        let mut running = self.running.lock().await;
        let path = match self.path() {
            Some(p) => p,
            None => running.server.data_dir.join("camhub.toml"),
        };
        let old = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.path().is_none() => {
                String::new()
            }
            Err(e) => {
                return Err(ReloadError::Io(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let text = edit(&old).map_err(ReloadError::Edit)?;
        let config = check(&text, &path.display().to_string()).map_err(|errors| {
            ReloadError::Invalid(errors.0.iter().map(ToString::to_string).collect())
        })?;
        // Checked before writing: a change that needs a restart is not half-applied.
        if config.auth_enforced() != auth.enforced() {
            return Err(ReloadError::NeedsRestart(
                "turning login on or off needs a restart of camhub".into(),
            ));
        }
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&target, &text))
            .await
            .map_err(|e| ReloadError::Io(e.to_string()))?
            .map_err(|e| ReloadError::Io(format!("cannot write {}: {e}", path.display())))?;
        *self
            .path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(path.clone());
        info!("config file {} edited", path.display());
        apply(&mut running, config, hub, auth)
    }

    /// Reads the file again and applies it (see the module doc). Logs what it did.
    pub async fn reload(&self, hub: &Hub, auth: &Auth) -> Result<Outcome, ReloadError> {
        let Some(path) = self.path() else {
            return Err(ReloadError::NoFile);
        };
        let mut running = self.running.lock().await;
        let loaded = tokio::task::spawn_blocking(move || load(&path))
            .await
            .map_err(|e| ReloadError::Invalid(vec![format!("reading the config failed: {e}")]))?;
        let config = match loaded {
            Ok(c) => c,
            Err(errors) => {
                let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                for e in &errors {
                    warn!("reload refused: {e}");
                }
                return Err(ReloadError::Invalid(errors));
            }
        };
        apply(&mut running, config, hub, auth)
    }
}

/// Applies a checked config: users, cameras, and the record of what runs.
fn apply(
    running: &mut Config,
    config: Config,
    hub: &Hub,
    auth: &Auth,
) -> Result<Outcome, ReloadError> {
    if let Err(why) = auth.reload(&config) {
        warn!("reload refused: {why}");
        return Err(ReloadError::NeedsRestart(why));
    }
    let cameras = hub.apply(&config);
    let mut restart_needed = restart_keys(&running.server, &config.server);
    // The MQTT connection and `[events]` are set up at start.
    if running.mqtt != config.mqtt {
        restart_needed.push("mqtt");
    }
    if running.events != config.events {
        restart_needed.push("events");
    }
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    for w in &warnings {
        warn!("config: {w}");
    }
    info!(
        added = ?cameras.added,
        restarted = ?cameras.restarted,
        removed = ?cameras.removed,
        unchanged = cameras.unchanged.len(),
        "config reloaded"
    );
    if !restart_needed.is_empty() {
        warn!(
            "config reloaded, but {} take effect only after a restart",
            restart_needed.join(", ")
        );
    }
    // What a later reload compares with. The server keys that need a restart keep their
    // running values, so they are reported again until camhub restarts.
    let mut now = config;
    now.server = Server {
        trusted_proxies: now.server.trusted_proxies.clone(),
        allowed_origins: now.server.allowed_origins.clone(),
        session_lifetime: now.server.session_lifetime,
        login_attempts: now.server.login_attempts,
        ban_time: now.server.ban_time,
        metrics: now.server.metrics,
        ..running.server.clone()
    };
    now.mqtt = running.mqtt.clone();
    now.events = running.events.clone();
    *running = now;
    Ok(Outcome {
        cameras,
        restart_needed,
        warnings,
    })
}

/// Replaces `path` with `text` so that a crash leaves the old file or the new one, never half of
/// each: the text goes to a temporary file beside it (with the old file's permissions), is synced,
/// the old file is copied to `camhub.toml.bak`, and the temporary file is renamed over it.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map_or_else(
        || "camhub.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
            std::fs::copy(path, dir.join(format!("{name}.bak")))?;
        } else {
            // A new file holds camera passwords: readable by camhub's user only.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A shared [`Reloader`].
pub type SharedReloader = Arc<Reloader>;
