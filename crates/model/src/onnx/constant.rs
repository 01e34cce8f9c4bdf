//! Constant folding: the sub-graphs exporters compute from constants only
//! (shape arithmetic in front of `Reshape`, the pads of `F.pad`: `Shape`,
//! `Gather`, `Concat`, `ConstantOfShape`, `Slice`, `Transpose`, `Reshape`,
//! `Cast`, element-wise arithmetic) evaluated at import time.

use super::{Ct, FAILED_INPUT, Importer, V, attr, attr_ints, pb, tensor};

impl Importer {
    /// Constant folding of shape arithmetic; `None` when the node is not constant.
    pub(super) fn fold(&self, n: &pb::NodeProto, op: &str) -> Result<Option<Ct>, String> {
        if op == "Constant" {
            let a = attr(n, "value")
                .and_then(|a| a.t.as_ref())
                .ok_or("Constant without a tensor value")?;
            return tensor(a, None).map(Some);
        }
        if op == "Shape" && matches!(self.input(n, 0), Err(e) if e == FAILED_INPUT) {
            return Err(FAILED_INPUT.into());
        }
        if op == "Shape"
            && let Ok(V::Dyn(v)) = self.input(n, 0)
        {
            let mut dims = vec![1.0];
            dims.extend(self.shape(v).iter().map(|d| *d as f64));
            return Ok(Some(Ct {
                dims: vec![dims.len()],
                data: dims,
            }));
        }
        let ins: Vec<Option<Ct>> = (0..n.input.len())
            .map(|i| match self.input(n, i) {
                Ok(V::Const(c)) => Some(c),
                _ => None,
            })
            .collect();
        if ins.is_empty() || ins.iter().any(Option::is_none) {
            return Ok(None);
        }
        let ins: Vec<Ct> = ins.into_iter().flatten().collect();
        let unary = |f: &dyn Fn(f64) -> f64| Ct {
            dims: ins[0].dims.clone(),
            data: ins[0].data.iter().map(|v| f(*v)).collect(),
        };
        Ok(Some(match op {
            "Identity" | "Cast" => ins[0].clone(),
            "Sqrt" => unary(&f64::sqrt),
            "Neg" => unary(&|v| -v),
            "Add" | "Sub" | "Mul" | "Div"
                if ins.len() == 2
                    && (ins[1].data.len() == 1 || ins[1].data.len() == ins[0].data.len()) =>
            {
                let f = |a: f64, b: f64| match op {
                    "Add" => a + b,
                    "Sub" => a - b,
                    "Mul" => a * b,
                    _ => a / b,
                };
                let b = &ins[1].data;
                Ct {
                    dims: ins[0].dims.clone(),
                    data: ins[0]
                        .data
                        .iter()
                        .enumerate()
                        .map(|(i, a)| f(*a, if b.len() == 1 { b[0] } else { b[i] }))
                        .collect(),
                }
            }
            "Unsqueeze" | "Squeeze" => Ct {
                dims: vec![ins[0].data.len()],
                data: ins[0].data.clone(),
            },
            "Concat" => Ct {
                dims: vec![ins.iter().map(|c| c.data.len()).sum()],
                data: ins.iter().flat_map(|c| c.data.clone()).collect(),
            },
            "Gather" => {
                let [table, idx] = &ins[..] else {
                    return Err(format!("{} inputs (2 expected)", ins.len()));
                };
                let len = table.data.len();
                let data = idx
                    .data
                    .iter()
                    .map(|i| {
                        // ONNX indices count from the end when negative.
                        let j = if *i < 0.0 { *i + len as f64 } else { *i };
                        (j >= 0.0 && j < len as f64)
                            .then(|| table.data[j as usize])
                            .ok_or_else(|| format!("index {i} outside a constant of {len} values"))
                    })
                    .collect::<Result<Vec<f64>, String>>()?;
                Ct {
                    dims: idx.dims.clone(),
                    data,
                }
            }
            "ConstantOfShape" => constant_of_shape(n, &ins[0])?,
            "Reshape" if ins.len() == 2 => Ct {
                dims: reshaped(&ins[0].dims, &ins[1].data)?,
                data: ins[0].data.clone(),
            },
            "Transpose" => transpose(n, &ins[0])?,
            "Slice" => slice(&ins)?,
            _ => return Ok(None),
        }))
    }
}

