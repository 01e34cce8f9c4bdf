//! Every format, and every kind of bad record, with the exact message: the
//! file, the line and record (CSV) or the record (binary formats), the
//! column, and what is wrong.

use std::path::PathBuf;

use super::*;

/// The loader's default magnitude limit, as the CLI uses it.
const LIMIT: f64 = 1e9;

/// Writes `bytes` to a fresh file named `name` and returns its path.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cryptmed-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Loads `bytes` as file `name` for a model of input `shape`; the error message.
fn err(name: &str, bytes: &[u8], shape: &[usize], labelled: bool) -> (String, String) {
    let p = file(name, bytes);
    let msg = load_shaped(&p, shape, labelled, LIMIT)
        .map(|r| format!("loaded {} records", r.records.len()))
        .unwrap_or_else(|e| e.to_string());
    (p.display().to_string(), msg)
}

fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let f = if fortran { "True" } else { "False" };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((h.len() as u16).to_le_bytes());
    v.extend(h.as_bytes());
    v.extend(data);
    v
}

fn f8(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn idx_bytes(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = Vec::new();
    let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
    e.write_all(bytes).unwrap();
    drop(e);
    gz
}

#[test]
fn csv_header_labels_blank_lines_and_line_numbers() {
    let text = b"f1,f2,label\n1,2.5,0\n\n-3,4e-2,1\n";
    let r = csv("a.csv", text, 2, true).unwrap();
    assert_eq!(r.records, vec![vec![1.0, 2.5], vec![-3.0, 0.04]]);
    assert_eq!(r.labels, Some(vec![0, 1]));
    assert_eq!(r.lines, vec![2, 4]);
    assert_eq!(r.place(1).to_string(), "line 4 (record 1)");
    // Without a header, the first line is record 0.
    let r = csv("a.csv", b"1,2\n3,4\n", 2, false).unwrap();
    assert_eq!((r.lines.clone(), r.labels), (vec![1, 2], None));
}

/// The same cell (line 4, record 2, column 3) is named the same way
/// whatever is wrong with it.
#[test]
fn csv_every_kind_of_bad_cell_names_the_same_line_record_and_column() {
    for (cell, what) in [
        ("abc", "`abc` is not a number"),
        ("NaN", "NaN is not a finite number"),
        ("inf", "inf is not a finite number"),
        ("-inf", "-inf is not a finite number"),
        (
            "1e20",
            "100000000000000000000 is outside the range a record value may take, (-1000000000, 1000000000)",
        ),
    ] {
        let text = format!("a,b,c\n1,2,3\n4,5,6\n7,8,{cell}\n9,9,9\n");
        let (path, msg) = err("cells.csv", text.as_bytes(), &[3], false);
        assert_eq!(msg, format!("{path}: line 4 (record 2), column 3: {what}"));
    }
}

#[test]
fn csv_wrong_width_bad_labels_and_no_records() {
    // A ragged file is refused as read, before the model is known.
    let (path, msg) = err("w.csv", b"1,2,3\n4,5\n", &[3], false);
    assert_eq!(
        msg,
        format!("{path}: line 2 (record 1): 2 values, the first record has 3")
    );
    let (path, msg) = err("wl.csv", b"h1,h2,h3\n1,2,0\n1,2\n", &[2], true);
    assert_eq!(
        msg,
        format!("{path}: line 3 (record 1): 2 values, the header has 3")
    );
    // A whole file of another width, against the model.
    let (path, msg) = err("m.csv", b"1,2,3\n4,5,6\n", &[2], false);
    assert_eq!(
        msg,
        format!(
            "{path}: 3 values per record, the model expects 2; a column too many? a label in the last column needs a header to skip it"
        )
    );
    let (path, msg) = err("ml.csv", b"a,b,c,label\n1,2,3,0\n", &[2], true);
    assert_eq!(
        msg,
        format!("{path}: 3 values per record, the model expects 2 and a label")
    );
    let (path, msg) = err("mh.csv", b"a,b,label\n1,2,0\n", &[2], false);
    assert_eq!(
        msg,
        format!(
            "{path}: 3 values per record, the model expects 2; a column too many (a label, an id)? skip it with --ignore-column NAME"
        )
    );
    let (path, msg) = err("l.csv", b"1,2,x\n", &[2], true);
    assert_eq!(
        msg,
        format!("{path}: line 1 (record 0), column 3: label `x` is not a number")
    );
    let (path, msg) = err("l2.csv", b"1,2,0\n1,2,1.5\n", &[2], true);
    assert_eq!(
        msg,
        format!("{path}: line 2 (record 1), column 3: label `1.5` is not a class index")
    );
    let (path, msg) = err("empty.csv", b"", &[2], false);
    assert_eq!(msg, format!("{path}: no records: the file is empty"));
    let (path, msg) = err("header.csv", b"a,b\n\n", &[2], false);
    assert_eq!(
        msg,
        format!("{path}: no records: the file has a header and no data")
    );
    let (path, msg) = err("bin.csv", b"1,2\n\xff\xfe\n", &[2], false);
    assert_eq!(msg, format!("{path}: not UTF-8 text (byte 4)"));
}

#[test]
fn npy_float32_and_float64_with_and_without_a_batch_axis() {
    let data = f8(&[1.0, 2.0, 3.0, 4.0]);
    let two = npy("x.npy", &npy_bytes("<f8", false, "(2, 2)", &data), &[2]).unwrap();
    assert_eq!(two.records, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
    assert!(two.lines.is_empty());
    // The same array is one record of a model of shape (2, 2) or (1, 2, 2),
    // but not of one taking 4 values: its records would be (4).
    for shape in [&[2, 2][..], &[1, 2, 2]] {
        let one = npy("x.npy", &npy_bytes("<f8", false, "(2, 2)", &data), shape).unwrap();
        assert_eq!(one.records, vec![vec![1.0, 2.0, 3.0, 4.0]], "{shape:?}");
    }
    let flat = npy("x.npy", &npy_bytes("<f8", false, "(2, 2)", &data), &[4]);
    assert!(
        matches!(flat, Err(InputError::ArrayShape { .. })),
        "{flat:?}"
    );
    let flat = npy("x.npy", &npy_bytes("<f8", false, "(4,)", &data), &[2, 2]).unwrap();
    assert_eq!(flat.records.len(), 1);
    // A batch of images with or without the channel axis.
    let batch = npy(
        "x.npy",
        &npy_bytes("<f8", false, "(1, 1, 2, 2)", &data),
        &[1, 2, 2],
    );
    assert_eq!(batch.unwrap().records.len(), 1);
    let f4: Vec<u8> = [0.5f32, 1.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let r = npy("x.npy", &npy_bytes("<f4", false, "(2,)", &f4), &[2]).unwrap();
    assert_eq!(r.records, vec![vec![0.5, 1.5]]);
}

#[test]
fn npy_wrong_shape_truncated_and_unsupported_files_are_refused() {
    // A 3 x 20 array for a 30-input model: not 2 records.
    let (path, msg) = err(
        "wrong.npy",
        &npy_bytes("<f8", false, "(3, 20)", &f8(&[0.5; 60])),
        &[30],
        false,
    );
    assert_eq!(
        msg,
        format!(
            "{path}: an array of shape (3, 20) does not hold records of the model's input shape (30): \
             give (30) or 30 values per record, with or without a leading batch axis"
        )
    );
    let (path, msg) = err(
        "trunc.npy",
        &npy_bytes("<f8", false, "(1, 30)", &f8(&[0.5; 9])),
        &[30],
        false,
    );
    assert_eq!(
        msg,
        format!(
            "{path}: truncated: the header promises 30 values of 8 bytes (shape (1, 30)), 240 bytes; \
             the file has 72 bytes of data"
        )
    );
    let (path, msg) = err(
        "long.npy",
        &npy_bytes("<f8", false, "(2,)", &f8(&[0.5; 3])),
        &[2],
        false,
    );
    assert!(
        msg.starts_with(&format!("{path}: too long: the header promises 2 values")),
        "{msg}"
    );
    let (path, msg) = err(
        "zero.npy",
        &npy_bytes("<f8", false, "(0, 30)", &[]),
        &[30],
        false,
    );
    assert_eq!(
        msg,
        format!("{path}: no records: an array of shape (0, 30)")
    );
    let (path, msg) = err(
        "nan.npy",
        &npy_bytes("<f8", false, "(2, 2)", &f8(&[1.0, 2.0, 3.0, f64::NAN])),
        &[2],
        false,
    );
    assert_eq!(
        msg,
        format!("{path}: record 1, column 2: NaN is not a finite number")
    );
    let (path, msg) = err(
        "big.npy",
        &npy_bytes("<f8", false, "(2,)", &f8(&[1.0, -2e9])),
        &[2],
        false,
    );
    assert_eq!(
        msg,
        format!(
            "{path}: record 0, column 2: -2000000000 is outside the range a record value may take, (-1000000000, 1000000000)"
        )
    );
    for (descr, want) in [
        (
            "<i8",
            "only little-endian float32 or float64 arrays ('<f4', '<f8'), not '<i8'",
        ),
        (
            ">f8",
            "only little-endian float32 or float64 arrays ('<f4', '<f8'), not '>f8'",
        ),
    ] {
        let (path, msg) = err(
            "t.npy",
            &npy_bytes(descr, false, "(2,)", &f8(&[1.0, 2.0])),
            &[2],
            false,
        );
        assert_eq!(msg, format!("{path}: {want}"));
    }
    let (path, msg) = err(
        "f.npy",
        &npy_bytes("<f8", true, "(2,)", &f8(&[1.0, 2.0])),
        &[2],
        false,
    );
    assert_eq!(
        msg,
        format!("{path}: Fortran-ordered arrays are not supported")
    );
    let (path, msg) = err("g.npy", b"garbage!!!!!", &[2], false);
    assert_eq!(msg, format!("{path}: not an NPY file (bad magic)"));
    let mut short = npy_bytes("<f8", false, "(2,)", &[]);
    short.truncate(20);
    let (path, msg) = err("h.npy", &short, &[2], false);
    assert!(
        msg.starts_with(&format!("{path}: truncated: the header promises")),
        "{msg}"
    );
}

#[test]
fn idx_images_plain_and_gzipped_labels_and_refusals() {
    let img = idx_bytes(&[2, 1, 2], &[0, 255, 51, 102]);
    let r = idx("t10k-images-idx3-ubyte", &img, &[1, 1, 2]).unwrap();
    assert_eq!(r.records, vec![vec![0.0, 1.0], vec![0.2, 0.4]]);
    assert_eq!(idx("x.gz", &gzip(&img), &[2]).unwrap().records.len(), 2);
    let labels = idx_bytes(&[3], &[7, 1, 9]);
    assert_eq!(idx_labels("labels", &labels).unwrap(), vec![7, 1, 9]);
    assert_eq!(
        idx_labels("labels.gz", &gzip(&labels)).unwrap(),
        vec![7, 1, 9]
    );
    let (path, msg) = err("imgs-idx3-ubyte", &labels, &[2], false);
    assert_eq!(
        msg,
        format!(
            "{path}: an IDX label file (magic 0x00000801, 3 labels): it holds labels, not records; \
             give the images file (magic 0x00000803)"
        )
    );
    let (_, msg) = err("lab-idx1-ubyte", &img, &[2], false);
    assert!(!msg.contains("label file"), "{msg}");
    assert!(
        idx_labels("img", &img)
            .unwrap_err()
            .to_string()
            .contains("not an IDX label file")
    );
    // 20 images of 14 x 14 for a model of 1 x 28 x 28: not 5 records.
    let (path, msg) = err(
        "small-idx3-ubyte",
        &idx_bytes(&[20, 14, 14], &[0; 3920]),
        &[1, 28, 28],
        false,
    );
    assert_eq!(
        msg,
        format!(
            "{path}: an IDX array of shape (20, 14, 14) does not hold records of the model's input shape \
             (1, 28, 28): give (1, 28, 28) or 784 values per record, with or without a leading batch axis"
        )
    );
    let (path, msg) = err("trunc-idx3-ubyte", &img[..17], &[2], false);
    assert_eq!(
        msg,
        format!(
            "{path}: truncated: the header promises 4 bytes (dimensions (2, 1, 2)), the file has 1"
        )
    );
    let (path, msg) = err("zero-idx3-ubyte", &idx_bytes(&[0, 1, 2], &[]), &[2], false);
    assert_eq!(
        msg,
        format!("{path}: no records: an IDX array of shape (0, 1, 2)")
    );
    let mut float = img.clone();
    float[2] = 0x0d;
    let (path, msg) = err("f-idx3-ubyte", &float, &[2], false);
    assert_eq!(
        msg,
        format!("{path}: only unsigned-byte IDX files (type 0x08), not type 0x0d")
    );
    let (path, msg) = err("m-idx3-ubyte", b"\x01\x02\x03\x04", &[2], false);
    assert_eq!(msg, format!("{path}: not an IDX file (bad magic)"));
}

fn png_bytes(color: png::ColorType, w: u32, h: u32) -> Vec<u8> {
    let ch = color.samples();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(&vec![255u8; w as usize * h as usize * ch])
        .unwrap();
    drop(wr);
    out
}

#[test]
fn png_grayscale_and_rgb_and_wrong_shapes() {
    let gray = png_bytes(png::ColorType::Grayscale, 2, 1);
    assert_eq!(
        png("x.png", &gray, &[1, 1, 2]).unwrap().records,
        vec![vec![1.0; 2]]
    );
    assert_eq!(png("x.png", &gray, &[2]).unwrap().records.len(), 1);
    let rgb = png_bytes(png::ColorType::Rgb, 2, 1);
    assert_eq!(
        png("x.png", &rgb, &[3, 1, 2]).unwrap().records,
        vec![vec![1.0; 6]]
    );
    // An RGB image for a grayscale model of the same pixel count, or a 1 x 4
    // image for a 2 x 2 model: refused with both shapes.
    let (path, msg) = err("rgb.png", &rgb, &[1, 2, 3], false);
    assert!(
        msg == format!(
            "{path}: an image of shape (3, 1, 2) does not hold records of the model's input shape (1, 2, 3): \
             give one record of (1, 2, 3) (6 values)"
        ),
        "{msg}"
    );
    let wide = png_bytes(png::ColorType::Grayscale, 4, 1);
    let (path, msg) = err("wide.png", &wide, &[1, 2, 2], false);
    assert!(
        msg.starts_with(&format!("{path}: an image of shape (1, 1, 4)")),
        "{msg}"
    );
    let (path, msg) = err("bad.png", b"not a png", &[4], false);
    assert!(msg.starts_with(&format!("{path}: PNG: ")), "{msg}");
}

#[test]
fn cifar_binary_reader_on_a_generated_file() {
    let mut bytes = Vec::new();
    for label in [3u8, 9] {
        bytes.push(label);
        bytes.extend((0..3072).map(|i| (i % 256) as u8));
    }
    let r = cifar("data_batch_1.bin", &bytes, &[3, 32, 32]).unwrap();
    assert_eq!(r.labels, Some(vec![3, 9]));
    assert_eq!(r.records[1][1024], 0.0); // first green pixel
    assert_eq!(r.records[0][255], 1.0);
    assert!(cifar("x.bin", &bytes, &[3072]).is_ok());
    let (path, msg) = err("short.bin", &bytes[..100], &[3, 32, 32], false);
    assert_eq!(
        msg,
        format!("{path}: 100 bytes is not a whole number of 3073-byte CIFAR-10 records")
    );
    let (path, msg) = err("mnist.bin", &bytes, &[1, 28, 28], false);
    assert!(
        msg.starts_with(&format!("{path}: a CIFAR-10 image of shape (3, 32, 32)")),
        "{msg}"
    );
}

#[test]
fn shapes_with_and_without_batch_axis_and_unit_axes() {
    assert_eq!(records_in(&[30], &[30]), Some(1));
    assert_eq!(records_in(&[5, 30], &[30]), Some(5));
    assert_eq!(records_in(&[1, 30], &[30]), Some(1));
    assert_eq!(records_in(&[3, 20], &[30]), None);
    assert_eq!(records_in(&[60], &[30]), None);
    assert_eq!(records_in(&[28, 28], &[1, 28, 28]), Some(1));
    assert_eq!(records_in(&[784], &[1, 28, 28]), Some(1));
    assert_eq!(records_in(&[7, 28, 28], &[1, 28, 28]), Some(7));
    assert_eq!(records_in(&[7, 784], &[1, 28, 28]), Some(7));
    assert_eq!(records_in(&[7, 1, 28, 28], &[1, 28, 28]), Some(7));
    assert_eq!(records_in(&[20, 14, 14], &[1, 28, 28]), None);
    assert_eq!(records_in(&[28, 7, 4], &[1, 28, 28]), None);
}

#[test]
fn later_refusals_read_like_the_loaders() {
    let r = csv("k.csv", b"a,b\n1,2\n3,4\n", 2, false).unwrap();
    let e = r.value_error("k.csv", 1, 2, "4 is outside this model's range".into());
    assert_eq!(
        e.to_string(),
        "k.csv: line 3 (record 1), column 2: 4 is outside this model's range"
    );
    let n = Records {
        records: vec![vec![0.0]],
        ..Records::default()
    };
    assert_eq!(
        n.value_error("x.npy", 0, 1, "bad".into()).to_string(),
        "x.npy: record 0, column 1: bad"
    );
}

#[test]
fn load_picks_the_format_by_name_and_refuses_unknown_ones() {
    let p = file("r.csv", b"1,2\n");
    assert_eq!(
        load(&p, 2, false, LIMIT).unwrap().records,
        vec![vec![1.0, 2.0]]
    );
    let (path, msg) = err("r.xlsx", b"1,2\n", &[2], false);
    assert_eq!(
        msg,
        format!(
            "{path}: unknown format: use .csv, .npy, .png, .jpg, .dcm, an IDX file, a CIFAR-10 .bin or a folder of images"
        )
    );
    let missing = std::env::temp_dir().join("cryptmed-input-no-such-file.csv");
    let e = load(&missing, 2, false, LIMIT).unwrap_err();
    assert!(matches!(e, InputError::Io { .. }), "{e}");
    let p = file("labels-idx1-ubyte", &idx_bytes(&[2], &[3, 4]));
    assert_eq!(load_labels(&p).unwrap(), vec![3, 4]);
}
