//! Connection load: connects per second, idle connections held open, and connection churn
//! with the broker's resident memory read after each round.
//!
//! [`connect_rate`] runs N CONNECT/CONNACK/DISCONNECT rounds, a given number at a time,
//! and reports the CPU the tool and (given its process id) the broker used, so a run says
//! whether the broker or the tool set the rate. [`hold_idle`] opens N connections (plain or
//! TLS) and holds them. [`churn`] opens N connections (64 handshakes at a
//! time), closes them all — DISCONNECT, then, once the broker has closed its side, a reset,
//! so neither side keeps TIME_WAIT sockets across rounds — and, given the broker's process
//! id, reads its RSS once it settles; R rounds. This module must never talk to anything
//! but the given broker address, and every wait in it is bounded.

use super::LoadError;
use super::client::{self, Conn, Login, TlsConn};
use super::tls::TlsLogin;
use super::usage::{CpuMeter, CpuUse, rss_kib};
use super::wait::STEP;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handshakes in progress at once while churning.
const CHURN_CONCURRENCY: usize = 64;

/// What a connect-rate run measured.
#[derive(Clone, Debug)]
pub struct ConnectRun {
    /// Connects completed (CONNACK received, DISCONNECT sent).
    pub count: usize,
    /// Handshakes in progress at once.
    pub concurrency: usize,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
    /// CPU used by the tool, the broker (if its process id was given) and the machine.
    pub cpu: CpuUse,
}

impl ConnectRun {
    /// Connects per wall-clock second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.seconds.max(1e-9)
    }

    /// Connects per second of broker CPU, if the broker's CPU was measured.
    pub fn per_broker_cpu_second(&self) -> Option<f64> {
        let broker = self.cpu.broker?;
        (broker > 0.0).then(|| self.rate() / broker)
    }
}

/// `count` connects, `concurrency` at a time (at least one); the rate and the CPU used.
pub async fn connect_rate(
    login: &Login,
    prefix: &str,
    count: usize,
    concurrency: usize,
    broker_pid: Option<u32>,
) -> Result<ConnectRun, LoadError> {
    let login = Arc::new(login.clone());
    let meter = CpuMeter::start(broker_pid);
    let started = Instant::now();
    let workers = concurrency.clamp(1, count.max(1));
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (login, prefix) = (login.clone(), prefix.to_string());
            tokio::spawn(async move {
                for round in (worker..count).step_by(workers) {
                    let mut conn = client::open(&login, &format!("{prefix}conn-{round}")).await?;
                    client::disconnect(&mut conn).await;
                }
                Ok::<(), LoadError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| LoadError::Plan(format!("a connect task failed: {e}")))??;
    }
    Ok(ConnectRun {
        count,
        concurrency: workers,
        seconds: started.elapsed().as_secs_f64(),
        cpu: meter.stop(),
    })
}

/// An idle connection held open: plain TCP or TLS.
#[derive(Debug)]
pub enum Held {
    /// Plain MQTT over TCP.
    Plain(Conn),
    /// MQTT over TLS.
    Tls(Box<TlsConn>),
}

/// Opens `count` connections one after another (over TLS when `tls` is given) and returns
/// them open.
pub async fn hold_idle(
    login: &Login,
    tls: Option<&TlsLogin>,
    prefix: &str,
    count: usize,
) -> Result<Vec<Held>, LoadError> {
    let mut conns = Vec::with_capacity(count);
    for index in 0..count {
        let client_id = format!("{prefix}idle-{index}");
        conns.push(match tls {
            None => Held::Plain(client::open(login, &client_id).await?),
            Some(tls) => Held::Tls(Box::new(client::open_tls(login, tls, &client_id).await?)),
        });
        if index % 1000 == 999 {
            eprint!("\ropened {} idle connections   ", index + 1);
        }
    }
    eprintln!();
    Ok(conns)
}

/// The broker's resident memory after each churn round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChurnRound {
    /// With every connection of the round open.
    pub open_kib: Option<u64>,
    /// After every connection of the round closed, once settled.
    pub closed_kib: Option<u64>,
}

/// `rounds` rounds of opening `count` connections and closing them all.
pub async fn churn(
    login: &Login,
    prefix: &str,
    count: usize,
    rounds: usize,
    broker_pid: Option<u32>,
) -> Result<Vec<ChurnRound>, LoadError> {
    let mut report = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let conns = open_many(login, &format!("{prefix}churn{round}-"), count).await?;
        let open_kib = broker_pid.and_then(rss_kib);
        close_all(conns).await;
        let closed_kib = match broker_pid {
            Some(pid) => settled_rss(pid).await,
            None => None,
        };
        eprintln!(
            "round {}: {count} opened and closed; broker RSS open {} KiB, closed {} KiB",
            round + 1,
            open_kib.map_or("-".into(), |k| k.to_string()),
            closed_kib.map_or("-".into(), |k| k.to_string())
        );
        report.push(ChurnRound {
            open_kib,
            closed_kib,
        });
    }
    Ok(report)
}

async fn open_many(login: &Login, prefix: &str, count: usize) -> Result<Vec<Conn>, LoadError> {
    let ids: Vec<String> = (0..count).map(|i| format!("{prefix}{i}")).collect();
    let results: Vec<Result<Conn, LoadError>> = futures_util::stream::iter(ids)
        .map(|id| async move { client::open(login, &id).await })
        .buffer_unordered(CHURN_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// DISCONNECT on every connection, then waits (bounded) for the broker to close each and
/// resets it.
async fn close_all(conns: Vec<Conn>) {
    futures_util::stream::iter(conns)
        .for_each_concurrent(CHURN_CONCURRENCY * 4, |mut conn| async move {
            client::disconnect(&mut conn).await;
            let _ =
                tokio::time::timeout(STEP, async { while let Some(Ok(_)) = conn.next().await {} })
                    .await;
            let _ = conn.get_ref().set_zero_linger();
        })
        .await;
}

/// The broker's RSS once it changed by less than 1% over 200 ms (at most 5 s).
async fn settled_rss(pid: u32) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = rss_kib(pid)?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rss_kib(pid)?;
        if now.abs_diff(last) * 100 <= last || Instant::now() >= deadline {
            return Some(now);
        }
        last = now;
    }
}
