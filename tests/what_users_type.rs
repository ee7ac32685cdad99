//! What people type (issue 11, item 7), through the real libpam against the simulators
//! over HTTPS: a ticket ID in lower case is upper-cased before the ID rules
//! (`UppercaseTicketId`, default Yes), and a bypass code is compared without regard to
//! case, dashes or spaces, as `pam-ticket hash-code --generate` prints it or not, while a
//! hash made of a code exactly as typed (before codes were normalised) keeps working.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use pam_ticket::bypass::BypassHash;
use support::https::TestServer;
use support::pam::{self, Login, PAM_MAXTRIES, PAM_SUCCESS, PamOutcome, PamService};
use support::pki::{ServerCert, TestPki};
use support::remedy::RemedySim;
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "Wh4t-Typed-Pass";
const BYPASS_ACCEPTED: &str = "Failsafe bypass code accepted; this login is audited.";

struct Rig {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    system: &'static str,
}

impl Rig {
    fn start(label: &str, system: &'static str, handler: Arc<dyn support::http::Handler>) -> Rig {
        let dir = TestDir::new(&format!("typed-{label}"));
        let pki = TestPki::generate(&dir.join("pki"));
        let server = TestServer::start(pki.server_config(ServerCert::Good), handler);
        let account = dir.join("account.conf");
        fs::write(
            &account,
            format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
        )
        .expect("write");
        fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod");
        Rig {
            dir,
            pki,
            server,
            system,
        }
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn service(&self, extra: &str) -> PamService {
        let config = self.dir.join("pam_ticket.conf");
        fs::write(
            &config,
            format!(
                "TicketingSystem=\"{}\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n\
                 CAFile=\"{}\"\nAuditLogFile=\"{}\"\nCacheDirectory=\"{}\"\nTimeout=\"3\"\n\
                 MaxAttempts=\"1\"\n{extra}",
                self.system,
                self.server.base_url(),
                self.dir.join("account.conf").display(),
                self.pki.ca_pem_path().display(),
                self.audit_path().display(),
                self.dir.join("cache").display(),
            ),
        )
        .expect("write the configuration");
        // It may hold bypass code hashes: root only.
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).expect("chmod");
        PamService::new(
            &self.dir.join("pam.d"),
            "ticket-typed",
            &pam::module_path(),
            &[format!("config={}", config.display())],
        )
    }

    fn login(&self, service: &PamService, answer: &str) -> PamOutcome {
        pam::authenticate(
            service,
            &Login::new("alice").rhost("192.0.2.10").answer(answer),
        )
    }

    fn last_audit(&self) -> Value {
        let text = fs::read_to_string(self.audit_path()).unwrap_or_default();
        serde_json::from_str(text.lines().last().unwrap_or("null")).expect("an audit record")
    }
}

/// `inc0010001` is INC0010001: the module asks about INC0010001, exports it and audits it.
/// With `UppercaseTicketId="No"` the answer is taken as typed, so the default rule refuses
/// it before any request.
#[test]
fn a_lower_case_servicenow_id_is_upper_cased_unless_switched_off() {
    let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let rig = Rig::start("servicenow", "ServiceNow", sim.clone());
    let outcome = rig.login(&rig.service(""), "inc0010001");
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_SUCCESS, "{context}");
    assert!(outcome.errors().is_empty(), "{context}");
    assert_eq!(
        outcome.env.get("TICKET_ID").map(String::as_str),
        Some("INC0010001"),
        "{context}"
    );
    let received = sim.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(
        received[0].sysparm_query.as_deref(),
        Some("number=INC0010001")
    );
    let record = rig.last_audit();
    assert_eq!(record["decision"], "allow", "{record}");
    assert_eq!(record["ticket"], "INC0010001", "{record}");

    let outcome = rig.login(&rig.service("UppercaseTicketId=\"No\"\n"), "inc0010001");
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_MAXTRIES, "{context}");
    assert_eq!(
        outcome.errors(),
        vec!["That ticket ID is not of a ticket type this gateway accepts"],
        "{context}"
    );
    assert_eq!(sim.query_count(), 1, "no request for the refused answer");
    let record = rig.last_audit();
    assert_eq!(record["decision"], "deny", "{record}");
    assert_eq!(record["answer_length"], 10, "{record}");
    assert!(record.get("ticket").is_none(), "{record}");
}

/// The same for Remedy's IDs: `crq000000000001` is CRQ000000000001 in the qualification.
#[test]
fn a_lower_case_remedy_id_is_upper_cased() {
    let sim = Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let rig = Rig::start("remedy", "BMCRemedy", sim.clone());
    let outcome = rig.login(&rig.service(""), "crq000000000001");
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    let queries: Vec<Option<String>> = sim
        .received()
        .into_iter()
        .filter(|request| request.endpoint == support::remedy::Endpoint::Query)
        .map(|request| request.q)
        .collect();
    assert_eq!(
        queries,
        vec![Some(
            "'Infrastructure Change ID' = \"CRQ000000000001\"".to_string()
        )]
    );
    assert_eq!(rig.last_audit()["ticket"], "CRQ000000000001");
}

/// A code from `hash-code --generate` (grouped by four with dashes) is accepted typed as
/// printed, in lower case, without dashes, or with spaces instead; a code hashed before
/// codes were normalised (here, mixed case with dashes, hashed as typed) is accepted as it
/// was hashed. A wrong code is not.
#[test]
fn bypass_codes_are_compared_without_case_dashes_or_spaces() {
    let output = Command::new(TOOL)
        .args(["hash-code", "--generate"])
        .output()
        .expect("run pam-ticket hash-code");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    let generated = lines[0]
        .strip_prefix("bypass code: ")
        .expect("the code comes first")
        .to_string();
    assert_eq!(generated.split('-').count(), 6, "{generated}");
    let new_hash = lines[1].to_string();
    let old_code = "Break-Glass-2019-Vault-7";
    let old_hash = BypassHash::create(old_code.as_bytes(), b"an-old-salt");

    let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let rig = Rig::start("bypass", "ServiceNow", sim.clone());
    let service = rig.service(&format!("FailsafeBypassCode=\"{new_hash},{old_hash}\"\n"));
    for (typed, entry) in [
        (generated.clone(), 1),
        (generated.to_lowercase(), 1),
        (generated.replace('-', ""), 1),
        (generated.replace('-', " ").to_lowercase(), 1),
        (old_code.to_string(), 2),
    ] {
        let outcome = rig.login(&service, &typed);
        let context = format!("{typed:?}: {}", outcome.transcript());
        assert_eq!(outcome.code, PAM_SUCCESS, "{context}");
        assert_eq!(outcome.infos(), vec![BYPASS_ACCEPTED], "{context}");
        assert_eq!(
            outcome.env.get("TICKET_DECISION").map(String::as_str),
            Some("bypass"),
            "{context}"
        );
        let record = rig.last_audit();
        assert_eq!(record["decision"], "bypass", "{context}: {record}");
        assert_eq!(record["bypass_entry"], entry, "{context}: {record}");
    }
    let mut wrong = generated.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    let outcome = rig.login(&service, &wrong);
    assert_eq!(outcome.code, PAM_MAXTRIES, "{}", outcome.transcript());
    assert_eq!(rig.last_audit()["decision"], "deny");
    assert_eq!(sim.query_count(), 0, "a bypass code is never sent anywhere");
}
