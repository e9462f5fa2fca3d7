//! Parameter sets of H.264 (SPS) and H.265 (VPS, SPS), read far enough for what a container needs:
//! the displayed size (after cropping), profile, tier, level and constraint flags, chroma format and
//! bit depth — what the fMP4 muxer puts into `avcC` / `hvcC` and the RFC 6381 codec string. Also the
//! bit reader that does it: exp-Golomb codes over RBSP, with emulation prevention bytes removed on
//! the fly (no copy of the NAL unit).
//!
//! The bytes come from cameras: damaged or truncated sets are an `Err` naming the field, never a
//! panic, and nothing reads past the slice it is given. VUI and everything after the fields above
//! are not read (their syntax is long and nothing here needs them).

use std::fmt;

/// Why a parameter set could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpsError {
    /// The NAL unit ended before the fields that were needed.
    Truncated,
    /// An exp-Golomb code with 32 or more leading zeros: the value does not fit 32 bits, which no
    /// valid parameter set has (it is what garbage looks like).
    ExpGolombTooLong,
    /// The NAL unit header says another type than the one being parsed.
    WrongNalType {
        /// The type found in the header.
        found: u8,
    },
    /// A field outside the range the standard allows (or, for sizes, outside what a container can
    /// hold: 1..=65535 pixels after cropping).
    Invalid {
        /// The field's name as the standard spells it.
        field: &'static str,
        /// The value read.
        value: u32,
    },
}

impl fmt::Display for SpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpsError::Truncated => f.write_str("truncated: it ends before its fields do"),
            SpsError::ExpGolombTooLong => {
                f.write_str("an exp-Golomb code longer than 32 bits (corrupt data)")
            }
            SpsError::WrongNalType { found } => write!(f, "wrong NAL unit type {found}"),
            SpsError::Invalid { field, value } => write!(f, "{field} = {value} is out of range"),
        }
    }
}

impl std::error::Error for SpsError {}

