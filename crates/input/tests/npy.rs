//! The NPY reader on files written by numpy's own `np.save` (fixtures made
//! by `python/make_input_fixtures.py npy`; the unit tests build their bytes
//! by hand): every value exact, batch and image shapes, and a clear refusal
//! of a Fortran-ordered array.

use std::path::{Path, PathBuf};

use cryptmed_input::npy;

fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npy")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// numpy's values of `name`, from `npy.json` (float64 bytes in hex).
fn expected(name: &str) -> Vec<f64> {
    let (_, json) = fixture("npy.json");
    let all: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let hex = all[name]["f64_le_hex"].as_str().unwrap();
    (0..hex.len() / 16)
        .map(|i| {
            let b: Vec<u8> = (0..8)
                .map(|k| u8::from_str_radix(&hex[16 * i + 2 * k..16 * i + 2 * k + 2], 16).unwrap())
                .collect();
            f64::from_le_bytes(b.try_into().unwrap())
        })
        .collect()
}

#[test]
fn numpy_written_files_read_exactly_for_flat_batched_and_image_models() {
    // Three float64 records of a 30-column model, with 0, -0, 1e-300 and -1.5e300.
    let (_, bytes) = fixture("batch_f8_3x30.npy");
    let r = npy("batch_f8_3x30.npy", &bytes, &[30]).unwrap();
    let want = expected("batch_f8_3x30.npy");
    assert_eq!(r.records.len(), 3);
    let got: Vec<f64> = r.records.concat();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.to_bits(), w.to_bits(), "{g} against numpy's {w}");
    }
    // One float32 image record (1, 28, 28), widened exactly to f64.
    let (_, bytes) = fixture("image_f4_1x28x28.npy");
    let r = npy("image_f4_1x28x28.npy", &bytes, &[1, 28, 28]).unwrap();
    assert_eq!(r.records, vec![expected("image_f4_1x28x28.npy")]);
    // A flat float32 array is one record of a 30-column model.
    let (_, bytes) = fixture("flat_f4_30.npy");
    let r = npy("flat_f4_30.npy", &bytes, &[30]).unwrap();
    assert_eq!(r.records, vec![expected("flat_f4_30.npy")]);
    // The same file does not fit a 784-value model: refused, naming the file.
    let e = npy("flat_f4_30.npy", &bytes, &[1, 28, 28]).unwrap_err();
    assert!(e.to_string().contains("flat_f4_30.npy"), "{e}");
}

#[test]
fn a_fortran_ordered_numpy_file_is_refused_by_name() {
    let (_, bytes) = fixture("fortran_f8_30x2.npy");
    let e = npy("fortran_f8_30x2.npy", &bytes, &[30]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("fortran_f8_30x2.npy") && msg.contains("Fortran"),
        "{msg}"
    );
}
