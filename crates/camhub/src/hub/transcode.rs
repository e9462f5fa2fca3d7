//! `transcode = "h264"`: one shared H.264 encode of a camera's pictures, for the players that need
//! a codec the camera does not send (a JPEG-only ESP32-CAM, the demo, H.265 to a browser without
//! HEVC). A picture-tap consumer (thread `cam-{id}/h264`) that feeds its own [`PacketTap`]: MSE,
//! `stream.mp4` and HLS then read that tap exactly as they read a camera's own H.264 (cached GOP,
//! keyframe resync, parameter sets on every keyframe). It runs while that tap has subscribers and
//! stops [`GRACE`] after the last one leaves; the camera's decode runs while it does.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use camhub_codec::{
    thread_cpu_time, Codec, H264Encoder, H264Settings, JpegDecoder, Picture, StreamParams,
};

use super::pipeline::cpu_since;
use tracing::{debug, warn};

use super::camera::Camera;
use super::status::Metrics;
use super::taps::{FrameContent, PacketSubscriber, PacketTap};
use super::worker::Worker;

/// How long the encoder keeps running after its last viewer left (a page reload comes back at
/// once to a warm stream).
pub const GRACE: Duration = Duration::from_secs(5);
/// A keyframe this often: a new viewer starts at once from the cached GOP, so a long GOP costs no
/// start-up delay, but a player that lost its place waits up to this long.
const GOP: Duration = Duration::from_secs(2);

/// One camera's transcoder: its packet tap and its thread.
pub struct TranscodeHandle {
    camera: Weak<Camera>,
    /// The async runtime the camera's upstream runs on (the thread enters it to start it).
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    /// The transcoded stream (H.264, Annex B, parameter sets on every keyframe).
    pub packets: Arc<PacketTap>,
    worker: Worker,
    name: String,
}

impl TranscodeHandle {
    /// The transcoder of `camera` (not running until subscribed to).
    pub fn new(camera: Weak<Camera>, id: &str) -> TranscodeHandle {
        TranscodeHandle {
            camera,
            runtime: Mutex::new(None),
            packets: Arc::new(PacketTap::default()),
            worker: Worker::default(),
            name: id.to_owned(),
        }
    }

    /// Subscribes to the transcoded packets and makes sure the encoder runs.
    /// Called from the async runtime (the HTTP handlers), whose handle the thread needs.
    pub fn subscribe(self: &Arc<Self>, max_lag: Duration) -> PacketSubscriber {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = Some(rt);
        }
        let sub = self.packets.subscribe(max_lag);
        Worker::ensure(
            self,
            |h| &h.worker,
            format!("cam-{}/h264", self.name),
            &self.name,
            |h| h.packets.subscribers() > 0,
            run,
        );
        sub
    }

    /// True while the encoder thread runs.
    pub fn is_running(&self) -> bool {
        self.worker.is_running()
    }
}

/// The thread's body: pictures in, H.264 packets out, while anybody reads them.
fn run(h: &TranscodeHandle) {
    let Some(camera) = h.camera.upgrade() else {
        return;
    };
    let Some(rt) = h.runtime.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
        warn!("transcoding needs the async runtime; not started");
        return;
    };
    let _rt = rt.enter();
    let mut pictures = camera.subscribe_pictures();
    let mut jpeg = match JpegDecoder::new() {
        Ok(d) => d,
        Err(e) => {
            warn!("cannot transcode: {e}");
            return;
        }
    };
    let mut encoder: Option<(H264Encoder, (u32, u32))> = None;
    let mut unwanted_since: Option<Instant> = None;
    let mut last_pts = i64::MIN;
    loop {
        if h.packets.subscribers() > 0 {
            unwanted_since = None;
        } else if unwanted_since.get_or_insert_with(Instant::now).elapsed() >= GRACE {
            break;
        }
        if camera.retired() {
            break;
        }
        let Some(frame) = pictures.wait_newer(Duration::from_millis(100)) else {
            continue;
        };
        camera.touch();
        let decoded;
        let picture: &Picture = match &frame.content {
            FrameContent::Picture(p) => p,
            FrameContent::Jpeg(bytes) => match jpeg.decode(bytes, 0, 0) {
                Ok(p) => {
                    decoded = p;
                    &decoded
                }
                Err(e) => {
                    debug!("transcode: a damaged JPEG: {e}");
                    continue;
                }
            },
        };
        // libx264 wants even sides; the encoder scales each picture to its own size.
        let size = (frame.width & !1, frame.height & !1);
        if size.0 == 0 || size.1 == 0 {
            continue;
        }
        if encoder.as_ref().is_none_or(|(_, s)| *s != size) {
            let fps = camera
                .status
                .borrow()
                .fps
                .filter(|f| *f > 0.5)
                .unwrap_or(25.0);
            let settings = H264Settings {
                fps,
                gop_frames: ((fps * GOP.as_secs_f64()).round() as u32).max(1),
                bitrate_kbps: None,
            };
            match H264Encoder::new(size.0, size.1, &settings) {
                Ok(e) => {
                    encoder = Some((e, size));
                    // A new stream for the players: a new init segment, from its first keyframe.
                    h.packets.start(StreamParams::Codec {
                        codec: Codec::H264,
                        extradata: None,
                    });
                }
                Err(e) => {
                    warn!(
                        "cannot open the H.264 encoder for {}x{}: {e}",
                        size.0, size.1
                    );
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let Some((enc, _)) = encoder.as_mut() else {
            continue;
        };
        // The camera's own clock where it has one; timestamps must grow for the encoder.
        let pts = frame
            .pts
            .unwrap_or_else(|| i64::try_from(frame.unix_ms).unwrap_or(0).saturating_mul(90));
        let pts = pts.max(last_pts.saturating_add(1));
        last_pts = pts;
        let cpu = thread_cpu_time();
        let result = enc.encode(picture, pts);
        Metrics::add(&camera.metrics.transcode_ns, cpu_since(cpu));
        match result {
            Ok(packets) => {
                for p in packets {
                    h.packets.push(
                        Bytes::from(p.data),
                        p.keyframe,
                        p.pts,
                        p.dts,
                        frame.received,
                        frame.unix_ms,
                    );
                }
            }
            Err(e) => {
                warn!("H.264 encode failed: {e}");
                encoder = None;
            }
        }
    }
    h.packets.stop();
}
