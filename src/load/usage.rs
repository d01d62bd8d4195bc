//! What a run cost: the load tool's own CPU time against the cores it may use — so a run
//! can say when the tool, not the broker, was the limit — and, given its process id, the
//! broker's CPU time and resident memory.
//!
//! Read from Linux procfs: `/proc/<pid>/stat` (user + system time in clock ticks, which
//! procfs reports at USER_HZ = 100 on Linux) and `/proc/<pid>/status` (`VmRSS`).
//! Elsewhere the figures are simply absent. This module must never fail a run for want of
//! them.

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
    pub wall_seconds: f64,
    /// The tool's cores used, if known.
    pub tool: Option<f64>,
    /// The cores the tool may use.
    pub tool_cores: usize,
    /// The broker's cores used, if its process id was given and readable.
    pub broker: Option<f64>,
}

impl CpuUse {
    /// Whether the tool used (nearly) all its cores: then the figures are the tool's.
    pub fn tool_limited(&self) -> bool {
        self.tool
            .is_some_and(|used| used >= TOOL_LIMIT_SHARE * self.tool_cores as f64)
    }
}

/// Measures CPU from [`CpuMeter::start`] to [`CpuMeter::stop`].
pub struct CpuMeter {
    wall: Instant,
    tool: Option<Duration>,
    broker_pid: Option<u32>,
    broker: Option<Duration>,
}

impl CpuMeter {
    pub fn start(broker_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            tool: cpu_time(None),
            broker_pid,
            broker: broker_pid.and_then(|pid| cpu_time(Some(pid))),
        }
    }

    pub fn stop(&self) -> CpuUse {
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
