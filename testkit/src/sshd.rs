//! A private OpenSSH server and a real `ssh` client driven by `expect`, for the end-to-end
//! tests and `make demo-ssh`.
//!
//! The server is the system's `/usr/sbin/sshd`, run as root in the foreground through a
//! symlink of its own name (`sshd-pamticket-<pid>-<label>`): sshd names its PAM service
//! after the name it was started under, so its stack is `/etc/pam.d/<that name>`, a file
//! this harness writes and removes again on drop (also when a test panics). Host key,
//! configuration, pid file, authorized keys and log live in the caller's directory; the
//! system's sshd and its configuration are never touched.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The local account the tests log in as; created (without a password) when missing.
pub const TEST_USER: &str = "pamticket-e2e";
/// What the remote command prints first, so the driver knows the session has started.
pub const SESSION_MARKER: &str = "PAMTICKET-SESSION-STARTED";

const SSHD: &str = "/usr/sbin/sshd";
/// sshd's privilege-separation directory, which Debian's init scripts normally create.
const PRIVSEP_DIR: &str = "/run/sshd";

/// Why the end-to-end tests cannot run here, or `None` when they can.
pub fn unavailable_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (sshd, /etc/pam.d and useradd need root)".into());
    }
    for tool in [
        SSHD,
        "/usr/bin/ssh",
        "/usr/bin/ssh-keygen",
        "/usr/bin/expect",
    ] {
        if !Path::new(tool).exists() {
            return Some(format!(
                "{tool} is missing (scripts/ensure-deps.sh installs it)"
            ));
        }
    }
    None
}

