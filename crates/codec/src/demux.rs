//! [`Demuxer`]: the `ffmpeg:` source's reader — anything libavformat opens (files, `/dev/video0`
//! through V4L2, RTMP, HLS), with demuxer options. Blocking: run it on its own thread. It yields the
//! best video stream's packets with the time each is due, so a file can be paced at its native rate
//! and looped without re-encoding.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ffmpeg_next as ff;

use crate::{CodecError, StreamParams};

/// One packet of the video stream.
pub struct DemuxedPacket {
    /// Packet bytes (container-native framing; the decoder gets matching [`StreamParams`]).
    pub data: Vec<u8>,
    /// True for a keyframe.
    pub keyframe: bool,
    /// Presentation timestamp in the stream's time base.
    pub pts: Option<i64>,
    /// When this packet is due, measured from the start of playback (loops included).
    pub due: Duration,
    /// Decode time on a 90 kHz clock from the start of playback, increasing across loops.
    pub dts_90k: i64,
    /// Presentation time on the same clock (`dts_90k` plus the packet's pts - dts offset).
    pub pts_90k: i64,
}

/// An open libavformat input.
pub struct Demuxer {
    input: ff::format::context::Input,
    stream: usize,
    time_base: f64,
    loop_file: bool,
    first_ts: Option<i64>,
    /// Playback time added by previous loops.
    loop_base: Duration,
    last_due: Duration,
    /// Latest due time seen: with B-frames the last packet read is not the last one shown.
    max_due: Duration,
    frame_time: Duration,
    /// Kept alive as long as the context: its address is FFmpeg's interrupt-callback argument.
    /// Declared after `input` so it is dropped after it.
    _stop: Arc<AtomicBool>,
}

impl Demuxer {
    /// Opens `input` with an optional demuxer name (`-f`) and demuxer options. Setting `stop`
    /// interrupts any blocking open or read (FFmpeg checks it while it waits on the network).
    pub fn open(
        input: &str,
        format: Option<&str>,
        options: &BTreeMap<String, String>,
        loop_file: bool,
        stop: Arc<AtomicBool>,
    ) -> Result<Demuxer, CodecError> {
        crate::init();
        // FFmpeg's Rust wrapper turns the path into a C string and would panic on a NUL byte.
        if input.contains('\0')
            || options
                .iter()
                .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(CodecError::Unsupported(
                "the input or an option contains a NUL character".into(),
            ));
        }
        let mut dict = ff::Dictionary::new();
        for (k, v) in options {
            dict.set(k, v);
        }
        // Network inputs (RTMP, HLS, HTTP) must not block forever: a read with no data for 10 s
        // fails, unless the user chose otherwise.
        if !options.contains_key("rw_timeout") {
            dict.set("rw_timeout", "10000000");
        }
        let format_ptr = match format {
            Some(name) => find_input_format(name).ok_or_else(|| {
                CodecError::Unsupported(format!(
                    "this FFmpeg has no input format named {name:?} (see `ffmpeg -formats`)"
                ))
            })?,
            None => std::ptr::null(),
        };
        let ctx = open_interruptible(input, format_ptr, dict, &stop).map_err(|source| {
            CodecError::Ffmpeg {
                what: "opening the input",
                source,
            }
        })?;
        let stream = ctx
            .streams()
            .best(ff::media::Type::Video)
            .ok_or_else(|| CodecError::Unsupported("the input has no video stream".into()))?;
        let tb = stream.time_base();
        let time_base = if tb.denominator() != 0 {
            f64::from(tb.numerator()) / f64::from(tb.denominator())
        } else {
            0.0
        };
        let rate = stream.avg_frame_rate();
        let frame_time = if rate.numerator() > 0 && rate.denominator() > 0 {
            Duration::from_secs_f64(f64::from(rate.denominator()) / f64::from(rate.numerator()))
        } else {
            Duration::from_millis(40)
        };
        let index = stream.index();
        Ok(Demuxer {
            _stop: stop,
            input: ctx,
            stream: index,
            time_base,
            loop_file,
            first_ts: None,
            loop_base: Duration::ZERO,
            last_due: Duration::ZERO,
            max_due: Duration::ZERO,
            frame_time,
        })
    }

    /// Decoder parameters of the video stream.
    pub fn params(&self) -> Result<StreamParams, CodecError> {
        let stream = self
            .input
            .stream(self.stream)
            .ok_or_else(|| CodecError::Unsupported("the video stream vanished".into()))?;
        Ok(StreamParams::Ffmpeg(stream.parameters()))
    }

    /// The next video packet; `Ok(None)` at the end of a non-looping input.
    pub fn read(&mut self) -> Result<Option<DemuxedPacket>, CodecError> {
        let mut looped = false;
        loop {
            let mut packet = ff::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {}
                Err(ff::Error::Eof) => {
                    if !self.loop_file || looped {
                        return Ok(None);
                    }
                    looped = true;
                    self.input
                        .seek(0, ..)
                        .map_err(|source| CodecError::Ffmpeg {
                            what: "rewinding the file to loop it",
                            source,
                        })?;
                    self.loop_base = self.max_due + self.frame_time;
                    self.first_ts = None;
                    continue;
                }
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(source) => {
                    return Err(CodecError::Ffmpeg {
                        what: "reading the input",
                        source,
                    })
                }
            }
            if packet.stream() != self.stream {
                continue;
            }
            let Some(data) = packet.data() else { continue };
            let ts = packet.pts().or(packet.dts());
            // Packets reach the decoder in decode order, so they are paced by their decode
            // timestamps: pacing B-frame streams by pts sends them in bursts, and bursts of
            // decoded pictures reach viewers coalesced (latest-value), i.e. as dropped frames.
            let pace = packet.dts().or(ts);
            let due = match pace {
                Some(t) => {
                    let first = *self.first_ts.get_or_insert(t);
                    let secs = ((t - first) as f64 * self.time_base).max(0.0);
                    self.loop_base + Duration::from_secs_f64(secs)
                }
                None => self.last_due + self.frame_time,
            };
            self.last_due = due;
            self.max_due = self.max_due.max(due);
            let dts_90k = (due.as_secs_f64() * 90_000.0).round() as i64;
            let reorder = match (packet.pts(), packet.dts()) {
                (Some(p), Some(d)) => ((p - d) as f64 * self.time_base * 90_000.0).round() as i64,
                _ => 0,
            };
            return Ok(Some(DemuxedPacket {
                data: data.to_vec(),
                keyframe: packet.is_key(),
                pts: ts,
                due,
                dts_90k,
                pts_90k: dts_90k + reorder,
            }));
        }
    }
}

