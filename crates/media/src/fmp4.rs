//! Fragmented MP4 (ISO/IEC 14496-12 with the 14496-15 H.264 / H.265 sample entries) for live video:
//! an init segment made from the parameter sets, then one `moof` + `mdat` per group of access
//! units. What browsers play without transcoding — Media Source Extensions fed over a WebSocket, a
//! progressive `.mp4` over HTTP, (LL-)HLS segments — and what `ffmpeg` reads.
//!
//! Pure: bytes in, bytes out, no clock. The caller owns timing (90 kHz timestamps, rebased so the
//! first decode time is ≥ 0) and decides when the parameter sets changed (compare [`Track`]s: equal
//! tracks have equal parameter set bytes) and a new init segment is due. Parameter sets live only in
//! the init segment (sample entries `avc1` / `hvc1`); the in-band copies are dropped from samples.
//!
//! ```
//! use camhub_media::annexb::Coding;
//! use camhub_media::fmp4::{init_segment, Fragmenter, Sample, Track};
//! let sps = [0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0, 0, 3, 0,
//!            0x02, 0, 0, 3, 0, 0x64, 0x1e, 0x2c, 0x5c, 0x90];
//! let pps = [0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0];
//! let track = Track::from_parameter_sets(Coding::H264, &[&sps, &pps])?;
//! assert_eq!((track.width, track.height, track.codec_string.as_str()), (640, 360, "avc1.64001e"));
//! let init = init_segment(&track);
//! let mut fragmenter = Fragmenter::new();
//! let idr = [0, 0, 0, 1, 0x09, 0x10, 0, 0, 0, 1, 0x65, 0x88, 0x84]; // AUD (dropped), IDR slice
//! let sample = Sample { data: &idr, dts: 0, pts: 0, duration: 3600, keyframe: true };
//! let fragment = fragmenter.fragment(&track, &[sample]);
//! assert_eq!(&init[4..8], b"ftyp");
//! assert_eq!(&fragment[4..8], b"moof");
//! assert!(fragment.ends_with(&[0, 0, 0, 3, 0x65, 0x88, 0x84])); // length-prefixed, in the mdat
//! # Ok::<(), camhub_media::fmp4::Fmp4Error>(())
//! ```

use std::fmt;

use crate::annexb::{nal_units, Coding};
use crate::sps::{H264Sps, H265Sps, H265Vps, SpsError};

/// The one track's id in every init segment and fragment.
const TRACK_ID: u32 = 1;

/// Why [`Track::from_parameter_sets`] could not describe a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fmp4Error {
    /// A parameter set the codec needs was not among those given.
    Missing {
        /// The codec of the stream.
        codec: Coding,
        /// `"SPS"`, `"PPS"` or `"VPS"`.
        set: &'static str,
    },
    /// A parameter set could not be read.
    Damaged {
        /// The codec of the stream.
        codec: Coding,
        /// `"SPS"` or `"VPS"`.
        set: &'static str,
        /// What was wrong with it.
        error: SpsError,
    },
    /// A parameter set longer than the 65535 bytes the decoder configuration record can hold, or
    /// more distinct sets of one kind than it can count (H.264: 31 SPS, 255 PPS; H.265: 65535).
    TooLarge {
        /// The codec of the stream.
        codec: Coding,
        /// `"SPS"`, `"PPS"` or `"VPS"`.
        set: &'static str,
    },
}

impl fmt::Display for Fmp4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fmp4Error::Missing { codec, set } => {
                write!(
                    f,
                    "no {set} among the {} parameter sets",
                    codec_name(*codec)
                )
            }
            Fmp4Error::Damaged { codec, set, error } => {
                write!(f, "damaged {} {set}: {error}", codec_name(*codec))
            }
            Fmp4Error::TooLarge { codec, set } => write!(
                f,
                "{} {set}: too long or too many for the decoder configuration record",
                codec_name(*codec)
            ),
        }
    }
}

impl std::error::Error for Fmp4Error {}

fn codec_name(codec: Coding) -> &'static str {
    match codec {
        Coding::H264 => "H.264",
        Coding::H265 => "H.265",
    }
}

/// One video track, as the init segment describes it: everything is derived from the parameter
/// sets. Two tracks are equal exactly when their parameter sets are byte for byte, so "does this
/// stream need a new init segment" is `new_track != current_track`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// H.264 (sample entry `avc1`) or H.265 (`hvc1`).
    pub codec: Coding,
    /// Displayed width in pixels (after cropping).
    pub width: u32,
    /// Displayed height in pixels (after cropping).
    pub height: u32,
    /// Ticks per second of every timestamp and duration: 90 000, the RTP video clock. Must not be 0.
    pub timescale: u32,
    /// The RFC 6381 codec string for MSE's `addSourceBuffer` / HLS's `CODECS`, e.g. `avc1.640028`
    /// or `hvc1.1.6.L120.90`.
    pub codec_string: String,
    /// The `avcC` or `hvcC` record (the box's payload).
    config: Vec<u8>,
}

