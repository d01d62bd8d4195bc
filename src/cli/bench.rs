//! `topicguard bench`: a load generator for any MQTT 3.1.1 broker on a loopback address.
//!
//! Three modes. Throughput (default): M subscribers subscribe first, then N publishers
//! send `--payload`-byte messages at QoS 0 or 1 (QoS 1 with a window of `--inflight`
//! unacknowledged messages each) for `--duration` or `--messages` in total; each payload
//! starts with the send time, so subscribers measure latency; the report gives messages/s
//! sent and received and latency p50/p90/p99/max. `--connects N`: N sequential
//! CONNECT/CONNACK/DISCONNECT rounds (8 at a time), reported as connects/s. `--idle N`:
//! opens N connections and holds them for `--hold` (the caller measures the broker's
//! memory). A progress line goes to stderr each second; the last stdout line is
//! `RESULT key=value ...` for scripts. This module must never talk to anything but the
//! given broker address, and every wait in it is bounded.

use super::output::Exit;
use crate::broker::codec::{
    Ack, CodecLimits, Connect, Disconnect, MqttCodec, Packet, Properties, ProtocolVersion, Publish,
    QoS, ReasonCode, Subscribe, SubscribeFilter, SubscriptionOptions,
};
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// Bound on any single network step (connect, CONNACK, SUBACK, PUBACK).
const STEP: Duration = Duration::from_secs(10);
/// Latency samples kept per subscriber.
const MAX_SAMPLES: usize = 4_000_000;
/// Bound on one batch of publishes being taken by a (possibly saturated) broker.
const WRITE_LIMIT: Duration = Duration::from_secs(60);
/// How long subscribers may keep draining after the publishers stop.
const DRAIN: Duration = Duration::from_secs(3);

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Broker address (host:port), e.g. 127.0.0.1:1883.
    #[arg(long)]
    pub broker: SocketAddr,
    /// Number of publishing connections.
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// Number of subscribing connections.
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// QoS of publishes and subscriptions: 0 or 1.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// Payload size in bytes (at least 8: the send timestamp).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=131072))]
    pub payload: u32,
    /// How long publishers send, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many messages in total instead of after --duration.
    #[arg(long)]
    pub messages: Option<u64>,
    /// `distinct`: publisher i sends on bench/RUN/i, subscriber j listens to
    /// bench/RUN/(j mod N); `shared`: everyone uses bench/RUN/all (each message fans out to
    /// every subscriber). RUN is the process id.
    #[arg(long, default_value = "distinct", value_parser = ["distinct", "shared"])]
    pub topics: String,
    /// Target total publish rate in messages/s (paced every 10 ms); unlimited by default,
    /// which measures saturation throughput (latency then includes the backlog).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Unacknowledged QoS 1 messages per publisher.
    #[arg(long, default_value_t = 32)]
    pub inflight: usize,
    /// User name sent in CONNECT (none by default: anonymous).
    #[arg(long)]
    pub username: Option<String>,
    /// Password sent in CONNECT.
    #[arg(long)]
    pub password: Option<String>,
    /// Client ids are this prefix plus a role and a number.
    #[arg(long, default_value = "bench-")]
    pub client_prefix: String,
    /// Connect-rate mode: this many CONNECT/CONNACK/DISCONNECT rounds.
    #[arg(long, conflicts_with = "idle")]
    pub connects: Option<usize>,
    /// Idle mode: open this many connections and hold them for --hold.
    #[arg(long)]
    pub idle: Option<usize>,
    /// How long idle mode holds its connections.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub hold: Duration,
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

type Client = Framed<TcpStream, MqttCodec>;

/// What every task shares.
struct Shared {
    args: BenchArgs,
    base: Instant,
    sent: AtomicU64,
    received: AtomicU64,
    /// Nanoseconds after `base` of the first and the last message received.
    first_received: AtomicU64,
    last_received: AtomicU64,
    stop_publishing: CancellationToken,
    stop_receiving: CancellationToken,
}

