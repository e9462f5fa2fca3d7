//! [`AnnexBFilter`]: turns the H.264 / H.265 packets of MP4, Matroska, FLV and RTMP inputs —
//! length-prefixed NAL units (AVCC / HVCC) whose parameter sets live only in the stream's extradata
//! (avcC / hvcC) — into Annex B with the parameter sets in-band on every keyframe, which is what the
//! packet tap promises its consumers (RTSP sources deliver that already). libavcodec's
//! `h264_mp4toannexb` / `hevc_mp4toannexb` bitstream filters do the work. This module owns one
//! filter context; it never touches a stream that is Annex B already (raw `.h264`, MPEG-TS, RTSP
//! through FFmpeg), so those packets keep their exact bytes.

use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr::NonNull;

use ff::ffi::AVBSFContext;
use ff::packet::Mut as _;
use ffmpeg_next as ff;

use crate::CodecError;

/// One libavcodec bitstream filter converting a length-prefixed H.264 / H.265 stream to Annex B
/// with in-band parameter sets.
///
/// Usage contract: [`AnnexBFilter::for_stream`] gives one only for a stream that needs it. Per
/// input packet, [`send`](Self::send) it, then [`receive`](Self::receive) until `None` (normally
/// one packet comes out per packet in; a packet the filter cannot parse yields none). At the end
/// of the input, [`send_eof`](Self::send_eof), receive what it held back, then
/// [`restart`](Self::restart) before the input is read again from the start (a looped file).
/// Output packets keep the input's timestamps and flags, in [`time_base`](Self::time_base).
pub(crate) struct AnnexBFilter {
    /// Owned: allocated by `av_bsf_alloc`, freed by `av_bsf_free` on drop, never shared.
    ctx: NonNull<AVBSFContext>,
}

// SAFETY: the filter context is owned exclusively by this value and only used through `&mut self`;
// libavcodec bitstream filters have no thread affinity, so moving one to another thread is sound.
#[allow(unsafe_code)]
unsafe impl Send for AnnexBFilter {}

/// The bitstream filter a stream of codec `id` with codec extradata `extradata` needs to become
/// Annex B, or `None` if it is Annex B already (or not H.264 / H.265). The tests are the ones
/// libavcodec's own decoders use to tell an avcC / hvcC record from Annex B parameter sets, so the
/// filter runs exactly when the decoder would otherwise expect length-prefixed packets.
pub(crate) fn filter_for(id: ff::codec::Id, extradata: &[u8]) -> Option<&'static CStr> {
    match id {
        // avcC starts with configurationVersion 1; Annex B extradata with a start code (byte 0).
        ff::codec::Id::H264 if extradata.first() == Some(&1) => Some(c"h264_mp4toannexb"),
        // hvcC's configurationVersion is 1 (0 in some early files); Annex B starts 00 00 01 or
        // 00 00 00 01.
        ff::codec::Id::HEVC
            if extradata.len() > 3
                && (extradata[0] != 0 || extradata[1] != 0 || extradata[2] > 1) =>
        {
            Some(c"hevc_mp4toannexb")
        }
        _ => None,
    }
}

/// `ret` as a result: negative values are FFmpeg errors, described by `what`.
fn check(ret: c_int, what: &'static str) -> Result<(), CodecError> {
    if ret < 0 {
        Err(CodecError::Ffmpeg {
            what,
            source: ff::Error::from(ret),
        })
    } else {
        Ok(())
    }
}

/// The codec extradata of `par` (empty if it has none).
#[allow(unsafe_code)]
fn extradata(par: &ff::codec::Parameters) -> &[u8] {
    // SAFETY: `par` wraps valid AVCodecParameters; FFmpeg keeps `extradata` either null or pointing
    // at `extradata_size` bytes that live as long as the parameters, which `par` borrows.
    unsafe {
        let p = &*par.as_ptr();
        match usize::try_from(p.extradata_size) {
            Ok(len) if len > 0 && !p.extradata.is_null() => {
                std::slice::from_raw_parts(p.extradata, len)
            }
            _ => &[],
        }
    }
}

