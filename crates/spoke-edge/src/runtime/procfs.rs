//! The host's process table, read from `/proc`: which PIDs belong to a module.
//!
//! The workload API authorizes a caller by its peer PID (spec §1.2), so both backends answer
//! "which host PIDs are this module's" the same way: every descendant of the module's main
//! process (a container's init reaps orphans, so daemonized children stay descendants), plus,
//! for process modules, every member of the module's process group. Processes that both left
//! the group (`setsid`) and were re-parented away are not found; neither are `docker exec`
//! sessions, which hang off the container shim rather than the init process.

use std::collections::{BTreeSet, HashMap};
use std::fs;

/// The fields of `/proc/<pid>/stat` the runtimes use (proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Field 1: the process id.
    pub pid: u32,
    /// Field 4: the parent's process id.
    pub ppid: u32,
    /// Field 5: the process group id.
    pub pgrp: u32,
    /// Field 22: start time in clock ticks since boot; with the PID it names one process
    /// across PID reuse.
    pub start_ticks: u64,
}

/// Parses the contents of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and
/// may itself contain spaces and `)`, so the fields after it are found from the last `)`.
pub(crate) fn parse_stat(data: &[u8]) -> Option<ProcStat> {
    let text = std::str::from_utf8(data).ok()?;
    let open = text.find(" (")?;
    let pid = text[..open].trim().parse().ok()?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    // After ")": state(3) ppid(4) pgrp(5) session(6) ... starttime(22).
    let mut rest = text[close + 1..].split_ascii_whitespace();
    let _state = rest.next()?;
    let parent = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    let start_ticks = rest.nth(16)?.parse().ok()?;
    Some(ProcStat {
        pid,
        ppid: parent,
        pgrp,
        start_ticks,
    })
}

/// Reads one process's stat line; `None` when it does not exist (any more).
pub(crate) fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the host, as far as it could be read.
fn all_processes() -> Vec<ProcStat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// The PIDs of a module: `root` and its descendants, plus the members of process group
/// `group` and their descendants. Sorted; empty when `root` is gone and the group is empty.
/// Blocking (reads `/proc`).
pub(crate) fn module_pids(root: u32, group: Option<u32>) -> Vec<u32> {
    select_module_pids(&all_processes(), root, group)
}

/// [`module_pids`] over a given process table (the testable core).
fn select_module_pids(table: &[ProcStat], root: u32, group: Option<u32>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in table {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut found = BTreeSet::new();
    let mut queue: Vec<u32> = table
        .iter()
        .filter(|p| p.pid == root || Some(p.pgrp) == group)
        .map(|p| p.pid)
        .collect();
    while let Some(pid) = queue.pop() {
        if found.insert(pid) {
            queue.extend(children.get(&pid).into_iter().flatten().copied());
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_tricky_command_name() {
        let line = b"4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(
            stat,
            ProcStat {
                pid: 4242,
                ppid: 1,
                pgrp: 4242,
                start_ticks: 987_654
            }
        );
    }

    #[test]
    fn rejects_truncated_lines() {
        assert_eq!(parse_stat(b"12 (x) S 1 12"), None);
        assert_eq!(parse_stat(b"12 x) S 1 12 12 0"), None);
        assert_eq!(parse_stat(b""), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let stat = read_stat(me).expect("own stat");
        assert_eq!(stat.pid, me);
        assert!(module_pids(me, None).contains(&me));
    }

    #[test]
    fn selects_descendants_and_group_members() {
        let p = |pid, ppid, pgrp| ProcStat {
            pid,
            ppid,
            pgrp,
            start_ticks: 0,
        };
        let table = [
            p(1, 0, 1),
            p(10, 1, 10),  // root
            p(11, 10, 10), // child
            p(12, 11, 12), // grandchild that left the group
            p(20, 1, 10),  // group member re-parented to init
            p(21, 20, 21), // its child
            p(30, 1, 30),  // unrelated
        ];
        assert_eq!(
            select_module_pids(&table, 10, Some(10)),
            vec![10, 11, 12, 20, 21]
        );
        assert_eq!(select_module_pids(&table, 10, None), vec![10, 11, 12]);
        assert!(select_module_pids(&table, 99, None).is_empty());
    }
}