pub fn run(args: &BenchArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return Exit::Usage;
        }
    };
    let args = clone_args(args);
    let result = runtime.block_on(async move {
        if let Some(count) = args.connects {
            connect_rate(args, count).await
        } else if let Some(count) = args.idle {
            hold_idle(args, count).await
        } else {
            throughput(args).await
        }
    });
    match result {
        Ok(()) => Exit::Ok,
        Err(error) => {
            eprintln!("error: {error}");
            Exit::Failure
        }
    }
}

fn clone_args(args: &BenchArgs) -> BenchArgs {
    BenchArgs {
        username: args.username.clone(),
        password: args.password.clone(),
        client_prefix: args.client_prefix.clone(),
        topics: args.topics.clone(),
        ..*args
    }
}

fn qos_of(args: &BenchArgs) -> QoS {
    if args.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(STEP, future)
        .await
        .map_err(|_| format!("{what}: no answer within {STEP:?}"))
}

async fn next_packet(client: &mut Client, what: &str) -> Result<Packet, String> {
    match within(what, client.next()).await? {
        Some(Ok(packet)) => Ok(packet),
        Some(Err(error)) => Err(format!("{what}: {error}")),
        None => Err(format!("{what}: the broker closed the connection")),
    }
}

/// Opens a connection and completes CONNECT/CONNACK.
async fn open(args: &BenchArgs, client_id: &str) -> Result<Client, String> {
    let what = format!("connect {client_id}");
    let stream = within(&what, TcpStream::connect(args.broker))
        .await?
        .map_err(|e| format!("{what}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let codec = MqttCodec::client(ProtocolVersion::V311, CodecLimits::default());
    let mut client = Framed::new(stream, codec);
    let connect = Connect {
        version: ProtocolVersion::V311,
        clean_start: true,
        keep_alive: 600,
        client_id: client_id.into(),
        will: None,
        username: args.username.clone(),
        password: args.password.clone().map(|p| Bytes::from(p.into_bytes())),
        properties: Properties::default(),
    };
    within(&what, client.send(Packet::Connect(Box::new(connect))))
        .await?
        .map_err(|e| format!("{what}: {e}"))?;
    match next_packet(&mut client, &what).await? {
        Packet::ConnAck(ack) if ack.code == 0 => Ok(client),
        Packet::ConnAck(ack) => Err(format!("{what}: refused with CONNACK code {}", ack.code)),
        other => Err(format!("{what}: expected CONNACK, got {other:?}")),
    }
}

/// Topics carry this process's id, so a broker still draining an earlier run's backlog
/// cannot deliver stale messages into this run's figures.
fn topic_for_publisher(args: &BenchArgs, index: usize) -> String {
    let run = std::process::id();
    match args.topics.as_str() {
        "shared" => format!("bench/{run}/all"),
        _ => format!("bench/{run}/{index}"),
    }
}

fn filter_for_subscriber(args: &BenchArgs, index: usize) -> String {
    topic_for_publisher(args, index % args.publishers.max(1))
}

async fn subscribe(client: &mut Client, filter: &str, qos: QoS) -> Result<(), String> {
    let subscribe = Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter {
            filter: filter.into(),
            options: SubscriptionOptions::qos(qos),
        }],
        properties: Properties::default(),
    };
    let what = format!("subscribe {filter}");
    within(&what, client.send(Packet::Subscribe(subscribe)))
        .await?
        .map_err(|e| format!("{what}: {e}"))?;
    match next_packet(client, &what).await? {
        Packet::SubAck(ack) if ack.reasons.iter().all(|r| !r.is_failure()) => Ok(()),
        other => Err(format!("{what}: refused: {other:?}")),
    }
}

// ---- throughput ------------------------------------------------------------------------

