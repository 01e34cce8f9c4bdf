//! The six benchmark networks of the literature (DESIGN.md section 7), built
//! in code with seeded random weights, for cost measurements and tests.
//!
//! Weights are He-uniform (`U(-a, a)`, `a = sqrt(6 / fan_in)`) so that, on
//! inputs in `[0, 1]`, activations and logits stay of order one.

use cryptmed_ring::kernels::{Conv2dGeom, Pool2dGeom};

use crate::ir::{Activation, Network, Node, Op, Tensor, ValueId};

/// Names accepted by [`build`].
pub const NAMES: [&str; 6] = [
    "secureml-mlp",
    "chameleon-cnn",
    "minionn-mnist",
    "securenn-lenet",
    "minionn-cifar",
    "medical-mlp",
];

/// Builds benchmark network `name` with weights drawn from `seed`; `None`
/// for an unknown name. `medical-mlp` uses 30 inputs, 2 classes and ReLU.
pub fn build(name: &str, seed: u64) -> Option<Network> {
    let mut b = Builder::new(name, seed);
    match name {
        "secureml-mlp" => {
            b.input(&[784]);
            b.dense(128)
                .act(Activation::Relu)
                .dense(128)
                .act(Activation::Relu)
                .dense(10);
        }
        "chameleon-cnn" => {
            b.input(&[1, 28, 28]);
            b.conv(5, 5, 2, 2).act(Activation::Relu).flatten();
            b.dense(100).act(Activation::Relu).dense(10);
        }
        "minionn-mnist" => {
            b.input(&[1, 28, 28]);
            b.conv(16, 5, 1, 0).act(Activation::Relu).maxpool(2);
            b.conv(16, 5, 1, 0)
                .act(Activation::Relu)
                .maxpool(2)
                .flatten();
            b.dense(100).act(Activation::Relu).dense(10);
        }
        "securenn-lenet" => {
            b.input(&[1, 28, 28]);
            b.conv(20, 5, 1, 0).act(Activation::Relu).maxpool(2);
            b.conv(50, 5, 1, 0)
                .act(Activation::Relu)
                .maxpool(2)
                .flatten();
            b.dense(500).act(Activation::Relu).dense(10);
        }
        "minionn-cifar" => {
            b.input(&[3, 32, 32]);
            b.conv(64, 3, 1, 1)
                .act(Activation::Relu)
                .conv(64, 3, 1, 1)
                .act(Activation::Relu);
            b.avgpool(2);
            b.conv(64, 3, 1, 1)
                .act(Activation::Relu)
                .conv(64, 3, 1, 1)
                .act(Activation::Relu);
            b.avgpool(2);
            b.conv(64, 3, 1, 1)
                .act(Activation::Relu)
                .conv(64, 1, 1, 0)
                .act(Activation::Relu);
            b.conv(16, 1, 1, 0)
                .act(Activation::Relu)
                .flatten()
                .dense(10);
        }
        "medical-mlp" => return Some(medical_mlp(30, 2, Activation::Relu, seed)),
        _ => return None,
    }
    Some(b.finish())
}

/// The medical MLP `d-64-32-k` with activation `act` after each hidden layer.
pub fn medical_mlp(inputs: usize, classes: usize, act: Activation, seed: u64) -> Network {
    let mut b = Builder::new("medical-mlp", seed);
    b.input(&[inputs]);
    b.dense(64).act(act).dense(32).act(act).dense(classes);
    b.finish()
}

/// Deterministic inputs in `[0, 1)` for network `net`, one record per seed step.
pub fn random_inputs(net: &Network, count: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = SplitMix(seed ^ 0x05ee_d1a9_u64);
    (0..count)
        .map(|_| (0..net.input_len()).map(|_| rng.unit()).collect())
        .collect()
}

/// Appends layers to a sequential network, tracking the current shape.
struct Builder {
    net: Network,
    rng: SplitMix,
}

impl Builder {
    fn new(name: &str, seed: u64) -> Self {
        let net = Network {
            name: name.to_string(),
            input_shape: vec![],
            nodes: vec![],
            class_names: None,
            schema: None,
            preprocessing: None,
        };
        Self {
            net,
            rng: SplitMix(seed),
        }
    }

