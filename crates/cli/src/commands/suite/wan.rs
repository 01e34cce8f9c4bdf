//! Shaped links between provider and client.
//!
//! The WAN profile: 40 ms round trip and 100 Mbit/s. Preferred: Linux
//! traffic control (`netem`) on a veth pair into a network namespace this
//! module creates, when running as root with `ip` and `tc` and a kernel that
//! has `netem`. Otherwise a user-space relay on loopback that delays each
//! direction by 20 ms and paces it to the link rate, and the reason netem was
//! not used is reported.
//!
//! The switched-LAN profile: 0.2 ms round trip and 1 Gbit/s, the link
//! `inspect` and `--comparison auto` call a LAN (a hospital's switched
//! Ethernet; loopback, the `lan` profile, has no network at all). Always the
//! user-space relay, whose own thread hand-offs and timer slack add to the
//! nominal delay: the suite reports the round trip it measured through it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A link's one-way delay and rate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// One-way propagation delay.
    pub(crate) delay: Duration,
    /// Link rate, bits per second.
    pub(crate) rate_bps: f64,
}

impl Shape {
    /// Its round trip and rate for titles: `40 ms round trip, 100 Mbit/s`.
    pub(crate) fn describe(&self) -> String {
        let rate = if self.rate_bps >= 1e9 {
            format!("{} Gbit/s", self.rate_bps / 1e9)
        } else {
            format!("{} Mbit/s", self.rate_bps / 1e6)
        };
        let rtt = 2.0 * self.delay.as_secs_f64() * 1e3;
        format!("{rtt} ms round trip, {rate}")
    }
}

/// The WAN profile: 20 ms each way, 100 Mbit/s.
pub(crate) const WAN: Shape = Shape {
    delay: Duration::from_millis(20),
    rate_bps: 100e6,
};

/// The switched-LAN profile: 0.1 ms each way, 1 Gbit/s.
pub(crate) const SWITCHED: Shape = Shape {
    delay: Duration::from_micros(100),
    rate_bps: 1e9,
};

/// A network namespace joined to the host by a veth pair, with netem on both ends.
/// Removed on drop.
pub(crate) struct Netns {
    /// Namespace name (for `ip netns exec`).
    pub(crate) name: String,
    /// The host's address on the veth pair.
    pub(crate) host_ip: &'static str,
    /// The namespace's address on the veth pair.
    pub(crate) inner_ip: &'static str,
    host_dev: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("`{}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args[..args.len().min(3)].join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Creates the namespace and shapes both ends of its link; on failure,
    /// undoes what it did and says why.
    pub(crate) fn create() -> Result<Netns, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if uid != "0" {
            return Err("not running as root (netem needs CAP_NET_ADMIN)".into());
        }
        let pid = std::process::id() % 100_000;
        let ns = Netns {
            name: format!("cryptmed-wan-{pid}"),
            host_ip: "10.213.0.1",
            inner_ip: "10.213.0.2",
            host_dev: format!("cmwh{pid}"),
        };
        let inner_dev = format!("cmwn{pid}");
        let delay = format!("{}ms", WAN.delay.as_millis());
        let rate = format!("{}mbit", (WAN.rate_bps / 1e6) as u64);
        let netem = ["netem", "delay", &delay, "rate", &rate, "limit", "100000"];
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", &ns.name],
            vec![
                "ip",
                "link",
                "add",
                &ns.host_dev,
                "type",
                "veth",
                "peer",
                "name",
                &inner_dev,
            ],
            vec!["ip", "link", "set", &inner_dev, "netns", &ns.name],
            vec!["ip", "addr", "add", "10.213.0.1/30", "dev", &ns.host_dev],
            vec!["ip", "link", "set", &ns.host_dev, "up"],
            vec![
                "ip",
                "netns",
                "exec",
                &ns.name,
                "ip",
                "addr",
                "add",
                "10.213.0.2/30",
                "dev",
                &inner_dev,
            ],
            vec![
                "ip", "netns", "exec", &ns.name, "ip", "link", "set", &inner_dev, "up",
            ],
            vec![
                "ip", "netns", "exec", &ns.name, "ip", "link", "set", "lo", "up",
            ],
            [
                &["tc", "qdisc", "add", "dev", &ns.host_dev, "root"][..],
                &netem,
            ]
            .concat(),
            [
                &[
                    "ip", "netns", "exec", &ns.name, "tc", "qdisc", "add", "dev", &inner_dev,
                    "root",
                ][..],
                &netem,
            ]
            .concat(),
        ];
        for step in &steps {
            // On error `ns` drops here and removes whatever was made.
            run(step)?;
        }
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.host_dev]);
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// Starts a relay on loopback to `target` that delays each direction by
/// the shape's delay and paces it to its rate; returns its port. It lives as
/// long as the process.
pub(crate) fn start_relay(target: u16, shape: Shape) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(up) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let _ = (conn.set_nodelay(true), up.set_nodelay(true));
            for (from, to) in [
                (conn.try_clone(), up.try_clone()),
                (up.try_clone(), conn.try_clone()),
            ] {
                if let (Ok(from), Ok(to)) = (from, to) {
                    pipe(from, to, shape);
                }
            }
        }
    });
    Ok(port)
}

/// Copies `from` to `to`: each chunk is serialised at the link rate, then
/// delivered after the propagation delay.
fn pipe(mut from: TcpStream, mut to: TcpStream, shape: Shape) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        let mut free = Instant::now();
        for (arrived, chunk) in rx {
            let start = free.max(arrived);
            free = start + Duration::from_secs_f64(chunk.len() as f64 * 8.0 / shape.rate_bps);
            wait_until(free + shape.delay);
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// Below this a wait spins instead of sleeping: a sleep overshoots by the
/// timer slack (about 50 us on Linux), as much as the switched LAN's delay.
const SPIN: Duration = Duration::from_micros(80);

/// Returns at `deadline`: sleeps while it is far, then spins.
fn wait_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The median round trip of one byte through a relay of this shape to a
/// local echo, over 51 exchanges (what the relay's threads and timers add
/// to the nominal delay shows here).
pub(crate) fn measured_round_trip(shape: Shape) -> std::io::Result<Duration> {
    let echo = TcpListener::bind("127.0.0.1:0")?;
    let target = echo.local_addr()?.port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = echo.accept() {
            let _ = s.set_nodelay(true);
            let mut b = [0u8; 1];
            while s.read_exact(&mut b).is_ok() && s.write_all(&b).is_ok() {}
        }
    });
    let mut s = TcpStream::connect(("127.0.0.1", start_relay(target, shape)?))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut times = Vec::with_capacity(51);
    let mut b = [7u8; 1];
    for _ in 0..51 {
        let t = Instant::now();
        s.write_all(&b)?;
        s.read_exact(&mut b)?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}
