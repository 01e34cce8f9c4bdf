//! The plaintext reference in `f64`: exact real arithmetic for every op, the
//! yardstick every secure result is measured against.

use crate::ir::{Activation, Network, Op};

/// The network's output on one record.
pub fn evaluate(net: &Network, input: &[f64]) -> Vec<f64> {
    evaluate_all(net, input).pop().unwrap_or_default()
}

/// The class an output points to: the index of the first largest value; for
/// a single output (a binary head), 1 when it reaches the decision
/// threshold: `p >= 0.5` after a final sigmoid, `logit >= 0` otherwise.
pub fn label(net: &Network, output: &[f64]) -> usize {
    if let [v] = output {
        let sigmoid = matches!(
            net.nodes.last().map(|n| &n.op),
            Some(Op::Act(Activation::Sigmoid))
        );
        let threshold = if sigmoid { 0.5 } else { 0.0 };
        return usize::from(*v >= threshold);
    }
    output
        .iter()
        .enumerate()
        .fold(0, |b, (i, x)| if *x > output[b] { i } else { b })
}

/// The class of one record ([`label`] of [`evaluate`]).
pub fn classify(net: &Network, input: &[f64]) -> usize {
    label(net, &evaluate(net, input))
}

/// Every value of the network on one record: index 0 is the input, `i + 1` node `i`'s output.
pub fn evaluate_all(net: &Network, input: &[f64]) -> Vec<Vec<f64>> {
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(net.nodes.len() + 1);
    values.push(input.to_vec());
    for node in &net.nodes {
        let x = &values[node.inputs[0]];
        let y = match &node.op {
            Op::Dense { weight, bias } => {
                let mut y = cryptmed_ring::kernels::matvec(
                    &weight.data,
                    weight.shape[0],
                    weight.shape[1],
                    x,
                );
                add_bias(&mut y, bias.as_deref());
                y
            }
            Op::Conv2d { geom, weight, bias } => {
                let mut y = geom.apply(&weight.data, x);
                add_bias(&mut y, bias.as_deref());
                y
            }
            Op::AvgPool {
                geom,
                count_include_pad,
            } => {
                let full = (geom.kernel[0] * geom.kernel[1]) as f64;
                geom.windows()
                    .iter()
                    .map(|w| {
                        w.iter().map(|i| x[*i]).sum::<f64>()
                            / if *count_include_pad {
                                full
                            } else {
                                w.len() as f64
                            }
                    })
                    .collect()
            }
            Op::GlobalAvgPool => {
                let c = net.shape_of(node.inputs[0])[0];
                let per = x.len() / c.max(1);
                x.chunks(per.max(1))
                    .map(|ch| ch.iter().sum::<f64>() / per as f64)
                    .collect()
            }
            Op::MaxPool { geom } => geom
                .windows()
                .iter()
                .map(|w| w.iter().map(|i| x[*i]).fold(f64::NEG_INFINITY, f64::max))
                .collect(),
            Op::Affine { scale, shift } => {
                let c = node.shape.first().copied().unwrap_or(1).max(1);
                let per = (x.len() / c).max(1);
                let at = |v: &[f64], i: usize| {
                    if v.len() == 1 {
                        v[0]
                    } else {
                        v[(i / per).min(v.len() - 1)]
                    }
                };
                x.iter()
                    .enumerate()
                    .map(|(i, v)| at(scale, i) * v + at(shift, i))
                    .collect()
            }
            Op::Act(a) => x.iter().map(|v| activation(*a, *v)).collect(),
            Op::Reshape => x.clone(),
            Op::Add => x
                .iter()
                .zip(&values[node.inputs[1]])
                .map(|(a, b)| a + b)
                .collect(),
            Op::Mul => x
                .iter()
                .zip(&values[node.inputs[1]])
                .map(|(a, b)| a * b)
                .collect(),
            Op::Concat => node
                .inputs
                .iter()
                .flat_map(|v| values[*v].iter().copied())
                .collect(),
            Op::Softmax => {
                let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
                let s: f64 = e.iter().sum();
                e.iter().map(|v| v / s).collect()
            }
        };
        values.push(y);
    }
    values
}

fn add_bias(y: &mut [f64], bias: Option<&[f64]>) {
    if let Some(b) = bias.filter(|b| !b.is_empty()) {
        let per = y.len() / b.len();
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[i / per];
        }
    }
}

/// SELU's constants (Klambauer et al.).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's scale.
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// An activation in exact `f64` arithmetic.
pub fn activation(a: Activation, x: f64) -> f64 {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    match a {
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha * x
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Softplus => {
            if x > 30.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
        Activation::Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha * x.exp_m1()
            }
        }
        Activation::Selu => SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
        Activation::Silu => x * sigmoid(x),
        Activation::GeluErf => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Activation::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }
        Activation::Erf => libm::erf(x),
        Activation::Exp => x.exp(),
        Activation::Clip { min, max } => {
            let lo = min.map_or(x, |m| x.max(m));
            max.map_or(lo, |m| lo.min(m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoo;

    #[test]
    fn known_values() {
        assert!((activation(Activation::Sigmoid, 0.0) - 0.5).abs() < 1e-15);
        assert!((activation(Activation::GeluErf, 1.0) - 0.841_344_746_068_542_9).abs() < 1e-12);
        assert!((activation(Activation::Erf, 0.5) - 0.520_499_877_813_046_5).abs() < 1e-12);
        assert_eq!(activation(Activation::LeakyRelu { alpha: 0.1 }, -2.0), -0.2);
    }

    #[test]
    fn zoo_networks_evaluate_to_finite_logits_of_order_one() {
        for name in zoo::NAMES {
            let net = zoo::build(name, 3).unwrap();
            let x = &zoo::random_inputs(&net, 1, 1)[0];
            let y = evaluate(&net, x);
            assert_eq!(y.len(), net.output_len());
            assert!(
                y.iter().all(|v| v.is_finite() && v.abs() < 100.0),
                "{name}: {y:?}"
            );
        }
    }
}