/// Reads the RBSP inside a NAL unit bit by bit, most significant first, skipping each emulation
/// prevention byte (the `03` in `00 00 03`) as it passes — so the caller hands in the NAL unit as it
/// came, and no cleaned copy is made.
///
/// ```
/// use camhub_media::sps::BitReader;
/// // 1 | 010 | 011 | 00100 → ue values 0, 1, 2, 3; then 00 00 03 01 reads as 00 00 01.
/// let mut r = BitReader::new(&[0b1010_0110, 0b0100_0000, 0, 0, 3, 1]);
/// assert_eq!((r.ue(), r.ue(), r.ue(), r.ue()), (Ok(0), Ok(1), Ok(2), Ok(3)));
/// assert_eq!(r.bits(4), Ok(0));
/// assert_eq!(r.bits(24), Ok(1));
/// ```
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Index of the next byte of `data` to load.
    pos: usize,
    /// The byte being read, and how many of its bits are still unread.
    current: u8,
    left: u8,
    /// Zero bytes loaded in a row: a `03` after two of them is an emulation prevention byte.
    zeros: u8,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data` (pass the bytes after the NAL unit header, or skip the
    /// header with [`BitReader::bits`]).
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            current: 0,
            left: 0,
            zeros: 0,
        }
    }

    fn load(&mut self) -> Result<u8, SpsError> {
        let mut byte = *self.data.get(self.pos).ok_or(SpsError::Truncated)?;
        self.pos += 1;
        if self.zeros >= 2 && byte == 3 {
            self.zeros = 0;
            byte = *self.data.get(self.pos).ok_or(SpsError::Truncated)?;
            self.pos += 1;
        }
        self.zeros = if byte == 0 {
            self.zeros.saturating_add(1)
        } else {
            0
        };
        Ok(byte)
    }

    /// One bit, `u(1)`.
    pub fn flag(&mut self) -> Result<bool, SpsError> {
        if self.left == 0 {
            self.current = self.load()?;
            self.left = 8;
        }
        self.left -= 1;
        Ok((self.current >> self.left) & 1 == 1)
    }

    /// `n` bits as an unsigned number, `u(n)`; `n` above 32 reads 32.
    pub fn bits(&mut self, n: u32) -> Result<u32, SpsError> {
        let mut value = 0u32;
        for _ in 0..n.min(32) {
            value = (value << 1) | u32::from(self.flag()?);
        }
        Ok(value)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: u32) -> Result<(), SpsError> {
        for _ in 0..n {
            self.flag()?;
        }
        Ok(())
    }

    /// An unsigned exp-Golomb code, `ue(v)`.
    pub fn ue(&mut self) -> Result<u32, SpsError> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros == 32 {
                return Err(SpsError::ExpGolombTooLong);
            }
        }
        // At most 31 zeros: (2^31 - 1) + (2^31 - 1) still fits a u32.
        Ok((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// A signed exp-Golomb code, `se(v)`: 1, -1, 2, -2, … for codes 1, 2, 3, 4, …
    pub fn se(&mut self) -> Result<i32, SpsError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |v| ≤ 2^31, and only +2^31 fails to fit: that many is corrupt anyway.
        i32::try_from(v).map_err(|_| SpsError::ExpGolombTooLong)
    }
}

/// What a container needs from an H.264 sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Sps {
    /// `profile_idc`: 66 Baseline, 77 Main, 100 High, …
    pub profile_idc: u8,
    /// The byte of `constraint_set0_flag`..`constraint_set5_flag` and the two reserved bits, as in the
    /// stream (it goes into `avcC` and the codec string as is).
    pub constraint_flags: u8,
    /// `level_idc`: ten times the level (31 is level 3.1).
    pub level_idc: u8,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 for all but the high bit depth profiles).
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Displayed width in pixels, after frame cropping.
    pub width: u32,
    /// Displayed height in pixels, after frame cropping (a whole frame, also for field coding).
    pub height: u32,
}

/// Profiles whose SPS carries `chroma_format_idc` and the bit depths (7.3.2.1.1).
fn h264_has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

impl H264Sps {
    /// Parses an SPS NAL unit (header byte included, no start code).
    ///
    /// ```
    /// use camhub_media::sps::H264Sps;
    /// // x264, High profile level 3.0, 640x360.
    /// let sps = [0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0, 0, 3, 0,
    ///            0x02, 0, 0, 3, 0, 0x64, 0x1e, 0x2c, 0x5c, 0x90];
    /// let sps = H264Sps::parse(&sps).unwrap();
    /// assert_eq!((sps.width, sps.height), (640, 360));
    /// assert_eq!(sps.codec_string(), "avc1.64001e");
    /// ```
    pub fn parse(nal: &[u8]) -> Result<H264Sps, SpsError> {
        let mut r = BitReader::new(nal);
        let header = r.bits(8)? as u8;
        if header & 0x1f != 7 {
            return Err(SpsError::WrongNalType {
                found: header & 0x1f,
            });
        }
        let profile_idc = r.bits(8)? as u8;
        let constraint_flags = r.bits(8)? as u8;
        let level_idc = r.bits(8)? as u8;
        let sps_id = r.ue()?;
        check("seq_parameter_set_id", sps_id, 31)?;

        let (mut chroma_format_idc, mut separate_colour_plane) = (1, false);
        let (mut depth_luma, mut depth_chroma) = (0, 0);
        if h264_has_chroma_info(profile_idc) {
            chroma_format_idc = check("chroma_format_idc", r.ue()?, 3)?;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.flag()?;
            }
            depth_luma = check("bit_depth_luma_minus8", r.ue()?, 6)?;
            depth_chroma = check("bit_depth_chroma_minus8", r.ue()?, 6)?;
            r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
            if r.flag()? {
                // seq_scaling_matrix_present_flag: the lists must be walked to reach what follows.
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.flag()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        check("log2_max_frame_num_minus4", r.ue()?, 12)?;
        match check("pic_order_cnt_type", r.ue()?, 2)? {
            0 => {
                check("log2_max_pic_order_cnt_lsb_minus4", r.ue()?, 12)?;
            }
            1 => {
                r.skip(1)?; // delta_pic_order_always_zero_flag
                r.se()?; // offset_for_non_ref_pic
                r.se()?; // offset_for_top_to_bottom_field
                let cycle = check("num_ref_frames_in_pic_order_cnt_cycle", r.ue()?, 255)?;
                for _ in 0..cycle {
                    r.se()?;
                }
            }
            _ => {}
        }
        r.ue()?; // max_num_ref_frames
        r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = u64::from(r.ue()?) + 1;
        let height_map_units = u64::from(r.ue()?) + 1;
        let frame_mbs_only = r.flag()?;
        if !frame_mbs_only {
            r.skip(1)?; // mb_adaptive_frame_field_flag
        }
        r.skip(1)?; // direct_8x8_inference_flag
        let mut crop = [0u64; 4]; // left, right, top, bottom
        if r.flag()? {
            for c in &mut crop {
                *c = u64::from(r.ue()?);
            }
        }

        // 7.4.2.1.1: crop offsets count in chroma samples (and in field rows for field coding).
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let frame_factor = if frame_mbs_only { 1 } else { 2 };
        let (crop_x, crop_y) = match chroma_array_type {
            0 => (1, frame_factor),
            1 => (2, 2 * frame_factor),
            2 => (2, frame_factor),
            _ => (1, frame_factor),
        };
        let coded_width = width_mbs * 16;
        let coded_height = height_map_units * 16 * frame_factor;
        let width = cropped(
            "frame_crop_right_offset",
            coded_width,
            crop_x * (crop[0] + crop[1]),
        )?;
        let height = cropped(
            "frame_crop_bottom_offset",
            coded_height,
            crop_y * (crop[2] + crop[3]),
        )?;
        Ok(H264Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            chroma_format_idc: chroma_format_idc as u8,
            bit_depth_luma: depth_luma as u8 + 8,
            bit_depth_chroma: depth_chroma as u8 + 8,
            width,
            height,
        })
    }

    /// True if `avcC` carries the chroma format and bit depth after its PPS list (ISO/IEC 14496-15
    /// 5.3.3.1.2: the profiles above High that may use other chroma formats or depths).
    pub fn has_avcc_extension(&self) -> bool {
        matches!(self.profile_idc, 100 | 110 | 122 | 144)
    }

    /// The RFC 6381 codec string, `avc1.PPCCLL` (profile, constraint byte, level in hex), as MSE's
    /// `isTypeSupported` and HLS's `CODECS` attribute want it.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// Walks one `scaling_list()` (7.3.2.1.1.1) without keeping it.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), SpsError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.se()?);
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// `value` if it is at most `max`, else the error naming `field`.
fn check(field: &'static str, value: u32, max: u32) -> Result<u32, SpsError> {
    if value <= max {
        Ok(value)
    } else {
        Err(SpsError::Invalid { field, value })
    }
}