impl Track {
    /// Describes the stream whose parameter sets are `sets`: NAL units without start codes —
    /// H.264 SPS and PPS, H.265 VPS, SPS and PPS. Other NAL units among them are ignored (so all
    /// units of a keyframe's access unit may be passed), as are repeated identical sets. The first
    /// SPS gives size, profile and level.
    pub fn from_parameter_sets(codec: Coding, sets: &[&[u8]]) -> Result<Track, Fmp4Error> {
        let damaged = |set| move |error| Fmp4Error::Damaged { codec, set, error };
        let mut config = Vec::with_capacity(64);
        let (width, height, codec_string) = match codec {
            Coding::H264 => {
                let sps_list = gather(codec, sets, "SPS", 7, 31)?;
                let pps_list = gather(codec, sets, "PPS", 8, 255)?;
                let sps = H264Sps::parse(sps_list[0]).map_err(damaged("SPS"))?;
                write_avcc(&mut config, &sps, &sps_list, &pps_list);
                (sps.width, sps.height, sps.codec_string())
            }
            Coding::H265 => {
                let vps_list = gather(codec, sets, "VPS", 32, 0xffff)?;
                let sps_list = gather(codec, sets, "SPS", 33, 0xffff)?;
                let pps_list = gather(codec, sets, "PPS", 34, 0xffff)?;
                H265Vps::parse(vps_list[0]).map_err(damaged("VPS"))?;
                let sps = H265Sps::parse(sps_list[0]).map_err(damaged("SPS"))?;
                write_hvcc(&mut config, &sps, [&vps_list, &sps_list, &pps_list]);
                let codec_string = sps.profile_tier_level.codec_string("hvc1");
                (sps.width, sps.height, codec_string)
            }
        };
        Ok(Track {
            codec,
            width,
            height,
            timescale: 90_000,
            codec_string,
            config,
        })
    }

    /// The decoder configuration record (`AVCDecoderConfigurationRecord` or
    /// `HEVCDecoderConfigurationRecord`): also what WebCodecs' `VideoDecoder.configure` wants as
    /// `description` for length-prefixed samples.
    pub fn decoder_config(&self) -> &[u8] {
        &self.config
    }
}

/// The distinct units of `sets` with NAL unit type `nal_type` (the parameter set `set`), in order:
/// at least one, at most `max_count`, each short enough for a 16-bit length.
fn gather<'a>(
    codec: Coding,
    sets: &[&'a [u8]],
    set: &'static str,
    nal_type: u8,
    max_count: usize,
) -> Result<Vec<&'a [u8]>, Fmp4Error> {
    let mut out: Vec<&[u8]> = Vec::new();
    for &unit in sets {
        if !unit.is_empty() && codec.nal_type(unit) == nal_type && !out.contains(&unit) {
            out.push(unit);
        }
    }
    if out.is_empty() {
        return Err(Fmp4Error::Missing { codec, set });
    }
    if out.len() > max_count || out.iter().any(|u| u.len() > 0xffff) {
        return Err(Fmp4Error::TooLarge { codec, set });
    }
    Ok(out)
}

/// Appends each unit with its 16-bit length (checked by [`gather`]).
fn put_units(out: &mut Vec<u8>, units: &[&[u8]]) {
    for unit in units {
        out.put_u16(unit.len() as u16);
        out.extend_from_slice(unit);
    }
}

/// ISO/IEC 14496-15 5.3.3.1: AVCDecoderConfigurationRecord.
fn write_avcc(out: &mut Vec<u8>, sps: &H264Sps, sps_list: &[&[u8]], pps_list: &[&[u8]]) {
    out.put_u8(1); // configurationVersion
    out.put_u8(sps.profile_idc);
    out.put_u8(sps.constraint_flags);
    out.put_u8(sps.level_idc);
    out.put_u8(0xfc | 3); // lengthSizeMinusOne: 4-byte NAL lengths

    // Counts are checked by `gather`: at most 31 SPS and 255 PPS.
    out.put_u8(0xe0 | sps_list.len() as u8);
    put_units(out, sps_list);
    out.put_u8(pps_list.len() as u8);
    put_units(out, pps_list);
    if sps.has_avcc_extension() {
        out.put_u8(0xfc | sps.chroma_format_idc);
        out.put_u8(0xf8 | (sps.bit_depth_luma - 8));
        out.put_u8(0xf8 | (sps.bit_depth_chroma - 8));
        out.put_u8(0); // numOfSequenceParameterSetExt
    }
}

/// ISO/IEC 14496-15 8.3.3.1: HEVCDecoderConfigurationRecord, arrays VPS, SPS, PPS.
fn write_hvcc(out: &mut Vec<u8>, sps: &H265Sps, arrays: [&[&[u8]]; 3]) {
    let ptl = &sps.profile_tier_level;
    out.put_u8(1); // configurationVersion
    out.put_u8(ptl.profile_space << 6 | u8::from(ptl.tier) << 5 | ptl.profile_idc);
    out.put_u32(ptl.compatibility_flags);
    out.extend_from_slice(&ptl.constraint_flags);
    out.put_u8(ptl.level_idc);
    // min_spatial_segmentation_idc 0 and parallelismType 0 ("unknown") are always valid; the real
    // values sit in the VUI, which is not parsed, and decoders do not need them.
    out.put_u16(0xf000);
    out.put_u8(0xfc);
    out.put_u8(0xfc | sps.chroma_format_idc);
    out.put_u8(0xf8 | (sps.bit_depth_luma - 8));
    out.put_u8(0xf8 | (sps.bit_depth_chroma - 8));
    out.put_u16(0); // avgFrameRate: unspecified

    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
    out.put_u8((sps.max_sub_layers & 7) << 3 | u8::from(sps.temporal_id_nesting) << 2 | 3);
    out.put_u8(3); // numOfArrays
    for (units, nal_type) in arrays.iter().zip([32, 33, 34]) {
        // array_completeness 1: these are all the sets; none come in-band (sample entry hvc1).
        out.put_u8(0x80 | nal_type);
        out.put_u16(units.len() as u16); // at most 65535, checked by `gather`
        put_units(out, units);
    }
}

