//! CSV columns matched to the model's named columns, skipped columns,
//! headerless files, and plausibility: every refusal with its exact words.

use cryptmed_input::{CsvOptions, Table, check_plausible};
use cryptmed_model::{Feature, FeatureSchema};
use proptest::prelude::*;

fn schema(names: &[&str]) -> FeatureSchema {
    FeatureSchema {
        features: names
            .iter()
            .map(|n| Feature {
                name: n.to_string(),
                unit: None,
                range: None,
            })
            .collect(),
    }
}

fn table(text: &str, opts: &CsvOptions) -> Result<Table, String> {
    Table::parse("r.csv", text.as_bytes(), opts, 1e9).map_err(|e| e.to_string())
}

fn records(text: &str, opts: &CsvOptions, s: &FeatureSchema) -> Result<Vec<Vec<f64>>, String> {
    let t = table(text, opts)?;
    t.records(s.features.len(), Some(s))
        .map(|r| r.records)
        .map_err(|e| e.to_string())
}

#[test]
fn columns_in_another_order_are_read_by_name() {
    let s = schema(&["a", "b", "c"]);
    let got = records("c,a,b\n3,1,2\n6,4,5\n", &CsvOptions::default(), &s).unwrap();
    assert_eq!(got, vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
    // The file column of each model column, for messages.
    let t = table("c,a,b\n3,1,2\n", &CsvOptions::default()).unwrap();
    let r = t.records(3, Some(&s)).unwrap();
    assert_eq!(r.columns, vec![2, 3, 1]);
    assert_eq!(
        r.value_error("r.csv", 0, 1, "bad".into()).to_string(),
        "r.csv: line 2 (record 0), column 2: bad"
    );
}

#[test]
fn unknown_and_missing_columns_are_refused_with_the_closest_name() {
    let s = schema(&["mean radius", "mean texture"]);
    let e = records("mean radius,mean texure\n1,2\n", &CsvOptions::default(), &s).unwrap_err();
    assert_eq!(
        e,
        "r.csv: column 2 `mean texure` is not one of the model's columns (the closest is `mean texture`); \
         skip a column the model does not take with --ignore-column \"mean texure\""
    );
    // A label column: the refusal says how to skip it.
    let e = records(
        "mean radius,mean texture,label\n1,2,0\n",
        &CsvOptions::default(),
        &s,
    )
    .unwrap_err();
    assert!(e.contains("--ignore-column \"label\""), "{e}");
    let skip = CsvOptions {
        ignore: vec!["label".into()],
        ..CsvOptions::default()
    };
    let got = records("mean radius,mean texture,label\n1,2,0\n", &skip, &s).unwrap();
    assert_eq!(got, vec![vec![1.0, 2.0]]);
    // A missing column, with the file's closest name.
    let e = records("mean radius,id\n1,x\n", &skip_id(), &s).unwrap_err();
    assert_eq!(
        e,
        "r.csv: the model's column `mean texture` is missing (the closest in the file is `mean radius`)"
    );
    // An unknown name to skip, with the header's closest.
    let e = table(
        "mean radius,label\n1,0\n",
        &CsvOptions {
            ignore: vec!["lable".into()],
            ..CsvOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e,
        "r.csv: --ignore-column `lable` names no column of the header (the closest is `label`)"
    );
}

fn skip_id() -> CsvOptions {
    CsvOptions {
        ignore: vec!["id".into()],
        ..CsvOptions::default()
    }
}

#[test]
fn skipped_columns_may_hold_text() {
    let s = schema(&["x"]);
    let got = records("id,x\nP-001,1.5\nP-002,2.5\n", &skip_id(), &s).unwrap();
    assert_eq!(got, vec![vec![1.5], vec![2.5]]);
    // A kept column may not.
    let e = records("id,x\nP-001,abc\n", &skip_id(), &s).unwrap_err();
    assert_eq!(
        e,
        "r.csv: line 2 (record 0), column 2: `abc` is not a number"
    );
}

#[test]
fn a_headerless_file_needs_no_header_for_a_model_that_names_its_columns() {
    let s = schema(&["a", "b"]);
    let e = records("1,2\n", &CsvOptions::default(), &s).unwrap_err();
    assert_eq!(
        e,
        "r.csv: the file has no header, and the model names its 2 columns (a, b): add a header row \
         naming them, or pass --no-header to read the columns by position (their order is then your \
         responsibility)"
    );
    let no_header = CsvOptions {
        no_header: true,
        ..CsvOptions::default()
    };
    assert_eq!(
        records("1,2\n", &no_header, &s).unwrap(),
        vec![vec![1.0, 2.0]]
    );
    // With --no-header the first line is a record, even one that reads like a header.
    let e = records("a,b\n1,2\n", &no_header, &s).unwrap_err();
    assert_eq!(e, "r.csv: line 1 (record 0), column 1: `a` is not a number");
    // Nothing to skip by name without a header.
    let e = table(
        "1,2\n",
        &CsvOptions {
            ignore: vec!["a".into()],
            no_header: true,
            ..CsvOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e,
        "r.csv: cannot skip column `a`: --no-header, so no column has a name"
    );
}

#[test]
fn the_label_column_is_found_by_name_and_read_apart() {
    let opts = CsvOptions {
        labelled: true,
        ..CsvOptions::default()
    };
    let s = schema(&["a", "b"]);
    let t = table("label,b,a\n1,2,3\n0,5,6\n", &opts).unwrap();
    let r = t.records(2, Some(&s)).unwrap();
    assert_eq!(r.records, vec![vec![3.0, 2.0], vec![6.0, 5.0]]);
    assert_eq!(r.labels, Some(vec![1, 0]));
    let e = table("a,a\n1,2\n", &CsvOptions::default()).unwrap_err();
    assert_eq!(
        e,
        "r.csv: the header names column `a` twice (columns 1 and 2)"
    );
}

#[test]
fn implausible_values_are_refused_or_marked() {
    let mut s = schema(&["age", "radius"]);
    s.features[0].range = Some([0.0, 120.0]);
    s.features[1].range = Some([5.0, 30.0]);
    s.features[1].unit = Some("mm".into());
    let t = table("radius,age\n10,40\n1e6,50\n", &CsvOptions::default()).unwrap();
    let r = t.records(2, Some(&s)).unwrap();
    let e = check_plausible("r.csv", &r, Some(&s), false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "r.csv: line 3 (record 1), column 1: radius = 1000000 is outside its plausible range [5, 30] mm; \
         --allow-implausible diagnoses it anyway (and marks its result)"
    );
    let found = check_plausible("r.csv", &r, Some(&s), true).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].record, found[0].name.as_str()), (1, "radius"));
    // Range ends are plausible; no schema, nothing to check.
    let t = table("radius,age\n5,0\n30,120\n", &CsvOptions::default()).unwrap();
    let r = t.records(2, Some(&s)).unwrap();
    assert_eq!(
        check_plausible("r.csv", &r, Some(&s), false).unwrap(),
        vec![]
    );
    assert_eq!(check_plausible("r.csv", &r, None, false).unwrap(), vec![]);
}

proptest! {
    /// Any order of the columns gives the same records.
    #[test]
    fn any_column_order_reads_the_same(order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
                                       rows in prop::collection::vec(prop::collection::vec(-1e6f64..1e6, 6), 1..5)) {
        let names = ["a", "b", "c", "d", "e", "f"];
        let s = schema(&names);
        let mut text = order.iter().map(|i| names[*i]).collect::<Vec<_>>().join(",");
        text.push('\n');
        for r in &rows {
            let cells: Vec<String> = order.iter().map(|i| format!("{:?}", r[*i])).collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        prop_assert_eq!(records(&text, &CsvOptions::default(), &s).unwrap(), rows);
    }
}
