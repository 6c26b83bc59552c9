//! A process's CPU time and resident memory, from `/proc` (Linux): the server reports its own
//! at `GET /api/stats`, and load tools measure themselves with it.

use serde::{Deserialize, Serialize};

/// CPU and memory of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// User + system CPU time since start, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// Reads `/proc/self/stat` and `/proc/self/status`; `None` where they do not exist.
#[must_use]
pub fn usage() -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(ProcessUsage {
        cpu_seconds: cpu_seconds(&stat, clock_ticks_per_s())?,
        rss_bytes: rss_bytes(&status)?,
    })
}

/// The calling thread's CPU time (user + system) since it started, seconds, from
/// `/proc/thread-self/stat` (10 ms resolution); `None` where it does not exist.
#[must_use]
pub fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    cpu_seconds(&stat, clock_ticks_per_s())
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in seconds.
#[must_use]
pub fn cpu_seconds(stat: &str, ticks_per_s: f64) -> Option<f64> {
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_s)
}

/// `VmRSS` of a `/proc/<pid>/status`, in bytes.
#[must_use]
pub fn rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `CLK_TCK`: 100 on every Linux we target (the kernel's USER_HZ).
fn clock_ticks_per_s() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1";
        assert_eq!(cpu_seconds(stat, 100.0), Some(3.0));
        assert_eq!(rss_bytes("Name: x\nVmRSS:\t  2048 kB\n"), Some(2048 * 1024));
        assert!(usage().is_some(), "this test runs on Linux");
    }
}
