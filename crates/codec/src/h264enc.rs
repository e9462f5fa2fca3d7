//! [`H264Encoder`]: pictures to a low-latency H.264 stream through libx264 (via libavcodec), for
//! cameras that send only JPEG and for the demo source, so that browsers can play them through
//! MSE/HLS. One encoder per camera, shared by every viewer, driven from that camera's encode thread.
//!
//! What the stream promises its consumers:
//! - one packet per picture, returned by the same [`H264Encoder::encode`] call (tune `zerolatency`:
//!   no B-frames, no lookahead, no frame threads), so `dts == pts`;
//! - Annex B bytes, and every keyframe is an IDR that carries its own SPS and PPS in front of it
//!   (no global header), so a consumer may start at any keyframe;
//! - limited-range 4:2:0 with the colour matrix signalled in the VUI: browsers read unsignalled
//!   H.264 as limited range and guess the matrix, and a full-range stream is shown washed out by
//!   some hardware decoders, so full-range pictures (JPEG, the demo) are converted, never tagged.
//!
//! Never here: timing decisions (the caller passes each picture's pts), threads, I/O.

use std::ffi::CStr;

use ff::format::Pixel;
use ff::util::color::{Range, Space};
use ffmpeg_next as ff;

use crate::picture::ColourMatrix;
use crate::{CodecError, Picture};

/// The 90 kHz clock of `pts_90k` and of the packets' timestamps (RTP's and MPEG-TS's video clock).
const CLOCK_HZ: i32 = 90_000;

/// libx264 preset. Measured with one thread on a mildly noisy test pattern (ffmpeg's `testsrc2`
/// with temporal noise), CRF 23, CPU per frame: 640x480 ultrafast 1.7 ms, veryfast 6 ms; 1280x720
/// ultrafast 8 ms, veryfast 15 ms. veryfast needs about half the bits, but a hub encodes one
/// stream per JPEG camera on small machines, so CPU is the scarcer resource; a user who needs fewer
/// bits sets a bitrate. In camhub (`tests/h264_encode.rs`, release build, conversion from full
/// range included): 1.5 ms per 640x480 frame, 7.3 ms per 1280x720 one.
const PRESET: &str = "ultrafast";

/// Constant quality when no bitrate is set: x264's default, which ultrafast (no deblocking, no
/// CABAC) needs to keep blocks from showing on the flat areas camera pictures are full of.
const CRF: &str = "23";

/// The VBV cap of constant-quality mode, in bits per pixel per frame: a little above what ultrafast
/// spends on a mildly noisy 720p picture at CRF 23 (~0.25), so normal pictures are untouched while
/// the bursts of sensor noise at night or a scene change are bounded (640x480 at 25 fps: 2.3
/// Mbit/s; 1280x720: 6.9 Mbit/s).
const CAP_BITS_PER_PIXEL: f64 = 0.3;

/// Largest side camhub encodes (H.264's level 6.2 tops out at 8192x4320).
const MAX_SIDE: u32 = 8192;

/// How an [`H264Encoder`] encodes.
#[derive(Debug, Clone, PartialEq)]
pub struct H264Settings {
    /// Frames per second the source delivers (about): what the rate control spends its budget
    /// over. Pictures may come irregularly; their pts is what players follow.
    pub fps: f64,
    /// A keyframe at least every this many pictures (1 = every picture).
    pub gop_frames: u32,
    /// Average bitrate in kbit/s, capped at that rate over one second (VBV); `None`: constant
    /// quality, capped at a rate that grows with size and frame rate.
    pub bitrate_kbps: Option<u32>,
}

impl H264Settings {
    /// Constant quality at `fps`, a keyframe every two seconds (how far a new viewer may have to
    /// wait, and the HLS segment length camhub aims for).
    pub fn for_fps(fps: f64) -> H264Settings {
        let gop = if fps.is_finite() && fps > 0.0 {
            (fps * 2.0).round().clamp(1.0, 1000.0) as u32
        } else {
            1
        };
        H264Settings {
            fps,
            gop_frames: gop,
            bitrate_kbps: None,
        }
    }
}

