//! `topicguard authz` behind a real two-node RabbitMQ cluster (Debian's rabbitmq-server with
//! `rabbitmq_mqtt` and `rabbitmq_auth_backend_http`), one authz instance per node, driven by
//! Debian's mosquitto_pub / mosquitto_sub (MQTT 3.1.1, what RabbitMQ 3.10 speaks) on the
//! xfinity flow: a request published on one node reaches the authorized service on the
//! other and its response comes back; cross-account publish and subscribe are refused on
//! both nodes alike; bad tokens are refused on both.
//!
//! One fixture per test run starts everything (a private epmd on its own port, both nodes
//! booting at once, the join, both authz instances) and stops everything on every exit
//! path (Drop): nodes by `rabbitmqctl stop`, then their process groups, epmd, the authz
//! processes, the scratch directory. Every wait has a deadline. rabbitmq-server is
//! installed by scripts/install-rabbitmq.sh when missing; the test is skipped, saying so,
//! only if that is impossible.

use crate::authz_harness::*;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";
/// A node boots in ~10 s on 2 cores; with the rest of the suite running, allow more.
const BOOT: Duration = Duration::from_secs(120);
const CTL: Duration = Duration::from_secs(90);

const MOBILE_A: &str = "xfi:P1_A1:clt:J1";
const MOBILE_B: &str = "xfi:P2_A2:clt:J2";
const SERVICE: &str = "svc:lights:1";
const REQUEST_A: &str = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
const RESPONSE_A: &str = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success";
const RESPONSES_A: &str = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/+/success";

/// Runs `program` with a deadline; returns (exit code or -1 if killed, stdout+stderr).
fn run(mut command: Command, deadline: Duration) -> (i32, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut out);
    }
    (code, out)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A free port below 30000 (RabbitMQ's CLI uses the node's distribution port + 10000).
fn free_low_port(from: u16) -> u16 {
    (from..30_000)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 30000")
}

