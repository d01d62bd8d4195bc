//! A run's [`Summary`]: the ledgers of this process's publishers and subscribers and what
//! the processes cost, as JSON for merging separate processes, and as the text report
//! ending in one `RESULT key=value ...` line for scripts.
//!
//! Rates: sent is messages over the publishing time (first PUBLISH to last
//! acknowledgement); received is unique messages over the time from the first to the last
//! receipt. Latency is from the send time stamped in the payload to receipt (first
//! receipts only). Loss is the [`tally`] over every expected delivery. This module must
//! never merge two summaries of different runs or settings.

use super::LoadError;
use super::histogram::Histogram;
use super::ledger::{PublisherLedger, SubscriberLedger, Tally, tally};
use super::usage::CpuUse;
use super::{Plan, Topics};
use crate::mqtt::codec::ProtocolVersion;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;

/// What one process cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessUse {
    pub(crate) role: String,
    pub(crate) cpu: CpuUse,
}

/// Everything a run (or one process of it) saw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub(crate) run: String,
    pub(crate) qos: u8,
    pub(crate) mqtt: String,
    pub(crate) payload: usize,
    pub(crate) window: usize,
    pub(crate) topics: String,
    pub(crate) rate: Option<u64>,
    /// Every publisher's ledger.
    pub publishers: Vec<PublisherLedger>,
    /// Every subscriber's ledger.
    pub subscribers: Vec<SubscriberLedger>,
    /// Seconds from the first PUBLISH to the last acknowledgement (publishing processes).
    pub publish_seconds: Option<f64>,
    /// CPU and memory of each process.
    pub processes: Vec<ProcessUse>,
}

/// The figures of a summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Messages sent.
    pub sent: u64,
    /// Messages acknowledged by the broker.
    pub acked: u64,
    pub(crate) refused: u64,
    pub(crate) received: u64,
    pub(crate) send_rate: f64,
    pub(crate) receive_rate: f64,
    pub(crate) receive_seconds: f64,
    /// Latency percentiles and maximum, in ms.
    pub p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    /// Delivered, duplicated and reordered messages.
    pub tally: Tally,
    /// Messages received per second of broker CPU (if the broker's CPU was measured): the
    /// figure that compares brokers even when other processes took the cores.
    pub per_broker_cpu_second: Option<f64>,
    /// Publishers and subscribers that stopped early, with why.
    pub errors: Vec<String>,
}

impl Summary {
    pub(crate) fn new(
        plan: &Plan,
        publishers: Vec<PublisherLedger>,
        subscribers: Vec<SubscriberLedger>,
        publish_seconds: Option<f64>,
        processes: Vec<ProcessUse>,
    ) -> Summary {
        Summary {
            run: plan.run.clone(),
            qos: plan.qos as u8,
            mqtt: match plan.login.version {
                ProtocolVersion::V311 => "3.1.1".into(),
                ProtocolVersion::V5 => "5".into(),
            },
            payload: plan.payload,
            window: plan.window,
            topics: match plan.topics {
                Topics::Distinct => "distinct".into(),
                Topics::Shared => "shared".into(),
            },
            rate: plan.rate,
            publishers,
            subscribers,
            publish_seconds,
            processes,
        }
    }

