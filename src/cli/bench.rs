//! `topicguard bench`: the command line of the load generator in [`topicguard::load`].
//!
//! Modes: throughput (default) — publishers and/or subscribers (`--role`), per-publisher
//! sequence accounting, latency from the send stamp, the tool's own CPU; `--combine` —
//! merge the `--summary` files of separate publisher and subscriber processes into one
//! report; `--connects N` — connects/s; `--idle N` — hold N idle connections (over TLS with
//! `--tls-ca`); `--churn N`
//! — open and close N connections `--rounds` times, reading the broker's RSS
//! (`--broker-pid`). The last stdout line is `RESULT key=value ...` for scripts. Exit
//! status 1 when the broker lost a message it had acknowledged (or delivered one it
//! refused). This module must never hold load logic: it maps arguments to a
//! [`topicguard::load::Plan`] and prints what comes back.

use super::output::{CliError, Exit, Out};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use topicguard::load::{self, LoadError, Login, Plan, Role, Summary, Topics};
use topicguard::mqtt::codec::{ProtocolVersion, QoS};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Broker address (host:port), e.g. 127.0.0.1:1883.
    #[arg(long, required_unless_present = "combine")]
    pub broker: Option<SocketAddr>,
    /// Number of publishing connections (in this process).
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// Number of subscribing connections (in this process).
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// QoS of publishes and subscriptions: 0, 1 or 2.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// MQTT version of every connection: 3.1.1 or 5.
    #[arg(long, default_value = "3.1.1", value_parser = ["3.1.1", "5"])]
    pub mqtt: String,
    /// Payload size in bytes (at least 24: the stamp of send time, publisher and sequence).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(24..=131072))]
    pub payload: u32,
    /// How long publishers send, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many messages in total (over this process's publishers) instead of
    /// after --duration.
    #[arg(long)]
    pub messages: Option<u64>,
    /// `distinct`: publisher i sends on bench/RUN/i, subscriber j listens to
    /// bench/RUN/(j mod --topic-publishers); `shared`: everyone uses bench/RUN/all (each
    /// message fans out to every subscriber).
    #[arg(long, default_value = "distinct", value_parser = ["distinct", "shared"])]
    pub topics: String,
    /// Target total publish rate in messages/s over this process's publishers; unlimited by
    /// default, which measures saturation (latency then includes queueing).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Unacknowledged QoS 1/2 messages per publisher (the in-flight window).
    #[arg(long, default_value_t = 32)]
    pub inflight: usize,
    /// Which clients this process runs: `both`, or `publish` / `subscribe` for separate
    /// processes (give them the same --run and write --summary files to --combine).
    #[arg(long, default_value = "both", value_parser = ["both", "publish", "subscribe"])]
    pub role: String,
    /// The run id in topics, client ids and payload stamps (default: this process id).
    #[arg(long)]
    pub run: Option<String>,
    /// The first publisher id of this process (separate publisher processes).
    #[arg(long, default_value_t = 0)]
    pub first_publisher: u32,
    /// The first subscriber number of this process (separate subscriber processes).
    #[arg(long, default_value_t = 0)]
    pub first_subscriber: usize,
    /// Publisher ids in the whole run (default: --publishers); subscribers spread over them.
    #[arg(long)]
    pub topic_publishers: Option<usize>,
    /// How long subscribers wait with nothing new before the run ends.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Write this process's ledgers as JSON here (for --combine).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Merge these --summary files of one run into one report (no broker needed).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["connects", "idle", "churn"])]
    pub combine: Vec<PathBuf>,
    /// The broker's process id: report its CPU (and RSS in --churn).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// User name sent in CONNECT (none by default: anonymous).
    #[arg(long)]
    pub username: Option<String>,
    /// Password sent in CONNECT.
    #[arg(long)]
    pub password: Option<String>,
    /// Client ids are this prefix plus the run, a role and a number.
    #[arg(long, default_value = "bench-")]
    pub client_prefix: String,
    /// The first level of every topic: PREFIX/RUN/...
    #[arg(long, default_value = "bench")]
    pub topic_prefix: String,
    /// Connect-rate mode: this many CONNECT/CONNACK/DISCONNECT rounds.
    #[arg(long, conflicts_with_all = ["idle", "churn"])]
    pub connects: Option<usize>,
    /// Connect-rate mode: handshakes in progress at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
    /// Idle mode: open this many connections and hold them for --hold.
    #[arg(long, conflicts_with = "churn")]
    pub idle: Option<usize>,
    /// Idle mode over TLS: verify the broker with the CA certificates in this PEM file
    /// (e.g. `topicguard dev pki`'s ca.pem against a `tls://` listener).
    #[arg(long, value_name = "FILE", requires = "idle")]
    pub tls_ca: Option<PathBuf>,
    /// The name the broker's TLS certificate must carry (a DNS name or an IP address).
    #[arg(long, default_value = "localhost", requires = "tls_ca")]
    pub tls_server_name: String,
    /// How long idle mode holds its connections.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Churn mode: open this many connections and close them all, --rounds times.
    #[arg(long)]
    pub churn: Option<usize>,
    /// Subscribers keep their sessions (clean session 0 / a session expiry): against a
    /// broker with a durable store, this measures acknowledgements that wait for the disk.
    #[arg(long)]
    pub persistent_subscribers: bool,
    /// Rounds of churn mode.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
}

