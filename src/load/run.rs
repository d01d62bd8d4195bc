//! One throughput run: subscribers connect first, then publishers send until their quota
//! or the duration, then wait for what is in flight; subscribers keep receiving until
//! every expected message came or nothing new came for `drain`.
//!
//! A subscriber-only process cannot know what was sent: it waits (bounded) for the first
//! message, then until nothing new came for `drain`. Every phase is bounded, so a broker
//! that stops answering ends the run with what was seen. This module must never end a
//! run while the publishers may still be owed acknowledgements, except by their bounds.

use super::ledger::{PublisherLedger, SubscriberLedger};
use super::report::{ProcessUse, Summary};
use super::usage::CpuMeter;
use super::{LoadError, Plan, Role, Shared, publisher, stamp, subscriber};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest a subscriber-only process waits for the first message.
const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(120);
/// Longest the subscribers may keep draining after the publishers finished.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// Runs `plan` and returns what this process saw.
pub async fn throughput(plan: Plan) -> Result<Summary, LoadError> {
    throughput_signalling(plan, None).await
}

/// [`throughput`], telling `subscribed` once every subscriber of this process is
/// subscribed (so a separate publishing process may start). With progress on, the same is
/// printed to stderr as a `SUBSCRIBED n` line.
pub async fn throughput_signalling(
    plan: Plan,
    subscribed: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Summary, LoadError> {
    plan.validate()?;
    let shared = Arc::new(Shared {
        run_tag: stamp::run_tag(&plan.run),
        plan,
        stop_publishing: CancellationToken::new(),
        stop_receiving: CancellationToken::new(),
        sent: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        received: AtomicU64::new(0),
    });
    let plan = &shared.plan;
    let meter = CpuMeter::start(plan.broker_pid);
    let subscribers = match plan.role {
        Role::Publish => Vec::new(),
        _ => start_subscribers(&shared).await?,
    };
    if plan.progress && !subscribers.is_empty() {
        eprintln!("SUBSCRIBED {}", subscribers.len());
    }
    if let Some(subscribed) = subscribed {
        let _ = subscribed.send(());
    }
    let progress = plan
        .progress
        .then(|| tokio::spawn(progress(shared.clone())));
    let started = Instant::now();
    let publishers = match plan.role {
        Role::Subscribe => Vec::new(),
        _ => start_publishers(&shared),
    };
    let mut publisher_ledgers = Vec::new();
    for task in publishers {
        publisher_ledgers.push(joined(task).await?);
    }
    let publish_seconds = (plan.role != Role::Subscribe).then(|| started.elapsed().as_secs_f64());
    let subscriber_ledgers = finish_receiving(&shared, &publisher_ledgers, subscribers).await?;
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    let process = ProcessUse {
        role: role_name(plan.role).to_string(),
        cpu: meter.stop(),
    };
    Ok(Summary::new(
        plan,
        publisher_ledgers,
        subscriber_ledgers,
        publish_seconds,
        vec![process],
    ))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Both => "publish+subscribe",
        Role::Publish => "publish",
        Role::Subscribe => "subscribe",
    }
}

/// Lets the subscribers receive what is still coming (see the module docs), then stops
/// them and collects their ledgers.
async fn finish_receiving(
    shared: &Shared,
    publishers: &[PublisherLedger],
    subscribers: Vec<JoinHandle<SubscriberLedger>>,
) -> Result<Vec<SubscriberLedger>, LoadError> {
    match shared.plan.role {
        Role::Both => {
            let expected = expected_deliveries(&shared.plan, publishers);
            drain_until(shared, Some(expected)).await;
        }
        Role::Subscribe => {
            wait_for_first(shared).await;
            drain_until(shared, None).await;
        }
        Role::Publish => {}
    }
    shared.stop_receiving.cancel();
    let mut ledgers = Vec::new();
    for task in subscribers {
        ledgers.push(joined(task).await?);
    }
    Ok(ledgers)
}

async fn joined<T>(task: JoinHandle<T>) -> Result<T, LoadError> {
    task.await
        .map_err(|e| LoadError::Plan(format!("a load task failed: {e}")))
}

async fn start_subscribers(
    shared: &Arc<Shared>,
) -> Result<Vec<JoinHandle<SubscriberLedger>>, LoadError> {
    let plan = &shared.plan;
    let mut tasks = Vec::new();
    for index in plan.first_subscriber..plan.first_subscriber + plan.subscribers {
        let conn = subscriber::connect(shared, index).await?;
        tasks.push(tokio::spawn(subscriber::run(shared.clone(), index, conn)));
    }
    Ok(tasks)
}

fn start_publishers(shared: &Arc<Shared>) -> Vec<JoinHandle<PublisherLedger>> {
    let plan = &shared.plan;
    if plan.messages.is_none() {
        let (stop, duration) = (shared.stop_publishing.clone(), plan.duration);
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stop.cancel();
        });
    }
    (0..plan.publishers as u32)
        .map(|offset| {
            let id = plan.first_publisher + offset;
            tokio::spawn(publisher::run(shared.clone(), id))
        })
        .collect()
}

/// Deliveries this process's subscribers should see from this process's publishers,
/// refused messages aside.
fn expected_deliveries(plan: &Plan, publishers: &[PublisherLedger]) -> u64 {
    let range = plan.first_subscriber..plan.first_subscriber + plan.subscribers;
    range
        .flat_map(|index| plan.expected_publishers(index))
        .filter_map(|id| publishers.iter().find(|p| p.id == id))
        .map(|p| p.sent - p.refused.len())
        .sum()
}

/// Waits until `expected` unique messages were received, or nothing new came for
/// `drain`, at most `DRAIN_LIMIT`.
async fn drain_until(shared: &Shared, expected: Option<u64>) {
    let deadline = Instant::now() + DRAIN_LIMIT;
    let step = shared
        .plan
        .drain
        .clamp(Duration::from_millis(10), Duration::from_millis(100));
    let mut last = shared.received.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        let now = shared.received.load(Ordering::Relaxed);
        if expected.is_some_and(|e| now >= e) {
            return;
        }
        if now != last {
            (last, quiet_since) = (now, Instant::now());
        } else if quiet_since.elapsed() >= shared.plan.drain {
            return;
        }
        tokio::time::sleep(step).await;
    }
}

/// Waits (bounded) until the first message arrives.
async fn wait_for_first(shared: &Shared) {
    let deadline = Instant::now() + FIRST_MESSAGE_WAIT + shared.plan.duration;
    while shared.received.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn progress(shared: Arc<Shared>) {
    let started = Instant::now();
    let mut previous = 0;
    for second in 1u64.. {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let received = shared.received.load(Ordering::Relaxed);
        let sent = shared.sent.load(Ordering::Relaxed);
        let acked = shared.acked.load(Ordering::Relaxed);
        eprint!(
            "\r[{:>5.1}s #{second}] sent {sent:>10}  acked {acked:>10}  received {received:>10}  ({:>8} msg/s)   ",
            started.elapsed().as_secs_f64(),
            received - previous
        );
        previous = received;
    }
}