    /// Merges the summaries of one run's processes.
    pub fn combine(parts: Vec<Summary>) -> Result<Summary, LoadError> {
        let mut parts = parts.into_iter();
        let Some(mut all) = parts.next() else {
            return Err(LoadError::Plan("nothing to combine".into()));
        };
        for part in parts {
            let same = (&part.run, part.qos, &part.mqtt, &part.topics, part.payload)
                == (&all.run, all.qos, &all.mqtt, &all.topics, all.payload);
            if !same {
                return Err(LoadError::Plan(format!(
                    "summaries of different runs or settings: run {} QoS {} vs run {} QoS {}",
                    all.run, all.qos, part.run, part.qos
                )));
            }
            all.window = all.window.max(part.window);
            all.rate = match (all.rate, part.rate) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            all.publishers.extend(part.publishers);
            all.subscribers.extend(part.subscribers);
            all.publish_seconds = match (all.publish_seconds, part.publish_seconds) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            all.processes.extend(part.processes);
        }
        let mut ids: Vec<u32> = all.publishers.iter().map(|p| p.id).collect();
        let mut indexes: Vec<usize> = all.subscribers.iter().map(|s| s.index).collect();
        ids.sort_unstable();
        indexes.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) || indexes.windows(2).any(|w| w[0] == w[1]) {
            return Err(LoadError::Plan(
                "two processes used the same publisher id or subscriber number".into(),
            ));
        }
        Ok(all)
    }

    /// Writes the summary as JSON.
    pub fn save(&self, path: &Path) -> Result<(), LoadError> {
        let error = |detail: String| LoadError::Summary {
            path: path.display().to_string(),
            detail,
        };
        let json = serde_json::to_string(self).map_err(|e| error(e.to_string()))?;
        std::fs::write(path, json).map_err(|e| error(e.to_string()))
    }

    /// Reads a summary written by `save`.
    pub fn load(path: &Path) -> Result<Summary, LoadError> {
        let error = |detail: String| LoadError::Summary {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| error(format!("not a load summary: {e}")))
    }

    /// The run's figures.
    pub fn figures(&self) -> Figures {
        let sent = self.publishers.iter().map(|p| p.sent).sum();
        let acked = self.publishers.iter().map(|p| p.acked.len()).sum();
        let refused = self.publishers.iter().map(|p| p.refused.len()).sum();
        let received = self
            .subscribers
            .iter()
            .map(SubscriberLedger::received)
            .sum();
        let first = self.subscribers.iter().filter_map(|s| s.first_ns).min();
        let last = self.subscribers.iter().filter_map(|s| s.last_ns).max();
        let receive_seconds = match (first, last) {
            (Some(first), Some(last)) => (last - first) as f64 / 1e9,
            _ => 0.0,
        };
        let mut latency = Histogram::default();
        for sub in &self.subscribers {
            latency.merge(&sub.latency);
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        let errors = self
            .publishers
            .iter()
            .filter_map(|p| Some(format!("publisher {}: {}", p.id, p.error.as_ref()?)))
            .chain(
                self.subscribers
                    .iter()
                    .filter_map(|s| Some(format!("subscriber {}: {}", s.index, s.error.as_ref()?))),
            )
            .collect();
        Figures {
            sent,
            acked,
            refused,
            received,
            send_rate: sent as f64 / self.publish_seconds.unwrap_or(0.0).max(1e-9),
            receive_rate: received as f64 / receive_seconds.max(1e-9),
            receive_seconds,
            p50: ms(latency.percentile(50.0)),
            p90: ms(latency.percentile(90.0)),
            p99: ms(latency.percentile(99.0)),
            max: ms(latency.max()),
            tally: tally(&self.publishers, &self.subscribers),
            per_broker_cpu_second: self
                .broker_cpu_seconds()
                .map(|s| received as f64 / s.max(1e-9)),
            errors,
        }
    }

    /// CPU seconds the broker used, as measured by the process that ran the subscribers
    /// (or any that measured it).
    fn broker_cpu_seconds(&self) -> Option<f64> {
        let measured = |p: &&ProcessUse| p.cpu.broker.is_some();
        let process = self
            .processes
            .iter()
            .filter(measured)
            .find(|p| p.role != "publish")
            .or_else(|| self.processes.iter().find(measured))?;
        Some(process.cpu.broker? * process.cpu.wall_seconds)
    }

    /// Whether the broker lost a message it had acknowledged, or delivered one it refused.
    pub fn broke_a_promise(&self) -> bool {
        let t = self.figures().tally;
        t.acked_lost > 0 || t.refused_delivered > 0
    }

    /// The text report; the last line is `RESULT key=value ...`.
    pub fn render(&self) -> String {
        let f = self.figures();
        let mut out = String::new();
        let rate = self.rate.map_or("max".to_string(), |r| r.to_string());
        let _ = writeln!(
            out,
            "{} publishers -> {} subscribers, QoS {}, MQTT {}, window {}, {}-byte payloads, {} topics, rate {rate}",
            self.publishers.len(),
            self.subscribers.len(),
            self.qos,
            self.mqtt,
            self.window,
            self.payload,
            self.topics
        );
        self.render_traffic(&f, &mut out);
        for process in &self.processes {
            let _ = writeln!(out, "cpu      {}", cpu_line(process));
        }
        if let Some(rate) = f.per_broker_cpu_second {
            let _ = writeln!(
                out,
                "broker   {rate:.0} messages received per broker CPU-second"
            );
        }
        for error in &f.errors {
            let _ = writeln!(out, "stopped  {error}");
        }
        let _ = writeln!(out, "{}", self.result_line(&f));
        out
    }

    /// The sent, received, latency and loss lines (those this process has data for).
    fn render_traffic(&self, f: &Figures, out: &mut String) {
        let t = &f.tally;
        if let Some(seconds) = self.publish_seconds {
            let _ = writeln!(
                out,
                "sent     {:>10} in {seconds:.2} s = {:.0} msg/s  (acknowledged {}, refused {})",
                f.sent, f.send_rate, f.acked, f.refused
            );
        }
        if !self.subscribers.is_empty() {
            let _ = writeln!(
                out,
                "received {:>10} in {:.2} s (first to last) = {:.0} msg/s",
                f.received, f.receive_seconds, f.receive_rate
            );
            let _ = writeln!(
                out,
                "latency  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms (send stamp to receipt)",
                f.p50, f.p90, f.p99, f.max
            );
        }
        if !self.publishers.is_empty() && !self.subscribers.is_empty() {
            let _ = writeln!(
                out,
                "loss     acknowledged-lost {}  unacknowledged-lost {}  refused {}  refused-but-delivered {}  duplicates {}  reordered {}  unexpected {}  (of {} expected deliveries)",
                t.acked_lost,
                t.unacked_lost,
                t.refused,
                t.refused_delivered,
                t.duplicates,
                t.reordered,
                t.unexpected,
                t.expected
            );
        }
    }

    fn result_line(&self, f: &Figures) -> String {
        let t = &f.tally;
        let tool: f64 = self.processes.iter().filter_map(|p| p.cpu.tool).sum();
        let cores: usize = self.processes.iter().map(|p| p.cpu.tool_cores).sum();
        let limited = self.processes.iter().any(|p| p.cpu.tool_limited());
        let broker = self
            .processes
            .iter()
            .filter_map(|p| p.cpu.broker)
            .reduce(f64::max);
        let others = self
            .processes
            .iter()
            .filter_map(|p| p.cpu.others())
            .reduce(f64::min);
        format!(
            "RESULT mode=throughput qos={} mqtt={} window={} rate={} publishers={} subscribers={} sent={} acked={} refused={} received={} send_rate={:.0} receive_rate={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} acked_lost={} unacked_lost={} refused_undelivered={} refused_delivered={} duplicates={} reordered={} unexpected={} tool_cpu={tool:.2} tool_cores={cores} tool_limited={} broker_cpu={} others_cpu={} per_broker_cpu_s={} errors={}",
            self.qos,
            self.mqtt,
            self.window,
            self.rate.map_or("max".to_string(), |r| r.to_string()),
            self.publishers.len(),
            self.subscribers.len(),
            f.sent,
            f.acked,
            f.refused,
            f.received,
            f.send_rate,
            f.receive_rate,
            f.p50,
            f.p90,
            f.p99,
            f.max,
            t.acked_lost,
            t.unacked_lost,
            t.refused,
            t.refused_delivered,
            t.duplicates,
            t.reordered,
            t.unexpected,
            if limited { "yes" } else { "no" },
            broker.map_or("-".to_string(), |b| format!("{b:.2}")),
            others.map_or("-".to_string(), |o| format!("{o:.2}")),
            f.per_broker_cpu_second
                .map_or("-".to_string(), |r| format!("{r:.0}")),
            f.errors.len()
        )
    }
}