fn wait_for_port(port: u16, deadline: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

struct Node {
    name: String,
    dir: PathBuf,
    mqtt: u16,
    dist: u16,
    child: Option<Child>,
}

struct Cluster {
    scratch: Scratch,
    epmd_port: u16,
    epmd: Option<Child>,
    nodes: Vec<Node>,
    authz: Vec<AuthzProcess>,
    tokens: Tokens,
}

impl Cluster {
    fn start() -> Cluster {
        let scratch = Scratch::new("authz-rabbitmq");
        let tokens = Tokens::new(&scratch);
        let policy = xfinity_with_jwt_service(&scratch);
        let cookie: String = (0..20)
            .map(|i| (b'A' + ((std::process::id() as usize * 7 + i * 13) % 26) as u8) as char)
            .collect();
        let cookie_path = scratch.write(".erlang.cookie", &cookie);
        std::fs::set_permissions(
            &cookie_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o400),
        )
        .expect("cookie mode");
        let epmd_port = free_port();
        let mut cluster = Cluster {
            scratch,
            epmd_port,
            epmd: None,
            nodes: Vec::new(),
            authz: Vec::new(),
            tokens,
        };
        cluster.epmd = Some(
            Command::new("epmd")
                .args(["-port", &epmd_port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start epmd"),
        );
        let base = 20_000 + (std::process::id() % 4000) as u16 * 2;
        for (i, tag) in ["a", "b"].into_iter().enumerate() {
            let log = cluster.scratch.path(&format!("authz-{tag}.log"));
            let authz = AuthzProcess::start(&policy, &cluster.tokens.jwks, &[], log);
            let dist = free_low_port(base + i as u16 * 10);
            let node = cluster.configure_node(tag, authz.addr, dist);
            cluster.authz.push(authz);
            cluster.nodes.push(node);
        }
        for i in 0..cluster.nodes.len() {
            cluster.boot(i);
        }
        for i in 0..cluster.nodes.len() {
            let node = &cluster.nodes[i];
            assert!(
                wait_for_port(node.mqtt, BOOT),
                "node {} did not open its MQTT port in {BOOT:?}:\n{}",
                node.name,
                cluster.node_log(i)
            );
        }
        cluster.join();
        cluster
    }

    fn env(&self, command: &mut Command) {
        command
            .env("HOME", &self.scratch.0)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string());
    }

    fn configure_node(&self, tag: &str, authz: SocketAddr, dist: u16) -> Node {
        let name = format!("tg{}{tag}@localhost", std::process::id());
        let dir = self.scratch.path(tag);
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("node dirs");
        }
        let mqtt = free_port();
        let amqp = free_port();
        let url = |path: &str| format!("http://{authz}/rabbitmq/{path}");
        let config = format!(
            "listeners.tcp.default = 127.0.0.1:{amqp}\n\
             mqtt.listeners.tcp.default = 127.0.0.1:{mqtt}\n\
             mqtt.allow_anonymous = false\n\
             auth_backends.1 = http\n\
             auth_http.http_method = post\n\
             auth_http.user_path = {}\n\
             auth_http.vhost_path = {}\n\
             auth_http.resource_path = {}\n\
             auth_http.topic_path = {}\n",
            url("user"),
            url("vhost"),
            url("resource"),
            url("topic"),
        );
        std::fs::write(dir.join("rabbitmq.conf"), config).expect("rabbitmq.conf");
        std::fs::write(
            dir.join("enabled_plugins"),
            "[rabbitmq_mqtt,rabbitmq_auth_backend_http].\n",
        )
        .expect("enabled_plugins");
        Node {
            name,
            dir,
            mqtt,
            dist,
            child: None,
        }
    }

    fn boot(&mut self, i: usize) {
        let node = &self.nodes[i];
        let mut command = Command::new(RABBITMQ_SERVER);
        self.env(&mut command);
        let dir = &node.dir;
        command
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", dir.join("feature_flags"))
            .env("RABBITMQ_DIST_PORT", node.dist.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout")).expect("stdout file"))
            .stderr(Stdio::null())
            .process_group(0);
        let child = command.spawn().expect("start rabbitmq-server");
        self.nodes[i].child = Some(child);
    }

    fn node_log(&self, i: usize) -> String {
        let dir = &self.nodes[i].dir;
        let stdout = std::fs::read_to_string(dir.join("stdout")).unwrap_or_default();
        let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn ctl(&self, node: usize, args: &[&str]) -> (i32, String) {
        let mut command = Command::new(RABBITMQCTL);
        self.env(&mut command);
        command.args(["-n", &self.nodes[node].name]).args(args);
        run(command, CTL)
    }

    fn join(&self) {
        let first = self.nodes[0].name.clone();
        for args in [&["stop_app"][..], &["join_cluster", &first], &["start_app"]] {
            let (code, out) = self.ctl(1, args);
            assert_eq!(code, 0, "rabbitmqctl {args:?} on the second node:\n{out}");
        }
        assert!(
            wait_for_port(self.nodes[1].mqtt, BOOT),
            "the second node's MQTT port after joining:\n{}",
            self.node_log(1)
        );
        let (code, out) = self.ctl(0, &["cluster_status"]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&self.nodes[1].name),
            "both nodes in the cluster:\n{out}"
        );
    }

    /// mosquitto_pub on node `i`; (exit code, output).
    fn publish(
        &self,
        i: usize,
        client_id: &str,
        token: &str,
        topic: &str,
        message: &str,
    ) -> (i32, String) {
        let mut command = Command::new("mosquitto_pub");
        command.args(mqtt_args(self.nodes[i].mqtt, client_id, token));
        command.args(["-t", topic, "-m", message, "-q", "1"]);
        run(command, Duration::from_secs(15))
    }

    /// mosquitto_sub on node `i`, printing `-v` lines; exits after `count` messages or `secs`.
    fn subscriber(
        &self,
        i: usize,
        client_id: &str,
        token: &str,
        filter: &str,
        count: u32,
        secs: u32,
    ) -> Child {
        Command::new("mosquitto_sub")
            .args(mqtt_args(self.nodes[i].mqtt, client_id, token))
            .args(["-t", filter, "-q", "1", "-v", "-d"])
            .args(["-C", &count.to_string(), "-W", &secs.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub")
    }

    /// mosquitto_sub for a moment, to see what SUBACK says; (exit code, output).
    fn try_subscribe(&self, i: usize, client_id: &str, token: &str, filter: &str) -> (i32, String) {
        let mut command = Command::new("mosquitto_sub");
        command.args(mqtt_args(self.nodes[i].mqtt, client_id, token));
        command.args(["-t", filter, "-q", "1", "-d", "-W", "2"]);
        run(command, Duration::from_secs(15))
    }
}

fn mqtt_args(port: u16, client_id: &str, token: &str) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-V",
        "mqttv311",
        "-i",
        client_id,
        "-u",
        "app",
        "-P",
        token,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in (0..self.nodes.len()).rev() {
            if self.nodes[i].child.is_some() {
                let _ = self.ctl(i, &["stop"]);
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                kill_group(&mut child);
            }
        }
        if let Some(mut epmd) = self.epmd.take() {
            kill_group(&mut epmd);
        }
        self.authz.clear();
    }
}

/// Ends a process we started in its own group, with everything it started.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for a subscriber to exit (it does after `-C` messages or `-W` seconds).
fn collect(mut child: Child, deadline: Duration) -> String {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    out
}

/// The `-v` lines (`topic payload`) in mosquitto_sub's output.
fn messages(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("c/") || l.starts_with("$"))
        .collect()
}