/// `coded - crop` if that is a size a container can hold (1..=65535), else the error naming the
/// crop `field` (a crop larger than the picture, or a coded size no real camera sends).
fn cropped(field: &'static str, coded: u64, crop: u64) -> Result<u32, SpsError> {
    match coded.checked_sub(crop) {
        Some(size @ 1..=65535) => Ok(size as u32),
        _ => Err(SpsError::Invalid {
            field,
            value: u32::try_from(crop).unwrap_or(u32::MAX),
        }),
    }
}

/// The general part of an H.265 `profile_tier_level()` (7.3.3), as `hvcC` and the codec string
/// carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H265ProfileTierLevel {
    /// `general_profile_space` (0 in every stream seen so far).
    pub profile_space: u8,
    /// `general_tier_flag`: false Main tier, true High tier.
    pub tier: bool,
    /// `general_profile_idc`: 1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions, …
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[j]` for j = 0..32, flag j in bit 31 - j (stream order).
    pub compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` on, stream order.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc`: thirty times the level (93 is level 3.1).
    pub level_idc: u8,
}

impl H265ProfileTierLevel {
    fn parse(r: &mut BitReader<'_>, max_sub_layers_minus1: u32) -> Result<Self, SpsError> {
        let first = r.bits(8)? as u8;
        let compatibility_flags = r.bits(32)?;
        let mut constraint_flags = [0u8; 6];
        for b in &mut constraint_flags {
            *b = r.bits(8)? as u8;
        }
        let level_idc = r.bits(8)? as u8;
        // Sub-layer parts are only walked past.
        let mut present = [(false, false); 7];
        for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
            *p = (r.flag()?, r.flag()?);
        }
        if max_sub_layers_minus1 > 0 {
            r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
        }
        for &(profile, level) in present.iter().take(max_sub_layers_minus1 as usize) {
            if profile {
                r.skip(88)?;
            }
            if level {
                r.skip(8)?;
            }
        }
        Ok(H265ProfileTierLevel {
            profile_space: first >> 6,
            tier: first & 0x20 != 0,
            profile_idc: first & 0x1f,
            compatibility_flags,
            constraint_flags,
            level_idc,
        })
    }

    /// The codec string (ISO/IEC 14496-15 Annex E), e.g. `hvc1.1.6.L93.B0`: profile space (a letter,
    /// none for 0) and profile, the compatibility flags bit-reversed in hex, tier and level, then the
    /// constraint bytes in hex without the trailing zero ones.
    pub fn codec_string(&self, sample_entry: &str) -> String {
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let tier = if self.tier { 'H' } else { 'L' };
        let mut s = format!(
            "{sample_entry}.{space}{}.{:X}.{tier}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            self.level_idc
        );
        let used = self
            .constraint_flags
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in &self.constraint_flags[..used] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

/// Reads the two-byte H.265 NAL unit header and checks its type.
fn h265_header(r: &mut BitReader<'_>, want: u8) -> Result<(), SpsError> {
    let header = r.bits(16)?;
    let found = ((header >> 9) & 0x3f) as u8;
    if found != want {
        return Err(SpsError::WrongNalType { found });
    }
    Ok(())
}

/// What a container needs from an H.265 video parameter set: little, but reading it tells a
/// damaged one apart before it goes into `hvcC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H265Vps {
    /// `vps_video_parameter_set_id`.
    pub id: u8,
    /// `vps_max_sub_layers_minus1 + 1`: the temporal layers.
    pub max_sub_layers: u8,
    /// `vps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// The general profile, tier and level.
    pub profile_tier_level: H265ProfileTierLevel,
}

