//! Connection churn: `topicguard serve` (a child process, so its memory is its own) takes
//! 10,000 connections and loses them all, ten times over, driven by `topicguard bench
//! --churn`; its resident memory after the last round must be within 10% of after the
//! first. Memory that grows per round is per-connection state never freed; memory that
//! stays high but flat is the allocator keeping freed pages for reuse.
//!
//! 10,000 connections need 10,000 descriptors on each side: the children get the hard
//! limit as their soft limit (`ulimit -S -n`), and the test says clearly that it skipped
//! if even the hard limit is too low. Every wait is bounded.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const CONNECTIONS: usize = 10_000;
const ROUNDS: usize = 10;
/// Descriptors each process needs: the connections plus the runtime's own.
const DESCRIPTORS: u64 = CONNECTIONS as u64 + 256;
/// The whole churn must end within this (a debug build on 2 busy cores).
const BOUND: Duration = Duration::from_secs(300);

/// The (soft, hard) open-file limits of this process.
fn open_file_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line.split_whitespace().filter_map(|word| match word {
        "unlimited" => Some(u64::MAX),
        other => other.parse().ok(),
    });
    Some((numbers.next()?, numbers.next()?))
}

/// A command that runs `program args` with at least `DESCRIPTORS` open files allowed.
fn with_descriptors(program: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -S -n {DESCRIPTORS} && exec \"$0\" \"$@\""))
        .arg(program)
        .args(args)
        .kill_on_drop(true);
    command
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the policy and configuration for a churn broker on a free port.
fn broker_files() -> (TempDir, PathBuf, std::net::SocketAddr) {
    let dir = std::env::temp_dir().join(format!("tg-churn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let policy =
        "identity bench from anonymous {\n    client \"bench-{+cid}\"\n}\nallow bench connect\n";
    std::fs::write(dir.join("churn.policy"), policy).unwrap();
    let config = format!(
        "policy = \"churn.policy\"\n[[listener]]\nprotocol = \"tcp\"\nbind = \"{addr}\"\n\
         [limits]\nmax_connections = {}\n",
        CONNECTIONS + 100
    );
    let path = dir.join("churn.toml");
    std::fs::write(&path, config).unwrap();
    (TempDir(dir), path, addr)
}

/// `name=value` from a `RESULT` line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[tokio::test]
async fn memory_after_ten_rounds_of_10000_connections_is_within_10_percent_of_after_the_first() {
    let Some((_, hard)) = open_file_limits() else {
        eprintln!("SKIPPED: /proc/self/limits is unreadable (not Linux?)");
        return;
    };
    if hard < DESCRIPTORS {
        eprintln!(
            "SKIPPED: 10,000 connections need {DESCRIPTORS} open files per process; the hard \
             limit here is {hard} (raise it: ulimit -Hn)"
        );
        return;
    }
    let topicguard = env!("CARGO_BIN_EXE_topicguard");
    let (_dir, config, addr) = broker_files();
    let config = config.display().to_string();
    let mut serve = with_descriptors(topicguard, &["serve", "--config", &config])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start topicguard serve");
    let pid = serve.id().expect("the broker's pid");
    let mut listening = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listening, "topicguard serve did not listen on {addr}");
    let (connections, rounds, pid_text) =
        (CONNECTIONS.to_string(), ROUNDS.to_string(), pid.to_string());
    let addr_text = addr.to_string();
    let bench = with_descriptors(
        topicguard,
        &[
            "bench",
            "--broker",
            &addr_text,
            "--churn",
            &connections,
            "--rounds",
            &rounds,
            "--broker-pid",
            &pid_text,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start topicguard bench --churn");
    let output = tokio::time::timeout(BOUND, bench.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the churn did not finish within {BOUND:?}"))
        .expect("topicguard bench --churn ran");
    let _ = serve.start_kill();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let result = stdout
        .lines()
        .find(|l| l.starts_with("RESULT mode=churn"))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}\n{stderr}"));
    println!("{stdout}");
    let first: u64 = field(result, "first_closed_rss_kib")
        .parse()
        .expect("RSS after round 1");
    let last: u64 = field(result, "last_closed_rss_kib")
        .parse()
        .expect("RSS after the last round");
    assert!(
        last * 10 <= first * 11,
        "the broker's RSS grew from {first} KiB to {last} KiB over {ROUNDS} rounds of \
         {CONNECTIONS} connections: per-connection state is not freed\n{stdout}"
    );
}