/// One encoded picture (an access unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPacket {
    /// Annex B NAL units; a keyframe's start with its SPS and PPS.
    pub data: Vec<u8>,
    /// True for an IDR picture: a decoder can start here.
    pub keyframe: bool,
    /// Presentation time, 90 kHz.
    pub pts: i64,
    /// Decoding time, 90 kHz (equal to `pts`: there are no B-frames).
    pub dts: i64,
}

/// A low-latency H.264 encoder of one size: each [`Picture`] in gives its packet out at once.
///
/// Pictures of any size and of the formats the decoders produce (4:2:0 or 4:2:2, full or limited
/// range, 8 or 10 bit) are converted to limited-range 4:2:0 of the encoder's size; one matching
/// that already (a limited-range camera picture) is passed without a copy. The colour matrix the
/// stream signals is the first picture's (BT.601 for JPEG and the demo, BT.709 for most HD video);
/// later pictures in another matrix are converted to it.
///
/// Timestamps must rise: a pts at or below the previous one is moved to one tick after it, and the
/// packet says so.
///
/// ```
/// use camhub_codec::{H264Encoder, H264Settings, Picture};
///
/// let mut encoder = H264Encoder::new(320, 240, &H264Settings::for_fps(25.0))?;
/// let picture = Picture::new_yuv420_full(320, 240)?;
/// let packets = encoder.encode(&picture, 0)?;
/// assert_eq!(packets.len(), 1);
/// assert!(packets[0].keyframe);
/// # Ok::<(), camhub_codec::CodecError>(())
/// ```
pub struct H264Encoder {
    width: u32,
    height: u32,
    settings: H264Settings,
    encoder: ff::encoder::video::Encoder,
    /// The matrix the stream signals.
    matrix: ColourMatrix,
    /// True once a picture went in: from then on the stream's matrix is fixed.
    started: bool,
    converter: Option<(SourceKey, Converter)>,
    /// The converter's output, reused picture after picture.
    converted: ff::frame::Video,
    keyframe_wanted: bool,
    last_pts: Option<i64>,
}

impl H264Encoder {
    /// Opens libx264 for `width` x `height` pictures (even, at most 8192 per side). The stream
    /// signals BT.601 unless the first picture says otherwise.
    pub fn new(
        width: u32,
        height: u32,
        settings: &H264Settings,
    ) -> Result<H264Encoder, CodecError> {
        crate::init();
        if width == 0
            || height == 0
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || width > MAX_SIDE
            || height > MAX_SIDE
        {
            return Err(CodecError::Unsupported(format!(
                "cannot H.264-encode {width}x{height}: width and height must be even, 2 to \
                 {MAX_SIDE}"
            )));
        }
        if !(settings.fps.is_finite() && settings.fps > 0.0 && settings.fps <= 1000.0) {
            return Err(CodecError::Unsupported(format!(
                "H.264 frame rate {} is not between 0 and 1000",
                settings.fps
            )));
        }
        if settings.gop_frames == 0 {
            return Err(CodecError::Unsupported(
                "H.264 keyframe interval must be at least one frame".into(),
            ));
        }
        if settings.bitrate_kbps == Some(0) {
            return Err(CodecError::Unsupported(
                "H.264 bitrate must be above 0 kbit/s".into(),
            ));
        }
        let matrix = ColourMatrix::Bt601;
        let encoder = open(width, height, settings, matrix)?;
        Ok(H264Encoder {
            width,
            height,
            settings: settings.clone(),
            encoder,
            matrix,
            started: false,
            converter: None,
            converted: ff::frame::Video::new(Pixel::YUV420P, width, height),
            keyframe_wanted: false,
            last_pts: None,
        })
    }

    /// Width of the encoded pictures.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height of the encoded pictures.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The colour matrix the stream signals (fixed once the first picture is in).
    pub fn matrix(&self) -> ColourMatrix {
        self.matrix
    }

    /// Makes the next picture a keyframe (a new viewer arrived, a consumer lost packets).
    pub fn force_keyframe(&mut self) {
        self.keyframe_wanted = true;
    }