fn cpu_line(process: &ProcessUse) -> String {
    let cpu = &process.cpu;
    let tool = cpu.tool.map_or("unknown".to_string(), |used| {
        format!(
            "{used:.2} of {} core(s) ({:.0}%)",
            cpu.tool_cores,
            100.0 * used / cpu.tool_cores.max(1) as f64
        )
    });
    let verdict = if cpu.tool_limited() {
        " — THE TOOL WAS THE LIMIT: these figures are the tool's, not the broker's"
    } else {
        ""
    };
    let broker = cpu
        .broker
        .map_or(String::new(), |b| format!("; broker {b:.2} core(s)"));
    let machine = match (cpu.machine, cpu.others()) {
        (Some(busy), Some(others)) => format!(
            "; machine {busy:.2} of {} cores busy, {others:.2} by other processes",
            cpu.machine_cores
        ),
        _ => String::new(),
    };
    format!(
        "{}: tool {tool}{broker}{machine} over {:.2} s{verdict}",
        process.role, cpu.wall_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Role;
    use crate::load::stamp::Stamp;

    fn part(role: Role, publishers: Vec<PublisherLedger>, subs: Vec<SubscriberLedger>) -> Summary {
        let plan = crate::load::tests::plan(Topics::Distinct);
        let cpu = CpuUse {
            wall_seconds: 1.0,
            tool: Some(0.5),
            tool_cores: 1,
            broker: Some(0.5),
            machine: Some(1.5),
            machine_cores: 2,
        };
        let processes = vec![ProcessUse {
            role: format!("{role:?}"),
            cpu,
        }];
        Summary::new(&plan, publishers, subs, Some(1.0), processes)
    }

    #[test]
    fn separate_processes_combine_into_one_accounting() {
        let mut acked = crate::load::ledger::SeqSet::default();
        for seq in 0..3 {
            acked.insert(seq);
        }
        let publisher = PublisherLedger {
            id: 0,
            sent: 3,
            acked,
            ..PublisherLedger::default()
        };
        let mut sub = SubscriberLedger::new(0, vec![0]);
        for seq in [0, 2] {
            let stamp = Stamp {
                sent_at_nanos: 1_000_000,
                run: 1,
                publisher: 0,
                seq,
            };
            sub.record(&stamp, 3_000_000);
        }
        let publishing = part(Role::Publish, vec![publisher], vec![]);
        let subscribing = part(Role::Subscribe, vec![], vec![sub]);
        let file = std::env::temp_dir().join(format!("tg-load-{}.json", std::process::id()));
        subscribing.save(&file).unwrap();
        let loaded = Summary::load(&file).unwrap();
        std::fs::remove_file(&file).ok();
        let all = Summary::combine(vec![publishing.clone(), loaded]).unwrap();
        let f = all.figures();
        assert_eq!((f.sent, f.acked, f.received), (3, 3, 2));
        assert_eq!(f.tally.acked_lost, 1);
        assert!(all.broke_a_promise());
        assert!((f.p50 - 2.0).abs() < 0.1, "{f:?}");
        let text = all.render();
        assert!(text.contains("acknowledged-lost 1"), "{text}");
        let result = text.lines().last().unwrap();
        assert!(
            result.starts_with("RESULT mode=throughput qos=1 "),
            "{result}"
        );
        assert!(result.contains(" acked_lost=1 ") && result.contains(" tool_limited=no "));
        assert!(result.contains(" others_cpu=0.50 ") && result.contains(" per_broker_cpu_s=4 "));
        // The same publisher twice is refused.
        assert!(Summary::combine(vec![publishing.clone(), publishing]).is_err());
    }
}
