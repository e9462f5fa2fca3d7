//! [`Shaper`]: a camera's transform (`rotate`, `flip`, `perspective`, `crop`) applied on its decode
//! thread, between the decoder and the picture tap, so that every picture consumer (JPEG variants,
//! motion detection, composites, the frame API) sees the transformed picture. The geometry is
//! [`camhub_media::warp`]'s; this holds the compiled plan for the current source layout and
//! rebuilds it when the camera's size or the decoder's strides change. A camera without a
//! transform has no `Shaper` at all.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use camhub_codec::{CodecError, JpegDecoder, Picture, Scaler};
use camhub_media::warp::{PlaneLayout, Transform, WarpPlan};
use tracing::warn;

/// The size of the main stream's rotated picture, which its corners and crop were written for
/// when the config does not say (`transform_size`): the first the camera sent, shared with its
/// substream so that both apply the same geometry.
pub type ReferenceSize = Arc<Mutex<Option<(u32, u32)>>>;

/// One stream's transform, compiled for the pictures it gets.
pub struct Shaper {
    transform: Transform,
    /// Where the reference size comes from when the config gives none.
    reference: ReferenceSize,
    /// This stream sets the reference (the main stream), or only reads it (the substream).
    sets_reference: bool,
    plan: Option<WarpPlan>,
    jpeg: Option<JpegDecoder>,
    scaler: Option<Scaler>,
    /// The last problem reported (each is logged once, not per picture).
    reported: Option<String>,
}

impl Shaper {
    /// A shaper for `transform` (None for the identity: such a camera pays nothing).
    pub fn new(
        transform: &Transform,
        reference: ReferenceSize,
        sets_reference: bool,
    ) -> Option<Shaper> {
        (!transform.is_identity()).then(|| Shaper {
            transform: transform.clone(),
            reference,
            sets_reference,
            plan: None,
            jpeg: None,
            scaler: None,
            reported: None,
        })
    }

    /// The transformed size of a `width` x `height` source picture (what the API reports for a
    /// camera whose size is known only from its stream's SPS).
    pub fn output_size(transform: &Transform, width: u32, height: u32) -> Option<(u32, u32)> {
        let m = transform.mapping(width, height).ok()?;
        Some((m.width, m.height))
    }

    /// A camera JPEG, decoded at full size and transformed.
    pub fn jpeg(&mut self, data: &Bytes) -> Result<Picture, String> {
        let decoder = match &mut self.jpeg {
            Some(d) => d,
            slot => slot.insert(JpegDecoder::new().map_err(|e| e.to_string())?),
        };
        let pic = decoder.decode(data, 0, 0).map_err(|e| e.to_string())?;
        self.picture(&pic)
    }

    /// `pic` transformed. Errors are reasons for the status (the picture is then dropped).
    pub fn picture(&mut self, pic: &Picture) -> Result<Picture, String> {
        let converted;
        let pic = match pic.yuv_layout() {
            Some(_) => pic,
            None => {
                // Semi-planar or deep pictures: to 8-bit planar 4:2:0 first, at the same size.
                let scaler = self.scaler.get_or_insert_with(Scaler::new);
                converted = scaler
                    .scale(pic, pic.width(), pic.height())
                    .map_err(|e| e.to_string())?;
                &converted
            }
        };
        let Some([(w, h, ys), (cw, ch, cs), _]) = pic.yuv_layout() else {
            return Err("the picture's pixel format cannot be transformed".into());
        };
        let luma = PlaneLayout {
            width: w,
            height: h,
            stride: ys,
        };
        let chroma = PlaneLayout {
            width: cw,
            height: ch,
            stride: cs,
        };
        if !self.plan.as_ref().is_some_and(|p| p.fits(luma, chroma)) {
            self.plan = None;
            self.plan = Some(self.compile(w, h, luma, chroma)?);
        }
        let Some(plan) = &self.plan else {
            return Err("no plan".into());
        };
        let (ow, oh) = plan.output_size();
        let mut out = Picture::new_yuv420(ow, oh, pic.is_full_range(), pic.matrix())
            .map_err(|e: CodecError| e.to_string())?;
        let black = if pic.is_full_range() { 0 } else { 16 };
        let src = [pic.plane(0).0, pic.plane(1).0, pic.plane(2).0];
        let [y, u, v] = out.planes_mut().map(|(data, stride, _, _)| (data, stride));
        plan.apply(src, [y, u, v], [black, 128, 128])
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// The plan for a `w` x `h` source, with the corners and crop scaled from the reference size.
    fn compile(
        &mut self,
        w: u32,
        h: u32,
        luma: PlaneLayout,
        chroma: PlaneLayout,
    ) -> Result<WarpPlan, String> {
        let rotated = if self.transform.rotate.swaps() {
            (h, w)
        } else {
            (w, h)
        };
        let mut transform = self.transform.clone();
        if transform.reference.is_none() {
            let mut reference = self.reference.lock().unwrap_or_else(|p| p.into_inner());
            if reference.is_none() && self.sets_reference {
                *reference = Some(rotated);
            }
            transform.reference = *reference;
        }
        let mapping = transform.mapping(w, h).map_err(|e| e.to_string())?;
        if mapping.crop_clamped {
            self.report(format!(
                "the crop reaches beyond the camera's {}x{} picture (after rotation and perspective): it was cut to {}x{}",
                rotated.0, rotated.1, mapping.width, mapping.height
            ));
        }
        WarpPlan::new(&mapping, luma, chroma).map_err(|e| e.to_string())
    }

    /// Logs a problem once per kind.
    fn report(&mut self, problem: String) {
        if self.reported.as_ref() != Some(&problem) {
            warn!("{problem}");
            self.reported = Some(problem);
        }
    }
}
