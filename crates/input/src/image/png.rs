//! PNG through the `png` crate: palette and low bit depths expanded, 16-bit
//! reduced to 8, alpha dropped; grey or RGB.

use super::{Raster, check_size};

pub(super) fn decode(bytes: &[u8]) -> Result<Raster, String> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| e.to_string())?;
    let (w, h) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    check_size(w, h, 4)?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("an image too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let samples = info.color_type.samples();
    let keep = if samples >= 3 { 3 } else { 1 };
    let data = buf[..w * h * samples]
        .chunks_exact(samples)
        .flat_map(|p| p[..keep].to_vec())
        .collect();
    Ok(Raster {
        width: w,
        height: h,
        channels: keep,
        data,
    })
}