impl AnnexBFilter {
    /// A filter for the stream with parameters `par` whose packets are timed in `time_base`, or
    /// `None` if its packets are Annex B already (or not H.264 / H.265) and must pass untouched.
    #[allow(unsafe_code)]
    pub(crate) fn for_stream(
        par: &ff::codec::Parameters,
        time_base: ff::Rational,
    ) -> Result<Option<AnnexBFilter>, CodecError> {
        let Some(name) = filter_for(par.id(), extradata(par)) else {
            return Ok(None);
        };
        // SAFETY: the documented libavcodec sequence. The context is checked for null right after
        // av_bsf_alloc and owned by `filter` from then on, whose Drop frees it on every error path.
        // par_in is allocated by av_bsf_alloc; `par` is valid for the copy.
        unsafe {
            let kind = ff::ffi::av_bsf_get_by_name(name.as_ptr());
            if kind.is_null() {
                return Err(CodecError::Unsupported(format!(
                    "this FFmpeg has no {} bitstream filter, needed to turn MP4-style packets into \
                     Annex B",
                    name.to_string_lossy()
                )));
            }
            let mut raw = std::ptr::null_mut();
            check(
                ff::ffi::av_bsf_alloc(kind, &mut raw),
                "allocating the Annex B bitstream filter",
            )?;
            let ctx = NonNull::new(raw).ok_or_else(|| {
                CodecError::Unsupported("libavcodec returned no bitstream filter".into())
            })?;
            let filter = AnnexBFilter { ctx };
            check(
                ff::ffi::avcodec_parameters_copy((*ctx.as_ptr()).par_in, par.as_ptr()),
                "copying the stream parameters into the Annex B filter",
            )?;
            (*ctx.as_ptr()).time_base_in = time_base.into();
            check(
                ff::ffi::av_bsf_init(ctx.as_ptr()),
                "starting the Annex B bitstream filter (is the avcC/hvcC record damaged?)",
            )?;
            Ok(Some(filter))
        }
    }

    /// The converted stream's parameters: the input's, with the parameter sets as Annex B
    /// extradata, so a decoder opened from them decodes the filter's output.
    #[allow(unsafe_code)]
    pub(crate) fn params(&self) -> Result<ff::codec::Parameters, CodecError> {
        // SAFETY: the allocation is checked for null and owned by `params` (freed on drop, as the
        // wrap has no owner); par_out was set by av_bsf_init and lives as long as the context.
        unsafe {
            let raw = ff::ffi::avcodec_parameters_alloc();
            if raw.is_null() {
                return Err(CodecError::Ffmpeg {
                    what: "allocating the Annex B stream parameters",
                    source: ff::Error::Other {
                        errno: ff::util::error::ENOMEM,
                    },
                });
            }
            let params = ff::codec::Parameters::wrap(raw, None);
            check(
                ff::ffi::avcodec_parameters_copy(raw, (*self.ctx.as_ptr()).par_out),
                "copying the Annex B stream parameters",
            )?;
            Ok(params)
        }
    }

    /// The time base of the output packets' timestamps (the input's, for these filters).
    #[allow(unsafe_code)]
    pub(crate) fn time_base(&self) -> ff::Rational {
        // SAFETY: a plain field read of the live context, set by av_bsf_init.
        unsafe { (*self.ctx.as_ptr()).time_base_out.into() }
    }

    /// Hands one input packet to the filter; its data reference moves into the filter. A packet
    /// without payload is ignored, because an empty packet would tell the filter the input ended.
    #[allow(unsafe_code)]
    pub(crate) fn send(&mut self, packet: &mut ff::Packet) -> Result<(), CodecError> {
        if packet.size() == 0 {
            return Ok(());
        }
        // SAFETY: both pointers are valid; on success FFmpeg takes the packet's reference and
        // leaves `packet` blank, on failure it leaves it untouched; either way Packet's Drop
        // releases what is left.
        let ret = unsafe { ff::ffi::av_bsf_send_packet(self.ctx.as_ptr(), packet.as_mut_ptr()) };
        check(ret, "handing a packet to the Annex B filter")
    }

