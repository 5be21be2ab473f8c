//! The server under benchmark as a process of its own: the release binary pinned to core 0
//! (the load runs on core 1), and what /proc says of its memory and CPU.

use std::process::{Command, Stdio};

/// The release binary (or `SWITCHBOARD_BIN`), pinned to core 0 where `taskset` exists, with
/// its log at warnings and its output discarded. The caller adds the command and settings.
pub fn server_command() -> Command {
    let binary = std::env::var("SWITCHBOARD_BIN").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/release/switchboard"
        )
        .into()
    });
    let pinned = Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    let mut command = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", &binary]);
        c
    } else {
        Command::new(&binary)
    };
    command.env("RUST_LOG", "warn").stdout(Stdio::null());
    command
}

/// A field of /proc/{pid}/status in KiB (`VmRSS:`, `VmHWM:`…); 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The resident memory in KiB.
#[allow(dead_code)] // Not every benchmark reads it.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// CPU seconds the process has used (user and system), from /proc.
#[allow(dead_code)] // Not every benchmark reads it.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok());
    (field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0)) / 100.0
}
