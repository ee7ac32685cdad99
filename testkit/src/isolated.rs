//! One PAM login in a child process of its own, as sshd runs each connection: so that a
//! signal that kills it, its peak memory, and a hang are the login's own and can be told
//! apart, and so that its syslog lines can be captured without a syslog daemon.
//!
//! The child is the test executable itself, started again with `--exact <test>` and the
//! environment variable [`CHILD_SPEC_ENV`] naming a JSON file that says which login to
//! run. The test function begins with [`serve_if_child`], which in the child runs that
//! login, writes what it observed to a result file and returns `true`:
//!
//! ```ignore
//! #[test]
//! fn logins_in_children() {
//!     if isolated::serve_if_child() {
//!         return;
//!     }
//!     let report = isolated::run("logins_in_children", &ChildLogin { .. }, limit);
//!     assert_eq!(report.signal, None);
//! }
//! ```
//!
//! The parent reaps the child with `wait4`, which gives the exit status (signal or code)
//! and its `rusage`. A child that outlives its limit is killed and reported as hung. The
//! child reports its own peak resident set (`VmHWM`) after the login: `ru_maxrss` would
//! count the parent's memory too, since Linux carries the pre-exec image's high-water
//! mark over into it.
//!
//! With `capture_syslog`, the child first moves into a private mount namespace, mounts a
//! small tmpfs on `/dev` (with `null`, `zero`, `random`, `urandom`) and binds `/dev/log`
//! there, so the module's syslog lines reach the test and nothing else, whether or not the
//! machine runs a syslog daemon. That needs CAP_SYS_ADMIN; without it the report says the
//! lines were not captured.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::pam::{self, Event, Login, PamService};

/// The environment variable that makes the test executable a login child.
pub const CHILD_SPEC_ENV: &str = "PAM_TICKET_CHILD_LOGIN";

/// What the child should run.
pub struct ChildLogin<'a> {
    pub service: &'a PamService,
    pub login: &'a Login,
    /// Capture the module's syslog lines through a private `/dev/log`.
    pub capture_syslog: bool,
    /// Where the spec, the result and the child's output are written.
    pub dir: &'a Path,
}

/// What the child saw of its login.
#[derive(Clone, Debug)]
pub struct ChildOutcome {
    pub code: i32,
    pub code_name: &'static str,
    pub events: Vec<Event>,
    pub env: BTreeMap<String, String>,
    /// Wall time of `pam_authenticate` alone.
    pub elapsed: Duration,
    /// The syslog datagrams, or why they could not be captured.
    pub syslog: Result<Vec<String>, String>,
    /// The login process's own peak resident set (`VmHWM`), in KiB, read after `pam_end`.
    pub peak_rss_kib: Option<i64>,
}

impl ChildOutcome {
    /// The same view of the conversation as `PamOutcome` gives.
    pub fn as_pam_outcome(&self) -> pam::PamOutcome {
        pam::PamOutcome {
            code: self.code,
            code_name: self.code_name,
            message: String::new(),
            events: self.events.clone(),
            env: self.env.clone(),
            setcred_code: None,
            unanswered: 0,
            elapsed: self.elapsed,
        }
    }
}

/// What the parent learnt about the child.
#[derive(Clone, Debug)]
pub struct ChildReport {
    /// `None` when the child ended without writing its result (it crashed or was killed).
    pub outcome: Option<ChildOutcome>,
    /// The signal that ended the child, if one did.
    pub signal: Option<i32>,
    pub exit_code: Option<i32>,
    /// `ru_maxrss` from `wait4`, in KiB. Linux counts in it the memory the child had
    /// before `exec`, which is the parent's (std spawns with vfork semantics), so for a big
    /// parent it says more about the parent than about the login: judge the login by
    /// [`ChildOutcome::peak_rss_kib`], the high-water mark of the exec'd image alone.
    pub rusage_max_rss_kib: i64,
    /// From spawn to reaping.
    pub wall: Duration,
    /// The child outlived its limit and was killed with SIGKILL.
    pub hung: bool,
    /// The child's standard output and error, for failure messages.
    pub output: String,
}