async fn throughput(args: BenchArgs) -> Result<(), String> {
    if args.publishers == 0 || args.subscribers == 0 {
        return Err("--publishers and --subscribers must be at least 1".into());
    }
    let shared = Arc::new(Shared {
        args,
        base: Instant::now(),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        first_received: AtomicU64::new(0),
        last_received: AtomicU64::new(0),
        stop_publishing: CancellationToken::new(),
        stop_receiving: CancellationToken::new(),
    });
    let subscribers = start_subscribers(&shared).await?;
    let started = Instant::now();
    let publishers: Vec<_> = (0..shared.args.publishers)
        .map(|i| tokio::spawn(publisher(shared.clone(), i)))
        .collect();
    let stopper = tokio::spawn(stop_after_duration(shared.clone()));
    let progress = tokio::spawn(progress(shared.clone(), started));
    for publisher in publishers {
        publisher.await.map_err(|e| e.to_string())??;
    }
    let publishing = started.elapsed();
    stopper.abort();
    drain(&shared).await;
    shared.stop_receiving.cancel();
    let mut samples = Vec::new();
    for subscriber in subscribers {
        samples.extend(subscriber.await.map_err(|e| e.to_string())??);
    }
    progress.abort();
    eprintln!();
    report(&shared, publishing, started.elapsed(), samples);
    Ok(())
}

async fn start_subscribers(
    shared: &Arc<Shared>,
) -> Result<Vec<tokio::task::JoinHandle<Result<Vec<u32>, String>>>, String> {
    let mut tasks = Vec::new();
    for index in 0..shared.args.subscribers {
        let id = format!("{}sub-{index}", shared.args.client_prefix);
        let mut client = open(&shared.args, &id).await?;
        let filter = filter_for_subscriber(&shared.args, index);
        subscribe(&mut client, &filter, qos_of(&shared.args)).await?;
        tasks.push(tokio::spawn(subscriber(shared.clone(), client)));
    }
    Ok(tasks)
}

async fn stop_after_duration(shared: Arc<Shared>) {
    if shared.args.messages.is_none() {
        tokio::time::sleep(shared.args.duration).await;
        shared.stop_publishing.cancel();
    }
}

/// Messages this publisher sends, or None for "until told to stop".
fn quota(args: &BenchArgs, index: usize) -> Option<u64> {
    let total = args.messages?;
    let publishers = args.publishers as u64;
    Some(total / publishers + u64::from((index as u64) < total % publishers))
}

fn payload(shared: &Shared) -> Bytes {
    let mut bytes = vec![0u8; shared.args.payload as usize];
    let nanos = shared.base.elapsed().as_nanos() as u64;
    bytes[..8].copy_from_slice(&nanos.to_be_bytes());
    Bytes::from(bytes)
}

async fn publisher(shared: Arc<Shared>, index: usize) -> Result<(), String> {
    let id = format!("{}pub-{index}", shared.args.client_prefix);
    let mut client = open(&shared.args, &id).await?;
    let topic = topic_for_publisher(&shared.args, index);
    let limit = quota(&shared.args, index).unwrap_or(u64::MAX);
    let qos = qos_of(&shared.args);
    let window = shared.args.inflight.clamp(1, 65_000);
    let (mut sent, mut inflight, mut next_id) = (0u64, 0usize, 0u16);
    let mut pacer = Pacer::new(&shared.args);
    while sent < limit && !shared.stop_publishing.is_cancelled() {
        let room = if qos == QoS::AtMostOnce {
            32
        } else {
            window - inflight
        };
        let room = pacer.allow(room).await;
        let batch = room.min(usize::try_from(limit - sent).unwrap_or(usize::MAX));
        let sending = send_batch(&shared, &mut client, &topic, batch, &mut next_id);
        tokio::select! {
            outcome = tokio::time::timeout(WRITE_LIMIT, sending) => outcome
                .map_err(|_| format!("publish: the broker took nothing for {WRITE_LIMIT:?}"))??,
            // A broker far behind blocks the write; stop without waiting for it.
            _ = shared.stop_publishing.cancelled() => return Ok(()),
        }
        sent += batch as u64;
        shared.sent.fetch_add(batch as u64, Ordering::Relaxed);
        if qos != QoS::AtMostOnce {
            inflight += batch;
            inflight -= await_acks(&mut client, inflight, window).await?;
        }
    }
    await_acks(&mut client, inflight, 1).await?;
    let _ = within(
        "disconnect",
        client.send(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS))),
    )
    .await;
    Ok(())
}