/// Creates [`TEST_USER`] if it does not exist: shell /bin/sh, home /, no password (`*`,
/// which no password can match, unlike `!` it does not mark the account locked).
pub fn ensure_test_user() {
    // Parallel tests would race on useradd's lock files.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poison| poison.into_inner());
    let exists = Command::new("id")
        .arg(TEST_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    if exists {
        return;
    }
    let output = Command::new("useradd")
        .args(["--no-create-home", "--home-dir", "/", "--shell", "/bin/sh"])
        .args(["--password", "*", TEST_USER])
        .output()
        .expect("run useradd");
    assert!(
        output.status.success(),
        "useradd {TEST_USER} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A supplementary group of [`TEST_USER`] (created, with the user added, when missing),
/// for tests of group membership through the system's name service.
pub const TEST_GROUP: &str = "pamticket-who-ops";

/// Creates [`TEST_USER`] and [`TEST_GROUP`] and makes the user a member of the group
/// (its primary group stays its own, named like the user).
pub fn ensure_test_user_in_group() {
    ensure_test_user();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poison| poison.into_inner());
    let run = |program: &str, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|problem| panic!("run {program}: {problem}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run("groupadd", &["-f", TEST_GROUP]);
    run("usermod", &["-a", "-G", TEST_GROUP, TEST_USER]);
}

/// Makes an ed25519 key pair at `path` and `path.pub`, without a passphrase.
pub fn keygen(path: &Path) {
    let _ = fs::remove_file(path);
    let output = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "pam_ticket-test",
            "-f",
        ])
        .arg(path)
        .output()
        .expect("run ssh-keygen");
    assert!(
        output.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running private sshd. Dropping it stops the server and removes its PAM service file
/// and symlink.
pub struct Sshd {
    child: Child,
    port: u16,
    service: String,
    pam_file: PathBuf,
    link: PathBuf,
    log: PathBuf,
    client_key: PathBuf,
    config: PathBuf,
}

/// The authentication settings of the README's sshd_config, in its order. PubkeyAuthentication
/// is sshd's default, written out so that a test can turn it off.
pub const README_SETTINGS: [(&str, &str); 6] = [
    ("UsePAM", "yes"),
    ("KbdInteractiveAuthentication", "yes"),
    ("PasswordAuthentication", "no"),
    ("PubkeyAuthentication", "yes"),
    (
        "AuthenticationMethods",
        "publickey,keyboard-interactive:pam",
    ),
    ("MaxAuthTries", "4"),
];

/// [`README_SETTINGS`] with `changes` applied, as sshd_config lines.
fn authentication_settings(changes: &[(&str, &str)]) -> String {
    let mut settings: Vec<(&str, &str)> = README_SETTINGS.to_vec();
    for (keyword, value) in changes {
        match settings.iter_mut().find(|(known, _)| known == keyword) {
            Some(setting) => setting.1 = value,
            None => settings.push((keyword, value)),
        }
    }
    settings
        .iter()
        .map(|(keyword, value)| format!("{keyword} {value}\n"))
        .collect()
}

impl Sshd {
    /// Starts sshd on a free loopback port with its files in `dir` (which must exist) and
    /// `pam_stack` as its PAM service file. `label` makes the service name unique per test.
    /// The authentication settings are the README's ([`README_SETTINGS`]).
    pub fn start(dir: &Path, label: &str, pam_stack: &str) -> Sshd {
        Sshd::start_with(dir, label, pam_stack, &[])
    }

    /// Like [`Sshd::start`], with some of [`README_SETTINGS`] replaced (or others added):
    /// `changes` holds `(keyword, value)` pairs, e.g. `("MaxAuthTries", "6")`.
    pub fn start_with(dir: &Path, label: &str, pam_stack: &str, changes: &[(&str, &str)]) -> Sshd {
        ensure_test_user();
        ensure_privsep_dir();
        let service = format!("sshd-pamticket-{}-{label}", std::process::id());
        let host_key = dir.join("ssh_host_ed25519_key");
        let client_key = dir.join("client_key");
        keygen(&host_key);
        keygen(&client_key);
        let authorized_keys = dir.join("authorized_keys");
        fs::copy(client_key.with_extension("pub"), &authorized_keys)
            .expect("write authorized_keys");
        fs::set_permissions(&authorized_keys, fs::Permissions::from_mode(0o644))
            .expect("chmod authorized_keys");

        let port = free_port();
        let config = dir.join("sshd_config");
        let log = dir.join("sshd.log");
        fs::write(
            &config,
            format!(
                "# Private sshd for the pam_ticket end-to-end tests.\n\
                 ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey {host_key}\n\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {authorized_keys}\n\
                 # The key file sits under /tmp, which StrictModes would reject.\n\
                 StrictModes no\n\
                 AllowUsers {TEST_USER}\n\
                 {authentication}\
                 PermitRootLogin no\n\
                 UseDNS no\n\
                 LogLevel VERBOSE\n",
                host_key = host_key.display(),
                pid = dir.join("sshd.pid").display(),
                authorized_keys = authorized_keys.display(),
                authentication = authentication_settings(changes),
            ),
        )
        .expect("write sshd_config");

        let pam_file = Path::new("/etc/pam.d").join(&service);
        fs::write(&pam_file, pam_stack).expect("write the PAM service file");
        let link = dir.join(&service);
        let _ = fs::remove_file(&link);
        symlink(SSHD, &link).expect("symlink sshd");

        let log_file = fs::File::create(&log).expect("create the sshd log");
        // -D: stay in the foreground as our child; -e: log to stderr (our log file).
        let spawned = Command::new(&link)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                let _ = fs::remove_file(&pam_file);
                panic!("cannot start sshd: {error}");
            }
        };
        let mut sshd = Sshd {
            child,
            port,
            service,
            pam_file,
            link,
            log,
            client_key,
            config,
        };
        sshd.wait_until_listening();
        sshd
    }

    fn wait_until_listening(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited with {status}:\n{}", self.log_text());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sshd did not listen within 10 s:\n{}", self.log_text());
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PAM service name, i.e. the name of `/etc/pam.d/<service>`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The sshd_config this server runs with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The private key the test user's authorized_keys accepts.
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// sshd's own log so far (LogLevel VERBOSE).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs the real ssh client against this server as [`TEST_USER`].
    pub fn ssh(&self, client: &Client) -> SshRun {
        client.run(self.port, &self.client_key)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.pam_file);
        let _ = fs::remove_file(&self.link);
    }
}

/// Creates sshd's privilege-separation directory, which even `sshd -T` requires; `/run`
/// is emptied at boot and only the ssh service's unit (not run here) makes it.
pub fn ensure_privsep_dir() {
    let path = Path::new(PRIVSEP_DIR);
    if !path.exists() {
        fs::create_dir_all(path).expect("create /run/sshd");
    }
    // sshd refuses a privilege-separation directory that others may write to.
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod /run/sshd");
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("bound address").port()
}