/// The init segment of `track`: `ftyp` and a `moov` with one video track (id 1) of duration 0, its
/// sample table empty, and `mvex` announcing that the samples come in fragments. Send it once, then
/// fragments; send it again (and restart the decoder or `SourceBuffer`) when the track changes.
pub fn init_segment(track: &Track) -> Vec<u8> {
    let mut out = Vec::with_capacity(track.config.len() + 720);
    write_box(&mut out, b"ftyp", |out| {
        // iso5: default-base-is-moof; iso6: tfdt etc. (ISO/IEC 14496-12 brands); mp41 for old readers.
        out.extend_from_slice(b"iso5");
        out.put_u32(512);
        out.extend_from_slice(b"iso5iso6mp41");
    });
    write_box(&mut out, b"moov", |out| {
        write_full_box(out, b"mvhd", 0, 0, |out| {
            out.put_u32(0); // creation_time
            out.put_u32(0); // modification_time
            out.put_u32(track.timescale);
            out.put_u32(0); // duration: unknown, it is live
            out.put_u32(0x0001_0000); // rate 1.0
            out.put_u16(0x0100); // volume 1.0
            out.extend_from_slice(&[0; 10]);
            put_unity_matrix(out);
            out.extend_from_slice(&[0; 24]); // pre_defined
            out.put_u32(TRACK_ID + 1); // next_track_ID
        });
        write_box(out, b"trak", |out| write_trak(out, track));
        write_box(out, b"mvex", |out| {
            write_full_box(out, b"trex", 0, 0, |out| {
                out.put_u32(TRACK_ID);
                out.put_u32(1); // default_sample_description_index
                out.put_u32(0); // default_sample_duration
                out.put_u32(0); // default_sample_size
                out.put_u32(0); // default_sample_flags
            });
        });
    });
    out
}

fn write_trak(out: &mut Vec<u8>, track: &Track) {
    // Track enabled and in the presentation: players skip disabled tracks.
    write_full_box(out, b"tkhd", 0, 0x3, |out| {
        out.put_u32(0); // creation_time
        out.put_u32(0); // modification_time
        out.put_u32(TRACK_ID);
        out.put_u32(0); // reserved
        out.put_u32(0); // duration
        out.extend_from_slice(&[0; 8]);
        out.put_u16(0); // layer
        out.put_u16(0); // alternate_group
        out.put_u16(0); // volume: 0 for video
        out.put_u16(0);
        put_unity_matrix(out);
        out.put_u32(track.width << 16); // 16.16 fixed point; sizes are ≤ 65535
        out.put_u32(track.height << 16);
    });
    write_box(out, b"mdia", |out| {
        write_full_box(out, b"mdhd", 0, 0, |out| {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(track.timescale);
            out.put_u32(0);
            out.put_u16(0x55c4); // language "und", packed ISO 639-2/T
            out.put_u16(0);
        });
        write_full_box(out, b"hdlr", 0, 0, |out| {
            out.put_u32(0);
            out.extend_from_slice(b"vide");
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(b"VideoHandler\0");
        });
        write_box(out, b"minf", |out| {
            write_full_box(out, b"vmhd", 0, 1, |out| out.extend_from_slice(&[0; 8]));
            write_box(out, b"dinf", |out| {
                write_full_box(out, b"dref", 0, 0, |out| {
                    out.put_u32(1);
                    // Flag 1: the media data is in this file (the fragments).
                    write_full_box(out, b"url ", 0, 1, |_| {});
                });
            });
            write_box(out, b"stbl", |out| {
                write_full_box(out, b"stsd", 0, 0, |out| {
                    out.put_u32(1);
                    write_sample_entry(out, track);
                });
                // Empty tables: every sample is in a fragment.
                write_full_box(out, b"stts", 0, 0, |out| out.put_u32(0));
                write_full_box(out, b"stsc", 0, 0, |out| out.put_u32(0));
                write_full_box(out, b"stsz", 0, 0, |out| out.extend_from_slice(&[0; 8]));
                write_full_box(out, b"stco", 0, 0, |out| out.put_u32(0));
            });
        });
    });
}

