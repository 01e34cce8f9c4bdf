//! The suite's results as text tables (the terminal) or Markdown (the
//! README's results section is generated from this): one set of tables,
//! two renderings.

use super::{BATCHES, Row, imaging, references, wan};

/// A table of strings, rendered aligned for a terminal or as Markdown.
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn render(&self, markdown: bool) -> String {
        let mut s = String::new();
        if markdown {
            s += &format!("| {} |\n", self.head.join(" | "));
            s += &format!("|{}\n", "---|".repeat(self.head.len()));
            for r in &self.rows {
                s += &format!("| {} |\n", r.join(" | "));
            }
            return s;
        }
        let widths: Vec<usize> = (0..self.head.len())
            .map(|i| {
                std::iter::once(&self.head)
                    .chain(&self.rows)
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in std::iter::once(&self.head).chain(&self.rows) {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            s += cells.join("  ").trim_end();
            s.push('\n');
        }
        s
    }
}

/// Bytes with a unit.
pub(crate) fn bytes(b: f64) -> String {
    match b {
        b if b >= 1e9 => format!("{:.2} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.2} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} KB", b / 1e3),
        b => format!("{b:.0} B"),
    }
}

fn ms(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{v:.1}x"))
}

fn accuracy(a: Option<f64>, n: usize) -> String {
    a.map_or("—".into(), |v| format!("{:.1}% ({n})", v * 100.0))
}

fn profile_title(profile: &str, rows: &[&Row]) -> String {
    let shaping = || {
        rows.first()
            .and_then(|r| r.wan_shaping.clone())
            .unwrap_or_default()
    };
    let link = "between provider and client";
    match profile {
        "lan" => "LAN: loopback".into(),
        "switched" => format!(
            "Switched LAN: {} {link}; {}",
            wan::SWITCHED.describe(),
            shaping()
        ),
        _ => format!("WAN: {} {link}; {}", wan::WAN.describe(), shaping()),
    }
}

fn heading(s: &str, markdown: bool) -> String {
    if markdown {
        format!("\n**{s}**\n\n")
    } else {
        format!("\n{s}\n\n")
    }
}

/// The imaging networks' table: batch 1 on the LAN, with each role's peak memory.
fn imaging_table(rows: &[&Row], markdown: bool) -> String {
    let out = heading(
        "Imaging networks (LAN: loopback, batch 1, dealer, provider and client as three processes on this machine)",
        markdown,
    );
    let mut t = Table::new(&[
        "network",
        "weights",
        "online bytes",
        "rounds",
        "dealer bytes",
        "setup (once)",
        "latency median (min-max)",
        "peak RSS dealer / provider / client",
        "plaintext acc.",
        "secure acc.",
    ]);
    for r in rows {
        let rss = r.peak_rss.map_or("—".into(), |p| {
            format!(
                "{} / {} / {}",
                bytes(p.dealer as f64),
                bytes(p.provider as f64),
                bytes(p.client as f64)
            )
        });
        t.push(vec![
            r.network.clone(),
            r.weights.clone(),
            bytes(r.online_bytes as f64),
            r.online_rounds.to_string(),
            bytes(r.offline_bytes as f64),
            bytes(r.setup_bytes as f64),
            format!(
                "{} ({}-{})",
                ms(r.online_seconds_median),
                ms(r.online_seconds_min),
                ms(r.online_seconds_max)
            ),
            rss,
            accuracy(r.plaintext_accuracy, r.accuracy_records),
            accuracy(r.secure_accuracy, r.accuracy_records),
        ]);
    }
    out + &t.render(markdown)
}

fn render(all: &[Row], markdown: bool) -> String {
    let heading = |s: &str| heading(s, markdown);
    let mut out = String::new();
    if let Some(r) = all.first() {
        out += &format!("\nMachine: {}.\n", r.machine);
    }
    let (images, rows): (Vec<&Row>, Vec<&Row>) =
        all.iter().partition(|r| imaging::is_imaging(&r.network));
    let rows: Vec<Row> = rows.into_iter().cloned().collect();
    let rows = rows.as_slice();
    for profile in ["lan", "switched", "wan"] {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.profile == profile).collect();
        if rs.is_empty() {
            continue;
        }
        out += &heading(&profile_title(profile, &rs));
        let mut t = Table::new(&[
            "network",
            "comparison",
            "weights",
            "online bytes",
            "provider→client / client→provider",
            "rounds",
            "lower bound",
            "dealer bytes",
            "dealer time",
            "setup (once)",
            "latency median (min-max)",
            "session median",
            "rec/s b1",
            "rec/s b16",
            "rec/s b64",
            "plaintext acc.",
            "secure acc.",
        ]);
        for r in rs.iter().filter(|r| r.batch == 1) {
            let tp = |b: usize| {
                rs.iter()
                    .find(|x| {
                        x.network == r.network && x.comparison == r.comparison && x.batch == b
                    })
                    .map_or("—".into(), |x| format!("{:.1}", x.records_per_second))
            };
            t.push(vec![
                r.network.clone(),
                r.comparison.clone(),
                r.weights.clone(),
                bytes(r.online_bytes as f64),
                format!(
                    "{} / {}",
                    bytes(r.provider_to_client_bytes as f64),
                    bytes(r.client_to_provider_bytes as f64)
                ),
                r.online_rounds.to_string(),
                format!(
                    "{} / {}",
                    bytes(r.lower_bound_bytes as f64),
                    r.lower_bound_rounds
                ),
                bytes(r.offline_bytes as f64),
                ms(r.offline_seconds),
                bytes(r.setup_bytes as f64),
                format!(
                    "{} ({}-{})",
                    ms(r.online_seconds_median),
                    ms(r.online_seconds_min),
                    ms(r.online_seconds_max)
                ),
                // Results recorded before the session time was measured have none.
                if r.session_seconds_median > 0.0 {
                    ms(r.session_seconds_median)
                } else {
                    "—".into()
                },
                tp(BATCHES[0]),
                tp(BATCHES[1]),
                tp(BATCHES[2]),
                accuracy(r.plaintext_accuracy, r.accuracy_records),
                accuracy(r.secure_accuracy, r.accuracy_records),
            ]);
        }
        out += &t.render(markdown);
    }

    // Prior work is compared with the default backend.
    let lan1: Vec<&Row> = rows
        .iter()
        .filter(|r| r.profile == "lan" && r.batch == 1 && r.comparison == "ppa")
        .collect();
    if lan1.iter().any(|r| r.crypten.is_some()) {
        out += &heading("CrypTen 0.4.1 beside us (LAN, batch 1, online)");
        let mut t = Table::new(&[
            "network",
            "our bytes",
            "CrypTen bytes",
            "fewer bytes",
            "our rounds",
            "CrypTen rounds",
            "our latency",
            "CrypTen latency",
            "faster",
            "CrypTen figures",
        ]);
        for r in &lan1 {
            let Some(c) = &r.crypten else { continue };
            t.push(vec![
                r.network.clone(),
                bytes(r.online_bytes as f64),
                bytes(c.online_bytes as f64),
                ratio(r.bytes_vs_crypten),
                r.online_rounds.to_string(),
                c.online_rounds.to_string(),
                ms(r.online_seconds_median),
                c.online_seconds_median.map_or("—".into(), ms),
                ratio(r.seconds_vs_crypten),
                if c.source == "measured" {
                    "measured in this run".into()
                } else {
                    "given in issue 2 (not measured here)".into()
                },
            ]);
        }
        out += &t.render(markdown);
    }

    if lan1.iter().any(|r| !r.references.is_empty()) {
        out += &heading(
            "Published prior work (their hardware and setups; traffic includes their offline phase)",
        );
        let mut t = Table::new(&[
            "network",
            "system",
            "their traffic",
            "their latency",
            "ours, one-record session",
            "ours, per record in a long session",
            "their traffic / ours (one record)",
            "(long session)",
            "their latency / ours",
        ]);
        for r in &lan1 {
            let long = (r.online_bytes + r.offline_bytes) as f64;
            for p in &r.references {
                t.push(vec![
                    r.network.clone(),
                    p.system.clone(),
                    bytes(p.megabytes * 1e6),
                    ms(p.seconds),
                    bytes(long + r.setup_bytes as f64),
                    bytes(long),
                    ratio(Some(p.bytes_ratio_one_record)),
                    ratio(Some(p.bytes_ratio_long_session)),
                    ratio(Some(p.seconds_ratio)),
                ]);
            }
        }
        out += &t.render(markdown);
        let mut sources: Vec<&str> = lan1
            .iter()
            .flat_map(|r| r.references.iter().map(|p| p.source.as_str()))
            .collect();
        sources.dedup();
        sources.sort();
        sources.dedup();
        out += "\nSources: ";
        out += &sources.join("; ");
        out += &format!(". {}.\n", references::CRYPTMED_CLAIM);
    }

    for r in &lan1 {
        out += &heading(&format!(
            "{} per layer (LAN, batch 1, {} weights)",
            r.network, r.weights
        ));
        let mut t = Table::new(&["step", "protocol", "online bytes", "rounds", "time"]);
        for l in &r.layers {
            t.push(vec![
                l.name.clone(),
                l.protocol.clone(),
                bytes(l.bytes as f64),
                l.rounds.to_string(),
                ms(l.seconds),
            ]);
        }
        out += &t.render(markdown);
    }
    if !images.is_empty() {
        out += &imaging_table(&images, markdown);
    }
    out
}

/// The results as aligned text tables.
pub(crate) fn text(rows: &[Row]) -> String {
    render(rows, false)
}

/// The results as Markdown tables.
pub(crate) fn markdown(rows: &[Row]) -> String {
    render(rows, true)
}
