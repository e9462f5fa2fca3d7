//! Annex B byte streams (H.264 / H.265 access units as cameras send them over RTSP): the NAL units
//! between start codes, and what kind each one is. One scanner for every caller (parameter sets for
//! the packet tap, NAL types for trace logs).

/// The NAL units of an Annex B access unit, each without its start code (three- or four-byte) and
/// without trailing zero bytes.
///
/// ```
/// use camhub_media::annexb::nal_units;
/// let au = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3];
/// let units: Vec<&[u8]> = nal_units(&au).collect();
/// assert_eq!(units, vec![&[0x67, 1, 2][..], &[0x68, 3][..]]);
/// ```
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut next = find_start(data, 0);
    std::iter::from_fn(move || loop {
        let start = next?;
        let following = find_start(data, start);
        next = following;
        let mut end = following.map_or(data.len(), |f| f - 3);
        // A four-byte start code leaves its leading zero at the end of the previous unit.
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            return Some(&data[start..end]);
        }
    })
}

/// Index just past the first `00 00 01` at or after `from`.
fn find_start(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            return Some(i + 3);
        } else {
            i += 1;
        }
    }
    None
}

/// Which video coding an access unit is in, for reading its NAL unit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// H.264 / AVC: one header byte, type in the low five bits.
    H264,
    /// H.265 / HEVC: two header bytes, type in bits 1–6 of the first.
    H265,
}

impl Coding {
    /// The coding of a codec as camhub names it (`h264`, `h265`); None for any other.
    pub fn from_name(codec: &str) -> Option<Coding> {
        match codec {
            "h264" => Some(Coding::H264),
            "h265" => Some(Coding::H265),
            _ => None,
        }
    }

    /// The codec's name as camhub shows it (the inverse of [`Coding::from_name`]).
    pub fn name(self) -> &'static str {
        match self {
            Coding::H264 => "h264",
            Coding::H265 => "h265",
        }
    }

    /// The type of the NAL unit `nal` (0 for an empty unit).
    pub fn nal_type(self, nal: &[u8]) -> u8 {
        let h = nal.first().copied().unwrap_or(0);
        match self {
            Coding::H264 => h & 0x1f,
            Coding::H265 => (h >> 1) & 0x3f,
        }
    }

    /// True for a parameter set (H.264 SPS/PPS; H.265 VPS/SPS/PPS).
    pub fn is_parameter_set(self, nal: &[u8]) -> bool {
        match self {
            Coding::H264 => matches!(self.nal_type(nal), 7 | 8),
            Coding::H265 => matches!(self.nal_type(nal), 32..=34),
        }
    }

    /// True for a sequence parameter set (the picture size, profile and level).
    pub fn is_sps(self, nal: &[u8]) -> bool {
        match self {
            Coding::H264 => self.nal_type(nal) == 7,
            Coding::H265 => self.nal_type(nal) == 33,
        }
    }

    /// True for a unit carrying picture data (a slice): parameter sets come before the first one.
    pub fn is_slice(self, nal: &[u8]) -> bool {
        match self {
            Coding::H264 => matches!(self.nal_type(nal), 1..=5),
            Coding::H265 => self.nal_type(nal) < 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_between_start_codes() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x68, 4, 5, 0, 0, 1, 0x65, 9, 9,
        ];
        let units: Vec<&[u8]> = nal_units(&au).collect();
        assert_eq!(
            units,
            vec![&[0x67, 1, 2, 3][..], &[0x68, 4, 5][..], &[0x65, 9, 9][..]]
        );
        let types: Vec<u8> = units.iter().map(|u| Coding::H264.nal_type(u)).collect();
        assert_eq!(types, vec![7, 8, 5]);
        assert!(Coding::H264.is_slice(units[2]) && !Coding::H264.is_slice(units[0]));
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
        // H.265: VPS (32) then an IDR slice (19).
        let hevc = [0, 0, 1, 0x40, 1, 0, 0, 1, 0x26, 1];
        let kinds: Vec<(bool, bool)> = nal_units(&hevc)
            .map(|u| (Coding::H265.is_parameter_set(u), Coding::H265.is_slice(u)))
            .collect();
        assert_eq!(kinds, vec![(true, false), (false, true)]);
    }
}
