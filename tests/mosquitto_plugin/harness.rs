//! Running Debian's mosquitto with the plugin, and mosquitto_pub/sub against it.
//!
//! [`plugin_library`] builds `libtopicguard_mosquitto.so` in release mode (once per test run;
//! a no-op when scripts/test built it already) and returns its path as cargo reports it.
//! [`Broker`] writes a configuration (a plain listener for JWT clients, a TLS listener that
//! requires a client certificate, the plugin and its options) into a scratch directory,
//! starts `/usr/sbin/mosquitto` on free loopback ports and stops it when dropped. [`Sub`]
//! is a `mosquitto_sub` whose lines are collected as they arrive; [`run`] runs a client to
//! completion. Every wait is bounded; every process is killed on every exit path (drop).
//! Missing binaries fail the test with a message naming scripts/install-test-deps.sh.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Bound on any single wait (broker start, a line, a client run).
pub const STEP: Duration = Duration::from_secs(15);

/// The release build of the plugin, built once per test run.
pub fn plugin_library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        // The variables cargo sets for this test process are not the shell's: left in, a
        // dependency's build script that watches one (ring: CARGO_MANIFEST_DIR) would make
        // this build and the shell's rebuild each other's artifacts every time.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                ]
                .contains(&name.as_ref())
                || name == "CARGO_PRIMARY_PACKAGE"
            {
                cargo.env_remove(name.as_ref());
            }
        }
        let output = cargo
            .args(["build", "--release", "-p", "topicguard-mosquitto"])
            .args(["--message-format", "json-render-diagnostics"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build for the plugin");
        assert!(output.status.success(), "the plugin does not build");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["target"]["name"] == "topicguard_mosquitto")
            .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
            .filter_map(|name| name.as_str().map(PathBuf::from))
            .find(|path| path.extension().is_some_and(|e| e == "so"))
            .expect("cargo reports libtopicguard_mosquitto.so")
    })
}

/// A binary from PATH (or /usr/sbin); fails the test if it is missing.
pub fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: run scripts/install-test-deps.sh \
                 (Debian's mosquitto, mosquitto-clients, mosquitto-dev)"
            )
        })
}

