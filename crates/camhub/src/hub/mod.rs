//! The hub: every configured [`Camera`], found by id. Owns nothing about HTTP; the `http` layer asks
//! it for cameras and subscriptions.

pub mod camera;
pub mod composite;
pub mod encode;
pub mod geometry;
pub mod motion;
pub mod outputs;
pub mod pipeline;
pub mod raw;
pub mod render;
pub mod status;
pub mod taps;
pub mod transcode;
pub mod variants;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub use camera::{Camera, Subscription};
use camhub_config::Config;
pub use status::{State, Status};
pub use variants::{JpegFrame, VariantKey};

use crate::error::{Error, ErrorKind};
use crate::events::Events;
use crate::source::SourceOpener;

/// Milliseconds since the Unix epoch, now: the wall clock camhub stamps frames, heartbeats,
/// sessions and tokens with.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// All cameras of one camhub process. The set is replaced whole by a config reload
/// ([`Hub::apply`]); a lookup clones an `Arc`, so a request keeps the camera it found even if a
/// reload replaces it meanwhile.
pub struct Hub {
    set: RwLock<Arc<CameraSet>>,
    /// This hub, for composites to find their inputs by id.
    me: std::sync::Weak<Hub>,
    opener: SourceOpener,
    /// The `[server]` settings (as at start: changing them needs a restart).
    pub server: camhub_config::Server,
    /// `[events]` (as at start).
    events_config: camhub_config::Events,
    /// The store login opened, shared with the events.
    store: Mutex<Option<Arc<camhub_store::Store>>>,
    /// The motion events, opened when the first camera with motion enabled starts.
    events: Mutex<Option<Arc<Events>>>,
}

/// The cameras, in config order and by id.
struct CameraSet {
    cameras: Vec<Arc<Camera>>,
    by_id: HashMap<String, Arc<Camera>>,
}

impl CameraSet {
    fn new(cameras: Vec<Arc<Camera>>) -> CameraSet {
        let by_id = cameras
            .iter()
            .map(|c| (c.id().to_owned(), c.clone()))
            .collect();
        CameraSet { cameras, by_id }
    }
}

/// What a config reload did to the cameras, by id.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// New cameras.
    pub added: Vec<String>,
    /// Cameras whose settings changed: restarted with the new ones (their viewers move over).
    pub restarted: Vec<String>,
    /// Cameras taken out.
    pub removed: Vec<String>,
    /// Cameras left exactly as they were (their viewers never notice).
    pub unchanged: Vec<String>,
}

impl Hub {
    /// Builds the cameras of `config` (all idle).
    pub fn new(config: &Config) -> Arc<Hub> {
        Hub::with_opener(config, SourceOpener::default())
    }

    /// Builds the cameras of `config` (all idle), opening their connections through `opener`.
    pub fn with_opener(config: &Config, opener: SourceOpener) -> Arc<Hub> {
        Arc::new_cyclic(|me: &std::sync::Weak<Hub>| {
            let cameras = config
                .cameras
                .iter()
                .filter(|c| c.enabled)
                .map(|c| Hub::build(c, &config.server, &opener, me))
                .collect();
            Hub::assemble(cameras, config, opener.clone(), me.clone())
        })
    }

    fn assemble(
        cameras: Vec<Arc<Camera>>,
        config: &Config,
        opener: SourceOpener,
        me: std::sync::Weak<Hub>,
    ) -> Hub {
        Hub {
            set: RwLock::new(Arc::new(CameraSet::new(cameras))),
            me,
            opener,
            server: config.server.clone(),
            events_config: config.events.clone(),
            store: Mutex::new(None),
            events: Mutex::new(None),
        }
    }

    /// Shares the store login opened (call before [`Hub::start`]): events go into the same file.
    pub fn set_store(&self, store: Option<Arc<camhub_store::Store>>) {
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = store;
    }