/// How the client logs in: which methods it offers and what it types.
#[derive(Clone, Debug)]
pub struct Client {
    /// Answers to the ticket prompts, in order.
    pub answers: Vec<String>,
    /// `-o PreferredAuthentications=...`; `None` leaves the client's default.
    pub methods: Option<String>,
    /// Further `-o` options, e.g. `PasswordAuthentication=no`.
    pub options: Vec<String>,
    /// The command run in the session.
    pub command: String,
    /// What to type when asked more often than `answers` holds; `None` hangs up instead.
    pub repeat_last: bool,
}

impl Client {
    /// Offers the key and keyboard-interactive, answers with `answers`, then runs a
    /// command that prints [`SESSION_MARKER`] and the ticket variables.
    pub fn answering(answers: &[&str]) -> Client {
        Client {
            answers: answers.iter().map(|answer| answer.to_string()).collect(),
            methods: Some("publickey,keyboard-interactive".to_string()),
            options: Vec::new(),
            command: format!(
                "echo {SESSION_MARKER}; echo \"TICKET_ID=$TICKET_ID\"; \
                 echo \"TICKETING_SYSTEM=$TICKETING_SYSTEM\"; \
                 echo \"TICKET_DECISION=$TICKET_DECISION\""
            ),
            repeat_last: false,
        }
    }

    /// Answers every further prompt with the last answer again, as a person retyping would.
    pub fn repeating(mut self) -> Client {
        self.repeat_last = true;
        self
    }

    pub fn methods(mut self, methods: &str) -> Client {
        self.methods = Some(methods.to_string());
        self
    }

    /// A stock client: no PreferredAuthentications and no NumberOfPasswordPrompts, so it
    /// falls back to its built-in method order (gssapi-with-mic, publickey,
    /// keyboard-interactive, password) and asks for a password three times.
    pub fn stock(mut self) -> Client {
        self.methods = None;
        self
    }

    /// Adds `-o OPTION` to the command line.
    pub fn option(mut self, option: &str) -> Client {
        self.options.push(option.to_string());
        self
    }

    fn run(&self, port: u16, key: &Path) -> SshRun {
        let script_dir = key.parent().expect("the key lives in a directory");
        let script = script_dir.join("drive_ssh.exp");
        fs::write(&script, EXPECT_SCRIPT).expect("write the expect script");
        let mut command = Command::new("expect");
        command
            .arg("-f")
            .arg(&script)
            .arg(if self.repeat_last { "repeat" } else { "hangup" })
            .arg(self.answers.len().to_string())
            .args(&self.answers)
            .args(["ssh", "-F", "/dev/null", "-p", &port.to_string(), "-i"])
            .arg(key)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
            ]);
        if let Some(methods) = &self.methods {
            command
                .arg("-o")
                .arg(format!("PreferredAuthentications={methods}"));
        }
        for option in &self.options {
            command.arg("-o").arg(option);
        }
        command
            .arg(format!("{TEST_USER}@127.0.0.1"))
            .arg(&self.command)
            // The client must not pick up an agent or settings from the test's environment.
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        let started = Instant::now();
        let output = command.output().expect("run expect");
        SshRun::parse(
            &String::from_utf8_lossy(&output.stdout),
            &String::from_utf8_lossy(&output.stderr),
            started.elapsed(),
        )
    }
}

/// What one ssh run showed and how long each step took.
#[derive(Clone, Debug)]
pub struct SshRun {
    /// Everything the client printed on its terminal (prompts, messages, session output).
    pub transcript: String,
    /// Milliseconds from spawning ssh to each ticket prompt.
    pub prompt_at_ms: Vec<u64>,
    /// Milliseconds from spawning ssh to each answer sent.
    pub answer_at_ms: Vec<u64>,
    /// The client's own password prompts (`user@host's password: `).
    pub password_prompts: usize,
    /// `Password: ` prompts that came through keyboard-interactive (a password module in
    /// the PAM stack).
    pub pam_password_prompts: usize,
    /// Milliseconds from spawning ssh to the session's first output, if it started.
    pub shell_at_ms: Option<u64>,
    /// ssh's exit status (255: connection or authentication failure).
    pub exit_status: i32,
    pub driver_log: String,
    pub total: Duration,
}