/// The VisualSampleEntry (ISO/IEC 14496-12 12.1.3) with its `avcC` / `hvcC`.
fn write_sample_entry(out: &mut Vec<u8>, track: &Track) {
    let (entry, config) = match track.codec {
        Coding::H264 => (b"avc1", b"avcC"),
        Coding::H265 => (b"hvc1", b"hvcC"),
    };
    write_box(out, entry, |out| {
        out.extend_from_slice(&[0; 6]);
        out.put_u16(1); // data_reference_index
        out.extend_from_slice(&[0; 16]); // pre_defined, reserved
        out.put_u16(track.width.min(0xffff) as u16);
        out.put_u16(track.height.min(0xffff) as u16);
        out.put_u32(0x0048_0000); // 72 dpi
        out.put_u32(0x0048_0000);
        out.put_u32(0);
        out.put_u16(1); // frame_count
        out.extend_from_slice(&[0; 32]); // compressorname
        out.put_u16(0x0018); // depth: colour, no alpha
        out.put_u16(0xffff); // pre_defined = -1
        write_box(out, config, |out| out.extend_from_slice(&track.config));
    });
}

/// A `styp` box to open a segment that is a file of its own (HLS / CMAF media segments: the brands
/// say "fragments of a media segment, with index"); MSE and progressive MP4 do not need it.
pub fn segment_type() -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    write_box(&mut out, b"styp", |out| {
        out.extend_from_slice(b"msdh");
        out.put_u32(0);
        out.extend_from_slice(b"msdhmsix");
    });
    out
}

/// One access unit to put into a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// The access unit in Annex B form (start codes), as the packet tap carries it.
    pub data: &'a [u8],
    /// Decode time in the track's timescale. Only the first sample's is written (as the fragment's
    /// base); the others follow from the durations, so `duration` should be the gap to the next
    /// sample's `dts`.
    pub dts: i64,
    /// Presentation time in the track's timescale; `pts - dts` is written, so B-frames work.
    pub pts: i64,
    /// Time until the next sample's `dts` (for the newest sample of a live stream, the expected
    /// frame interval).
    pub duration: u32,
    /// True for a random access point (IDR / IRAP): a decoder can start here.
    pub keyframe: bool,
}

/// Turns groups of access units into fragments (`moof` + `mdat`), numbering them.
///
/// Usage contract: the first sample's `dts` of every fragment must be ≥ 0 — the caller rebases the
/// camera's timestamps (a negative one is written as 0); timestamps must increase across fragments
/// for players to append them in order. A fragment should start with a keyframe where a player may
/// join (a new MSE client, an HLS segment); MSE accepts any fragment after the first.
#[derive(Debug, Clone, Default)]
pub struct Fragmenter {
    sequence: u32,
}

/// `sample_flags` (ISO/IEC 14496-12 8.8.3.1): sync samples depend on nothing; the others depend on
/// earlier samples and are not sync samples.
const SYNC_SAMPLE: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// trun flags: data-offset, then per sample duration, size, flags and composition offset.
const TRUN_FLAGS: u32 = 0x000f01;

impl Fragmenter {
    /// A fragmenter whose first fragment has sequence number 1.
    pub fn new() -> Self {
        Fragmenter::default()
    }

