//! The hub: every configured [`Camera`], found by id. Owns nothing about HTTP; the `http` layer asks
//! it for cameras and subscriptions.

pub mod camera;
pub mod encode;
pub mod pipeline;
pub mod render;
pub mod status;
pub mod taps;
pub mod variants;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;

pub use camera::{Camera, Subscription};
use camhub_config::Config;
pub use status::{State, Status};
pub use variants::{JpegFrame, VariantKey};

use crate::error::{Error, ErrorKind};
use crate::source::SourceOpener;

/// All cameras of one camhub process.
pub struct Hub {
    cameras: Vec<Arc<Camera>>,
    by_id: HashMap<String, Arc<Camera>>,
    /// The `[server]` settings.
    pub server: camhub_config::Server,
}

impl Hub {
    /// Builds the cameras of `config` (all idle).
    pub fn new(config: &Config) -> Arc<Hub> {
        Hub::with_opener(config, SourceOpener::default())
    }

    /// Builds the cameras of `config` (all idle), opening their connections through `opener`.
    pub fn with_opener(config: &Config, opener: SourceOpener) -> Arc<Hub> {
        let cameras: Vec<Arc<Camera>> = config
            .cameras
            .iter()
            .map(|c| Camera::with_opener(c.clone(), config.server.max_variants, opener.clone()))
            .collect();
        for cam in &cameras {
            cam.set_max_viewers(config.server.max_viewers_per_camera);
        }
        let by_id = cameras
            .iter()
            .map(|c| (c.id().to_owned(), c.clone()))
            .collect();
        Arc::new(Hub {
            cameras,
            by_id,
            server: config.server.clone(),
        })
    }

    /// Starts the cameras configured `always_on`. Call inside the tokio runtime.
    pub fn start(&self) {
        for cam in self.cameras.iter().filter(|c| c.config.always_on) {
            cam.ensure_running();
        }
    }

    /// Closes every camera's connection and waits (at most `limit`) until they are closed and every
    /// RTSP session got its TEARDOWN: cameras with few session slots must not keep a dead session.
    pub async fn shutdown(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        for cam in &self.cameras {
            cam.stop();
        }
        while self.cameras.iter().any(|c| c.is_running()) && tokio::time::Instant::now() < deadline
        {
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
    pub fn cameras(&self) -> &[Arc<Camera>] {
        &self.cameras
    }

    /// The camera with this id, or a 404 error naming the known ids.
    pub fn camera(&self, id: &str) -> Result<&Arc<Camera>, Error> {
        self.by_id.get(id).ok_or_else(|| {
            let known: Vec<&str> = self.cameras.iter().map(|c| c.id()).collect();
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