impl SshRun {
    fn parse(stdout: &str, stderr: &str, total: Duration) -> SshRun {
        let mut run = SshRun {
            transcript: stdout.replace("\r\n", "\n"),
            prompt_at_ms: Vec::new(),
            answer_at_ms: Vec::new(),
            password_prompts: 0,
            pam_password_prompts: 0,
            shell_at_ms: None,
            exit_status: -1,
            driver_log: stderr.to_string(),
            total,
        };
        for line in stderr.lines() {
            let mut words = line.split_whitespace();
            let (Some(tag), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(value) = value.parse::<i64>() else {
                continue;
            };
            let ms = u64::try_from(value).unwrap_or(0);
            match tag {
                "@@prompt" => run.prompt_at_ms.push(ms),
                "@@answer" => run.answer_at_ms.push(ms),
                "@@shell" => run.shell_at_ms = Some(ms),
                "@@password" => run.password_prompts += 1,
                "@@pam_password" => run.pam_password_prompts += 1,
                "@@exit" => run.exit_status = i32::try_from(value).unwrap_or(-1),
                _ => {}
            }
        }
        run
    }

    /// Whether the session ran (the marker came back from the server).
    pub fn got_shell(&self) -> bool {
        self.shell_at_ms.is_some()
    }

    /// `NAME=value` printed by the session, if any.
    pub fn session_value(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.transcript
            .lines()
            .filter_map(|line| line.trim_end().strip_prefix(&prefix))
            .map(str::to_string)
            .next_back()
    }

    /// Connect → first prompt, and last answer → session.
    pub fn timings(&self) -> (Option<u64>, Option<u64>) {
        let to_prompt = self.prompt_at_ms.first().copied();
        let to_shell = match (self.answer_at_ms.last(), self.shell_at_ms) {
            (Some(answer), Some(shell)) => Some(shell.saturating_sub(*answer)),
            _ => None,
        };
        (to_prompt, to_shell)
    }
}

/// Writes a line to the real standard error, past libtest's output capture, so that
/// measured figures show in every `cargo test` run.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The expect driver. argv: `repeat|hangup N answer1 .. answerN ssh-command...`. The
/// answers go, in order, to the module's prompts: `Ticket ID: ` and (AskReason) `Reason: `.
/// The terminal goes to standard output; timing markers (`@@prompt <ms>`, `@@answer <ms>`,
/// `@@shell <ms>`, `@@password <ms>`, `@@pam_password <ms>`, `@@exit <status>`) to
/// standard error. A password prompt (the client's own, or `Password: ` from a PAM module)
/// is answered with a string no account has, up to 12 times, so that the test sees what
/// comes after it.
const EXPECT_SCRIPT: &str = r#"
set mode [lindex $argv 0]
set count [lindex $argv 1]
set answers [lrange $argv 2 [expr {1 + $count}]]
set command [lrange $argv [expr {2 + $count}] end]
set timeout 30
set started [clock milliseconds]
proc stamp {tag} {
    global started
    puts stderr "$tag [expr {[clock milliseconds] - $started}]"
}
log_user 1
spawn -noecho {*}$command
set asked 0
set passwords 0
expect {
    -re {(Ticket ID|Reason): $} {
        stamp @@prompt
        if {$asked < [llength $answers]} {
            set answer [lindex $answers $asked]
        } elseif {$mode eq "repeat" && $asked < 12} {
            set answer [lindex $answers end]
        } else {
            puts stderr "@@hangup 0"
            close
            wait
            puts stderr "@@exit 255"
            exit 0
        }
        incr asked
        send -- "$answer\r"
        stamp @@answer
        exp_continue
    }
    -re {'s password: $} {
        stamp @@password
        incr passwords
        if {$passwords > 12} { exit 4 }
        send -- "not-the-password\r"
        exp_continue
    }
    -re {Password: $} {
        stamp @@pam_password
        incr passwords
        if {$passwords > 12} { exit 4 }
        send -- "not-the-password\r"
        exp_continue
    }
    "PAMTICKET-SESSION-STARTED" {
        stamp @@shell
        exp_continue
    }
    timeout {
        puts stderr "@@timeout 0"
        exit 3
    }
    eof
}
set result [wait]
puts stderr "@@exit [lindex $result 3]"
"#;