impl H265Vps {
    /// Parses a VPS NAL unit (header included, no start code).
    pub fn parse(nal: &[u8]) -> Result<H265Vps, SpsError> {
        let mut r = BitReader::new(nal);
        h265_header(&mut r, 32)?;
        let id = r.bits(4)? as u8;
        r.skip(2)?; // vps_base_layer_internal_flag, vps_base_layer_available_flag
        r.bits(6)?; // vps_max_layers_minus1
        let max_sub_layers_minus1 = check("vps_max_sub_layers_minus1", r.bits(3)?, 6)?;
        let temporal_id_nesting = r.flag()?;
        r.skip(16)?; // vps_reserved_0xffff_16bits
        let profile_tier_level = H265ProfileTierLevel::parse(&mut r, max_sub_layers_minus1)?;
        Ok(H265Vps {
            id,
            max_sub_layers: max_sub_layers_minus1 as u8 + 1,
            temporal_id_nesting,
            profile_tier_level,
        })
    }
}

/// What a container needs from an H.265 sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H265Sps {
    /// `sps_max_sub_layers_minus1 + 1`: the temporal layers.
    pub max_sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// The general profile, tier and level.
    pub profile_tier_level: H265ProfileTierLevel,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Displayed width in pixels, after the conformance window.
    pub width: u32,
    /// Displayed height in pixels, after the conformance window.
    pub height: u32,
}