/// Runs `child` in a re-executed copy of this test executable whose test `test_name`
/// starts with [`serve_if_child`]. A child still running after `limit` is killed.
pub fn run(test_name: &str, child: &ChildLogin<'_>, limit: Duration) -> ChildReport {
    fs::create_dir_all(child.dir).expect("create the child's directory");
    let spec_path = child.dir.join("child-spec.json");
    let result_path = child.dir.join("child-result.json");
    let output_path = child.dir.join("child-output.txt");
    let _ = fs::remove_file(&result_path);
    let spec = json!({
        "service_dir": child.service.dir(),
        "service_name": child.service.name(),
        "user": child.login.user,
        "rhost": child.login.rhost,
        "answers": child.login.answers,
        "capture_syslog": child.capture_syslog,
        "result": result_path,
    });
    fs::write(&spec_path, spec.to_string()).expect("write the child's spec");
    let output = File::create(&output_path).expect("create the child's output file");
    let errors = output.try_clone().expect("share the output file");

    let started = Instant::now();
    let spawned = Command::new(std::env::current_exe().expect("path of the test executable"))
        .args([
            test_name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_SPEC_ENV, &spec_path)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .expect("start the login child");
    let pid = libc::pid_t::try_from(spawned.id()).expect("a pid fits pid_t");
    // `spawned` is never waited on through std: wait4 below reaps it and reads its rusage.
    drop(spawned);

    let mut hung = false;
    let (status, usage) = loop {
        let flags = if hung { 0 } else { libc::WNOHANG };
        match wait4(pid, flags) {
            Ok(Some(reaped)) => break reaped,
            Ok(None) => {}
            Err(error) => panic!("wait4 on the login child {pid}: {error}"),
        }
        if !hung && started.elapsed() > limit {
            // SAFETY: `pid` is our own child, not yet reaped, so it names no other process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            hung = true;
            continue;
        }
        thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();

    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let exit_code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let outcome = fs::read_to_string(&result_path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|value| outcome_from_json(&value));
    ChildReport {
        outcome,
        signal,
        exit_code,
        rusage_max_rss_kib: usage.ru_maxrss,
        wall,
        hung,
        output: fs::read_to_string(&output_path).unwrap_or_default(),
    }
}

/// `wait4(pid, flags)`: `Ok(None)` while a WNOHANG wait finds the child still running.
fn wait4(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<(libc::c_int, libc::rusage)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both out-pointers point to live, writable locals of the right types.
        let reaped = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if reaped == pid {
            return Ok(Some((status, usage)));
        }
        if reaped == 0 {
            return Ok(None);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

fn outcome_from_json(value: &Value) -> ChildOutcome {
    let code = value["code"].as_i64().unwrap_or(-1) as i32;
    let events = value["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|event| {
                    let text = event["text"].as_str().unwrap_or_default().to_string();
                    match event["kind"].as_str() {
                        Some("prompt") => Event::Prompt {
                            echo: event["echo"].as_bool().unwrap_or(false),
                            text,
                        },
                        Some("error") => Event::Error(text),
                        _ => Event::Info(text),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let env = value["env"]
        .as_object()
        .map(|env| {
            env.iter()
                .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let syslog = match &value["syslog"] {
        Value::Array(lines) => Ok(lines
            .iter()
            .map(|line| line.as_str().unwrap_or_default().to_string())
            .collect()),
        other => Err(other.as_str().unwrap_or("not captured").to_string()),
    };
    ChildOutcome {
        code,
        code_name: pam::code_name(code),
        events,
        env,
        elapsed: Duration::from_micros(value["elapsed_us"].as_u64().unwrap_or(u64::MAX)),
        syslog,
        peak_rss_kib: value["peak_rss_kib"].as_i64(),
    }
}

/// `VmHWM` of this process from `/proc/self/status`: the peak resident set of the current
/// program image, in KiB.
fn own_peak_rss_kib() -> Option<i64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// In a login child (see the module documentation): runs the login, writes the result and
/// returns `true`. In the parent: returns `false` at once.
pub fn serve_if_child() -> bool {
    let Some(spec_path) = std::env::var_os(CHILD_SPEC_ENV) else {
        return false;
    };
    let text = fs::read_to_string(&spec_path).expect("read the child's spec");
    let spec: Value = serde_json::from_str(&text).expect("the child's spec is JSON");
    let text_of = |name: &str| spec[name].as_str().unwrap_or_default().to_string();

    let syslog = if spec["capture_syslog"].as_bool().unwrap_or(false) {
        PrivateSyslog::bind()
    } else {
        Err("not asked for".to_string())
    };
    let service =
        PamService::existing(Path::new(&text_of("service_dir")), &text_of("service_name"));
    let mut login = Login::new(&text_of("user"));
    login.rhost = spec["rhost"].as_str().map(str::to_string);
    login.answers = spec["answers"]
        .as_array()
        .map(|answers| {
            answers
                .iter()
                .map(|answer| answer.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    let outcome = pam::authenticate(&service, &login);

    let events: Vec<Value> = outcome
        .events
        .iter()
        .map(|event| match event {
            Event::Prompt { echo, text } => json!({"kind": "prompt", "echo": echo, "text": text}),
            Event::Error(text) => json!({"kind": "error", "text": text}),
            Event::Info(text) => json!({"kind": "info", "text": text}),
        })
        .collect();
    let syslog = match syslog {
        Ok(socket) => json!(socket.drain()),
        Err(problem) => json!(problem),
    };
    let result = json!({
        "code": outcome.code,
        "events": events,
        "env": outcome.env,
        "elapsed_us": u64::try_from(outcome.elapsed.as_micros()).unwrap_or(u64::MAX),
        "syslog": syslog,
        "peak_rss_kib": own_peak_rss_kib(),
    });
    let result_path = PathBuf::from(text_of("result"));
    fs::write(&result_path, result.to_string()).expect("write the child's result");
    true
}

/// `/dev/log` of a private mount namespace, bound by this process.
struct PrivateSyslog {
    socket: UnixDatagram,
}

impl PrivateSyslog {
    fn bind() -> Result<PrivateSyslog, String> {
        // SAFETY: unshare takes no pointers. The new mount namespace belongs to the calling
        // thread, which is the one that then runs the login.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(format!(
                "no private mount namespace: {}",
                io::Error::last_os_error()
            ));
        }
        let root = c_string("/");
        // Mounts made from here on must not propagate back to the machine's namespace.
        // SAFETY: every pointer is a live NUL-terminated string or NULL, as mount(2) allows.
        let private = unsafe {
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        if private != 0 {
            return Err(format!(
                "mounts not private: {}",
                io::Error::last_os_error()
            ));
        }
        let (tmpfs, dev, options) = (
            c_string("tmpfs"),
            c_string("/dev"),
            c_string("mode=0755,size=64k"),
        );
        // SAFETY: as above.
        let mounted = unsafe {
            libc::mount(
                tmpfs.as_ptr(),
                dev.as_ptr(),
                tmpfs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                options.as_ptr().cast(),
            )
        };
        if mounted != 0 {
            return Err(format!("no tmpfs on /dev: {}", io::Error::last_os_error()));
        }
        for (name, minor) in [("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)] {
            let path = c_string(&format!("/dev/{name}"));
            // SAFETY: a live NUL-terminated path; character devices 1:minor are the
            // kernel's memory devices.
            let made = unsafe {
                libc::mknod(
                    path.as_ptr(),
                    libc::S_IFCHR | 0o666,
                    libc::makedev(1, minor),
                )
            };
            if made != 0 {
                return Err(format!("mknod /dev/{name}: {}", io::Error::last_os_error()));
            }
        }
        let socket =
            UnixDatagram::bind("/dev/log").map_err(|error| format!("bind /dev/log: {error}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|error| format!("non-blocking /dev/log: {error}"))?;
        Ok(PrivateSyslog { socket })
    }

    /// Every datagram sent so far. The module sends before `pam_authenticate` returns, so
    /// all of them are queued by the time this runs.
    fn drain(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(length) = self.socket.recv(&mut buffer) {
            lines.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        lines
    }
}

fn c_string(text: &str) -> CString {
    CString::new(text).expect("a literal without NUL")
}
