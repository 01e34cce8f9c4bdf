//! The results file: the run it belongs to, class-named columns, resuming
//! only the same run, and nothing changed before results arrive.

use std::path::PathBuf;

use cryptmed_input::results::{Columns, Existing, Mode, Outcome, ResultsError, Run, Writer};

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("cryptmed-results-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run() -> Run {
    Run {
        input: "ab".repeat(32),
        model: "cd".repeat(32),
        reveal: "probabilities".into(),
        allow_implausible: false,
    }
}

fn classes() -> Vec<String> {
    vec!["malignant".into(), "not ckd".into()]
}

fn outcome(record: usize) -> Outcome<'static> {
    Outcome {
        record,
        label: 1,
        class_name: Some("not ckd"),
        values: &[0.25, 0.75],
        implausible: &[],
    }
}

#[test]
fn columns_are_named_by_class_in_csv_and_json() {
    let names = classes();
    let c = Columns::new(Some("probabilities"), 2, Some(&names), false);
    assert_eq!(
        c.header(),
        "record,label,class_name,p_malignant,p_not_ckd\n"
    );
    assert_eq!(
        c.line(&outcome(3), false),
        "3,1,not ckd,0.250000,0.750000\n"
    );
    assert_eq!(
        c.line(&outcome(3), true),
        "{\"record\":3,\"label\":1,\"class_name\":\"not ckd\",\"p_malignant\":0.25,\"p_not_ckd\":0.75}\n"
    );
    let c = Columns::new(Some("logits"), 2, None, true);
    assert_eq!(
        c.header(),
        "record,label,class_name,logit0,logit1,implausible\n"
    );
    let marked = ["radius".to_string(), "age".to_string()];
    let o = Outcome {
        implausible: &marked,
        ..outcome(0)
    };
    assert_eq!(
        c.line(&o, false),
        "0,1,not ckd,0.250000,0.750000,radius;age\n"
    );
    assert!(
        c.line(&o, true)
            .ends_with(",\"implausible\":[\"radius\",\"age\"]}\n")
    );
    // Class names that do not fit the outputs are not used.
    assert_eq!(
        Columns::new(Some("probabilities"), 3, Some(&names), false).values,
        vec!["p0", "p1", "p2"]
    );
    assert_eq!(
        Columns::new(None, 2, Some(&names), false).header(),
        "record,label,class_name\n"
    );
}

#[test]
fn a_file_written_then_read_back_gives_its_run_and_progress() {
    for json in [false, true] {
        let path = dir().join(format!("w{json}.out"));
        let _ = std::fs::remove_file(&path);
        let names = classes();
        let c = Columns::new(Some("probabilities"), 2, Some(&names), false);
        let mut w = Writer::new(Some(path.clone()), Mode::New, json, run(), c.clone());
        w.write(&[outcome(0), outcome(1)]).unwrap();
        let e = Existing::read(&path, json).unwrap().unwrap();
        assert_eq!((e.run.clone(), e.done, e.partial), (run(), 2, 0));
        // A partly written line is dropped when the run continues, and results follow.
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"2,1,not c");
        std::fs::write(&path, &text).unwrap();
        let e = Existing::read(&path, json).unwrap().unwrap();
        assert_eq!((e.done, e.partial), (2, 9));
        e.check(&path, &run(), 5).unwrap();
        let mut w = Writer::new(
            Some(path.clone()),
            Mode::Continue(e),
            json,
            run(),
            c.clone(),
        );
        w.write(&[outcome(2)]).unwrap();
        let e = Existing::read(&path, json).unwrap().unwrap();
        assert_eq!((e.done, e.partial), (3, 0));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), if json { 4 } else { 5 }, "{text}");
        // The other format is refused.
        let err = Existing::read(&path, !json).unwrap_err();
        assert!(matches!(err, ResultsError::Usage(_)), "{err}");
    }
}

#[test]
fn another_run_is_refused_saying_what_differs_and_the_file_stays() {
    let path = dir().join("other.csv");
    let names = classes();
    let c = Columns::new(Some("probabilities"), 2, Some(&names), false);
    let mut w = Writer::new(Some(path.clone()), Mode::New, false, run(), c);
    w.write(&[outcome(0)]).unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = Existing::read(&path, false).unwrap().unwrap();
    let other = Run {
        input: "ef".repeat(32),
        reveal: "label".into(),
        ..run()
    };
    let msg = e.check(&path, &other, 10).unwrap_err().to_string();
    assert!(
        msg.contains("the input records differ")
            && msg.contains("the output policy differs (label here, probabilities in the file)")
            && !msg.contains("model differs"),
        "{msg}"
    );
    let model = Run {
        model: "00".repeat(32),
        ..run()
    };
    let msg = e.check(&path, &model, 10).unwrap_err().to_string();
    assert!(
        msg.contains("the model differs (digest 000000000000 here, cdcdcdcdcdcd in the file)"),
        "{msg}"
    );
    // More results than records.
    let msg = e.check(&path, &run(), 0).unwrap_err().to_string();
    assert!(
        msg.ends_with("it holds results up to record 0, the input has 0 records"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn nothing_is_opened_before_results_and_foreign_files_are_refused() {
    let path = dir().join("forced.csv");
    std::fs::write(&path, b"precious\n").unwrap();
    let c = Columns::new(None, 2, None, false);
    let w = Writer::new(Some(path.clone()), Mode::Replace, false, run(), c.clone());
    drop(w);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious\n");
    let msg = Existing::read(&path, false).unwrap_err().to_string();
    assert!(
        msg.contains("does not hold results of cryptmed diagnose"),
        "{msg}"
    );
    let mut w = Writer::new(Some(path.clone()), Mode::Replace, false, run(), c);
    w.write(&[outcome(0)]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# cryptmed run {\"input\":"), "{text}");
    assert!(!text.contains("precious"));
    // Empty or absent files are no results.
    std::fs::write(&path, b"\n").unwrap();
    assert_eq!(Existing::read(&path, false).unwrap(), None);
    assert_eq!(
        Existing::read(&dir().join("absent.csv"), false).unwrap(),
        None
    );
}
