//! Reading a process's resident memory and CPU time from Linux `/proc`.

use anyhow::Context;

/// Clock ticks per second of the times in `/proc/PID/stat` (`USER_HZ`, 100 on Linux ABIs).
const USER_HZ: f64 = 100.0;

/// The resident set size of process `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn vm_rss_kb(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
}

/// User plus system CPU seconds used so far by process `pid` (all its threads).
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / USER_HZ)
        .with_context(|| format!("malformed {path}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `utime + stime` (fields 14 and 15, counted from 1) of a `/proc/PID/stat` line; the command
/// name (field 2) is parenthesised and may hold spaces, so fields are counted after its `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads: 2\n";
        assert_eq!(parse_vm_rss(status), Some(12_345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn parses_cpu_ticks_after_a_name_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(280));
        assert_eq!(parse_cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(vm_rss_kb(me).unwrap() > 0);
        assert!(cpu_secs(me).unwrap() >= 0.0);
    }
}