    /// Tells the filter the input ended, so that [`receive`](Self::receive) returns what it held
    /// back. Call [`restart`](Self::restart) before sending packets again.
    #[allow(unsafe_code)]
    pub(crate) fn send_eof(&mut self) -> Result<(), CodecError> {
        // SAFETY: a null packet is libavcodec's end-of-stream signal.
        let ret = unsafe { ff::ffi::av_bsf_send_packet(self.ctx.as_ptr(), std::ptr::null_mut()) };
        check(ret, "ending the Annex B filter's input")
    }

    /// The next converted packet, or `None` when the filter needs more input (or has ended).
    /// A packet the filter cannot parse (damaged length prefixes) is dropped: the decoder could not
    /// use it either, and the stream recovers at the next keyframe.
    #[allow(unsafe_code)]
    pub(crate) fn receive(&mut self) -> Result<Option<ff::Packet>, CodecError> {
        loop {
            let mut out = ff::Packet::empty();
            // SAFETY: `out` is a blank packet for FFmpeg to fill; Packet's Drop releases it.
            let ret =
                unsafe { ff::ffi::av_bsf_receive_packet(self.ctx.as_ptr(), out.as_mut_ptr()) };
            if ret >= 0 {
                return Ok(Some(out));
            }
            match ff::Error::from(ret) {
                ff::Error::Other { errno } if errno == ff::util::error::EAGAIN => return Ok(None),
                ff::Error::Eof => return Ok(None),
                ff::Error::InvalidData => continue,
                source => {
                    return Err(CodecError::Ffmpeg {
                        what: "converting a packet to Annex B",
                        source,
                    })
                }
            }
        }
    }

    /// Forgets everything the filter held and clears its end-of-stream state, ready for the input
    /// again from the start.
    #[allow(unsafe_code)]
    pub(crate) fn restart(&mut self) {
        // SAFETY: the context is live and initialised.
        unsafe { ff::ffi::av_bsf_flush(self.ctx.as_ptr()) }
    }
}

impl Drop for AnnexBFilter {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let mut raw = self.ctx.as_ptr();
        // SAFETY: the context was allocated by av_bsf_alloc and is freed exactly once, here.
        unsafe { ff::ffi::av_bsf_free(&mut raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::filter_for;
    use ffmpeg_next::codec::Id;

    #[test]
    fn converts_only_length_prefixed_h264_and_h265() {
        // avcC / hvcC records (configurationVersion 1; early HEVC files wrote 0).
        assert!(filter_for(Id::H264, &[1, 0x64, 0, 0x1f, 0xff]).is_some());
        assert!(filter_for(Id::HEVC, &[1, 1, 0x60, 0, 0]).is_some());
        assert!(filter_for(Id::HEVC, &[0, 1, 0x60, 0, 0]).is_some());
        // Annex B extradata, or none: packets already carry start codes.
        assert!(filter_for(Id::H264, &[0, 0, 0, 1, 0x67]).is_none());
        assert!(filter_for(Id::H264, &[0, 0, 1, 0x67]).is_none());
        assert!(filter_for(Id::H264, &[]).is_none());
        assert!(filter_for(Id::HEVC, &[0, 0, 0, 1, 0x40, 1]).is_none());
        assert!(filter_for(Id::HEVC, &[0, 0, 1, 0x40, 1]).is_none());
        assert!(filter_for(Id::HEVC, &[]).is_none());
        // Other codecs never.
        assert!(filter_for(Id::MJPEG, &[1, 2, 3, 4]).is_none());
    }
}