/// Writes `batch` PUBLISH packets and flushes them.
async fn send_batch(
    shared: &Shared,
    client: &mut Client,
    topic: &str,
    batch: usize,
    next_id: &mut u16,
) -> Result<(), String> {
    let qos = qos_of(&shared.args);
    for _ in 0..batch {
        *next_id = next_id.wrapping_add(1).max(1);
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.to_string(),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { *next_id },
            payload: payload(shared),
            properties: Properties::default(),
        };
        client
            .feed(Packet::Publish(publish))
            .await
            .map_err(|e| format!("publish: {e}"))?;
    }
    client.flush().await.map_err(|e| format!("publish: {e}"))
}

/// Paces one publisher to its share of `--rate`: at most `per_tick` messages per 10 ms.
struct Pacer {
    per_tick: Option<usize>,
    ticker: tokio::time::Interval,
    left: usize,
}

impl Pacer {
    fn new(args: &BenchArgs) -> Pacer {
        let publishers = args.publishers.max(1) as u64;
        let per_tick = args
            .rate
            .map(|rate| ((rate / publishers / 100).max(1)) as usize);
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Pacer {
            per_tick,
            ticker,
            left: 0,
        }
    }

    /// How many of `want` messages may go now (waiting for the next tick if none).
    async fn allow(&mut self, want: usize) -> usize {
        let Some(per_tick) = self.per_tick else {
            return want;
        };
        if self.left == 0 {
            self.ticker.tick().await;
            self.left = per_tick;
        }
        let granted = want.min(self.left);
        self.left -= granted;
        granted
    }
}

/// Waits for PUBACKs until fewer than `window` are outstanding; returns how many came.
async fn await_acks(client: &mut Client, inflight: usize, window: usize) -> Result<usize, String> {
    let mut acked = 0;
    while inflight - acked >= window && inflight > acked {
        match next_packet(client, "PUBACK").await? {
            Packet::PubAck(_) => acked += 1,
            other => return Err(format!("expected PUBACK, got {other:?}")),
        }
    }
    Ok(acked)
}

async fn subscriber(shared: Arc<Shared>, mut client: Client) -> Result<Vec<u32>, String> {
    let mut samples = Vec::new();
    loop {
        let frame = match client.next().now_or_never() {
            Some(frame) => frame,
            None => {
                within("ack", client.flush())
                    .await?
                    .map_err(|e| format!("ack: {e}"))?;
                tokio::select! {
                    frame = client.next() => frame,
                    _ = shared.stop_receiving.cancelled() => return Ok(samples),
                }
            }
        };
        let publish = match frame {
            Some(Ok(Packet::Publish(publish))) => publish,
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(format!("subscriber: {error}")),
            None => return Err("subscriber: the broker closed the connection".into()),
        };
        if publish.qos == QoS::AtLeastOnce {
            let ack = Packet::PubAck(Ack::new(publish.packet_id));
            within("ack", client.feed(ack))
                .await?
                .map_err(|e| format!("ack: {e}"))?;
        }
        shared.received.fetch_add(1, Ordering::Relaxed);
        let now = shared.base.elapsed().as_nanos() as u64;
        let _ =
            shared
                .first_received
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        shared.last_received.fetch_max(now, Ordering::Relaxed);
        if samples.len() < MAX_SAMPLES {
            samples.push(latency_micros(&shared, &publish.payload));
        }
    }
}

fn latency_micros(shared: &Shared, payload: &[u8]) -> u32 {
    let mut stamp = [0u8; 8];
    if let Some(head) = payload.get(..8) {
        stamp.copy_from_slice(head);
    }
    let now = shared.base.elapsed().as_nanos() as u64;
    let nanos = now.saturating_sub(u64::from_be_bytes(stamp));
    u32::try_from(nanos / 1000).unwrap_or(u32::MAX)
}