    /// The fragment holding `samples`, in decode order: one `moof` (sequence number, base decode
    /// time, per-sample durations, sizes, flags and composition offsets) and one `mdat` with the
    /// access units converted to 4-byte length prefixes. Access unit delimiters, filler data and
    /// in-band parameter sets are dropped (the init segment has the parameter sets); SEI and slices
    /// are kept. No samples: an empty Vec, and no sequence number is used.
    pub fn fragment(&mut self, track: &Track, samples: &[Sample<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_fragment(track, samples, &mut out);
        out
    }

    /// [`Fragmenter::fragment`], appended to `out` (to reuse a buffer, or to put `segment_type`
    /// or several fragments in front).
    pub fn write_fragment(&mut self, track: &Track, samples: &[Sample<'_>], out: &mut Vec<u8>) {
        let Some(first) = samples.first() else {
            return;
        };
        let codec = track.codec;
        let input: usize = samples.iter().map(|s| s.data.len()).sum();
        out.reserve(input + 120 + 16 * samples.len());
        self.sequence = self.sequence.wrapping_add(1);

        let moof_start = out.len();
        let mut data_offset_at = 0;
        let mut payload = 0u64;
        write_box(out, b"moof", |out| {
            write_full_box(out, b"mfhd", 0, 0, |out| out.put_u32(self.sequence));
            write_box(out, b"traf", |out| {
                // default-base-is-moof: data offsets count from this moof, whatever came before it.
                write_full_box(out, b"tfhd", 0, 0x02_0000, |out| out.put_u32(TRACK_ID));
                write_full_box(out, b"tfdt", 1, 0, |out| {
                    out.put_u64(first.dts.max(0) as u64)
                });
                // Version 1: signed composition offsets, so pts < dts cannot wrap.
                write_full_box(out, b"trun", 1, TRUN_FLAGS, |out| {
                    out.put_u32(u32::try_from(samples.len()).unwrap_or(u32::MAX));
                    data_offset_at = out.len();
                    out.put_u32(0); // data_offset, patched once the moof's size is known
                    for s in samples {
                        let size = sample_size(codec, s.data);
                        payload += size;
                        out.put_u32(s.duration);
                        out.put_u32(u32::try_from(size).unwrap_or(u32::MAX));
                        out.put_u32(if s.keyframe {
                            SYNC_SAMPLE
                        } else {
                            NON_SYNC_SAMPLE
                        });
                        let offset = s.pts.saturating_sub(s.dts);
                        let offset = offset.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
                        out.put_u32(offset as i32 as u32);
                    }
                });
            });
        });

        // An mdat over 4 GiB needs the 64-bit size form; no live fragment comes near, but the
        // output stays valid if one did.
        let header = if payload + 8 <= u64::from(u32::MAX) {
            8
        } else {
            16
        };
        let data_offset = out.len() - moof_start + header;
        patch_u32(out, data_offset_at, data_offset as u32);
        if header == 8 {
            out.put_u32((payload + 8) as u32);
            out.extend_from_slice(b"mdat");
        } else {
            out.put_u32(1);
            out.extend_from_slice(b"mdat");
            out.put_u64(payload + 16);
        }
        for s in samples {
            for nal in nal_units(s.data).filter(|nal| keep(codec, nal)) {
                out.put_u32(nal.len() as u32);
                out.extend_from_slice(nal);
            }
        }
    }
}

/// True for the NAL units that go into a sample: not access unit delimiters, filler data or
/// parameter sets (and not one too long for its 4-byte length, which no camera sends).
fn keep(codec: Coding, nal: &[u8]) -> bool {
    let dropped = match codec {
        Coding::H264 => matches!(codec.nal_type(nal), 7 | 8 | 9 | 12),
        Coding::H265 => matches!(codec.nal_type(nal), 32..=35 | 38),
    };
    !dropped && u32::try_from(nal.len()).is_ok()
}

/// The size of an access unit once converted: the kept units, each with a 4-byte length.
fn sample_size(codec: Coding, data: &[u8]) -> u64 {
    nal_units(data)
        .filter(|nal| keep(codec, nal))
        .map(|nal| 4 + nal.len() as u64)
        .sum()
}

/// Big-endian writes into the output, so box code reads like the box's syntax.
trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a box of type `kind` whose contents `body` writes; the size is patched in afterwards,
/// so nothing is measured twice or built in a separate buffer. Only `mdat` can outgrow 32 bits,
/// and it is written by hand.
fn write_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.put_u32(0);
    out.extend_from_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    patch_u32(out, start, size);
}

/// A box with the full-box header (version, 24-bit flags).
fn write_full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    write_box(out, kind, |out| {
        out.put_u32(u32::from(version) << 24 | (flags & 0x00ff_ffff));
        body(out);
    });
}

fn patch_u32(out: &mut [u8], at: usize, v: u32) {
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
}

/// The identity transformation matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
fn put_unity_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000u32] {
        out.put_u32(v);
    }
}

/// A frame's duration until the stream shows one (25 fps, 90 kHz ticks).
const DEFAULT_DURATION: i64 = 3600;
/// Frame intervals above this (2 s) are a pause or a skip, not the frame rate.
const MAX_DURATION: i64 = 180_000;

/// One consumer's output timeline (an MSE viewer, an HLS segmenter): the camera's 90 kHz times
/// rebased so that it starts at 0 and every join (after a skip, a reconnect, another camera)
/// continues exactly where the previous frame ended. Players then never see a hole to stall on,
/// and decode times only grow. A frame lasts the interval before it: the next frame is not
/// waited for (that would add a frame of delay); the following frame's decode time keeps the
/// timeline exact anyway.
///
/// ```
/// use camhub_media::fmp4::Timeline;
/// let mut t = Timeline::default();
/// assert_eq!(t.place(900_000, 900_000), (0, 0, 3600));
/// assert_eq!(t.place(903_600, 903_600), (3600, 3600, 3600));
/// t.rejoin(); // a skip: the next frame follows on, whatever its own time
/// assert_eq!(t.place(5_000_000, 5_000_000), (7200, 7200, 3600));
/// ```
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Output time = camera time + `offset` (set at every join).
    offset: Option<i64>,
    /// The camera decode time of the previous frame.
    last_in_dts: Option<i64>,
    /// Where the next frame continues from (the previous one's decode time plus its duration).
    next_out_dts: i64,
    duration: i64,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            offset: None,
            last_in_dts: None,
            next_out_dts: 0,
            duration: DEFAULT_DURATION,
        }
    }
}

impl Timeline {
    /// The next frame starts a new stretch (frames were skipped, or the stream changed): it is
    /// placed where the timeline stands.
    pub fn rejoin(&mut self) {
        self.offset = None;
        self.last_in_dts = None;
    }

    /// Places a frame with camera times `dts` / `pts`: its output decode time, presentation time
    /// and duration.
    pub fn place(&mut self, dts: i64, pts: i64) -> (i64, i64, u32) {
        if let Some(last) = self.last_in_dts {
            let delta = dts.saturating_sub(last);
            if delta > 0 && delta <= MAX_DURATION {
                self.duration = delta;
            }
        }
        self.last_in_dts = Some(dts);
        let offset = *self
            .offset
            .get_or_insert(self.next_out_dts.saturating_sub(dts));
        // Decode times must grow; a camera that sends B-frames over RTP (no dts there) would not.
        let out_dts = dts.saturating_add(offset).max(self.next_out_dts);
        let out_pts = pts.saturating_add(offset);
        self.next_out_dts = out_dts.saturating_add(self.duration);
        (out_dts, out_pts, self.duration as u32)
    }