    fn input(&mut self, shape: &[usize]) {
        self.net.input_shape = shape.to_vec();
    }

    fn last(&self) -> ValueId {
        self.net.nodes.len()
    }

    fn shape(&self) -> Vec<usize> {
        self.net.shape_of(self.last()).to_vec()
    }

    fn push(&mut self, op: Op, shape: Vec<usize>) -> &mut Self {
        let name = format!("{}{}", op.name(), self.net.nodes.len());
        let inputs = vec![self.last()];
        self.net.nodes.push(Node {
            name,
            op,
            inputs,
            shape,
        });
        self
    }

    fn uniform(&mut self, n: usize, a: f64) -> Vec<f64> {
        (0..n).map(|_| (2.0 * self.rng.unit() - 1.0) * a).collect()
    }

    fn dense(&mut self, out: usize) -> &mut Self {
        let inp: usize = self.shape().iter().product();
        let a = (6.0 / inp as f64).sqrt();
        let weight = Tensor {
            shape: vec![out, inp],
            data: self.uniform(out * inp, a),
        };
        let bias = Some(self.uniform(out, 0.1));
        self.push(Op::Dense { weight, bias }, vec![out])
    }

    fn conv(&mut self, out_ch: usize, k: usize, stride: usize, pad: usize) -> &mut Self {
        let s = self.shape();
        let geom = Conv2dGeom {
            in_ch: s[0],
            in_h: s[1],
            in_w: s[2],
            out_ch,
            kernel: [k, k],
            stride: [stride, stride],
            pads: [pad; 4],
            dilation: [1, 1],
            groups: 1,
        };
        let a = (6.0 / (s[0] * k * k) as f64).sqrt();
        let weight = Tensor {
            shape: vec![out_ch, s[0], k, k],
            data: self.uniform(geom.weight_len(), a),
        };
        let bias = Some(self.uniform(out_ch, 0.1));
        let shape = vec![out_ch, geom.out_h(), geom.out_w()];
        self.push(Op::Conv2d { geom, weight, bias }, shape)
    }

    fn pool_geom(&self, k: usize) -> Pool2dGeom {
        let s = self.shape();
        Pool2dGeom {
            ch: s[0],
            in_h: s[1],
            in_w: s[2],
            kernel: [k, k],
            stride: [k, k],
            pads: [0; 4],
        }
    }

    fn maxpool(&mut self, k: usize) -> &mut Self {
        let geom = self.pool_geom(k);
        let shape = vec![geom.ch, geom.out_h(), geom.out_w()];
        self.push(Op::MaxPool { geom }, shape)
    }

    fn avgpool(&mut self, k: usize) -> &mut Self {
        let geom = self.pool_geom(k);
        let shape = vec![geom.ch, geom.out_h(), geom.out_w()];
        self.push(
            Op::AvgPool {
                geom,
                count_include_pad: true,
            },
            shape,
        )
    }

    fn act(&mut self, a: Activation) -> &mut Self {
        let shape = self.shape();
        self.push(Op::Act(a), shape)
    }

    fn flatten(&mut self) -> &mut Self {
        let n = self.shape().iter().product();
        self.push(Op::Reshape, vec![n])
    }

    fn finish(self) -> Network {
        self.net
    }
}

/// SplitMix64: a tiny deterministic generator for public test weights (not for secrets).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_literature() {
        let flat =
            |n: &Network| -> Vec<Vec<usize>> { n.nodes.iter().map(|x| x.shape.clone()).collect() };
        let c = build("chameleon-cnn", 1).unwrap();
        assert_eq!(flat(&c)[0], vec![5, 14, 14]);
        assert_eq!(flat(&c)[2], vec![980]);
        let m = build("minionn-mnist", 1).unwrap();
        assert!(flat(&m).contains(&vec![256]));
        let l = build("securenn-lenet", 1).unwrap();
        assert!(flat(&l).contains(&vec![800]));
        let f = build("minionn-cifar", 1).unwrap();
        assert!(flat(&f).contains(&vec![1024]));
        for name in NAMES {
            assert_eq!(
                build(name, 7).unwrap().output_len(),
                if name == "medical-mlp" { 2 } else { 10 }
            );
        }
        assert!(build("nope", 0).is_none());
    }
}
