//! Image readers and preprocessing against Pillow and pydicom (fixtures made
//! by `python/make_input_fixtures.py`): PNG and JPEG decoding, colour
//! conversion and both resize methods byte for byte (JPEG within one grey
//! level: libjpeg-turbo rounds its inverse DCT differently), DICOM grey
//! levels in four transfer syntaxes, and clear refusals of broken files.

use std::path::{Path, PathBuf};

use cryptmed_input::image::{self, Format, Raster};
use cryptmed_input::{InputError, Target, load_for};
use cryptmed_model::{Color, ImagePreprocessing, Resize};
use proptest::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn decode(name: &str) -> Raster {
    let path = fixtures().join(name);
    let bytes = std::fs::read(&path).unwrap();
    image::decode(name, &bytes, Format::of(name).unwrap()).unwrap()
}

#[test]
fn png_and_jpeg_convert_and_resize_as_pillow_does() {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("images.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for c in cases.as_array().unwrap() {
        let file = c["file"].as_str().unwrap();
        let color = match c["color"].as_str().unwrap() {
            "gray" => Color::Gray,
            _ => Color::Rgb,
        };
        let resize = match c["resize"].as_str().unwrap() {
            "nearest" => Resize::Nearest,
            _ => Resize::Bilinear,
        };
        let (w, h) = (
            c["width"].as_u64().unwrap() as usize,
            c["height"].as_u64().unwrap() as usize,
        );
        let got = decode(file).to_color(color).resize(w, h, resize);
        let want = hex(c["pixels"].as_str().unwrap());
        assert_eq!((got.width, got.height), (w, h));
        let off = got
            .data
            .iter()
            .zip(&want)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        let allowed = if file.ends_with(".jpg") { 1 } else { 0 };
        assert!(
            got.data.len() == want.len() && off <= allowed,
            "{file} {color:?} {w}x{h} {resize:?}: off by up to {off}"
        );
        checked += 1;
    }
    assert_eq!(checked, 24);
}

#[test]
fn dicom_grey_levels_match_pydicom_in_every_transfer_syntax() {
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("dicom.json")).unwrap())
            .unwrap();
    for (name, w) in want.as_object().unwrap() {
        let got = decode(name);
        assert_eq!(
            (got.width, got.height, got.channels),
            (
                w["width"].as_u64().unwrap() as usize,
                w["height"].as_u64().unwrap() as usize,
                1
            ),
            "{name}"
        );
        let expected = hex(w["grey"].as_str().unwrap());
        let off = got
            .data
            .iter()
            .zip(&expected)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(off <= 1, "{name}: grey levels off by up to {off}");
    }
}

#[test]
fn dicom_without_a_native_decoder_is_refused_by_name() {
    let name = "MR_small_jpeg_ls_lossless.dcm";
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    let e = image::decode(name, &bytes, Format::Dicom)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{name}: DICOM: ")), "{e}");
    assert!(
        e.to_lowercase().contains("jpeg-ls") || e.contains("1.2.840.10008.1.2.4.80"),
        "{e}"
    );
}

/// A chest-X-ray-like pipeline: grey file, replicated to RGB, resized, normalised to [-1, 1].
fn xception(h: usize, w: usize) -> ImagePreprocessing {
    ImagePreprocessing {
        height: h,
        width: w,
        color: Color::Rgb,
        resize: Resize::Nearest,
        mean: vec![0.5; 3],
        std: vec![0.5; 3],
    }
}

#[test]
fn a_declared_preprocessing_prepares_any_size_from_any_format() {
    let prep = xception(15, 20);
    let shape = [3, 15, 20];
    for name in [
        "gray_53x37.png",
        "rgb_53x37.png",
        "gray_53x37.jpg",
        "CT_small.dcm",
    ] {
        let target = Target {
            shape: &shape,
            image: Some(&prep),
            classes: None,
            schema: None,
        };
        let r = load_for(&fixtures().join(name), &target, false, 1e6).unwrap();
        assert_eq!(r.records.len(), 1);
        let rec = &r.records[0];
        assert_eq!(rec.len(), 3 * 15 * 20, "{name}");
        assert!(rec.iter().all(|v| (-1.0..=1.0).contains(v)), "{name}");
        // Channel planes in CHW order; a grey source gives three equal planes.
        if name.starts_with("gray") || name.ends_with(".dcm") {
            assert_eq!(rec[..300], rec[300..600], "{name}");
        }
        // The same as preparing the decoded raster by hand.
        let bytes = std::fs::read(fixtures().join(name)).unwrap();
        let img = image::decode(name, &bytes, Format::of(name).unwrap()).unwrap();
        assert_eq!(*rec, image::prepare(img, &prep), "{name}");
    }
}

#[test]
fn without_a_declaration_an_image_must_have_the_models_shape() {
    let path = fixtures().join("gray_53x37.png");
    let ok = load_for(&path, &Target::shape(&[1, 37, 53]), false, 1e6).unwrap();
    assert!(ok.records[0].iter().all(|v| (0.0..=1.0).contains(v)));
    let e = load_for(&path, &Target::shape(&[1, 28, 28]), false, 1e6).unwrap_err();
    assert!(matches!(e, InputError::ArrayShape { .. }), "{e}");
}

