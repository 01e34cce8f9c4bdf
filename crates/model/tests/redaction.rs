//! A network's `Debug` (what a careless log line would print) never shows
//! the provider's weights, only shapes.

use cryptmed_model::ir::Op;

#[test]
fn debug_of_a_trained_network_shows_no_weight() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/breast-cancer-relu.onnx"
    );
    let net = cryptmed_model::onnx::load(std::path::Path::new(path)).expect("bundled model");
    let shown = format!("{net:?} {net:#?}");
    let mut weights = Vec::new();
    for node in &net.nodes {
        if let Op::Dense { weight, bias } = &node.op {
            weights.extend(weight.data.iter().copied());
            weights.extend(bias.iter().flatten().copied());
        }
    }
    assert!(
        weights.len() > 1000,
        "the model has its weights: {}",
        weights.len()
    );
    assert!(shown.contains("values redacted"), "{shown}");
    // Every weight with enough digits to be recognisable is absent.
    let mut checked = 0;
    for w in weights {
        let text = format!("{w:?}");
        if text.len() >= 8 {
            assert!(!shown.contains(&text), "Debug printed the weight {text}");
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} weights checked");
}
