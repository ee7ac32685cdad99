//! 500 logins at once against the ServiceNow simulator, the way sshd runs them: each login
//! is a process of its own (a re-executed copy of this test, see `support/isolated.rs`)
//! that loads the module through the real libpam, and all of them append to one audit
//! file. A third of the tickets are valid, a third closed, a third missing.
//!
//! Processes rather than threads of one process: sshd forks per connection, so each login
//! loads the module afresh and the audit file sees appends from many processes, which is
//! what must never interleave. `pam_start_confdir` reads the test's own service file, so
//! no pam_wrapper (and none of its per-process `/tmp/pam.X` folders) is involved.
//!
//! They run in waves of [`WAVE`], so that the machine is loaded but not starved; every
//! login of a wave is started before any is waited for.
#![allow(clippy::disallowed_methods)] // times real logins in real processes

use pam_ticket_testkit as support;

use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::files::write_root_only;
use support::https::TestServer;
use support::isolated::{self, ChildLogin, ChildReport};
use support::pam::{self, Login, PAM_MAXTRIES, PAM_SUCCESS, PamService};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const LOGINS: usize = 500;
const WAVE: usize = 100;
/// Timeout= for the module. A loaded machine makes each login slower, not wrong.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A login process still running this long after its start has hung.
const HANG_LIMIT: Duration = Duration::from_secs(30);
const RSS_LIMIT_KIB: i64 = 64 * 1024;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";

/// The three kinds of ticket and what each must come to.
struct Kind {
    ticket: &'static str,
    code: i32,
    decision: &'static str,
    reason: &'static str,
}

const KINDS: [Kind; 3] = [
    Kind {
        ticket: "INC0010001",
        code: PAM_SUCCESS,
        decision: "allow",
        reason: "ticket exists; passed state",
    },
    Kind {
        ticket: "INC0010002",
        code: PAM_MAXTRIES,
        decision: "deny",
        reason: "Ticket INC0010002 is Closed; allowed states: New, In Progress",
    },
    Kind {
        ticket: "INC0099999",
        code: PAM_MAXTRIES,
        decision: "deny",
        reason: "Ticket INC0099999 was not found",
    },
];

fn user(index: usize) -> String {
    format!("load{index:03}")
}

fn kind(index: usize) -> &'static Kind {
    &KINDS[index % KINDS.len()]
}

#[test]
fn five_hundred_concurrent_logins_get_their_own_verdicts() {
    if isolated::serve_if_child() {
        return;
    }
    let dir = TestDir::new("concurrent");
    let pki = TestPki::generate(&dir.join("pki"));
    let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let server = TestServer::start(pki.server_config(ServerCert::Good), sim.clone());
    let account = dir.join("account");
    write_root_only(
        &account,
        &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
    );
    let config = dir.join("pam_ticket.conf");
    write_root_only(
        &config,
        &format!(
            "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nTimeout=\"{}\"\nMaxAttempts=\"1\"\nValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"New, In Progress\"\n",
            server.base_url(),
            account.display(),
            pki.ca_pem_path().display(),
            TIMEOUT.as_secs()
        ),
    );
    let audit = dir.join("audit.jsonl");
    let service = PamService::new(
        &dir.join("pam.d"),
        "concurrent",
        &pam::module_path(),
        &[
            format!("config={}", config.display()),
            format!("AuditLogFile={}", audit.display()),
        ],
    );

    let started = Instant::now();
    let mut reports: Vec<(usize, ChildReport)> = Vec::with_capacity(LOGINS);
    for wave in 0..LOGINS.div_ceil(WAVE) {
        let indices = wave * WAVE..((wave + 1) * WAVE).min(LOGINS);
        let finished = thread::scope(|scope| {
            let running: Vec<_> = indices
                .map(|index| {
                    let (service, dir) = (&service, &dir);
                    scope.spawn(move || {
                        let login = Login::new(&user(index))
                            .rhost("198.51.100.9")
                            .answer(kind(index).ticket);
                        let report = isolated::run(
                            "five_hundred_concurrent_logins_get_their_own_verdicts",
                            &ChildLogin {
                                service,
                                login: &login,
                                capture_syslog: false,
                                dir: &dir.join(&format!("login{index:03}")),
                            },
                            HANG_LIMIT,
                        );
                        (index, report)
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|login| login.join().expect("a login thread"))
                .collect::<Vec<_>>()
        });
        reports.extend(finished);
    }
    let wall = started.elapsed();

    let mut problems = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut peak_rss_kib = 0;
    for (index, report) in &reports {
        let expected = kind(*index);
        if report.hung || report.signal.is_some() || report.exit_code != Some(0) {
            problems.push(format!(
                "login {index}: hung {}, signal {:?}, exit {:?}: {}",
                report.hung, report.signal, report.exit_code, report.output
            ));
            continue;
        }
        let Some(outcome) = &report.outcome else {
            problems.push(format!("login {index}: no result: {}", report.output));
            continue;
        };
        let peak = outcome.peak_rss_kib.unwrap_or(i64::MAX);
        peak_rss_kib = peak_rss_kib.max(peak);
        if peak >= RSS_LIMIT_KIB {
            problems.push(format!("login {index}: peak RSS {peak} KiB"));
        }
        slowest = slowest.max(outcome.elapsed);
        if outcome.code != expected.code {
            problems.push(format!(
                "login {index} ({}): {} where {} was due",
                expected.ticket,
                outcome.code_name,
                pam::code_name(expected.code)
            ));
        }
        if outcome.elapsed > TIMEOUT + Duration::from_secs(1) {
            problems.push(format!("login {index}: took {:?}", outcome.elapsed));
        }
    }

    // The audit file: exactly one JSON line per login, each with its own verdict.
    let text = fs::read_to_string(&audit).expect("the audit file");
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != LOGINS {
        problems.push(format!("{} audit lines, expected {LOGINS}", lines.len()));
    }
    let mut audited: BTreeMap<String, Value> = BTreeMap::new();
    for line in &lines {
        match serde_json::from_str::<Value>(line) {
            Ok(record) => {
                let user = record["user"].as_str().unwrap_or_default().to_string();
                if let Some(earlier) = audited.insert(user.clone(), record) {
                    problems.push(format!("{user} audited twice, first as {earlier}"));
                }
            }
            Err(error) => problems.push(format!("an audit line is not JSON ({error}): {line:?}")),
        }
    }
    for index in 0..LOGINS {
        let expected = kind(index);
        let Some(record) = audited.get(&user(index)) else {
            problems.push(format!("{} has no audit line", user(index)));
            continue;
        };
        if record["decision"] != expected.decision
            || record["ticket"] != expected.ticket
            || record["reason"] != expected.reason
        {
            problems.push(format!("{}: audited {record}", user(index)));
        }
    }
    // One query per login: no retry was needed, none was lost.
    if sim.query_count() != LOGINS {
        problems.push(format!(
            "the simulator answered {} queries",
            sim.query_count()
        ));
    }

    println!(
        "{LOGINS} concurrent logins in waves of {WAVE}: {:.1} s wall, slowest pam_authenticate {:?}, peak RSS {:.1} MiB, {} problem(s)",
        wall.as_secs_f64(),
        slowest,
        peak_rss_kib as f64 / 1024.0,
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