    /// Encodes `picture`, shown at `pts_90k`, and returns the packets it completed (one, with
    /// zero latency). An error concerns this picture only; the encoder stays usable.
    pub fn encode(
        &mut self,
        picture: &Picture,
        pts_90k: i64,
    ) -> Result<Vec<EncodedPacket>, CodecError> {
        if !self.started && picture.matrix() != self.matrix {
            // Nothing was encoded yet, so the stream can still signal the source's own matrix
            // instead of converting every picture to BT.601.
            self.encoder = open(self.width, self.height, &self.settings, picture.matrix())?;
            self.matrix = picture.matrix();
        }
        let pts = match self.last_pts {
            Some(last) if pts_90k <= last => last.saturating_add(1),
            _ => pts_90k,
        };
        let key = SourceKey::of(picture);
        let passes_as_is = key.format == Pixel::YUV420P
            && !key.full
            && (key.width, key.height) == (self.width, self.height)
            && key.matrix == self.matrix;
        let mut referenced;
        let frame = if passes_as_is {
            referenced = ff::frame::Video::empty();
            // SAFETY: both frames are valid; av_frame_ref adds a reference to the picture's buffers
            // (or copies them when they are not reference-counted), owned by `referenced`.
            #[allow(unsafe_code)]
            let rc =
                unsafe { ff::ffi::av_frame_ref(referenced.as_mut_ptr(), picture.frame.as_ptr()) };
            if rc < 0 {
                return Err(CodecError::Ffmpeg {
                    what: "referencing a picture for H.264 encoding",
                    source: ff::Error::from(rc),
                });
            }
            &mut referenced
        } else if let Some(chroma_rows) = lut_chroma_rows(key, self.width, self.height, self.matrix)
        {
            make_writable(&mut self.converted)?;
            full_to_limited(picture, &mut self.converted, chroma_rows)?;
            &mut self.converted
        } else {
            if self.converter.as_ref().map(|(k, _)| *k) != Some(key) {
                let converter = Converter::new(key, self.width, self.height, self.matrix)?;
                self.converter = Some((key, converter));
            }
            let Some((_, converter)) = self.converter.as_mut() else {
                return Err(CodecError::Unsupported("H.264 converter missing".into()));
            };
            make_writable(&mut self.converted)?;
            converter.run(picture, &mut self.converted)?;
            &mut self.converted
        };
        frame.set_pts(Some(pts));
        frame.set_kind(if self.keyframe_wanted {
            ff::picture::Type::I
        } else {
            ff::picture::Type::None
        });
        frame.set_color_range(Range::MPEG);
        frame.set_color_space(space(self.matrix));
        self.encoder
            .send_frame(frame)
            .map_err(|source| CodecError::Ffmpeg {
                what: "encoding a picture to H.264",
                source,
            })?;
        self.started = true;
        self.keyframe_wanted = false;
        self.last_pts = Some(pts);
        let mut out = Vec::with_capacity(1);
        loop {
            let mut packet = ff::Packet::empty();
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    let pts = packet.pts().unwrap_or(pts);
                    out.push(EncodedPacket {
                        data: packet.data().map(<[u8]>::to_vec).unwrap_or_default(),
                        keyframe: packet.is_key(),
                        pts,
                        dts: packet.dts().unwrap_or(pts),
                    });
                }
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => break,
                Err(ff::Error::Eof) => break,
                Err(source) => {
                    return Err(CodecError::Ffmpeg {
                        what: "receiving an H.264 packet",
                        source,
                    })
                }
            }
        }
        Ok(out)
    }
}

