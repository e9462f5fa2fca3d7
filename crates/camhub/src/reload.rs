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

/// Why a reload changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// camhub runs the built-in demo config: there is no file.
    NoFile,
    /// The file has errors (each `file:line:column: key: message — fix`).
    Invalid(Vec<String>),
    /// The change needs a restart (turning login on or off).
    NeedsRestart(String),
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
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// What happened to each camera.
    pub cameras: Applied,
    /// `[server]` keys whose new values apply only after a restart.
    pub restart_needed: Vec<&'static str>,
    /// The file's warnings (as `camhub check` shows them).
    pub warnings: Vec<String>,
}

/// The config file and the config camhub runs now; reloads are one at a time.
pub struct Reloader {
    path: Option<PathBuf>,
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
    ];
    keys.into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(k, _)| k)
        .collect()
}

/// Reads and checks a config file the way `camhub check` does (FFmpeg says which input formats
/// exist).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let probe = Probe {
        has_input_format: &camhub_codec::demux::has_input_format,
    };
    camhub_config::load_with(path, &probe)
}

impl Reloader {
    /// `path` is the `--config` file (`None` for the built-in demo), `running` what camhub started
    /// with.
    pub fn new(path: Option<PathBuf>, running: Config) -> Reloader {
        Reloader {
            path,
            running: Mutex::new(running),
        }
    }

    /// The config file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Reads the file again and applies it (see the module doc). Logs what it did.
    pub async fn reload(&self, hub: &Hub, auth: &Auth) -> Result<Outcome, ReloadError> {
        let Some(path) = self.path.clone() else {
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
        if let Err(why) = auth.reload(&config) {
            warn!("reload refused: {why}");
            return Err(ReloadError::NeedsRestart(why));
        }
        let cameras = hub.apply(&config);
        let restart_needed = restart_keys(&running.server, &config.server);
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
                "config reloaded, but [server] {} take effect only after a restart",
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
        *running = now;
        Ok(Outcome {
            cameras,
            restart_needed,
            warnings,
        })
    }
}

/// A shared [`Reloader`].
pub type SharedReloader = Arc<Reloader>;
