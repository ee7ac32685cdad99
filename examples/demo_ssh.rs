//! `make demo-ssh` (root): a real OpenSSH login through the module. Starts the ServiceNow
//! simulator, a private sshd on a loopback port whose PAM service loads the built module,
//! and the real `ssh` client (driven by expect) three times: asked for a ticket and let in
//! with a valid one, refused for a closed one, not let in with the key alone.
//!
//! The system's sshd and its configuration are left alone; the PAM service file
//! `/etc/pam.d/sshd-pamticket-<pid>-demo` exists only while the demo runs.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use support::https::TestServer;
use support::pam::{module_path, system_module};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::sshd::{Client, SshRun, Sshd, TEST_USER, unavailable_reason};
use support::tmp::TestDir;

fn write_root_only(path: &Path, text: &str) {
    fs::write(path, text).expect("write a root-only file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

fn main() {
    if let Some(reason) = unavailable_reason() {
        eprintln!("make demo-ssh: {reason}");
        std::process::exit(1);
    }
    let dir = TestDir::new("demo-ssh");
    let pki = TestPki::generate(&dir.join("pki"));
    let simulator = Arc::new(ServiceNowSim::new("svc_gateway", "demo-password"));
    let server = TestServer::start(pki.server_config(ServerCert::Good), simulator.clone());

    let account = dir.join("account.conf");
    write_root_only(
        &account,
        "Username=\"svc_gateway\"\nPassword=\"demo-password\"\n",
    );
    let audit = dir.join("audit.jsonl");
    let config = dir.join("pam_ticket.conf");
    write_root_only(
        &config,
        &format!(
            "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n\
             CAFile=\"{}\"\nAuditLogFile=\"{}\"\nValidateIncidentTicketState=\"Yes\"\n\
             AllowedIncidentTicketStates=\"New, In Progress\"\nMaxAttempts=\"1\"\nTimeout=\"5\"\n",
            server.base_url(),
            account.display(),
            pki.ca_pem_path().display(),
            audit.display()
        ),
    );
    let stack = format!(
        "auth     required {} config={}\naccount  required {permit}\nsession  required {permit}\n",
        module_path().display(),
        config.display(),
        permit = system_module("pam_permit.so").display(),
    );
    let sshd = Sshd::start(dir.path(), "demo", &stack);

    println!("pam_ticket demo over real OpenSSH");
    println!(
        "  sshd:      /usr/sbin/sshd as {} on 127.0.0.1:{}",
        sshd.service(),
        sshd.port()
    );
    println!(
        "             UsePAM yes, KbdInteractiveAuthentication yes, PasswordAuthentication no,"
    );
    println!(
        "             AuthenticationMethods publickey,keyboard-interactive:pam, MaxAuthTries 4"
    );
    println!("  PAM:       /etc/pam.d/{}:", sshd.service());
    for line in stack.lines() {
        println!("               {line}");
    }
    println!("  simulator: ServiceNow Table API at {}", server.base_url());
    println!("  user:      {TEST_USER} (key made for this run)\n");

    let mut audit_seen = 0;
    let mut show = |title: &str, run: &SshRun| {
        println!("=== {title}");
        println!(
            "$ ssh -i <key> -p {} {TEST_USER}@127.0.0.1 ...",
            sshd.port()
        );
        for line in run.transcript.lines() {
            println!("  | {line}");
        }
        let (to_prompt, to_shell) = run.timings();
        println!(
            "  -> ssh exit status {}; connect->prompt {}; answer->shell {}",
            run.exit_status,
            to_prompt.map_or("-".to_string(), |ms| format!("{ms} ms")),
            to_shell.map_or("-".to_string(), |ms| format!("{ms} ms")),
        );
        let lines: Vec<String> = fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        for line in &lines[audit_seen.min(lines.len())..] {
            println!("  audit: {line}");
        }
        audit_seen = lines.len();
        println!();
    };

    let run = sshd.ssh(&Client::answering(&["INC0010001"]));
    show(
        "a valid ticket (INC0010001, In Progress): let in, TICKET_ID in the session",
        &run,
    );
    let run = sshd.ssh(&Client::answering(&["INC0010002"]));
    show(
        "a closed ticket (INC0010002): refused with the reason",
        &run,
    );
    let run = sshd.ssh(&Client::answering(&[]).methods("publickey"));
    show("the key alone: not let through", &run);
    println!(
        "requests the simulator received: {}",
        simulator.query_count()
    );
}