/// Opens libx264 for one size and signalled matrix.
fn open(
    width: u32,
    height: u32,
    settings: &H264Settings,
    matrix: ColourMatrix,
) -> Result<ff::encoder::video::Encoder, CodecError> {
    let codec = ff::encoder::find_by_name("libx264").ok_or_else(|| {
        CodecError::Unsupported("this FFmpeg has no libx264 H.264 encoder".into())
    })?;
    let mut enc = ff::codec::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|source| CodecError::Ffmpeg {
            what: "creating the H.264 encoder",
            source,
        })?;
    enc.set_width(width);
    enc.set_height(height);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base((1, CLOCK_HZ));
    enc.set_frame_rate(Some(ff::Rational::from(settings.fps)));
    enc.set_gop(settings.gop_frames);
    enc.set_max_b_frames(0);
    enc.set_color_range(Range::MPEG);
    enc.set_colorspace(space(matrix));
    // One thread: x264's frame threads delay output by a frame each, and slice threads (what
    // zerolatency would pick) cost bits and synchronisation for little at these sizes; a hub runs
    // one encoder per camera, each on its own thread, so the cores are used anyway.
    enc.set_threading(ff::codec::threading::Config {
        kind: ff::codec::threading::Type::Slice,
        count: 1,
        ..Default::default()
    });
    let mut options = ff::Dictionary::new();
    options.set("preset", PRESET);
    options.set("tune", "zerolatency");
    // A forced keyframe (pict_type I) must be an IDR, not an open-GOP I picture, so a consumer can
    // start there.
    options.set("forced-idr", "1");
    // x264's defaults already, made explicit because consumers depend on them: parameter sets
    // before every IDR, start codes rather than lengths.
    options.set("x264-params", "repeat-headers=1:annexb=1");
    let (average, cap) = match settings.bitrate_kbps {
        Some(kbps) => {
            let bits = u64::from(kbps) * 1000;
            (Some(bits), bits)
        }
        None => {
            options.set("crf", CRF);
            let cap = f64::from(width) * f64::from(height) * settings.fps * CAP_BITS_PER_PIXEL;
            (None, cap.clamp(100_000.0, 1e9) as u64)
        }
    };
    if let Some(bits) = average {
        options.set("b", &bits.to_string());
    }
    // One second of the cap as buffer: a keyframe may take up to a second's worth of bits, and
    // no window of t seconds carries more than (t + 1) times the cap.
    options.set("maxrate", &cap.to_string());
    options.set("bufsize", &cap.to_string());
    enc.open_as_with(codec, options)
        .map_err(|source| CodecError::Ffmpeg {
            what: "opening the libx264 encoder",
            source,
        })
}

/// Makes the reused input frame writable before it is overwritten. libavcodec drops its reference
/// once libx264 has copied the picture, which it does within `send_frame`; this only allocates if
/// that ever changes.
fn make_writable(frame: &mut ff::frame::Video) -> Result<(), CodecError> {
    // SAFETY: `frame` is a valid, owned frame.
    #[allow(unsafe_code)]
    let rc = unsafe { ff::ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if rc < 0 {
        return Err(CodecError::Ffmpeg {
            what: "reusing the H.264 input buffer",
            source: ff::Error::from(rc),
        });
    }
    Ok(())
}

/// For a full-range 8-bit 4:2:0 or 4:2:2 source of the encoder's size and matrix (JPEG cameras at
/// native size, the demo), how many source chroma rows make one output row (1 or 2); None when
/// swscale must do it. swscale's same-size range conversion cost ~1 ms per 640x480 picture and
/// ~3 ms per 1280x720 one, a third of the encoder's own cost; this table lookup costs a tenth of it.
fn lut_chroma_rows(key: SourceKey, width: u32, height: u32, matrix: ColourMatrix) -> Option<usize> {
    if !key.full || (key.width, key.height) != (width, height) || key.matrix != matrix {
        return None;
    }
    match key.format {
        Pixel::YUV420P | Pixel::YUVJ420P => Some(1),
        Pixel::YUV422P | Pixel::YUVJ422P => Some(2),
        _ => None,
    }
}

/// Full range (0–255) to limited range (16–235 luma, 16–240 chroma), rounded to nearest.
struct RangeTables {
    luma: [u8; 256],
    chroma: [u8; 256],
}

static RANGE_TABLES: std::sync::LazyLock<RangeTables> = std::sync::LazyLock::new(|| {
    let mut t = RangeTables {
        luma: [0; 256],
        chroma: [0; 256],
    };
    for v in 0..256u32 {
        // 16 + v·219/255 and 128 + (v − 128)·224/255, rounded (integers: no float edge cases).
        t.luma[v as usize] = (16 + (v * 219 + 127) / 255) as u8;
        t.chroma[v as usize] = ((16 * 255 + v * 224 + 127) / 255) as u8;
    }
    t
});

/// Converts a full-range picture (see [`lut_chroma_rows`]) into `dst`, limited-range YUV420P of
/// the same size; with `chroma_rows` 2, each output chroma row is the mean of two source rows.
fn full_to_limited(
    src: &Picture,
    dst: &mut ff::frame::Video,
    chroma_rows: usize,
) -> Result<(), CodecError> {
    let t = &*RANGE_TABLES;
    let (w, h) = (src.width() as usize, src.height() as usize);
    let short = || CodecError::Unsupported(format!("{src:?} has planes shorter than its size"));
    for (plane, (pw, ph)) in [(w, h), (w / 2, h / 2), (w / 2, h / 2)]
        .into_iter()
        .enumerate()
    {
        let (s, ss) = src.plane(plane);
        let ds = dst.stride(plane);
        let d = dst.data_mut(plane);
        let table = if plane == 0 { &t.luma } else { &t.chroma };
        for row in 0..ph {
            let out = d.get_mut(row * ds..row * ds + pw).ok_or_else(short)?;
            let first = row * chroma_rows.min(if plane == 0 { 1 } else { 2 });
            let a = s.get(first * ss..first * ss + pw).ok_or_else(short)?;
            if plane > 0 && chroma_rows == 2 {
                let b = s
                    .get((first + 1) * ss..(first + 1) * ss + pw)
                    .ok_or_else(short)?;
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = table[usize::from((u16::from(x) + u16::from(y)).div_ceil(2) as u8)];
                }
            } else {
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = table[usize::from(x)];
                }
            }
        }
    }
    Ok(())
}

