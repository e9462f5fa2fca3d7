//! [`Demuxer`]: the `ffmpeg:` source's reader — anything libavformat opens (files, `/dev/video0`
//! through V4L2, RTMP, HLS), with demuxer options. Blocking: run it on its own thread. It yields the
//! best video stream's packets with the time each is due, so a file can be paced at its native rate
//! and looped without re-encoding. H.264 / H.265 come out as Annex B with in-band parameter sets
//! whatever the container (libavcodec's `*_mp4toannexb` bitstream filters convert MP4, Matroska and
//! FLV framing), as every packet-tap consumer expects.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::CString;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ffmpeg_next as ff;

use crate::bsf::AnnexBFilter;
use crate::{CodecError, StreamParams};

/// One packet of the video stream.
pub struct DemuxedPacket {
    /// Packet bytes. H.264 / H.265: Annex B with the parameter sets in-band on keyframes (converted
    /// from MP4 / Matroska / FLV length-prefixed framing; Annex B inputs pass byte for byte).
    /// Other codecs: as the container holds them. The decoder gets matching [`StreamParams`].
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
    /// Converts length-prefixed H.264 / H.265 to Annex B; `None` when the packets need nothing.
    annexb: Option<AnnexBFilter>,
    /// Packets the filter returned beyond the one asked for, already timed. Bounded by what one
    /// input packet yields (normally one packet, so this is normally empty).
    pending: VecDeque<DemuxedPacket>,
    loop_file: bool,
    clock: PlaybackClock,
    /// Kept alive as long as the context: its address is FFmpeg's interrupt-callback argument.
    /// Declared after `input` so it is dropped after it.
    _stop: Arc<AtomicBool>,
}

/// Turns packet timestamps into due times on one playback clock that keeps running across loops.
struct PlaybackClock {
    /// Seconds per timestamp unit of the packets being timed.
    time_base: f64,
    first_ts: Option<i64>,
    /// Playback time added by previous loops.
    loop_base: Duration,
    last_due: Duration,
    /// Latest due time seen: with B-frames the last packet read is not the last one shown.
    max_due: Duration,
    frame_time: Duration,
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
        let annexb = AnnexBFilter::for_stream(&stream.parameters(), stream.time_base())?;
        // The filter keeps the timestamps, but its output time base is the one they are in.
        let tb = annexb
            .as_ref()
            .map_or_else(|| stream.time_base(), AnnexBFilter::time_base);
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
            annexb,
            pending: VecDeque::new(),
            loop_file,
            clock: PlaybackClock {
                time_base,
                first_ts: None,
                loop_base: Duration::ZERO,
                last_due: Duration::ZERO,
                max_due: Duration::ZERO,
                frame_time,
            },
        })
    }

    /// Decoder parameters of the video stream as [`read`](Self::read) delivers it: for a converted
    /// H.264 / H.265 stream, the Annex B parameter sets instead of the container's avcC / hvcC.
    pub fn params(&self) -> Result<StreamParams, CodecError> {
        if let Some(filter) = &self.annexb {
            return Ok(StreamParams::Ffmpeg(filter.params()?));
        }
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
            if let Some(p) = self.pending.pop_front() {
                return Ok(Some(p));
            }
            let mut packet = ff::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {}
                Err(ff::Error::Eof) => {
                    // What the filter still holds belongs to this pass: it is timed before the
                    // rewind restarts the clock, and delivered before the next pass.
                    self.drain_filter(true)?;
                    if !self.pending.is_empty() {
                        continue;
                    }
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
                    self.clock.rewind();
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
            match self.annexb.as_mut() {
                Some(filter) => {
                    filter.send(&mut packet)?;
                    // Normally one packet out per packet in; none (a damaged packet) reads on.
                    self.drain_filter(false)?;
                }
                None => {
                    if let Some(p) = self.clock.stamp(&packet) {
                        return Ok(Some(p));
                    }
                }
            }
        }
    }

    /// Moves every packet the filter has ready into `pending`, timed. At the end of a pass
    /// (`end_of_pass`) the filter is told so first, so it returns what it held back, and is
    /// restarted afterwards (even after an error) so the next pass can feed it again.
    fn drain_filter(&mut self, end_of_pass: bool) -> Result<(), CodecError> {
        let Some(filter) = self.annexb.as_mut() else {
            return Ok(());
        };
        let mut result = if end_of_pass {
            filter.send_eof()
        } else {
            Ok(())
        };
        while result.is_ok() {
            match filter.receive() {
                Ok(Some(p)) => {
                    if let Some(timed) = self.clock.stamp(&p) {
                        self.pending.push_back(timed);
                    }
                }
                Ok(None) => break,
                Err(e) => result = Err(e),
            }
        }
        if end_of_pass {
            filter.restart();
        }
        result
    }
}

impl PlaybackClock {
    /// `packet` with its due time and 90 kHz timestamps; `None` for a packet without data.
    fn stamp(&mut self, packet: &ff::Packet) -> Option<DemuxedPacket> {
        let data = packet.data()?;
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
        Some(DemuxedPacket {
            data: data.to_vec(),
            keyframe: packet.is_key(),
            pts: ts,
            due,
            dts_90k,
            pts_90k: dts_90k + reorder,
        })
    }

    /// The input starts again from the beginning: the next pass is due one frame after the
    /// latest packet of this one.
    fn rewind(&mut self) {
        self.loop_base = self.max_due + self.frame_time;
        self.first_ts = None;
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