impl H265Sps {
    /// Parses an SPS NAL unit (header included, no start code).
    ///
    /// ```
    /// use camhub_media::sps::H265Sps;
    /// // x265, Main profile level 4, 1920x1080 (coded 1920x1088, cropped by the conformance window).
    /// let sps = [0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 3, 0, 0x90, 0, 0, 3, 0, 0, 3, 0, 0x78, 0xa0,
    ///            0x03, 0xc0, 0x80, 0x10, 0xe5, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0, 0x16, 0x80, 0x80,
    ///            0, 0, 3, 0, 0x80, 0, 0, 3, 0, 0xc8, 0x40];
    /// let sps = H265Sps::parse(&sps).unwrap();
    /// assert_eq!((sps.width, sps.height), (1920, 1080));
    /// assert_eq!(sps.profile_tier_level.codec_string("hvc1"), "hvc1.1.6.L120.90");
    /// ```
    pub fn parse(nal: &[u8]) -> Result<H265Sps, SpsError> {
        let mut r = BitReader::new(nal);
        h265_header(&mut r, 33)?;
        r.skip(4)?; // sps_video_parameter_set_id
        let max_sub_layers_minus1 = check("sps_max_sub_layers_minus1", r.bits(3)?, 6)?;
        let temporal_id_nesting = r.flag()?;
        let profile_tier_level = H265ProfileTierLevel::parse(&mut r, max_sub_layers_minus1)?;
        check("sps_seq_parameter_set_id", r.ue()?, 15)?;
        let chroma_format_idc = check("chroma_format_idc", r.ue()?, 3)?;
        let separate_colour_plane = chroma_format_idc == 3 && r.flag()?;
        let coded_width = u64::from(r.ue()?);
        let coded_height = u64::from(r.ue()?);
        let mut window = [0u64; 4]; // left, right, top, bottom
        if r.flag()? {
            for w in &mut window {
                *w = u64::from(r.ue()?);
            }
        }
        let depth_luma = check("bit_depth_luma_minus8", r.ue()?, 8)?;
        let depth_chroma = check("bit_depth_chroma_minus8", r.ue()?, 8)?;

        // 7.4.3.2.1: the window counts in chroma samples (SubWidthC, SubHeightC).
        let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        let width = cropped(
            "conf_win_right_offset",
            coded_width,
            sub_w * (window[0] + window[1]),
        )?;
        let height = cropped(
            "conf_win_bottom_offset",
            coded_height,
            sub_h * (window[2] + window[3]),
        )?;
        Ok(H265Sps {
            max_sub_layers: max_sub_layers_minus1 as u8 + 1,
            temporal_id_nesting,
            profile_tier_level,
            chroma_format_idc: chroma_format_idc as u8,
            bit_depth_luma: depth_luma as u8 + 8,
            bit_depth_chroma: depth_chroma as u8 + 8,
            width,
            height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x264 (`ffmpeg -f lavfi -i testsrc2=size=640x360 -c:v libx264 -profile:v high -f h264`).
    const X264_640X360: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xb2, 0x01, 0x40, 0x5f, 0xf2, 0xe0, 0x22, 0x00, 0x00, 0x03,
        0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x64, 0x1e, 0x2c, 0x5c, 0x90,
    ];
    /// x264 at 1920x1080: coded 1920x1088, frame cropping removes 8 rows.
    const X264_1920X1080: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xb2, 0x00, 0xf0, 0x04, 0x4f, 0xcb, 0x80, 0x88, 0x00, 0x00,
        0x03, 0x00, 0x08, 0x00, 0x00, 0x03, 0x01, 0x90, 0x78, 0xc1, 0x92, 0x40,
    ];
    /// x265 (`-c:v libx265 -f hevc`) at 640x360: VPS and SPS.
    const X265_640X360_VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0x95, 0x98, 0x09,
    ];
    const X265_640X360_SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x69, 0x65, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05,
        0xa0, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21,
    ];

    #[test]
    fn exp_golomb_codes() {
        // ue: 1 → 0, 010 → 1, 011 → 2, 00100 → 3, 00111 → 6, 0001000 → 7.
        // Bits: 1 010 011 00100 00111 0001000 (+ padding).
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0011, 0b1000_1000, 0]);
        let got: Vec<u32> = (0..6).map(|_| r.ue().expect("code")).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 6, 7]);
        // se: codes 1..=4 are 1, -1, 2, -2; code 0 is 0.
        let mut r = BitReader::new(&[0b0100_1100, 0b1000_0101, 0b1000_0000]);
        let got: Vec<i32> = (0..5).map(|_| r.se().expect("code")).collect();
        assert_eq!(got, vec![1, -1, 2, -2, 0]);
        // The longest code that fits: 31 zeros, a one, 31 ones → 2^32 - 2.
        let mut long = vec![0u8, 0, 0, 1];
        long.extend([0xff; 4]);
        assert_eq!(BitReader::new(&long).ue(), Ok(u32::MAX - 1));
        // 32 zeros is corrupt, not a panic or a wrapped value.
        assert_eq!(
            BitReader::new(&[0, 0, 0, 0, 0x80]).ue(),
            Err(SpsError::ExpGolombTooLong)
        );
        assert_eq!(BitReader::new(&[0x00]).ue(), Err(SpsError::Truncated));
        assert_eq!(BitReader::new(&[]).flag(), Err(SpsError::Truncated));
    }

    #[test]
    fn emulation_prevention_bytes_are_skipped() {
        // 00 00 03 01 reads as 00 00 01; 00 00 03 00 00 03 00 as five zeros.
        let mut r = BitReader::new(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3, 0, 0xAB]);
        assert_eq!(r.bits(24), Ok(1));
        assert_eq!(r.bits(32), Ok(0));
        assert_eq!(r.bits(8), Ok(0));
        assert_eq!(r.bits(8), Ok(0xAB));
        // A 03 that does not follow two zeros is data.
        let mut r = BitReader::new(&[0, 3, 0, 0, 0, 3]);
        assert_eq!(r.bits(32), Ok(0x0003_0000));
        // After 00 00 00 the next 03 still follows two zeros: it is removed, and the data ends.
        assert_eq!(r.bits(8), Ok(0));
        assert_eq!(r.bits(8), Err(SpsError::Truncated));
        // An exp-Golomb code that spans an emulation prevention byte.
        let mut r = BitReader::new(&[0, 0, 3, 0x80, 0x01]);
        r.skip(8).expect("a byte");
        // With the 03 removed: 00 80 01 is eight zeros, the one, then eight zero bits → 2^8 - 1.
        assert_eq!(r.ue(), Ok(255));
    }

    #[test]
    fn x264_640x360_high() {
        let sps = H264Sps::parse(X264_640X360).expect("valid");
        assert_eq!(
            sps,
            H264Sps {
                profile_idc: 100,
                constraint_flags: 0,
                level_idc: 30,
                chroma_format_idc: 1,
                bit_depth_luma: 8,
                bit_depth_chroma: 8,
                width: 640,
                height: 360,
            }
        );
        assert_eq!(sps.codec_string(), "avc1.64001e");
        assert!(sps.has_avcc_extension());
    }

    #[test]
    fn x264_1920x1080_is_cropped_from_1088() {
        let sps = H264Sps::parse(X264_1920X1080).expect("valid");
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.codec_string(), "avc1.640028");
    }

    #[test]
    fn baseline_sps_without_chroma_fields() {
        // Hand-built Baseline SPS, 320x240: profile 66, constraint_set0+1, level 1.3; sps_id 0,
        // log2_max_frame_num_minus4 0, poc type 2, 1 ref frame, no gaps, 20x15 MBs, frame_mbs_only,
        // direct_8x8, no cropping, no VUI.
        let mut w = BitWriter::default();
        w.bits(0x67, 8).bits(66, 8).bits(0xc0, 8).bits(13, 8);
        w.ue(0).ue(0).ue(2).ue(1).bits(0, 1).ue(19).ue(14);
        w.bits(1, 1).bits(1, 1).bits(0, 1).bits(0, 1);
        let sps = H264Sps::parse(&w.finish()).expect("valid");
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!((sps.chroma_format_idc, sps.bit_depth_luma), (1, 8));
        assert_eq!(sps.codec_string(), "avc1.42c00d");
        assert!(!sps.has_avcc_extension());
    }

    #[test]
    fn damaged_h264_sps_is_an_error() {
        // The fields needed end in byte 11 (the VUI after them is not read).
        for len in 0..11 {
            assert!(
                H264Sps::parse(&X264_640X360[..len]).is_err(),
                "truncated to {len}"
            );
        }
        assert!(H264Sps::parse(&X264_640X360[..11]).is_ok());
        assert_eq!(
            H264Sps::parse(&[0x68, 0xeb]),
            Err(SpsError::WrongNalType { found: 8 })
        );
        // Cropping more than the picture.
        let mut w = BitWriter::default();
        w.bits(0x67, 8).bits(66, 8).bits(0, 8).bits(13, 8);
        w.ue(0).ue(0).ue(2).ue(1).bits(0, 1).ue(0).ue(0);
        w.bits(1, 1).bits(1, 1).bits(1, 1).ue(8).ue(0).ue(0).ue(0);
        assert_eq!(
            H264Sps::parse(&w.finish()),
            Err(SpsError::Invalid {
                field: "frame_crop_right_offset",
                value: 16
            })
        );
        // Garbage never panics.
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut nal = vec![0x67];
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                nal.push(seed as u8);
            }
            let _ = H264Sps::parse(&nal);
            let _ = H265Sps::parse(&nal);
            let _ = H265Vps::parse(&nal);
        }
    }

    #[test]
    fn x265_640x360_main() {
        let vps = H265Vps::parse(X265_640X360_VPS).expect("valid");
        let sps = H265Sps::parse(X265_640X360_SPS).expect("valid");
        assert_eq!((vps.max_sub_layers, vps.temporal_id_nesting), (1, true));
        assert_eq!(vps.profile_tier_level, sps.profile_tier_level);
        assert_eq!((sps.width, sps.height), (640, 360));
        assert_eq!(sps.chroma_format_idc, 1);
        assert_eq!((sps.bit_depth_luma, sps.bit_depth_chroma), (8, 8));
        let ptl = sps.profile_tier_level;
        assert_eq!(
            (ptl.profile_space, ptl.tier, ptl.profile_idc),
            (0, false, 1)
        );
        assert_eq!(ptl.compatibility_flags, 0x6000_0000);
        assert_eq!(ptl.constraint_flags, [0x90, 0, 0, 0, 0, 0]);
        assert_eq!(ptl.level_idc, 63);
        assert_eq!(ptl.codec_string("hvc1"), "hvc1.1.6.L63.90");
        // The fields needed end in byte 24 (the rest of the SPS is not read).
        for len in 0..24 {
            assert!(H265Sps::parse(&X265_640X360_SPS[..len]).is_err());
        }
        assert!(H265Sps::parse(&X265_640X360_SPS[..24]).is_ok());
        assert_eq!(
            H265Sps::parse(X265_640X360_VPS),
            Err(SpsError::WrongNalType { found: 32 })
        );
    }

    #[test]
    fn hevc_codec_strings() {
        let mut ptl = H265ProfileTierLevel {
            profile_space: 0,
            tier: false,
            profile_idc: 1,
            compatibility_flags: 0x6000_0000,
            constraint_flags: [0xb0, 0, 0, 0, 0, 0],
            level_idc: 93,
        };
        // The example of ISO/IEC 14496-15 E.3.
        assert_eq!(ptl.codec_string("hvc1"), "hvc1.1.6.L93.B0");
        // Main 10, High tier, level 5.1, space B, constraint bytes with an inner zero kept.
        ptl.profile_idc = 2;
        ptl.compatibility_flags = 0x2000_0000;
        ptl.tier = true;
        ptl.level_idc = 153;
        ptl.profile_space = 2;
        ptl.constraint_flags = [0xb0, 0, 0x12, 0, 0, 0];
        assert_eq!(ptl.codec_string("hev1"), "hev1.B2.4.H153.B0.0.12");
        ptl.constraint_flags = [0; 6];
        assert_eq!(ptl.codec_string("hvc1"), "hvc1.B2.4.H153");
    }

    /// Writes bits and exp-Golomb codes, to build parameter sets for the tests.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: u32,
    }

    impl BitWriter {
        fn bits(&mut self, value: u32, n: u32) -> &mut Self {
            for i in (0..n).rev() {
                if self.bits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                if let Some(last) = self.bytes.last_mut() {
                    *last |= bit << (7 - self.bits % 8);
                }
                self.bits += 1;
            }
            self
        }

        fn ue(&mut self, value: u32) -> &mut Self {
            let v = value + 1;
            let len = 32 - v.leading_zeros();
            self.bits(0, len - 1).bits(v, len)
        }

        /// The bytes with the RBSP stop bit, and emulation prevention where needed.
        fn finish(&mut self) -> Vec<u8> {
            self.bits(1, 1);
            let mut out = Vec::new();
            let mut zeros = 0;
            for &b in &self.bytes {
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                out.push(b);
                zeros = if b == 0 { zeros + 1 } else { 0 };
            }
            out
        }
    }
}