/// `ConstantOfShape`: a tensor of the given dimensions filled with the
/// `value` attribute (0 when absent).
fn constant_of_shape(n: &pb::NodeProto, shape: &Ct) -> Result<Ct, String> {
    let value = match attr(n, "value").and_then(|a| a.t.as_ref()) {
        Some(t) => tensor(t, None)?.data.first().copied().unwrap_or(0.0),
        None => 0.0,
    };
    let dims: Vec<usize> = shape.data.iter().map(|d| *d as usize).collect();
    let len: usize = dims.iter().product();
    if len > 1 << 16 {
        return Err(format!("a constant of shape {dims:?} is too large to fold"));
    }
    Ok(Ct {
        dims,
        data: vec![value; len],
    })
}

/// The dimensions a constant `Reshape` gives (ONNX rules: `0` copies the
/// input's dimension, one `-1` takes what is left).
fn reshaped(dims: &[usize], target: &[f64]) -> Result<Vec<usize>, String> {
    let len: usize = dims.iter().product();
    let bad = || format!("reshaping a constant of shape {dims:?} to {target:?}");
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, t) in target.iter().map(|t| *t as i64).enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 => out.push(*dims.get(i).ok_or_else(bad)?),
            t if t > 0 => out.push(t as usize),
            _ => return Err(bad()),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !len.is_multiple_of(known) {
            return Err(bad());
        }
        out[i] = len / known;
    }
    if out.iter().product::<usize>() != len {
        return Err(bad());
    }
    Ok(out)
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// The flat index of every element of `dims` in row-major order, as a list of coordinates.
fn coordinates(dims: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for d in dims {
        out = out
            .into_iter()
            .flat_map(|c| {
                (0..*d).map(move |i| {
                    let mut c = c.clone();
                    c.push(i);
                    c
                })
            })
            .collect();
    }
    out
}

/// `Transpose` of a constant by its `perm` attribute (reversed axes when absent).
fn transpose(n: &pb::NodeProto, x: &Ct) -> Result<Ct, String> {
    let rank = x.dims.len();
    let perm: Vec<usize> = match attr_ints(n, "perm") {
        Some(p) => p.iter().map(|v| *v as usize).collect(),
        None => (0..rank).rev().collect(),
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() {
        return Err(format!("transpose perm {perm:?} of a rank-{rank} constant"));
    }
    let dims: Vec<usize> = perm.iter().map(|p| x.dims[*p]).collect();
    let st = strides(&x.dims);
    let data = coordinates(&dims)
        .iter()
        .map(|c| x.data[c.iter().zip(&perm).map(|(i, p)| i * st[*p]).sum::<usize>()])
        .collect();
    Ok(Ct { dims, data })
}

/// `Slice(data, starts, ends[, axes[, steps]])` of a constant, with ONNX's
/// clamping of out-of-range bounds and negative steps.
fn slice(ins: &[Ct]) -> Result<Ct, String> {
    let x = &ins[0];
    let rank = x.dims.len() as i64;
    let ints = |c: &Ct| c.data.iter().map(|v| *v as i64).collect::<Vec<i64>>();
    let (starts, ends) = (ints(&ins[1]), ints(&ins[2]));
    let axes = ins
        .get(3)
        .map_or_else(|| (0..starts.len() as i64).collect(), ints);
    let steps = ins.get(4).map_or_else(|| vec![1; starts.len()], ints);
    // Per axis: the selected indices, in order.
    let mut picks: Vec<Vec<usize>> = x.dims.iter().map(|d| (0..*d).collect()).collect();
    for (((s, e), a), st) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
        let a = if *a < 0 { a + rank } else { *a };
        if !(0..rank).contains(&a) || *st == 0 {
            return Err(format!("slice along axis {a} with step {st}"));
        }
        let d = x.dims[a as usize] as i64;
        let norm = |v: i64| if v < 0 { v + d } else { v };
        let (mut i, end) = if *st > 0 {
            (norm(*s).clamp(0, d), norm(*e).clamp(0, d))
        } else {
            (norm(*s).clamp(-1, d - 1), norm(*e).clamp(-1, d - 1))
        };
        let mut idx = Vec::new();
        while (*st > 0 && i < end) || (*st < 0 && i > end) {
            idx.push(i as usize);
            i += st;
        }
        picks[a as usize] = idx;
    }
    let dims: Vec<usize> = picks.iter().map(Vec::len).collect();
    let st = strides(&x.dims);
    let data = coordinates(&dims)
        .iter()
        .map(|c| {
            x.data[c
                .iter()
                .enumerate()
                .map(|(k, i)| picks[k][*i] * st[k])
                .sum::<usize>()]
        })
        .collect();
    Ok(Ct { dims, data })
}