/// The colour space tag of the stream for `matrix`.
fn space(matrix: ColourMatrix) -> Space {
    match matrix {
        // SMPTE 170M and BT.470BG are the same matrix; 170M is what SD encoders tag.
        ColourMatrix::Bt601 => Space::SMPTE170M,
        ColourMatrix::Bt709 => Space::BT709,
        ColourMatrix::Bt2020 => Space::BT2020NCL,
        ColourMatrix::Smpte240m => Space::SMPTE240M,
        ColourMatrix::Fcc => Space::FCC,
    }
}

/// What a converter is prepared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SourceKey {
    format: Pixel,
    width: u32,
    height: u32,
    full: bool,
    matrix: ColourMatrix,
}

impl SourceKey {
    fn of(picture: &Picture) -> SourceKey {
        SourceKey {
            format: picture.frame.format(),
            width: picture.width(),
            height: picture.height(),
            full: picture.is_full_range(),
            matrix: picture.matrix(),
        }
    }
}

/// A swscale context from one source to limited-range YUV 4:2:0 of the encoder's size.
///
/// Not [`crate::Scaler`]: that one makes full-range JPEG pictures, and a second pass to limited
/// range would double the work. Not ffmpeg-next's scaling context either: the ranges must be set
/// before swscale initialises, otherwise at equal sizes it picks its plain copy path and ignores
/// them (FFmpeg 5.1), and ffmpeg-next only sets them after.
struct Converter {
    ctx: *mut ff::ffi::SwsContext,
    src_height: i32,
}

// SAFETY: the SwsContext is owned by this value alone and used from one thread at a time.
#[allow(unsafe_code)]
unsafe impl Send for Converter {}

