//! SVG charts of a benchmark run (`cryptmed bench --plot DIR`): online bytes
//! and time per layer for each network, and every network's online bytes
//! beside CrypTen's and beside the lower bound.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::suite::Row;

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e}")
}

/// Bars on a log scale: `groups` of (label, values), one colour per series.
fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[&str],
    groups: &[(String, Vec<f64>)],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let max = groups
        .iter()
        .flat_map(|g| g.1.iter())
        .cloned()
        .fold(1.0f64, f64::max)
        * 3.0;
    let min = groups
        .iter()
        .flat_map(|g| g.1.iter())
        .cloned()
        .filter(|v| *v > 0.0)
        .fold(max, f64::min)
        .max(1e-6)
        / 3.0;
    let n = groups.len();
    let k = series.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n as f64, (min..max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_label_formatter(&|x| {
            groups
                .get(x.floor() as usize)
                .map(|g| g.0.clone())
                .unwrap_or_default()
        })
        .x_label_style(
            ("sans-serif", 12)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
    ];
    for (s, name) in series.iter().enumerate() {
        let c = colours[s % colours.len()];
        chart
            .draw_series(
                groups
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| g.1.get(s).is_some_and(|v| *v > 0.0))
                    .map(|(i, g)| {
                        let x0 = i as f64 + 0.1 + 0.8 * s as f64 / k as f64;
                        Rectangle::new([(x0, min), (x0 + 0.8 / k as f64, g.1[s])], c.filled())
                    }),
            )
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
    }
    if k > 1 {
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// Writes the charts of `rows` into `dir`.
pub(crate) fn write(dir: &Path, rows: &[Row]) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    let lan1: Vec<&Row> = rows
        .iter()
        .filter(|r| r.batch == 1 && r.profile == "lan")
        .collect();
    for r in &lan1 {
        let groups: Vec<(String, Vec<f64>)> = r
            .layers
            .iter()
            .map(|l| (l.name.clone(), vec![l.bytes as f64, l.seconds * 1e3]))
            .collect();
        let bytes: Vec<(String, Vec<f64>)> =
            groups.iter().map(|g| (g.0.clone(), vec![g.1[0]])).collect();
        let times: Vec<(String, Vec<f64>)> =
            groups.iter().map(|g| (g.0.clone(), vec![g.1[1]])).collect();
        let f = format!("{}-bytes.svg", r.network);
        bars(
            &dir.join(&f),
            &format!("{}: online bytes per layer (batch 1)", r.network),
            "bytes",
            &["online bytes"],
            &bytes,
        )?;
        files.push(f);
        let f = format!("{}-time.svg", r.network);
        bars(
            &dir.join(&f),
            &format!("{}: online time per layer (batch 1, loopback)", r.network),
            "milliseconds",
            &["online time"],
            &times,
        )?;
        files.push(f);
    }
    let cmp: Vec<(String, Vec<f64>)> = lan1
        .iter()
        .map(|r| {
            (
                r.network.clone(),
                vec![
                    r.online_bytes as f64,
                    r.crypten_online_bytes.unwrap_or(0.0),
                    r.lower_bound_bytes as f64,
                ],
            )
        })
        .collect();
    let f = "bytes-vs-crypten.svg".to_string();
    bars(
        &dir.join(&f),
        "online bytes per record: CryptMed-rs, CrypTen 0.4.1, lower bound",
        "bytes",
        &["CryptMed-rs", "CrypTen 0.4.1", "lower bound"],
        &cmp,
    )?;
    files.push(f);
    Ok(files)
}
