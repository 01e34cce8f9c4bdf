//! Shared by the binary-level tests: the built `cryptmed`, processes whose
//! standard error is kept in a file (and checked for panics), and a
//! dealer-plus-provider deployment on loopback ports.
#![allow(dead_code, unreachable_pub)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cryptmed");

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh scratch directory for one test.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cryptmed-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server process, killed on drop; its standard error goes to `log`.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// What it wrote to standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to 15 s for its standard error to contain `what`.
    pub fn wait_for(&self, what: &str) -> String {
        let t = Instant::now();
        loop {
            let s = self.stderr();
            if s.contains(what) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "{} never said {what:?}; it said:\n{s}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let s = self.stderr();
        if !std::thread::panicking() {
            assert!(
                !s.contains("panicked"),
                "{} panicked:\n{s}",
                self.log.display()
            );
        }
    }
}

/// Starts `cryptmed args`, with extra environment, logging to `log`.
pub fn spawn(args: &[&str], log: &Path, env: &[(&str, &str)]) -> Proc {
    let f = std::fs::File::create(log).unwrap();
    let child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(f)
        .spawn()
        .unwrap();
    Proc {
        child,
        log: log.to_path_buf(),
    }
}

pub fn wait_port(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Runs the binary with its standard output already closed, as a reader
/// that has gone (`| head`) leaves it.
pub fn run_with_stdout_closed(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Makes certificates in `dir/certs` (extra `certs` flags allowed).
pub fn make_certs(dir: &Path, extra: &[&str]) -> PathBuf {
    let certs = dir.join("certs");
    let mut args = vec!["certs", "--out"];
    let c = path(&certs);
    args.push(&c);
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    certs
}

/// A dealer and a provider as processes, with client certificates required.
pub struct Deployment {
    pub dir: PathBuf,
    pub certs: PathBuf,
    pub dealer: String,
    pub provider: String,
    pub procs: Vec<Proc>,
}

impl Deployment {
    pub fn cert(&self, f: &str) -> String {
        path(&self.certs.join(f))
    }

    /// Starts a server `role` (`dealer` or `provider`): the subcommand and
    /// its own flags in `head`, then the role's certificate, the CA (client
    /// certificates are required by default), a 10 s timeout and `extra`; returns its
    /// `localhost:PORT`.
    fn start(
        &mut self,
        tag: &str,
        role: &str,
        head: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> String {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let (cert, key, ca) = (
            self.cert(&format!("{role}.pem")),
            self.cert(&format!("{role}.key")),
            self.cert("ca.pem"),
        );
        let mut args = head.to_vec();
        args.extend([
            "--listen",
            &listen,
            "--cert",
            &cert,
            "--key",
            &key,
            "--ca",
            &ca,
            "--timeout",
            "10",
        ]);
        args.extend_from_slice(extra);
        let log = self.dir.join(format!("{tag}.log"));
        self.procs.push(spawn(&args, &log, env));
        wait_port(port);
        format!("localhost:{port}")
    }

    /// Starts the dealer (with `extra` flags); returns its `localhost:PORT`.
    pub fn start_dealer(&mut self, tag: &str, extra: &[&str], env: &[(&str, &str)]) -> String {
        self.start(tag, "dealer", &["dealer"], extra, env)
    }

    /// Starts a provider of `model` trusting `dealer`; returns its `localhost:PORT`.
    pub fn start_provider(
        &mut self,
        tag: &str,
        model: &str,
        dealer: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> String {
        let model = path(&root().join(model));
        let head = ["serve", "--model", &model, "--dealer", dealer];
        self.start(tag, "provider", &head, extra, env)
    }

    /// The provider's process (the last started).
    pub fn provider_proc(&self) -> &Proc {
        self.procs.last().unwrap()
    }

    /// TLS settings with `role`'s certificate from this deployment (as a fake peer uses them).
    pub fn security(&self, role: &str) -> cryptmed_service::Security {
        let read = |f: &str| std::fs::read(self.certs.join(f)).unwrap();
        let id = cryptmed_service::tls::Identity::from_pem(
            &read(&format!("{role}.pem")),
            &read(&format!("{role}.key")),
        )
        .unwrap();
        cryptmed_service::Security::tls(&read("ca.pem"), Some(id), false).unwrap()
    }

    /// `diagnose` against this deployment with the client certificate, plus `extra`.
    pub fn diagnose(&self, extra: &[&str]) -> Output {
        self.diagnose_at(&self.provider, &self.dealer, extra)
    }

    /// `diagnose` against the provider at `server` and the dealer at `dealer`
    /// with this deployment's client certificate, plus `extra`.
    pub fn diagnose_at(&self, server: &str, dealer: &str, extra: &[&str]) -> Output {
        self.diagnose_by(run, server, dealer, extra)
    }

    /// [`Deployment::diagnose`] with its standard output already closed
    /// ([`run_with_stdout_closed`]).
    pub fn diagnose_with_stdout_closed(&self, extra: &[&str]) -> Output {
        self.diagnose_by(run_with_stdout_closed, &self.provider, &self.dealer, extra)
    }

    fn diagnose_by(
        &self,
        runner: fn(&[&str]) -> Output,
        server: &str,
        dealer: &str,
        extra: &[&str],
    ) -> Output {
        let (cert, key, ca) = (
            self.cert("client.pem"),
            self.cert("client.key"),
            self.cert("ca.pem"),
        );
        let args = vec![
            "diagnose",
            "--server",
            server,
            "--dealer",
            dealer,
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--timeout",
            "10",
        ];
        runner(&with(args, extra))
    }
}

/// `base` with each `--flag value` pair of `extra` replacing the same flag's value, or added.
pub fn with<'a>(mut base: Vec<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
    let mut i = 0;
    while i < extra.len() {
        let flag = extra[i];
        let value = extra.get(i + 1).filter(|v| !v.starts_with("--"));
        match (base.iter().position(|a| *a == flag), value) {
            (Some(p), Some(v)) => base[p + 1] = v,
            (None, Some(v)) => base.extend([flag, *v]),
            (_, None) => base.push(flag),
        }
        i += if value.is_some() { 2 } else { 1 };
    }
    base
}

/// Certificates, a dealer and a provider of `model` with `reveal`.
pub fn deploy(tag: &str, model: &str, reveal: &str) -> Deployment {
    deploy_with(tag, model, &["--reveal", reveal])
}

/// Certificates, a dealer and a provider of `model` with `serve` flags `extra`.
pub fn deploy_with(tag: &str, model: &str, extra: &[&str]) -> Deployment {
    let dir = scratch(tag);
    let certs = make_certs(&dir, &[]);
    let mut d = Deployment {
        dir,
        certs,
        dealer: String::new(),
        provider: String::new(),
        procs: Vec::new(),
    };
    d.dealer = d.start_dealer("dealer", &[], &[]);
    let dealer = d.dealer.clone();
    d.provider = d.start_provider("provider", model, &dealer, extra, &[]);
    d
}

/// The breast-cancer test split without its label column.
pub fn unlabelled_records(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("testdata/breast_cancer_test.csv")).unwrap();
    let records: String = text
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    let p = dir.join("records.csv");
    std::fs::write(&p, records).unwrap();
    p
}

/// The plaintext model's labels for `records`.
pub fn plaintext_labels(model: &str, records: &Path, len: usize) -> Vec<usize> {
    let net = cryptmed_model::onnx::load(&root().join(model)).unwrap();
    let recs = cryptmed_input::load(records, len, false, 1e9).unwrap();
    recs.records
        .iter()
        .map(|x| {
            let y = cryptmed_model::reference::evaluate(&net, x);
            y.iter()
                .enumerate()
                .fold(0, |b, (i, v)| if *v > y[b] { i } else { b })
        })
        .collect()
}
