//! The `ffmpeg:` source: anything libavformat opens — a file (looped with `loop_file`), a V4L2 webcam
//! (`ffmpeg:/dev/video0` with `input_format = "v4l2"`), RTMP, HLS. libavformat blocks, so the
//! reading runs on its own named thread and hands packets over through a small bounded channel;
//! files are paced at their native frame rate (like `ffmpeg -re`), live inputs pace themselves.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use camhub_codec::Demuxer;
use tokio::sync::{mpsc, oneshot};

use super::{Scrubber, SourceError, SourceEvent};

/// Packets in flight between the reader thread and the async side.
const CHANNEL: usize = 8;

/// An open libavformat input read by a background thread.
pub struct FfmpegSource {
    rx: mpsc::Receiver<Result<SourceEvent, SourceError>>,
    /// Set on drop: interrupts the reader thread's blocking FFmpeg calls and its pacing sleeps.
    stop: Arc<AtomicBool>,
}

impl Drop for FfmpegSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A jump in a file's timestamps larger than this is a discontinuity, not a reason to sleep.
const MAX_PACING_SLEEP: Duration = Duration::from_secs(5);

impl FfmpegSource {
    /// Opens the input on a new thread; returns once it is open (or failed).
    pub async fn open(
        input: &str,
        format: Option<String>,
        options: BTreeMap<String, String>,
        loop_file: bool,
        camera: &str,
        scrub: Scrubber,
    ) -> Result<FfmpegSource, SourceError> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let stop = Arc::new(AtomicBool::new(false));
        // If this future is dropped (the open timed out), the guard stops the thread too.
        let mut guard = StopOnDrop(Some(stop.clone()));
        let thread_stop = stop.clone();
        let (opened_tx, opened_rx) = oneshot::channel();
        let input = input.to_owned();
        let paced = std::fs::metadata(&input)
            .map(|m| m.is_file())
            .unwrap_or(false);
        std::thread::Builder::new()
            .name(format!("cam-{camera}/input"))
            .spawn(move || {
                let mut demuxer = match Demuxer::open(
                    &input,
                    format.as_deref(),
                    &options,
                    loop_file,
                    thread_stop.clone(),
                ) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ =
                            opened_tx.send(Err(scrub.err(format!("cannot open the input: {e}"))));
                        return;
                    }
                };
                let params = match demuxer.params() {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = opened_tx.send(Err(scrub.err(e)));
                        return;
                    }
                };
                let _ = opened_tx.send(Ok(()));
                if tx.blocking_send(Ok(SourceEvent::Params(params))).is_err() {
                    return;
                }
                let mut start = Instant::now();
                loop {
                    let ev = match demuxer.read() {
                        Ok(Some(p)) => {
                            if paced {
                                let mut due = start + p.due;
                                let now = Instant::now();
                                if due > now + MAX_PACING_SLEEP {
                                    // A timestamp jump: play on from here instead of waiting.
                                    start = now - p.due;
                                    due = now;
                                }
                                while Instant::now() < due && !thread_stop.load(Ordering::Relaxed) {
                                    std::thread::sleep(
                                        (due - Instant::now()).min(Duration::from_millis(100)),
                                    );
                                }
                            }
                            Ok(SourceEvent::Packet {
                                data: Bytes::from(p.data),
                                keyframe: p.keyframe,
                                pts: Some(p.pts_90k),
                                dts: Some(p.dts_90k),
                            })
                        }
                        Ok(None) => Err(SourceError("the input ended".into())),
                        Err(e) => Err(scrub.err(e)),
                    };
                    if thread_stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let end = ev.is_err();
                    // A closed channel means the camera was closed: stop reading.
                    if tx.blocking_send(ev).is_err() || end {
                        return;
                    }
                }
            })
            .map_err(|e| SourceError(format!("cannot start the input thread: {e}")))?;
        let opened = opened_rx.await;
        guard.0 = None; // opened or failed: the thread is on its own now
        match opened {
            Ok(Ok(())) => Ok(FfmpegSource { rx, stop }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SourceError("the input thread stopped".into())),
        }
    }

    /// The next packet.
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        match self.rx.recv().await {
            Some(r) => r,
            None => Err(SourceError("the input thread stopped".into())),
        }
    }
}

/// Sets the flag when dropped, unless disarmed (set to None).
struct StopOnDrop(Option<Arc<AtomicBool>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = &self.0 {
            stop.store(true, Ordering::Relaxed);
        }
    }
}
