//! What a run cost: the load tool's own CPU time against the cores it may use — so a run
//! can say when the tool, not the broker, was the limit — and, given its process id, the
//! broker's CPU time and resident memory.
//!
//! On a shared machine the whole machine's busy time is read too: when other processes
//! take the cores, neither the tool nor the broker is the limit, and messages per broker
//! CPU-second is the figure that still compares brokers.
//!
//! Read from Linux procfs: `/proc/<pid>/stat` (user + system time in clock ticks, which
//! procfs reports at USER_HZ = 100 on Linux), `/proc/stat` (the machine) and
//! `/proc/<pid>/status` (`VmRSS`). Elsewhere the figures are simply absent. This module
//! must never fail a run for want of them.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// procfs reports CPU times in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: u64 = 100;

/// The tool counts as the limit when it used this share of its cores.
const TOOL_LIMIT_SHARE: f64 = 0.9;

/// User plus system CPU time of `pid` (this process if `None`).
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// The machine's busy and total CPU time, in ticks, and its number of CPUs (`/proc/stat`).
fn machine_ticks() -> Option<(u64, u64, usize)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let mut lines = text.lines();
    let first = lines.next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = first
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    let cpus = lines.filter(|l| l.starts_with("cpu")).count();
    Some((total - idle, total, cpus.max(1)))
}

/// Resident memory of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The cores this process may run on (its CPU affinity, e.g. under `taskset`).
pub fn usable_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU used over a run, in cores (CPU seconds per wall second).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    pub(crate) wall_seconds: f64,
    /// The tool's cores used, if known.
    pub tool: Option<f64>,
    /// The cores the tool may use.
    pub tool_cores: usize,
    /// The broker's cores used, if its process id was given and readable.
    pub broker: Option<f64>,
    /// The whole machine's busy cores (every process), and its number of cores.
    #[serde(default)]
    pub machine: Option<f64>,
    #[serde(default)]
    pub(crate) machine_cores: usize,
}

impl CpuUse {
    /// Whether the tool used (nearly) all its cores: then the figures are the tool's.
    pub fn tool_limited(&self) -> bool {
        self.tool
            .is_some_and(|used| used >= TOOL_LIMIT_SHARE * self.tool_cores as f64)
    }

    /// Cores busy with neither the tool nor the broker (other processes), if known.
    pub fn others(&self) -> Option<f64> {
        let others = self.machine? - self.tool.unwrap_or(0.0) - self.broker.unwrap_or(0.0);
        Some(others.max(0.0))
    }
}

/// Measures CPU from [`CpuMeter::start`] to [`CpuMeter::stop`].
pub struct CpuMeter {
    wall: Instant,
    tool: Option<Duration>,
    broker_pid: Option<u32>,
    broker: Option<Duration>,
    machine: Option<(u64, u64, usize)>,
}

impl CpuMeter {
    pub(crate) fn start(broker_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            tool: cpu_time(None),
            broker_pid,
            broker: broker_pid.and_then(|pid| cpu_time(Some(pid))),
            machine: machine_ticks(),
        }
    }

    pub(crate) fn stop(&self) -> CpuUse {
        let wall = self.wall.elapsed().as_secs_f64().max(1e-9);
        let cores = |start: Option<Duration>, end: Option<Duration>| {
            Some(end?.saturating_sub(start?).as_secs_f64() / wall)
        };
        CpuUse {
            wall_seconds: wall,
            tool: cores(self.tool, cpu_time(None)),
            tool_cores: usable_cores(),
            broker: self
                .broker_pid
                .and_then(|pid| cores(self.broker, cpu_time(Some(pid)))),
            machine: self.machine.zip(machine_ticks()).and_then(|(start, end)| {
                let (busy, total) = (end.0.checked_sub(start.0)?, end.1.checked_sub(start.1)?);
                Some(end.2 as f64 * busy as f64 / total.max(1) as f64)
            }),
            machine_cores: self.machine.map_or(0, |m| m.2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time_and_a_resident_size_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // not Linux: the figures are absent by design
        }
        let meter = CpuMeter::start(Some(std::process::id()));
        let mut spin = 0u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            spin = spin.wrapping_add(1);
        }
        let used = meter.stop();
        assert!(used.tool.is_some() && used.broker.is_some(), "{used:?}");
        assert!(
            used.machine.is_some() && used.machine_cores >= 1,
            "{used:?}"
        );
        assert!(used.others().is_some());
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
        assert!(used.tool_cores >= 1);
        let limited = CpuUse {
            tool: Some(0.95),
            tool_cores: 1,
            ..CpuUse::default()
        };
        assert!(limited.tool_limited());
        assert!(!CpuUse::default().tool_limited());
        assert!(spin > 0);
    }
}
