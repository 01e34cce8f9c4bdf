//! JPEG through `zune-jpeg`: grey files decoded to one channel, colour ones
//! (YCbCr, CMYK, ...) to RGB. libjpeg-turbo (PIL) rounds its inverse DCT
//! slightly differently: about 0.5% of pixels of a chest X-ray differ by one
//! grey level (the README states what that does to a model's logits).

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::{Raster, check_size};

pub(super) fn decode(bytes: &[u8]) -> Result<Raster, String> {
    // Strict: a truncated or corrupt file is an error, not an image padded with grey.
    let strict = DecoderOptions::default().set_strict_mode(true);
    let mut probe = JpegDecoder::new_with_options(ZCursor::new(bytes), strict);
    probe.decode_headers().map_err(|e| e.to_string())?;
    let (w, h) = probe.dimensions().ok_or("no image size in the headers")?;
    let gray = matches!(probe.input_colorspace(), Some(ColorSpace::Luma));
    let (space, channels) = if gray {
        (ColorSpace::Luma, 1)
    } else {
        (ColorSpace::RGB, 3)
    };
    check_size(w, h, channels)?;
    let options = strict
        .jpeg_set_out_colorspace(space)
        .set_max_width(1 << 16)
        .set_max_height(1 << 16);
    let mut dec = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let data = dec.decode().map_err(|e| e.to_string())?;
    if data.len() != w * h * channels {
        return Err(format!(
            "decoded {} samples for {w} x {h} x {channels}",
            data.len()
        ));
    }
    Ok(Raster {
        width: w,
        height: h,
        channels,
        data,
    })
}