impl Converter {
    fn new(
        key: SourceKey,
        width: u32,
        height: u32,
        dst_matrix: ColourMatrix,
    ) -> Result<Converter, CodecError> {
        let unsupported = || {
            CodecError::Unsupported(format!(
                "cannot convert a {}x{} {:?} picture for H.264",
                key.width, key.height, key.format
            ))
        };
        let src_height = i32::try_from(key.height).map_err(|_| unsupported())?;
        let ints: [(&CStr, i64); 9] = [
            (c"srcw", i64::from(key.width)),
            (c"srch", i64::from(key.height)),
            (
                c"src_format",
                ff::ffi::AVPixelFormat::from(key.format) as i64,
            ),
            (c"dstw", i64::from(width)),
            (c"dsth", i64::from(height)),
            (
                c"dst_format",
                ff::ffi::AVPixelFormat::from(Pixel::YUV420P) as i64,
            ),
            // Bilinear: bicubic's sharper scaling costs about twice as much and matters little
            // for a live view that is usually at native size anyway.
            (c"sws_flags", i64::from(ff::ffi::SWS_BILINEAR)),
            (c"src_range", i64::from(key.full)),
            (c"dst_range", 0),
        ];
        // SAFETY: sws_alloc_context returns an owned context or null (checked); it is freed by
        // `Converter`'s drop from the moment it is wrapped, including on the error paths below.
        #[allow(unsafe_code)]
        let converter = unsafe {
            let ctx = ff::ffi::sws_alloc_context();
            if ctx.is_null() {
                return Err(CodecError::Unsupported(
                    "out of memory for an H.264 converter".into(),
                ));
            }
            Converter { ctx, src_height }
        };
        for (name, value) in ints {
            // SAFETY: `ctx` is a valid SwsContext, an AVOptions-enabled struct; `name` is a
            // NUL-terminated string.
            #[allow(unsafe_code)]
            let rc =
                unsafe { ff::ffi::av_opt_set_int(converter.ctx.cast(), name.as_ptr(), value, 0) };
            if rc < 0 {
                return Err(CodecError::Ffmpeg {
                    what: "configuring the H.264 converter",
                    source: ff::Error::from(rc),
                });
            }
        }
        // SAFETY: `ctx` is a valid, configured, not yet initialised SwsContext; null filters ask
        // for swscale's defaults.
        #[allow(unsafe_code)]
        let rc = unsafe {
            ff::ffi::sws_init_context(converter.ctx, std::ptr::null_mut(), std::ptr::null_mut())
        };
        if rc < 0 {
            return Err(CodecError::Ffmpeg {
                what: "preparing the H.264 converter",
                source: ff::Error::from(rc),
            });
        }
        if key.matrix != dst_matrix {
            // Only when the matrices differ: swscale then converts through RGB, which costs more
            // (the stream's matrix is the first picture's, so this is a source that changed).
            // SAFETY: plain call on the initialised context; the static coefficient tables are
            // copied by swscale. Its result is not an error: FFmpeg 5.1 returns -1 for YUV → YUV
            // even when it applied the change.
            #[allow(unsafe_code)]
            unsafe {
                ff::ffi::sws_setColorspaceDetails(
                    converter.ctx,
                    ff::ffi::sws_getCoefficients(key.matrix.sws_colorspace()),
                    i32::from(key.full),
                    ff::ffi::sws_getCoefficients(dst_matrix.sws_colorspace()),
                    0,
                    0,
                    1 << 16,
                    1 << 16,
                );
            }
        }
        Ok(converter)
    }

    /// Converts `src` (of the format and size this converter was made for) into `dst` (YUV420P of
    /// the encoder's size).
    fn run(&mut self, src: &Picture, dst: &mut ff::frame::Video) -> Result<(), CodecError> {
        // SAFETY: the caller made this converter for `src`'s format and size (the key is checked
        // on every picture) and `dst` is an allocated YUV420P frame of the destination size, so
        // swscale reads and writes within both frames' planes.
        #[allow(unsafe_code)]
        let rows = unsafe {
            let s = src.frame.as_ptr();
            let d = dst.as_mut_ptr();
            ff::ffi::sws_scale(
                self.ctx,
                (*s).data.as_ptr() as *const *const u8,
                (*s).linesize.as_ptr(),
                0,
                self.src_height,
                (*d).data.as_ptr(),
                (*d).linesize.as_ptr(),
            )
        };
        if rows <= 0 {
            return Err(CodecError::Ffmpeg {
                what: "converting a picture for H.264",
                source: ff::Error::from(rows.min(-1)),
            });
        }
        Ok(())
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        // SAFETY: `ctx` was allocated by sws_alloc_context and is freed once, here.
        #[allow(unsafe_code)]
        unsafe {
            ff::ffi::sws_freeContext(self.ctx)
        };
    }
}