/// `10s`, `250ms`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

pub fn run(args: &BenchArgs, out: Out) -> Exit {
    if !args.combine.is_empty() {
        return finish(out, combine(&args.combine, out));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let message = format!("cannot start the tokio runtime: {error}");
            return out.error(&CliError::Runtime(message));
        }
    };
    let Some(broker) = args.broker else {
        return out.error(&CliError::Usage("--broker is required".into()));
    };
    let login = Login {
        broker,
        version: match args.mqtt.as_str() {
            "5" => ProtocolVersion::V5,
            _ => ProtocolVersion::V311,
        },
        username: args.username.clone(),
        password: args.password.clone(),
    };
    finish(
        out,
        runtime.block_on(async {
            if let Some(count) = args.connects {
                connects(&login, args, count, out).await
            } else if let Some(count) = args.idle {
                idle(&login, args, count, out).await
            } else if let Some(count) = args.churn {
                churn(&login, args, count, out).await
            } else {
                throughput(plan(args, login), args.summary.as_deref(), out).await
            }
        }),
    )
}

fn finish(out: Out, outcome: Result<Exit, LoadError>) -> Exit {
    outcome.unwrap_or_else(|error| {
        let exit = match error {
            LoadError::Plan(_) | LoadError::Summary { .. } => Exit::Usage,
            _ => Exit::Failure,
        };
        out.fail(&CliError::Runtime(error.to_string()), exit)
    })
}

/// Prints a result: its text lines, or in JSON mode its JSON document (one line).
fn result(out: Out, text: String, json: serde_json::Value) {
    if out.is_json() {
        out.json_line(&json);
    } else {
        out.print(&text);
    }
}

fn plan(args: &BenchArgs, login: Login) -> Plan {
    Plan {
        login,
        role: match args.role.as_str() {
            "publish" => Role::Publish,
            "subscribe" => Role::Subscribe,
            _ => Role::Both,
        },
        run: args
            .run
            .clone()
            .unwrap_or_else(|| std::process::id().to_string()),
        publishers: args.publishers,
        first_publisher: args.first_publisher,
        subscribers: args.subscribers,
        first_subscriber: args.first_subscriber,
        topic_publishers: args.topic_publishers.unwrap_or(args.publishers),
        topics: match args.topics.as_str() {
            "shared" => Topics::Shared,
            _ => Topics::Distinct,
        },
        qos: match args.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        },
        payload: args.payload as usize,
        window: args.inflight,
        rate: args.rate,
        duration: args.duration,
        messages: args.messages,
        drain: args.drain,
        client_prefix: args.client_prefix.clone(),
        topic_prefix: args.topic_prefix.clone(),
        broker_pid: args.broker_pid,
        progress: true,
        persistent_subscribers: args.persistent_subscribers,
    }
}

async fn throughput(plan: Plan, summary_file: Option<&Path>, out: Out) -> Result<Exit, LoadError> {
    let summary = load::throughput(plan).await?;
    report(&summary, summary_file, out)
}

fn report(summary: &Summary, file: Option<&Path>, out: Out) -> Result<Exit, LoadError> {
    if let Some(file) = file {
        summary.save(file)?;
    }
    let json = serde_json::json!({
        "event": "result",
        "mode": "throughput",
        "broke_a_promise": summary.broke_a_promise(),
        "summary": summary,
    });
    result(out, summary.render(), json);
    Ok(if summary.broke_a_promise() {
        Exit::Failure
    } else {
        Exit::Ok
    })
}