/// Waits until receiving stops for 300 ms (at most DRAIN).
async fn drain(shared: &Shared) {
    let deadline = Instant::now() + DRAIN;
    let mut last = shared.received.load(Ordering::Relaxed);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = shared.received.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}

async fn progress(shared: Arc<Shared>, started: Instant) {
    let mut previous = 0;
    for second in 1u64.. {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let received = shared.received.load(Ordering::Relaxed);
        let sent = shared.sent.load(Ordering::Relaxed);
        eprint!(
            "\r[{:>5.1}s #{second}] sent {sent:>10}  received {received:>10}  ({:>8} msg/s)   ",
            started.elapsed().as_secs_f64(),
            received - previous
        );
        previous = received;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

fn report(shared: &Shared, publishing: Duration, total: Duration, mut samples: Vec<u32>) {
    samples.sort_unstable();
    let args = &shared.args;
    let sent = shared.sent.load(Ordering::Relaxed);
    let received = shared.received.load(Ordering::Relaxed);
    let send_rate = sent as f64 / publishing.as_secs_f64().max(1e-9);
    let last = shared.last_received.load(Ordering::Relaxed);
    let window = last - shared.first_received.load(Ordering::Relaxed).min(last);
    let receive_rate = received as f64 / (window as f64 / 1e9).max(1e-9);
    let (p50, p90, p99) = (
        percentile(&samples, 50.0),
        percentile(&samples, 90.0),
        percentile(&samples, 99.0),
    );
    let max = f64::from(samples.last().copied().unwrap_or(0)) / 1000.0;
    println!(
        "{} publishers -> {} subscribers, QoS {}, {}-byte payloads, {} topics",
        args.publishers, args.subscribers, args.qos, args.payload, args.topics
    );
    println!(
        "sent     {sent:>10} in {:.2} s = {send_rate:.0} msg/s",
        publishing.as_secs_f64()
    );
    println!(
        "received {received:>10} in {:.2} s (first to last; {:.2} s with drain) = {receive_rate:.0} msg/s",
        window as f64 / 1e9,
        total.as_secs_f64()
    );
    println!("latency  p50 {p50:.2} ms  p90 {p90:.2} ms  p99 {p99:.2} ms  max {max:.2} ms");
    println!(
        "RESULT mode=throughput qos={} rate={} sent={sent} received={received} send_rate={send_rate:.0} receive_rate={receive_rate:.0} p50_ms={p50:.2} p90_ms={p90:.2} p99_ms={p99:.2} max_ms={max:.2}",
        args.qos,
        args.rate.map_or("max".to_string(), |r| r.to_string())
    );
}

// ---- connects/s and idle connections -----------------------------------------------------

async fn connect_rate(args: BenchArgs, count: usize) -> Result<(), String> {
    let args = Arc::new(args);
    let started = Instant::now();
    let workers = 8.min(count.max(1));
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let args = args.clone();
            tokio::spawn(async move {
                for round in (worker..count).step_by(workers) {
                    let id = format!("{}conn-{round}", args.client_prefix);
                    let mut client = open(&args, &id).await?;
                    let _ = within(
                        "disconnect",
                        client.send(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS))),
                    )
                    .await;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = count as f64 / elapsed.max(1e-9);
    println!("{count} connects in {elapsed:.2} s = {rate:.0} connects/s");
    println!("RESULT mode=connects count={count} rate={rate:.0}");
    Ok(())
}

async fn hold_idle(args: BenchArgs, count: usize) -> Result<(), String> {
    let mut clients = Vec::with_capacity(count);
    for index in 0..count {
        let id = format!("{}idle-{index}", args.client_prefix);
        clients.push(open(&args, &id).await?);
        if index % 1000 == 999 {
            eprint!("\ropened {} idle connections   ", index + 1);
        }
    }
    eprintln!();
    println!("HOLDING {count} idle connections for {:?}", args.hold);
    tokio::time::sleep(args.hold).await;
    println!("RESULT mode=idle count={count}");
    Ok(())
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

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile(&sorted, 50.0), 51.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