#[test]
fn a_folder_of_images_is_read_in_name_order_with_labels_from_class_subfolders() {
    let dir = std::env::temp_dir().join(format!("cryptmed-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (class, file) in [("b", "x.png"), ("a", "y.jpg"), ("a", "z.dcm")] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        let src = match file {
            "x.png" => "rgb_53x37.png",
            "y.jpg" => "gray_53x37.jpg",
            _ => "MR_small.dcm",
        };
        std::fs::copy(fixtures().join(src), dir.join(class).join(file)).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let prep = xception(8, 8);
    let classes = vec!["b".to_string(), "a".to_string()];
    let target = Target {
        shape: &[3, 8, 8],
        image: Some(&prep),
        classes: Some(&classes),
        schema: None,
    };
    let r = load_for(&dir, &target, true, 1e6).unwrap();
    let names: Vec<String> = r
        .sources
        .iter()
        .map(|s| {
            Path::new(s)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["y.jpg", "z.dcm", "x.png"]);
    // Labels are the model's class indices, not the folders' order.
    assert_eq!(r.labels, Some(vec![1, 1, 0]));
    // An image outside every class folder cannot be labelled.
    std::fs::copy(fixtures().join("gray_53x37.png"), dir.join("loose.png")).unwrap();
    let e = load_for(&dir, &target, true, 1e6).unwrap_err().to_string();
    assert!(e.contains("loose.png") && e.contains("no label"), "{e}");
    // Unlabelled, every image is read, the loose one first.
    assert_eq!(
        load_for(&dir, &target, false, 1e6).unwrap().records.len(),
        4
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn broken_image_files_are_refused_with_their_name() {
    let png = std::fs::read(fixtures().join("gray_53x37.png")).unwrap();
    let jpg = std::fs::read(fixtures().join("gray_53x37.jpg")).unwrap();
    let dcm = std::fs::read(fixtures().join("MR_small.dcm")).unwrap();
    for (name, bytes, format) in [
        ("cut.png", &png[..png.len() / 2], Format::Png),
        ("cut.jpg", &jpg[..jpg.len() / 3], Format::Jpeg),
        ("cut.dcm", &dcm[..dcm.len() / 2], Format::Dicom),
        ("empty.jpg", &[][..], Format::Jpeg),
        ("text.dcm", &b"hello, not a DICOM file"[..], Format::Dicom),
    ] {
        let e = image::decode(name, bytes, format).unwrap_err();
        assert!(matches!(e, InputError::Format { .. }), "{name}: {e}");
        assert!(e.to_string().starts_with(name), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Arbitrary bytes never panic a decoder, whatever format they claim.
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), f in 0usize..3) {
        let format = [Format::Png, Format::Jpeg, Format::Dicom][f];
        let _ = image::decode("x", &bytes, format);
    }

    /// Resizing keeps the size asked for and, for a constant image, the constant.
    #[test]
    fn resizing_a_flat_image_keeps_it_flat(w in 1usize..40, h in 1usize..40, ow in 1usize..50, oh in 1usize..50, v in any::<u8>(), bilinear in any::<bool>()) {
        let img = Raster { width: w, height: h, channels: 1, data: vec![v; w * h] };
        let method = if bilinear { Resize::Bilinear } else { Resize::Nearest };
        let out = img.resize(ow, oh, method);
        prop_assert_eq!((out.width, out.height, out.data.len()), (ow, oh, ow * oh));
        prop_assert!(out.data.iter().all(|p| *p == v));
    }
}

/// The error decoding fixture `name` as DICOM gives, and the fixture's size.
fn dicom_refusal(name: &str) -> (String, usize) {
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    let e = image::decode(name, &bytes, Format::Dicom).unwrap_err();
    (e.to_string(), bytes.len())
}

#[test]
fn a_malformed_rle_dicom_found_by_fuzzing_is_an_error_not_a_crash() {
    let (e, _) = dicom_refusal("fuzz_rle_out_of_bounds.dcm");
    assert!(e.contains("malformed pixel data"), "{e}");
}

#[test]
fn a_dicom_declaring_more_bytes_than_it_holds_is_refused_before_allocating() {
    // Found by fuzzing: 6.6 KB whose element header declares 2.5 GB, which
    // dicom-rs would reserve before finding the data missing.
    let (e, len) = dicom_refusal("fuzz_declared_length_oom.dcm");
    assert!(
        e.contains(&format!("declares 2524142595 bytes in a file of {len}")),
        "{e}"
    );
}

#[test]
fn an_rle_header_claiming_too_many_segments_is_refused_before_allocating() {
    // Found by fuzzing: an RLE fragment whose header claims hundreds of
    // millions of segments, for which dicom-rs would reserve 2.3 GB.
    let (e, _) = dicom_refusal("fuzz_rle_segment_count_oom.dcm");
    assert!(e.contains("segments in") && e.contains("at most 15"), "{e}");
}

#[test]
fn a_file_meta_element_declaring_more_bytes_than_the_file_is_refused_before_allocating() {
    // Found by fuzzing: a file meta element declaring 2.6 GB in 6.6 KB,
    // which dicom-rs's meta reader would reserve before reading; and one
    // with an unknown VR, which dicom-rs reads as UN with a 4-byte length
    // (3.8 GB in 917 bytes).
    for name in ["fuzz_meta_length_oom.dcm", "fuzz_meta_unknown_vr_oom.dcm"] {
        let (e, len) = dicom_refusal(name);
        assert!(
            e.contains("a file meta element declares")
                && e.contains(&format!("in a file of {len}")),
            "{name}: {e}"
        );
    }
}
