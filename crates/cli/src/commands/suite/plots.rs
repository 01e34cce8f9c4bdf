//! SVG charts of a suite run (`cryptmed bench --plot DIR`): online bytes and
//! time per layer for each network; every network against CrypTen and the
//! lower bound; against published prior work; and LAN against WAN latency.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Row;

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Grouped bars on a log scale: one group per label, one bar per series;
/// missing or zero values are left out.
fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[&str],
    groups: &[(String, Vec<f64>)],
) -> anyhow::Result<()> {
    let values = || {
        groups
            .iter()
            .flat_map(|g| g.1.iter().copied())
            .filter(|v| *v > 0.0)
    };
    let max = values().fold(f64::MIN_POSITIVE, f64::max) * 3.0;
    let min = values().fold(max, f64::min) / 3.0;
    let (n, k) = (groups.len().max(1), series.len().max(1));
    let longest = groups.iter().map(|g| g.0.len()).max().unwrap_or(0) as u32;
    let root = SVGBackend::new(path, (960, 480 + 7 * longest)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(10 + 7 * longest)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n as f64, (min..max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_label)
        .y_label_formatter(&|v| {
            if y_label == "bytes" {
                super::render::bytes(*v)
            } else {
                format!("{v}")
            }
        })
        .draw()
        .map_err(err)?;
    for (s, name) in series.iter().enumerate() {
        let c = COLOURS[s % COLOURS.len()];
        let width = 0.8 / k as f64;
        chart
            .draw_series(groups.iter().enumerate().filter_map(|(i, g)| {
                let v = *g.1.get(s)?;
                (v > 0.0).then(|| {
                    let x0 = i as f64 + 0.1 + width * s as f64;
                    Rectangle::new([(x0, min), (x0 + width, v)], c.filled())
                })
            }))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
    }
    if k > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(err)?;
    }
    // Group labels under the axis, written downwards from each group's centre.
    let style = ("sans-serif", 13)
        .into_font()
        .transform(FontTransform::Rotate90)
        .into_text_style(&root)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, g) in groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, min));
        root.draw(&Text::new(g.0.clone(), (x, y + 6), style.clone()))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// Writes the charts of `rows` into `dir`; returns the file names.
pub(crate) fn write(dir: &Path, rows: &[Row]) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    let mut chart = |file: String,
                     title: &str,
                     y: &str,
                     series: &[&str],
                     groups: Vec<(String, Vec<f64>)>|
     -> anyhow::Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        bars(&dir.join(&file), title, y, series, &groups)?;
        files.push(file);
        Ok(())
    };
    // Per-network and prior-work charts show the default backend; the
    // latency chart shows every backend measured.
    let lan_all: Vec<&Row> = rows
        .iter()
        .filter(|r| r.batch == 1 && r.profile == "lan")
        .collect();
    let lan1: Vec<&Row> = lan_all
        .iter()
        .copied()
        .filter(|r| r.comparison == "ppa")
        .collect();
    for r in &lan1 {
        let layer = |f: &dyn Fn(&super::LayerRow) -> f64| {
            r.layers
                .iter()
                .map(|l| (l.name.clone(), vec![f(l)]))
                .collect::<Vec<_>>()
        };
        chart(
            format!("{}-bytes.svg", r.network),
            &format!("{}: online bytes per layer (batch 1)", r.network),
            "bytes",
            &["online bytes"],
            layer(&|l| l.bytes as f64),
        )?;
        chart(
            format!("{}-time.svg", r.network),
            &format!("{}: online time per layer (batch 1, loopback)", r.network),
            "milliseconds",
            &["online time"],
            layer(&|l| l.seconds * 1e3),
        )?;
    }
    chart(
        "bytes-vs-crypten.svg".into(),
        "online bytes per record: CryptMed-rs, CrypTen 0.4.1, lower bound",
        "bytes",
        &["CryptMed-rs", "CrypTen 0.4.1", "lower bound"],
        lan1.iter()
            .map(|r| {
                let crypten = r.crypten.as_ref().map_or(0.0, |c| c.online_bytes as f64);
                let ours = r.online_bytes as f64;
                (
                    r.network.clone(),
                    vec![ours, crypten, r.lower_bound_bytes as f64],
                )
            })
            .collect(),
    )?;
    let timed: Vec<&&Row> = lan1
        .iter()
        .filter(|r| {
            r.crypten
                .as_ref()
                .is_some_and(|c| c.online_seconds_median.is_some())
        })
        .collect();
    chart(
        "time-vs-crypten.svg".into(),
        "online latency, batch 1, loopback: CryptMed-rs and CrypTen 0.4.1 (same run)",
        "milliseconds",
        &["CryptMed-rs", "CrypTen 0.4.1"],
        timed
            .iter()
            .map(|r| {
                let c = r.crypten.as_ref().and_then(|c| c.online_seconds_median);
                (
                    r.network.clone(),
                    vec![r.online_seconds_median * 1e3, c.unwrap_or(0.0) * 1e3],
                )
            })
            .collect(),
    )?;
    chart(
        "bytes-vs-published.svg".into(),
        "traffic per inference: published prior work and CryptMed-rs",
        "bytes",
        &[
            "published (offline + online)",
            "ours, one-record session",
            "ours, long session",
        ],
        lan1.iter()
            .flat_map(|r| {
                let long = (r.online_bytes + r.offline_bytes) as f64;
                r.references.iter().map(move |p| {
                    (
                        format!("{} {}", r.network, p.system),
                        vec![p.megabytes * 1e6, long + r.setup_bytes as f64, long],
                    )
                })
            })
            .collect(),
    )?;
    // Loopback and WAN, and the switched LAN when the run measured it.
    let profiles: Vec<(&str, &str)> = [
        ("lan", "LAN (loopback)"),
        ("switched", "switched LAN (0.2 ms)"),
        ("wan", "WAN"),
    ]
    .into_iter()
    .filter(|(p, _)| *p != "switched" || rows.iter().any(|r| r.profile == *p))
    .collect();
    let names: Vec<&str> = profiles.iter().map(|(_, n)| *n).collect();
    chart(
        "latency-lan-wan.svg".into(),
        "online latency at batch 1: LAN and WAN (40 ms RTT, 100 Mbit/s)",
        "milliseconds",
        &names,
        lan_all
            .iter()
            .map(|r| {
                let at = |profile: &str| {
                    rows.iter()
                        .find(|w| {
                            w.network == r.network
                                && w.comparison == r.comparison
                                && w.batch == 1
                                && w.profile == profile
                        })
                        .map_or(0.0, |w| w.online_seconds_median * 1e3)
                };
                let label = match r.comparison.as_str() {
                    "ppa" => r.network.clone(),
                    c => format!("{} ({c})", r.network),
                };
                (label, profiles.iter().map(|(p, _)| at(p)).collect())
            })
            .collect(),
    )?;
    // Both backends side by side, when a run measured both.
    let backends = |r: &&&Row| {
        lan_all
            .iter()
            .any(|o| o.network == r.network && o.comparison != r.comparison)
    };
    chart(
        "backends-bytes.svg".into(),
        "per record, batch 1: online bytes and dealer bytes (to the client), PPA and FSS",
        "bytes",
        &["online", "dealer"],
        lan_all
            .iter()
            .filter(backends)
            .map(|r| {
                (
                    format!("{} ({})", r.network, r.comparison),
                    vec![r.online_bytes as f64, r.offline_bytes as f64],
                )
            })
            .collect(),
    )?;
    Ok(files)
}