fn combine(files: &[PathBuf], out: Out) -> Result<Exit, LoadError> {
    let parts = files
        .iter()
        .map(|f| Summary::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    report(&Summary::combine(parts)?, None, out)
}

async fn connects(
    login: &Login,
    args: &BenchArgs,
    count: usize,
    out: Out,
) -> Result<Exit, LoadError> {
    let run = load::connections::connect_rate(
        login,
        &args.client_prefix,
        count,
        usize::from(args.concurrency),
        args.broker_pid,
    )
    .await?;
    let cores = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let per_cpu = run.per_broker_cpu_second();
    let text = format!(
        "{count} connects ({} at a time) in {:.2} s = {:.0} connects/s\n\
         RESULT mode=connects count={count} concurrency={} rate={:.0} tool_cpu={} tool_cores={} \
         tool_limited={} broker_cpu={} others_cpu={} per_broker_cpu_s={}\n",
        run.concurrency,
        run.seconds,
        run.rate(),
        run.concurrency,
        run.rate(),
        cores(run.cpu.tool),
        run.cpu.tool_cores,
        if run.cpu.tool_limited() { "yes" } else { "no" },
        cores(run.cpu.broker),
        cores(run.cpu.others()),
        per_cpu.map_or("-".to_string(), |v| format!("{v:.0}")),
    );
    let json = serde_json::json!({
        "event": "result", "mode": "connects", "count": count,
        "concurrency": run.concurrency, "seconds": run.seconds,
        "connects_per_second": run.rate(), "tool_cpu": run.cpu.tool,
        "tool_cores": run.cpu.tool_cores, "tool_limited": run.cpu.tool_limited(),
        "broker_cpu": run.cpu.broker, "others_cpu": run.cpu.others(),
        "per_broker_cpu_second": per_cpu,
    });
    result(out, text, json);
    Ok(Exit::Ok)
}

async fn idle(login: &Login, args: &BenchArgs, count: usize, out: Out) -> Result<Exit, LoadError> {
    let tls = match &args.tls_ca {
        Some(ca) => Some(load::tls::TlsLogin::new(ca, &args.tls_server_name)?),
        None => None,
    };
    let conns =
        load::connections::hold_idle(login, tls.as_ref(), &args.client_prefix, count).await?;
    out.log()(format!(
        "HOLDING {count} idle connections for {:?}",
        args.hold
    ));
    tokio::time::sleep(args.hold).await;
    drop(conns);
    let json = serde_json::json!({ "event": "result", "mode": "idle", "count": count });
    result(out, format!("RESULT mode=idle count={count}\n"), json);
    Ok(Exit::Ok)
}

async fn churn(login: &Login, args: &BenchArgs, count: usize, out: Out) -> Result<Exit, LoadError> {
    let rounds = args.rounds.max(1);
    let report =
        load::connections::churn(login, &args.client_prefix, count, rounds, args.broker_pid)
            .await?;
    let kib = |k: Option<u64>| k.map_or("-".to_string(), |k| k.to_string());
    let mut text = String::new();
    for (round, r) in report.iter().enumerate() {
        text.push_str(&format!(
            "ROUND {} open_rss_kib={} closed_rss_kib={}\n",
            round + 1,
            kib(r.open_kib),
            kib(r.closed_kib)
        ));
    }
    let first = report.first().and_then(|r| r.closed_kib);
    let last = report.last().and_then(|r| r.closed_kib);
    let growth = match (first, last) {
        (Some(first), Some(last)) => format!(
            "{:.1}",
            100.0 * (last as f64 - first as f64) / first.max(1) as f64
        ),
        _ => "-".into(),
    };
    text.push_str(&format!(
        "RESULT mode=churn count={count} rounds={rounds} first_closed_rss_kib={} last_closed_rss_kib={} growth_pct={growth}\n",
        kib(first),
        kib(last)
    ));
    let rounds_json: Vec<_> = report
        .iter()
        .map(|r| serde_json::json!({ "open_rss_kib": r.open_kib, "closed_rss_kib": r.closed_kib }))
        .collect();
    let json = serde_json::json!({
        "event": "result", "mode": "churn", "count": count, "rounds": rounds_json,
        "first_closed_rss_kib": first, "last_closed_rss_kib": last,
    });
    result(out, text, json);
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