fn rabbitmq_available() -> Result<(), String> {
    if Path::new(RABBITMQ_SERVER).exists() {
        return Ok(());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-rabbitmq.sh");
    let (code, out) = run(Command::new(script), Duration::from_secs(900));
    if code == 0 && Path::new(RABBITMQ_SERVER).exists() {
        Ok(())
    } else {
        Err(out)
    }
}

/// Sends the denied publish, then the allowed marker, until the subscriber exits; returns
/// what it printed. Had the denied message been routed, it would have arrived first.
fn until_received(
    cluster: &Cluster,
    subscriber: Child,
    attempts: &[(usize, &str, &str, &str, &str)],
) -> String {
    let mut subscriber = subscriber;
    for _ in 0..20 {
        for (node, client, token, topic, message) in attempts {
            cluster.publish(*node, client, token, topic, message);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(700) {
            if subscriber.try_wait().expect("wait").is_some() {
                return collect(subscriber, Duration::from_secs(1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    collect(subscriber, Duration::from_secs(1))
}

#[test]
fn a_two_node_rabbitmq_cluster_decides_the_xfinity_flow_alike_on_both_nodes() {
    if let Err(why) = rabbitmq_available() {
        eprintln!("SKIPPED: rabbitmq-server is not installed and could not be installed:\n{why}");
        return;
    }
    let cluster = Cluster::start();
    let t = &cluster.tokens;
    let (token_a, token_b, service) = (
        t.mobile("P1", "A1", "J1"),
        t.mobile("P2", "A2", "J2"),
        t.service("lights"),
    );

    // A request published on node 0 reaches the service subscribed on node 1; mobile B's
    // publish into A's namespace, on either node, never does.
    let sub = cluster.subscriber(1, SERVICE, &service, "c/+/+/lights/+/+", 1, 60);
    let out = until_received(
        &cluster,
        sub,
        &[
            (0, MOBILE_B, &token_b, REQUEST_A, "forged-0"),
            (1, MOBILE_B, &token_b, REQUEST_A, "forged-1"),
            (0, MOBILE_A, &token_a, REQUEST_A, "on"),
        ],
    );
    assert_eq!(messages(&out), [format!("{REQUEST_A} on")], "{out}");

    // The response published on node 1 reaches mobile A subscribed on node 0.
    let sub = cluster.subscriber(0, MOBILE_A, &token_a, RESPONSES_A, 1, 60);
    let out = until_received(&cluster, sub, &[(1, SERVICE, &service, RESPONSE_A, "done")]);
    assert_eq!(messages(&out), [format!("{RESPONSE_A} done")], "{out}");

    for node in 0..2 {
        // Cross-account and over-wide subscriptions are refused on both nodes.
        for (client, token, filter) in [
            (MOBILE_B, &token_b, RESPONSES_A),
            (MOBILE_A, &token_a, "c/xfi/#"),
            (MOBILE_A, &token_a, "c/xfi/P1_A1/#"),
        ] {
            let (code, out) = cluster.try_subscribe(node, client, token, filter);
            // RabbitMQ 3.10 closes the connection instead of sending a failure SUBACK.
            assert!(
                out.contains("sending SUBSCRIBE") && !out.contains("received SUBACK"),
                "node {node}: {client} must not subscribe to {filter} (exit {code}):\n{out}"
            );
        }
        // Publishing into another account is refused (the connection is closed); the
        // owner's own publish is accepted.
        let (code, out) = cluster.publish(node, MOBILE_B, &token_b, REQUEST_A, "forged");
        assert_ne!(code, 0, "node {node}: cross-account publish:\n{out}");
        let (code, out) = cluster.publish(node, MOBILE_A, &token_a, REQUEST_A, "own");
        assert_eq!(code, 0, "node {node}: own publish:\n{out}");
        // RabbitMQ 3.10 routes a `.` as a level separator: `r.1` would be delivered as
        // `r/1`, one level more than `{+rid}`, so the publish is refused.
        let dotted = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r.1";
        let (code, out) = cluster.publish(node, MOBILE_A, &token_a, dotted, "dotted");
        assert_ne!(code, 0, "node {node}: a dotted request id:\n{out}");
        // An allowed subscription is granted on both nodes.
        let (_, out) = cluster.try_subscribe(node, MOBILE_A, &token_a, RESPONSES_A);
        assert!(
            out.contains("Subscribed (mid: 1): 1"),
            "node {node}:\n{out}"
        );
        // Bad credentials are refused on both nodes.
        let expired = t.mobile_until("P1", "A1", "J1", Tokens::now() - 600);
        for (client, token) in [
            (MOBILE_A, "not-a-jwt"),
            (MOBILE_A, &expired as &str),
            (MOBILE_B, &token_a),
        ] {
            let (code, out) = cluster.publish(node, client, token, REQUEST_A, "x");
            assert_ne!(code, 0, "node {node}: {client} must be refused:\n{out}");
            assert!(
                out.to_lowercase().contains("not authori")
                    || out.to_lowercase().contains("bad user name or password"),
                "node {node}: {out}"
            );
        }
    }

    // Each node asked its own authz instance.
    for (i, authz) in cluster.authz.iter().enumerate() {
        assert!(
            authz.log().contains("rabbitmq/topic"),
            "node {i}'s authz saw topic checks:\n{}",
            authz.log()
        );
    }
}
