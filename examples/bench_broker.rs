//! The broker as `scripts/bench-broker` runs it: `serve` on 127.0.0.1 with a generated
//! policy of `--rules N` rules and the anonymous authenticator.
//!
//! The policy declares an anonymous identity `bench` (client ids `bench-...`), allows it
//! publish/subscribe/receive on `bench/#`, and pads the rule list with per-client
//! pattern rules on other topics (`site/<i>/{client}/telemetry` and the like), the same
//! shape as the mosquitto ACL the script writes. `--metrics-port P` serves the Prometheus
//! counters on 127.0.0.1:P. `--skip-receive-checks` sets the
//! measurement-only flag that turns the per-delivery RECEIVE check off. `--data-dir DIR`
//! opens the durable store there (as `serve --data-dir`). `--admission-depth N` sets the
//! queue depth at which QoS 1/2 publishers wait (`BrokerConfig::admission_depth`; 1000,
//! the queue bound, is the rule before the admission depth existed). Prints
//! `LISTENING <addr>` once bound and runs until SIGTERM or SIGINT. This
//! example must never listen anywhere but 127.0.0.1.

use arc_swap::ArcSwap;
use std::sync::Arc;
use topicguard::broker::observe::serve_metrics;
use topicguard::broker::{AnonymousAuthenticator, BrokerConfig, SharedEngine, serve};
use topicguard::{Engine, Policy, Source};

struct Options {
    port: u16,
    rules: usize,
    skip_receive_checks: bool,
    metrics_port: Option<u16>,
    data_dir: Option<std::path::PathBuf>,
    admission_depth: Option<usize>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        rules: 10,
        skip_receive_checks: false,
        metrics_port: None,
        data_dir: None,
        admission_depth: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                options.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--rules" => {
                options.rules = value("--rules")?
                    .parse()
                    .map_err(|e| format!("--rules: {e}"))?
            }
            "--admission-depth" => {
                let depth = value("--admission-depth")?;
                options.admission_depth = Some(
                    depth
                        .parse()
                        .map_err(|e| format!("--admission-depth: {e}"))?,
                );
            }
            "--skip-receive-checks" => options.skip_receive_checks = true,
            "--data-dir" => options.data_dir = Some(value("--data-dir")?.into()),
            "--metrics-port" => {
                let port = value("--metrics-port")?;
                options.metrics_port =
                    Some(port.parse().map_err(|e| format!("--metrics-port: {e}"))?);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

/// A policy with `rules` rules in total (at least 3).
pub fn generated_policy(rules: usize) -> String {
    let mut text = String::from(
        "identity bench from anonymous {\n    client \"bench-{+cid}\"\n}\n\
         allow bench connect\n\
         allow bench publish, subscribe, receive \"bench/#\"\n",
    );
    for i in 0..rules.saturating_sub(2) {
        let rule = match i % 3 {
            0 => format!("allow bench publish \"site/{i}/{{client}}/telemetry\"\n"),
            1 => format!("allow bench subscribe, receive \"site/{i}/{{client}}/commands/#\"\n"),
            _ => format!("deny bench receive \"site/{i}/+/secret/#\"\n"),
        };
        text.push_str(&rule);
    }
    text
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let options = options()?;
    let source = Source::new(
        format!("bench-{}.policy", options.rules),
        generated_policy(options.rules),
    );
    let policy = Policy::from_source(&source).map_err(|d| format!("generated policy: {d}"))?;
    let engine = Engine::new(&policy.checked).map_err(|e| format!("compile: {e}"))?;
    let engine: SharedEngine = Arc::new(ArcSwap::from_pointee(engine));
    let store = match &options.data_dir {
        Some(dir) => Some(topicguard::broker::store::Store::open(dir).map_err(|e| e.to_string())?),
        None => None,
    };
    let defaults = BrokerConfig::default();
    let config = BrokerConfig {
        store,
        admission_depth: options.admission_depth.unwrap_or(defaults.admission_depth),
        max_connections: 20_000,
        skip_receive_checks_for_measurement: options.skip_receive_checks,
        ..defaults
    };
    if let Some(port) = options.metrics_port {
        let metrics = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("bind metrics 127.0.0.1:{port}: {e}"))?;
        let counters = config.observer.metrics().clone();
        tokio::spawn(serve_metrics(
            metrics,
            counters,
            std::future::pending::<()>(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|e| format!("bind 127.0.0.1:{}: {e}", options.port))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("LISTENING {address} rules={}", options.rules);
    let shutdown = async {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
    };
    serve(
        listener,
        engine,
        config,
        Arc::new(AnonymousAuthenticator),
        shutdown,
    )
    .await;
    Ok(())
}