/// A scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tg-mosq-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Runs the `topicguard` binary; returns its stdout.
pub fn topicguard(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(args)
        .output()
        .expect("run topicguard");
    assert!(
        output.status.success(),
        "topicguard {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What the broker's configuration says beyond its listeners.
pub struct BrokerSetup {
    pub policy: PathBuf,
    /// `plugin_opt_jwks`: the default keys (identities without a `trust` label).
    pub jwks: Option<PathBuf>,
    /// `plugin_opt_cafile`: the default CA (identities without a `trust` label).
    pub plugin_ca: Option<PathBuf>,
    /// `plugin_opt_trust LABEL=FILE` lines: each label's JWKS or CA.
    pub trust: Vec<(String, PathBuf)>,
    /// `plugin_opt_trust_crl LABEL=FILE` lines.
    pub trust_crl: Vec<(String, PathBuf)>,
    /// The TLS listener: mosquitto's own `cafile`, its server certificate and key.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// More configuration lines, after the plugin's.
    pub extra: String,
}

/// A mosquitto process with the plugin; killed when dropped.
pub struct Broker {
    child: Child,
    pub port: u16,
    pub tls_port: u16,
    log: PathBuf,
    _dir: Scratch,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Broker {
    pub fn start(setup: &BrokerSetup) -> Broker {
        let mut broker = Broker::spawn(setup);
        broker.wait_until_listening();
        broker
    }

    /// Starts mosquitto expecting it to refuse the configuration; returns its log.
    pub fn refused(setup: &BrokerSetup) -> String {
        let mut broker = Broker::spawn(setup);
        let deadline = Instant::now() + STEP;
        while matches!(broker.child.try_wait(), Ok(None)) {
            assert!(
                Instant::now() < deadline,
                "mosquitto kept running:\n{}",
                broker.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker.log()
    }

    fn spawn(setup: &BrokerSetup) -> Broker {
        let dir = Scratch::new("broker");
        let port = free_port();
        let tls_port = free_port();
        // `allow_anonymous true`: the plugin authenticates every client and never defers,
        // so the flag matters only at SIGHUP, where mosquitto 2.0 would otherwise drop every
        // client without a username (certificate clients).
        let mut config = format!(
            "per_listener_settings false\nallow_anonymous true\npersistence false\n\
             log_dest stderr\nlog_type all\nlistener {port} 127.0.0.1\n"
        );
        if let Some((cafile, cert, key)) = &setup.tls {
            config.push_str(&format!(
                "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
                 require_certificate true\n",
                cafile.display(),
                cert.display(),
                key.display()
            ));
        }
        config.push_str(&format!(
            "plugin {}\nplugin_opt_policy {}\n",
            plugin_library().display(),
            setup.policy.display()
        ));
        if let Some(jwks) = &setup.jwks {
            config.push_str(&format!("plugin_opt_jwks {}\n", jwks.display()));
        }
        if let Some(ca) = &setup.plugin_ca {
            config.push_str(&format!("plugin_opt_cafile {}\n", ca.display()));
        }
        for (key, mappings) in [("trust", &setup.trust), ("trust_crl", &setup.trust_crl)] {
            for (label, file) in mappings {
                config.push_str(&format!("plugin_opt_{key} {label}={}\n", file.display()));
            }
        }
        config.push_str(&setup.extra);
        let conf = dir.write("mosquitto.conf", &config);
        let log = dir.path("mosquitto.log");
        let child = Command::new(binary("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the log"))
            .spawn()
            .expect("start mosquitto");
        Broker {
            child,
            port,
            tls_port,
            log,
            _dir: dir,
        }
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + STEP;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mosquitto exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto never listened:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything mosquitto logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until the log contains `needle` `count` times; returns the log.
    pub fn wait_for_log(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no `{needle}` (x{count}) in:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGHUP (with the shell's built-in kill: no procps needed).
    pub fn sighup(&self) {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -HUP {}", self.child.id())])
            .status()
            .expect("run sh");
        assert!(status.success(), "send SIGHUP");
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn args(&self, tls: bool) -> Vec<String> {
        let port = if tls { self.tls_port } else { self.port };
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ]
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// How a client connects: a JWT on the plain listener, or a certificate over TLS.
#[derive(Clone, Debug)]
pub enum Login {
    Jwt(String),
    Certificate {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
}

impl Login {
    fn args(&self, broker: &Broker, client_id: &str) -> Vec<String> {
        let mut args = match self {
            Login::Jwt(_) => broker.args(false),
            Login::Certificate { .. } => broker.args(true),
        };
        args.extend(["-i".to_string(), client_id.to_string()]);
        match self {
            // MQTT 3.1.1 wants a username with a password; the plugin ignores it.
            Login::Jwt(token) => {
                args.extend(["-u".into(), "jwt".into(), "-P".into(), token.clone()])
            }
            Login::Certificate { ca, cert, key } => {
                for (flag, path) in [("--cafile", ca), ("--cert", cert), ("--key", key)] {
                    args.extend([flag.to_string(), path.display().to_string()]);
                }
            }
        }
        args
    }
}

/// What a finished client printed.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub out: String,
}

/// Runs a mosquitto client to completion (bounded); stdout and stderr together in `out`.
pub fn run(program: &str, broker: &Broker, login: &Login, client_id: &str, args: &[&str]) -> Ran {
    let mut child = Command::new(binary(program))
        .args(login.args(broker, client_id))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a mosquitto client");
    let deadline = Instant::now() + STEP;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().ok();
    let output = child
        .wait_with_output()
        .expect("collect the client's output");
    Ran {
        code: output.status.code(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Publishes one message; the run must succeed (a v5 deny is reported in `out`).
pub fn publish(broker: &Broker, login: &Login, client_id: &str, args: &[&str]) -> Ran {
    let ran = run("mosquitto_pub", broker, login, client_id, args);
    assert_eq!(ran.code, Some(0), "mosquitto_pub {args:?}: {}", ran.out);
    ran
}

/// A running `mosquitto_sub -v` whose lines are collected as they arrive; killed on drop.
pub struct Sub {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sub {
    pub fn start(broker: &Broker, login: &Login, client_id: &str, args: &[&str]) -> Sub {
        let mut child = Command::new("stdbuf")
            .arg("-oL")
            .arg(binary("mosquitto_sub"))
            .args(login.args(broker, client_id))
            .arg("-v")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stdbuf mosquitto_sub (coreutils)");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Sub { child, lines }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (bounded) for a line containing `needle`.
    pub fn wait_for(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.lines().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Publishes `topic` with `payload` as `login` until this subscriber shows it (the
    /// subscription is then in place); fails after a bounded number of rounds.
    pub fn sync(
        &self,
        broker: &Broker,
        login: &Login,
        client_id: &str,
        topic: &str,
        payload: &str,
    ) {
        for _ in 0..30 {
            publish(
                broker,
                login,
                client_id,
                &["-q", "1", "-t", topic, "-m", payload],
            );
            if self.wait_for(&format!("{topic} {payload}"), Duration::from_millis(300)) {
                return;
            }
        }
        panic!(
            "`{topic} {payload}` never reached the subscriber: {:?}\n{}",
            self.lines(),
            broker.log()
        );
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the client abruptly (no DISCONNECT: its will is sent).
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.kill();
    }
}
