//! `make bench`: how long a ticket check takes through the module, compared in the same
//! run with a plain `curl` of the same Table API query against the same simulator. The
//! ratio matters more than the absolute times on a shared, noisy machine.
//!
//! Both sides open a fresh TLS connection each time: sshd forks a process per connection,
//! so the module never reuses one across logins, and curl is one process per request.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::https::TestServer;
use support::pam::{self, Login, PAM_SUCCESS, PamService};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const ROUNDS: usize = 40;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

// Measures real wall time around real processes.
#[allow(clippy::disallowed_methods)]
fn main() {
    let dir = TestDir::new("bench");
    let pki = TestPki::generate(&dir.join("pki"));
    let simulator = Arc::new(ServiceNowSim::new("svc", "bench-password"));
    let server = TestServer::start(pki.server_config(ServerCert::Good), simulator.clone());
    let account = dir.join("account.conf");
    fs::write(&account, "Username=\"svc\"\nPassword=\"bench-password\"\n").expect("account");
    fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod");
    let config = dir.join("pam_ticket.conf");
    fs::write(
        &config,
        format!(
            "TicketingSystem=ServiceNow\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\nValidateRequestingUser=Yes\n",
            server.base_url(),
            account.display(),
            pki.ca_pem_path().display()
        ),
    )
    .expect("config");
    let service = PamService::new(
        &dir.join("pam.d"),
        "ticket-bench",
        &pam::module_path(),
        &[format!("config={}", config.display())],
    );
    let query_url = format!(
        "{}/api/now/table/incident?sysparm_query=number%3DINC0010001&sysparm_fields=number%2Cstate%2Ccaller_id.user_name%2Copened_by.user_name&sysparm_limit=2&sysparm_display_value=all&sysparm_exclude_reference_link=true",
        server.base_url()
    );

    let mut module_times = Vec::new();
    let mut curl_times = Vec::new();
    // Interleaved, so that a burst of load elsewhere hits both sides alike.
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let outcome = pam::authenticate(&service, &Login::new("alice").answer("INC0010001"));
        module_times.push(started.elapsed());
        assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());

        let started = Instant::now();
        let status = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-f", "--cacert"])
            .arg(pki.ca_pem_path())
            .args(["-u", "svc:bench-password", &query_url])
            .status()
            .expect("curl runs");
        curl_times.push(started.elapsed());
        assert!(status.success(), "curl failed");
    }
    let module = median(module_times);
    let curl = median(curl_times);
    println!("ticket check, median of {ROUNDS} (fresh TLS connection each):");
    println!(
        "  pam_authenticate through libpam + pam_ticket.so: {:>7.2} ms",
        module.as_secs_f64() * 1000.0
    );
    println!(
        "  curl of the same Table API query:                {:>7.2} ms",
        curl.as_secs_f64() * 1000.0
    );
    println!(
        "  ratio module / curl:                             {:>7.2}",
        module.as_secs_f64() / curl.as_secs_f64()
    );
    println!("  simulator queries: {}", simulator.query_count());
}