    /// Where the next frame will be placed.
    pub fn end(&self) -> i64 {
        self.next_out_dts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS_640X360: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0x00, 0x00, 0x03,
        0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x64, 0x1e, 0x2c, 0x5c, 0x90,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0];
    const VPS_1080: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x78, 0x95, 0x98, 0x09,
    ];
    const SPS_1080_HEVC: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x78, 0xa0, 0x03, 0xc0, 0x80, 0x10, 0xe5, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0,
        0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x40,
    ];
    const PPS_HEVC: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    fn h264_track() -> Track {
        Track::from_parameter_sets(Coding::H264, &[SPS_640X360, PPS]).expect("valid sets")
    }

    /// One parsed box: type, and the byte range of its contents.
    #[derive(Debug)]
    struct Parsed {
        kind: [u8; 4],
        start: usize,
        end: usize,
    }

    /// Splits `data` into boxes, checking that their sizes tile it exactly.
    fn boxes(data: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
            assert!(
                size >= 8 && at + size <= data.len(),
                "box at {at}: size {size}"
            );
            let kind = data[at + 4..at + 8].try_into().expect("4 bytes");
            out.push(Parsed {
                kind,
                start: at + 8,
                end: at + size,
            });
            at += size;
        }
        assert_eq!(at, data.len());
        out
    }

    /// Walks every container box (and the sample entry) recursively: all sizes must nest exactly.
    fn check_tree(data: &[u8], depth: usize, seen: &mut Vec<String>) {
        for b in boxes(data) {
            let kind = String::from_utf8_lossy(&b.kind).into_owned();
            seen.push(format!("{}{kind}", " ".repeat(depth)));
            let inner = &data[b.start..b.end];
            match &b.kind {
                b"moov" | b"trak" | b"mdia" | b"minf" | b"dinf" | b"stbl" | b"mvex" | b"moof"
                | b"traf" => check_tree(inner, depth + 1, seen),
                b"stsd" | b"dref" => check_tree(&inner[8..], depth + 1, seen),
                b"avc1" | b"hvc1" => check_tree(&inner[78..], depth + 1, seen),
                _ => {}
            }
        }
    }

    fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
        let Some((first, rest)) = path.split_first() else {
            return data;
        };
        let b = boxes(data)
            .into_iter()
            .find(|b| &b.kind == *first)
            .expect("box present");
        find(&data[b.start..b.end], rest)
    }

    #[test]
    fn init_segment_box_tree() {
        let init = init_segment(&h264_track());
        let mut seen = Vec::new();
        check_tree(&init, 0, &mut seen);
        let expected = [
            "ftyp",
            "moov",
            " mvhd",
            " trak",
            "  tkhd",
            "  mdia",
            "   mdhd",
            "   hdlr",
            "   minf",
            "    vmhd",
            "    dinf",
            "     dref",
            "      url ",
            "    stbl",
            "     stsd",
            "      avc1",
            "       avcC",
            "     stts",
            "     stsc",
            "     stsz",
            "     stco",
            " mvex",
            "  trex",
        ];
        assert_eq!(seen, expected);
        let entry = find(
            &init,
            &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
        );
        // Width and height in the sample entry (after the stsd header, entry header and 24 bytes).
        assert_eq!(&entry[8 + 8 + 24..8 + 8 + 28], &[0x02, 0x80, 0x01, 0x68]);
        let tkhd = find(&init, &[b"moov", b"trak", b"tkhd"]);
        assert_eq!(
            &tkhd[tkhd.len() - 8..],
            &[0x02, 0x80, 0, 0, 0x01, 0x68, 0, 0]
        );
    }

    #[test]
    fn avcc_record() {
        let track = h264_track();
        let mut expected = vec![1, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0, SPS_640X360.len() as u8];
        expected.extend_from_slice(SPS_640X360);
        expected.extend_from_slice(&[1, 0, PPS.len() as u8]);
        expected.extend_from_slice(PPS);
        expected.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0]); // High: 4:2:0, 8 bit
        assert_eq!(track.decoder_config(), &expected[..]);
        assert_eq!(track.codec_string, "avc1.64001e");
        // Repeats and other units are ignored; the same sets make an equal track.
        let idr: &[u8] = &[0x65, 0x88];
        let again = Track::from_parameter_sets(Coding::H264, &[idr, SPS_640X360, PPS, SPS_640X360])
            .expect("valid sets");
        assert_eq!(again, track);
    }

    #[test]
    fn hvcc_record() {
        let track = Track::from_parameter_sets(Coding::H265, &[VPS_1080, SPS_1080_HEVC, PPS_HEVC])
            .expect("valid sets");
        assert_eq!((track.width, track.height), (1920, 1080));
        assert_eq!(track.codec_string, "hvc1.1.6.L120.90");
        let c = track.decoder_config();
        assert_eq!(
            &c[..23],
            &[
                1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 120, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8,
                0, 0, 0x0f, 3
            ]
        );
        // The three arrays follow, VPS first.
        assert_eq!(&c[23..26], &[0xa0, 0, 1]);
        assert_eq!(
            c.len(),
            23 + 3 * 5 + VPS_1080.len() + SPS_1080_HEVC.len() + PPS_HEVC.len()
        );
        let mut seen = Vec::new();
        check_tree(&init_segment(&track), 0, &mut seen);
        assert!(seen.contains(&"       hvcC".to_string()), "{seen:?}");
    }

    #[test]
    fn missing_and_damaged_sets_are_named() {
        let err = |codec, sets: &[&[u8]]| Track::from_parameter_sets(codec, sets).expect_err("bad");
        assert_eq!(
            err(Coding::H264, &[PPS]),
            Fmp4Error::Missing {
                codec: Coding::H264,
                set: "SPS"
            }
        );
        assert_eq!(
            err(Coding::H264, &[SPS_640X360]).to_string(),
            "no PPS among the H.264 parameter sets"
        );
        assert_eq!(
            err(Coding::H265, &[SPS_1080_HEVC, PPS_HEVC]).to_string(),
            "no VPS among the H.265 parameter sets"
        );
        let e = err(Coding::H264, &[&SPS_640X360[..6], PPS]);
        assert_eq!(
            e.to_string(),
            "damaged H.264 SPS: truncated: it ends before its fields do"
        );
        assert!(matches!(
            err(Coding::H265, &[&VPS_1080[..5], SPS_1080_HEVC, PPS_HEVC]),
            Fmp4Error::Damaged { set: "VPS", .. }
        ));
        let huge = [&[0x68u8][..], &[0; 70_000]].concat();
        assert_eq!(
            err(Coding::H264, &[SPS_640X360, &huge]),
            Fmp4Error::TooLarge {
                codec: Coding::H264,
                set: "PPS"
            }
        );
    }

    #[test]
    fn fragment_layout() {
        let track = h264_track();
        let mut f = Fragmenter::new();
        // AUD, SPS, PPS, SEI, IDR slice — then AUD and a P slice with a three-byte start code.
        let mut au1 = vec![0, 0, 0, 1, 0x09, 0x10, 0, 0, 0, 1];
        au1.extend_from_slice(SPS_640X360);
        au1.extend_from_slice(&[0, 0, 0, 1]);
        au1.extend_from_slice(PPS);
        au1.extend_from_slice(&[
            0, 0, 0, 1, 0x06, 5, 1, 0xaa, 0x80, 0, 0, 0, 1, 0x65, 1, 2, 3,
        ]);
        let au2 = [0, 0, 0, 1, 0x09, 0x30, 0, 0, 1, 0x41, 7, 8];
        let samples = [
            Sample {
                data: &au1,
                dts: 7200,
                pts: 10_800,
                duration: 3600,
                keyframe: true,
            },
            Sample {
                data: &au2,
                dts: 10_800,
                pts: 7200,
                duration: 3600,
                keyframe: false,
            },
        ];
        let frag = f.fragment(&track, &samples);
        let top = boxes(&frag);
        assert_eq!(top.len(), 2);
        assert_eq!((&top[0].kind, &top[1].kind), (b"moof", b"mdat"));
        let mut seen = Vec::new();
        check_tree(&frag, 0, &mut seen);
        assert_eq!(
            seen,
            ["moof", " mfhd", " traf", "  tfhd", "  tfdt", "  trun", "mdat"]
        );
        assert_eq!(find(&frag, &[b"moof", b"mfhd"]), &[0, 0, 0, 0, 0, 0, 0, 1]);
        let tfdt = find(&frag, &[b"moof", b"traf", b"tfdt"]);
        assert_eq!(tfdt, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1c, 0x20]);
        let trun = find(&frag, &[b"moof", b"traf", b"trun"]);
        let word = |i: usize| u32::from_be_bytes(trun[i * 4..i * 4 + 4].try_into().expect("4"));
        assert_eq!(word(0), 0x0100_0f01);
        assert_eq!(word(1), 2);
        // The data offset points at the first sample's first byte, from the moof's start.
        let sei_and_idr = [
            0, 0, 0, 5, 0x06, 5, 1, 0xaa, 0x80, 0, 0, 0, 4, 0x65, 1, 2, 3,
        ];
        let p_slice = [0, 0, 0, 3, 0x41, 7, 8];
        let offset = word(2) as usize;
        assert_eq!(&frag[offset..offset + sei_and_idr.len()], &sei_and_idr);
        assert_eq!(offset, top[1].start);
        // Sample 1: duration, size, sync flags, +3600; sample 2: non-sync, -3600.
        assert_eq!(
            [word(3), word(4), word(5), word(6)],
            [3600, sei_and_idr.len() as u32, SYNC_SAMPLE, 3600]
        );
        assert_eq!(
            [word(7), word(8), word(9), word(10)],
            [
                3600,
                p_slice.len() as u32,
                NON_SYNC_SAMPLE,
                (-3600i32) as u32
            ]
        );
        assert_eq!(
            &frag[top[1].start..],
            &[&sei_and_idr[..], &p_slice].concat()[..]
        );

        // Sequence numbers count fragments; an empty one is nothing and uses none.
        assert!(f.fragment(&track, &[]).is_empty());
        let next = f.fragment(&track, &samples[1..]);
        assert_eq!(find(&next, &[b"moof", b"mfhd"]), &[0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn hevc_fragment_drops_in_band_sets_and_delimiters() {
        let track = Track::from_parameter_sets(Coding::H265, &[VPS_1080, SPS_1080_HEVC, PPS_HEVC])
            .expect("valid sets");
        let mut au = vec![0, 0, 0, 1, 0x46, 0x01, 0x10];
        for set in [VPS_1080, SPS_1080_HEVC, PPS_HEVC] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(set);
        }
        // Prefix SEI (39) and an IDR_W_RADL slice (19).
        au.extend_from_slice(&[0, 0, 0, 1, 0x4e, 0x01, 5, 0, 0, 0, 1, 0x26, 0x01, 0xaf]);
        let sample = Sample {
            data: &au,
            dts: -5,
            pts: -5,
            duration: 3000,
            keyframe: true,
        };
        let frag = Fragmenter::new().fragment(&track, &[sample]);
        let mdat = find(&frag, &[b"mdat"]);
        assert_eq!(
            mdat,
            &[0, 0, 0, 3, 0x4e, 0x01, 5, 0, 0, 0, 3, 0x26, 0x01, 0xaf]
        );
        // A negative base decode time is written as 0.
        let tfdt = find(&frag, &[b"moof", b"traf", b"tfdt"]);
        assert_eq!(&tfdt[4..], &[0; 8]);
    }

    proptest::proptest! {
        /// Damaged parameter sets are errors or plausible tracks, never panics.
        #[test]
        fn damaged_parameter_sets_never_panic(
            at in 0usize..64, xor in 1u8..=255, cut in 0usize..64, which in 0usize..3,
        ) {
            let damage = |set: &[u8]| {
                let mut set = set.to_vec();
                let i = at % set.len();
                set[i] ^= xor;
                set.truncate(cut.max(1));
                set
            };
            let h264 = [SPS_640X360, PPS];
            let h265 = [VPS_1080, SPS_1080_HEVC, PPS_HEVC];
            for (codec, sets) in [(Coding::H264, &h264[..]), (Coding::H265, &h265[..])] {
                let mut sets: Vec<Vec<u8>> = sets.iter().map(|s| s.to_vec()).collect();
                let i = which % sets.len();
                sets[i] = damage(&sets[i]);
                let refs: Vec<&[u8]> = sets.iter().map(Vec::as_slice).collect();
                if let Ok(track) = Track::from_parameter_sets(codec, &refs) {
                    proptest::prop_assert!((1..=65535).contains(&track.width));
                    proptest::prop_assert!((1..=65535).contains(&track.height));
                    check_tree(&init_segment(&track), 0, &mut Vec::new());
                }
            }
        }

        /// Whatever the access units hold, the fragment is one moof and one mdat whose sizes agree
        /// with the trun, and the mdat is length-prefixed units without delimiters or sets.
        #[test]
        fn fragments_are_consistent(
            aus in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..40), 0..5),
                1..6,
            ),
            start in 0i64..1_000_000,
        ) {
            let track = h264_track();
            let data: Vec<Vec<u8>> = aus
                .iter()
                .map(|nals| nals.iter().flat_map(|n| [&[0, 0, 1][..], n].concat()).collect())
                .collect();
            let samples: Vec<Sample<'_>> = data
                .iter()
                .enumerate()
                .map(|(i, d)| Sample {
                    data: d,
                    dts: start + 3600 * i as i64,
                    pts: start + 3600 * i as i64,
                    duration: 3600,
                    keyframe: i == 0,
                })
                .collect();
            let frag = Fragmenter::new().fragment(&track, &samples);
            let top = boxes(&frag);
            proptest::prop_assert_eq!(top.len(), 2);
            let trun = find(&frag, &[b"moof", b"traf", b"trun"]);
            let word = |i: usize| u32::from_be_bytes(trun[i * 4..i * 4 + 4].try_into().expect("4"));
            proptest::prop_assert_eq!(word(1) as usize, samples.len());
            proptest::prop_assert_eq!(word(2) as usize, top[1].start);
            let sizes: usize = (0..samples.len()).map(|i| word(4 + 4 * i) as usize).sum();
            let mdat = &frag[top[1].start..top[1].end];
            proptest::prop_assert_eq!(sizes, mdat.len());
            let mut at = 0;
            while at < mdat.len() {
                let len = u32::from_be_bytes(mdat[at..at + 4].try_into().expect("4")) as usize;
                let nal = &mdat[at + 4..at + 4 + len];
                proptest::prop_assert!(!nal.is_empty());
                proptest::prop_assert!(!matches!(nal[0] & 0x1f, 7 | 8 | 9 | 12));
                at += 4 + len;
            }
        }
    }

    #[test]
    fn segment_type_box() {
        let styp = segment_type();
        assert_eq!(styp.len(), 24);
        assert_eq!(&styp[..8], &[0, 0, 0, 24, b's', b't', b'y', b'p']);
    }
}
