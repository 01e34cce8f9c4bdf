//! DICOM through dicom-rs (`dicom-object`, `dicom-pixeldata`): the first
//! frame, its modality rescale (slope, intercept) applied by dicom-rs, then
//! its first VOI window as DICOM's linear function (PS3.3 C.11.2.1.2.1) to
//! grey levels 0 to 255, or a min-max normalisation when it has no window;
//! `MONOCHROME1` (white is low) is inverted so that bright is high as in any
//! other image; RGB stays RGB. Transfer syntaxes dicom-rs cannot decode
//! without native codecs (JPEG 2000, JPEG-LS, ...) are refused with the
//! syntax's name.

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_object::meta::FileMetaTable;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder, VoiLutOption};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::{Raster, check_size};

/// The first value of a numeric attribute, if present and readable.
fn first(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> Option<f64> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_multi_float64().ok())
        .and_then(|v| v.first().copied())
}

/// DICOM's linear VOI function with window `(center, width)`, to 0..255.
fn window(v: f64, center: f64, width: f64) -> f64 {
    let (lo, hi) = (
        center - 0.5 - (width - 1.0) / 2.0,
        center - 0.5 + (width - 1.0) / 2.0,
    );
    if v <= lo {
        0.0
    } else if v > hi {
        255.0
    } else {
        ((v - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
    }
}

/// Rescaled values to grey levels: the first window, or min to max.
fn grey_levels(values: &[f64], win: Option<(f64, f64)>) -> Vec<u8> {
    let level = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    match win {
        Some((c, w)) if w >= 1.0 => values.iter().map(|v| level(window(*v, c, w))).collect(),
        _ => {
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let span = if hi > lo { hi - lo } else { 1.0 };
            values
                .iter()
                .map(|v| level((v - lo) / span * 255.0))
                .collect()
        }
    }
}

/// Refuses a file with an element, item or sequence that declares more
/// bytes than the whole file holds, before dicom-rs reserves memory for it
/// (found by fuzzing: a 6.6 KB file declaring 2.5 GB). The data set is
/// walked token by token, values skipped unread. Anything else malformed is
/// left to dicom-rs, whose error names why.
fn check_declared_lengths(bytes: &[u8]) -> Result<(), String> {
    let total = bytes.len() as u64;
    let start: u64 = if bytes.get(128..132) == Some(b"DICM".as_slice()) {
        128
    } else {
        0
    };
    check_meta_lengths(bytes, start as usize + 4)?;
    let mut cursor = std::io::Cursor::new(bytes);
    cursor.set_position(start);
    let Ok(meta) = FileMetaTable::from_reader(&mut cursor) else {
        return Ok(());
    };
    let Some(ts) = TransferSyntaxRegistry.get(meta.transfer_syntax()) else {
        return Ok(());
    };
    let Ok(mut reader) = LazyDataSetReader::new_with_ts(cursor, ts) else {
        return Ok(());
    };
    while let Some(token) = reader.advance() {
        let Ok(token) = token else {
            return Ok(());
        };
        let declared = match &token {
            LazyDataToken::LazyValue { header, .. } => header.len.get(),
            LazyDataToken::LazyItemValue { len, .. } => Some(*len),
            LazyDataToken::SequenceStart { len, .. } | LazyDataToken::ItemStart { len } => {
                len.get()
            }
            _ => None,
        };
        if let Some(n) = declared.filter(|n| u64::from(*n) > total) {
            return Err(format!(
                "an element declares {n} bytes in a file of {total} (malformed)"
            ));
        }
        if token.skip().is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// The RLE Lossless transfer syntax.
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Refuses RLE frames whose header claims more segments than the standard
/// allows (15, in a 64-byte header: DICOM PS3.5 G.5): dicom-rs reserves
/// memory for the claimed count before checking it (found by fuzzing: 2.3 GB
/// for a 6.6 KB file, fixture `fuzz_rle_segment_count_oom.dcm`).
fn check_rle_headers(obj: &DefaultDicomObject) -> Result<(), String> {
    if obj.meta().transfer_syntax() != RLE_LOSSLESS {
        return Ok(());
    }
    let Ok(pixels) = obj.element(tags::PIXEL_DATA) else {
        return Ok(());
    };
    for (i, frame) in pixels
        .value()
        .fragments()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let segments = frame
            .get(0..4)
            .map_or(u32::MAX, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if segments > 15 || frame.len() < 64 {
            return Err(format!(
                "RLE fragment {}: its header claims {segments} segments in {} bytes (at most 15, in a 64-byte header)",
                i + 1,
                frame.len()
            ));
        }
    }
    Ok(())
}

/// The file meta group (group 0002, always explicit VR little endian, from
/// `at`): refuses an element declaring more bytes than the file holds,
/// before dicom-rs's meta reader reserves them (found by fuzzing: 2.6 GB for
/// a 6.6 KB file, fixture `fuzz_meta_length_oom.dcm`). Stops at the first
/// element of another group or at the end; anything else malformed is left
/// to dicom-rs.
fn check_meta_lengths(bytes: &[u8], mut at: usize) -> Result<(), String> {
    let u16_at = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    while u16_at(at) == Some(0x0002) {
        let Some(vr) = bytes.get(at + 4..at + 6) else {
            return Ok(());
        };
        // The VRs with a 2-byte length (PS3.5 7.1.2); every other, and any
        // unknown VR (read as UN), has 2 reserved bytes and a 4-byte length.
        const SHORT: [&[u8]; 21] = [
            b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
            b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
        ];
        let long = !SHORT.contains(&vr);
        let (len, head) = if long {
            let Some(b) = bytes.get(at + 8..at + 12) else {
                return Ok(());
            };
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]), 12)
        } else {
            let Some(n) = u16_at(at + 6) else {
                return Ok(());
            };
            (u32::from(n), 8)
        };
        if len == u32::MAX {
            // Undefined length: not valid in the meta group; dicom-rs says why.
            return Ok(());
        }
        let end = at as u64 + head + u64::from(len);
        if end > bytes.len() as u64 {
            return Err(format!(
                "a file meta element declares {len} bytes in a file of {} (malformed)",
                bytes.len()
            ));
        }
        at = end as usize;
    }
    Ok(())
}

pub(super) fn decode(bytes: &[u8]) -> Result<Raster, String> {
    check_declared_lengths(bytes)?;
    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(std::io::Cursor::new(bytes))
        .map_err(|e| e.to_string())?;
    check_rle_headers(&obj)?;
    // dicom-rs's RLE decoder indexes past its buffer on some malformed
    // segments (found by fuzzing, fixture `fuzz_rle_out_of_bounds.dcm`): its
    // panic is this file's error, not a crash.
    let pixels = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.decode_pixel_data()))
        .map_err(|_| "malformed pixel data (the decoder failed on it)".to_string())?
        .map_err(|e| e.to_string())?;
    let (w, h) = (pixels.columns() as usize, pixels.rows() as usize);
    let channels = pixels.samples_per_pixel() as usize;
    if channels != 1 && channels != 3 {
        return Err(format!("{channels} samples per pixel (1 or 3)"));
    }
    check_size(w, h, channels)?;
    let options = ConvertOptions::new()
        .with_modality_lut(ModalityLutOption::Default)
        .with_voi_lut(VoiLutOption::Identity);
    let values: Vec<f64> = pixels
        .to_vec_frame_with_options(0, &options)
        .map_err(|e| e.to_string())?;
    let win = first(&obj, tags::WINDOW_CENTER).zip(first(&obj, tags::WINDOW_WIDTH));
    let mut data = if channels == 1 {
        grey_levels(&values, win)
    } else {
        values
            .iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect()
    };
    if data.len() != w * h * channels {
        return Err(format!(
            "the first frame holds {} samples for {w} x {h} x {channels}",
            data.len()
        ));
    }
    if pixels.photometric_interpretation().as_str() == "MONOCHROME1" {
        data.iter_mut().for_each(|v| *v = 255 - *v);
    }
    Ok(Raster {
        width: w,
        height: h,
        channels,
        data,
    })
}
