//! [`Demuxer`]: the `ffmpeg:` source's reader — anything libavformat opens (files, `/dev/video0`
//! through V4L2, RTMP, HLS), with demuxer options. Blocking: run it on its own thread. It yields the
//! best video stream's packets with the time each is due, so a file can be paced at its native rate
//! and looped without re-encoding.

use std::collections::BTreeMap;
use std::ffi::CString;
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
}

impl Demuxer {
    /// Opens `input` with an optional demuxer name (`-f`) and demuxer options.
    pub fn open(
        input: &str,
        format: Option<&str>,
        options: &BTreeMap<String, String>,
        loop_file: bool,
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
        let ctx = match format {
            Some(name) => {
                let cname = CString::new(name)
                    .map_err(|_| CodecError::Unsupported(format!("bad input_format {name:?}")))?;
                // SAFETY: av_find_input_format takes a NUL-terminated name and returns a static
                // descriptor or null (checked).
                #[allow(unsafe_code)]
                let fmt = unsafe { ff::ffi::av_find_input_format(cname.as_ptr()) };
                if fmt.is_null() {
                    return Err(CodecError::Unsupported(format!(
                        "this FFmpeg has no input format named {name:?} (see `ffmpeg -formats`)"
                    )));
                }
                // SAFETY: a valid static descriptor from av_find_input_format.
                #[allow(unsafe_code)]
                let fmt = unsafe { ff::format::format::Input::wrap(fmt as *mut _) };
                match ff::format::open_with(input, &ff::format::format::Format::Input(fmt), dict) {
                    Ok(ff::format::context::Context::Input(i)) => i,
                    Ok(_) => return Err(CodecError::Unsupported("not an input".into())),
                    Err(source) => {
                        return Err(CodecError::Ffmpeg {
                            what: "opening the input",
                            source,
                        })
                    }
                }
            }
            None => ff::format::input_with_dictionary(input, dict).map_err(|source| {
                CodecError::Ffmpeg {
                    what: "opening the input",
                    source,
                }
            })?,
        };
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
            let due = match ts {
                Some(t) => {
                    let first = *self.first_ts.get_or_insert(t);
                    let secs = ((t - first) as f64 * self.time_base).max(0.0);
                    self.loop_base + Duration::from_secs_f64(secs)
                }
                None => self.last_due + self.frame_time,
            };
            self.last_due = due;
            self.max_due = self.max_due.max(due);
            return Ok(Some(DemuxedPacket {
                data: data.to_vec(),
                keyframe: packet.is_key(),
                pts: ts,
                due,
            }));
        }
    }
}
