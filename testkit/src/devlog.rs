//! A child test run with a private `/dev/log`, so that a test reads the module's syslog
//! lines and nothing else, without a syslog daemon and without touching the machine's own
//! `/dev/log`.
//!
//! The child is an `#[ignore]`d test of the same test executable, started through
//! `unshare --mount` by [`run_with_private_dev_log`]: in its private mount namespace, `/dev`
//! is a tmpfs holding `null`, `zero`, `random` and `urandom` from the real one and a
//! `log` that is a socket the parent reads. Needs root (mount).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What the child printed, and every line it sent to `/dev/log`.
pub struct DevLogRun {
    pub output: Output,
    pub lines: Vec<String>,
}

const SCRIPT: &str = r#"set -e
mount --bind /dev "$REAL_DEV"
mount -t tmpfs tmpfs /dev
for node in null zero random urandom; do
    touch "/dev/$node"
    mount --bind "$REAL_DEV/$node" "/dev/$node"
done
touch /dev/log
mount --bind "$SOCK" /dev/log
exec "$EXE" --exact "$CHILD_TEST" --ignored --nocapture --test-threads=1
"#;

/// Runs `child_test` of this test executable with `envs`, its `/dev/log` a socket bound
/// under `dir`; returns its output and its syslog lines once it has ended.
pub fn run_with_private_dev_log(
    dir: &Path,
    child_test: &str,
    envs: &[(&str, &OsStr)],
) -> DevLogRun {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let socket_path = dir.join(format!("devlog-{n}.sock"));
    let socket = UnixDatagram::bind(&socket_path).expect("bind the child's /dev/log");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("socket time-out");
    let real_dev = dir.join(format!("real-dev-{n}"));
    fs::create_dir(&real_dev).expect("mount point");
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", SCRIPT])
        .env("REAL_DEV", &real_dev)
        .env("SOCK", &socket_path)
        .env("EXE", std::env::current_exe().expect("test executable"))
        .env("CHILD_TEST", child_test)
        .envs(envs.iter().copied())
        .output()
        .expect("run unshare");
    let mut lines = Vec::new();
    let mut buffer = vec![0u8; 65536];
    while let Ok(length) = socket.recv(&mut buffer) {
        lines.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
    }
    DevLogRun { output, lines }
}