    /// The motion events: open once a camera with motion needed them, or when a store exists
    /// (login opened it, or an earlier run left `camhub.db`: its history stays browsable after
    /// motion was turned off). None otherwise; no directory is created for asking.
    pub fn events(&self) -> Option<Arc<Events>> {
        if let Some(e) = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Some(e);
        }
        let has_store = self
            .store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
            || self
                .server
                .data_dir
                .join(camhub_store::DB_FILE_NAME)
                .exists();
        if has_store {
            self.open_events()
        } else {
            None
        }
    }

    /// The motion events, opened (in `data_dir`) on first use; None when they cannot be opened
    /// (logged: detection goes on, nothing is stored).
    fn open_events(&self) -> Option<Arc<Events>> {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.is_none() {
            let store = self.store.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match Events::open(&self.server.data_dir, &self.events_config, store) {
                Ok(e) => {
                    e.spawn_retention();
                    *events = Some(e);
                }
                Err(e) => tracing::warn!("motion events will not be stored: {e}"),
            }
        }
        events.clone()
    }

    /// Starts what runs without viewers: `always_on` cameras and motion detection.
    fn start_camera(&self, cam: &Arc<Camera>) {
        if cam.config.always_on {
            cam.ensure_running();
        }
        if cam.motion.enabled() {
            cam.motion.set_events(self.open_events());
            cam.motion.ensure_running();
        }
    }

    fn build(
        config: &camhub_config::Camera,
        server: &camhub_config::Server,
        opener: &SourceOpener,
        hub: &std::sync::Weak<Hub>,
    ) -> Arc<Camera> {
        let hub = hub.clone();
        let lookup: composite::Lookup = Arc::new(move |id: &str| hub.upgrade()?.camera(id).ok());
        let cam = Camera::with_lookup(config.clone(), server.max_variants, opener.clone(), lookup);
        cam.set_max_viewers(server.max_viewers_per_camera);
        cam.raw.set_max(server.max_raw_sizes);
        cam
    }

    fn set(&self) -> Arc<CameraSet> {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Applies a reloaded config's cameras: a camera whose settings are unchanged stays as it is
    /// (its connection and viewers are untouched), a changed one is replaced by a new camera built
    /// from the new settings (the old one retires: its connection closes and its viewers move to
    /// the new one), a removed one retires, a new one is added idle. Call inside the runtime.
    pub fn apply(&self, config: &Config) -> Applied {
        let old = self.set();
        let mut applied = Applied::default();
        let mut cameras = Vec::with_capacity(config.cameras.len());
        for c in config.cameras.iter().filter(|c| c.enabled) {
            match old.by_id.get(&c.id) {
                Some(cam) if cam.config == *c => {
                    applied.unchanged.push(c.id.clone());
                    cameras.push(cam.clone());
                }
                Some(_) => {
                    applied.restarted.push(c.id.clone());
                    cameras.push(Hub::build(c, &self.server, &self.opener, &self.me));
                }
                None => {
                    applied.added.push(c.id.clone());
                    cameras.push(Hub::build(c, &self.server, &self.opener, &self.me));
                }
            }
        }
        let new = Arc::new(CameraSet::new(cameras));
        *self
            .set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new.clone();
        // Retire after the swap: a viewer whose subscription ends looks its camera up again and
        // must find the new one.
        for cam in &old.cameras {
            let kept = new.by_id.get(cam.id()).is_some_and(|n| Arc::ptr_eq(n, cam));
            if !kept {
                if !new.by_id.contains_key(cam.id()) {
                    applied.removed.push(cam.id().to_owned());
                }
                cam.retire();
            }
        }
        for cam in &new.cameras {
            self.start_camera(cam);
        }
        applied
    }

    /// Starts the cameras configured `always_on` and motion detection where it is enabled. Call
    /// inside the tokio runtime.
    pub fn start(&self) {
        for cam in &self.set().cameras {
            self.start_camera(cam);
        }
    }

    /// Closes every camera's connection and waits (at most `limit`) until they are closed and every
    /// RTSP session got its TEARDOWN: cameras with few session slots must not keep a dead session.
    pub async fn shutdown(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let set = self.set();
        for cam in &set.cameras {
            cam.stop();
        }
        while set.cameras.iter().any(|c| c.is_running()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !crate::source::rtsp::await_teardowns(left).await {
            tracing::warn!(
                "some RTSP sessions were not torn down within {}s",
                limit.as_secs()
            );
        }
    }

    /// Every camera, in config order.
    pub fn cameras(&self) -> Vec<Arc<Camera>> {
        self.set().cameras.clone()
    }

    /// The camera with this id, or a 404 error naming the known ids.
    pub fn camera(&self, id: &str) -> Result<Arc<Camera>, Error> {
        let set = self.set();
        set.by_id.get(id).cloned().ok_or_else(|| {
            let known: Vec<&str> = set.cameras.iter().map(|c| c.id()).collect();
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "no camera with id \"{}\"; known cameras: {}",
                    id.escape_default(),
                    known.join(", ")
                ),
            )
        })
    }
}
