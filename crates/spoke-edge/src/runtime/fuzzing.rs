//! Fuzz entry points for the runtimes' parsers (STYLE.md §10). Each must never panic on any
//! input; where a parser has a formatter, the round trip is asserted.

use super::docker::split_log_message;
use super::process::{format_log_record, parse_log_record};
use super::procfs::parse_stat;

/// A process module's on-disk log record: parse, and if it parses, format and parse again to
/// the same entry.
pub fn fuzz_process_log_record(data: &[u8]) {
    if let Some(entry) = parse_log_record(data) {
        let record = format_log_record(&entry);
        let reparsed = parse_log_record(&record[..record.len() - 1]);
        assert_eq!(reparsed.as_ref(), Some(&entry), "log record round trip");
    }
}

/// A `/proc/<pid>/stat` line (untrusted in the sense that command names are arbitrary).
pub fn fuzz_proc_stat(data: &[u8]) {
    let _ = parse_stat(data);
}

/// A Docker log message requested with timestamps: the line is always a suffix of the input.
pub fn fuzz_docker_log_message(data: &[u8]) {
    let (_, line) = split_log_message(data);
    let trimmed = data.strip_suffix(b"\n").unwrap_or(data);
    assert!(trimmed.ends_with(line), "line is a suffix of the message");
}