/// FFmpeg's interrupt callback: non-zero asks it to abandon a blocking operation.
#[allow(unsafe_code)]
unsafe extern "C" fn interrupted(opaque: *mut c_void) -> c_int {
    // SAFETY: `opaque` is the address of an AtomicBool inside an Arc that the Demuxer (or the
    // opening function) keeps alive for as long as the format context exists.
    let stop = unsafe { &*(opaque as *const AtomicBool) };
    c_int::from(stop.load(Ordering::Relaxed))
}

/// `avformat_open_input` + `avformat_find_stream_info` with an interrupt callback installed before
/// the open (ffmpeg-next's `open_with` offers no callback, so a dead server would block it forever).
#[allow(unsafe_code)]
fn open_interruptible(
    input: &str,
    format: *const ff::ffi::AVInputFormat,
    options: ff::Dictionary,
    stop: &Arc<AtomicBool>,
) -> Result<ff::format::context::Input, ff::Error> {
    let path = CString::new(input).map_err(|_| ff::Error::InvalidData)?;
    // SAFETY: standard libavformat opening sequence. The context is allocated here, given the
    // callback, and either returned wrapped (which closes it on drop) or freed on every error
    // path (avformat_open_input frees it itself when it fails). The dictionary is handed to FFmpeg
    // and taken back. `stop` outlives the context (the Demuxer stores the Arc).
    unsafe {
        let mut ctx = ff::ffi::avformat_alloc_context();
        if ctx.is_null() {
            return Err(ff::Error::Other {
                errno: ff::util::error::ENOMEM,
            });
        }
        (*ctx).interrupt_callback = ff::ffi::AVIOInterruptCB {
            callback: Some(interrupted),
            opaque: Arc::as_ptr(stop) as *mut c_void,
        };
        let mut opts = options.disown();
        let res = ff::ffi::avformat_open_input(&mut ctx, path.as_ptr(), format as _, &mut opts);
        drop(ff::Dictionary::own(opts));
        if res < 0 {
            return Err(ff::Error::from(res));
        }
        let res = ff::ffi::avformat_find_stream_info(ctx, std::ptr::null_mut());
        if res < 0 {
            ff::ffi::avformat_close_input(&mut ctx);
            return Err(ff::Error::from(res));
        }
        Ok(ff::format::context::Input::wrap(ctx))
    }
}

/// Whether this FFmpeg has a demuxer (input format, `-f`) named `name`, e.g. `v4l2`: what
/// `camhub check` asks of an `input_format`, so a typo shows before the camera is opened.
pub fn has_input_format(name: &str) -> bool {
    crate::init();
    find_input_format(name).is_some()
}

/// libavformat's descriptor of the input format `name`; `None` for an unknown name or one with a
/// NUL byte.
fn find_input_format(name: &str) -> Option<*const ff::ffi::AVInputFormat> {
    let cname = CString::new(name).ok()?;
    // SAFETY: av_find_input_format takes a NUL-terminated name and returns a static descriptor or
    // null (checked).
    #[allow(unsafe_code)]
    let fmt = unsafe { ff::ffi::av_find_input_format(cname.as_ptr()) };
    (!fmt.is_null()).then_some(fmt)
}

#[cfg(test)]
mod tests {
    use super::has_input_format;

    #[test]
    fn knows_the_formats_every_ffmpeg_build_has_and_refuses_typos() {
        assert!(has_input_format("mjpeg"));
        assert!(has_input_format("lavfi"));
        assert!(!has_input_format("v4l3"));
        assert!(!has_input_format(""));
        assert!(!has_input_format("v4l2\0"));
    }
}
