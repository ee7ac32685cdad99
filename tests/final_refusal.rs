//! A refusal that no other ticket can fix ends the exchange exactly the way the last
//! refused ticket does: PAM_MAXTRIES, which makes sshd stop offering keyboard-interactive.
//! PAM_AUTH_ERR would let a stock ssh client start keyboard-interactive again (three rounds
//! by default), asking for a ticket again with the same result each time.
//!
//! Portal mode through the real libpam, against the portal simulator (which asks the
//! ServiceNow simulator): the last refused ticket, then each login that no ticket can make
//! pass (no target, a malformed target, no vault account, several vault accounts).

use pam_ticket_testkit as support;

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use support::files::write_root_only;
use support::pam::{Login, PAM_MAXTRIES, PamOutcome, PamService, authenticate, module_path};
use support::portal::PortalChain;

const GATEWAY_USER: &str = "PSMPGateway01";
const GATEWAY_PASSWORD: &str = "Gw-Pass-4412";

struct Rig {
    chain: PortalChain,
    service: PamService,
}

impl Rig {
    fn start(label: &str) -> Rig {
        let chain = PortalChain::start(label, GATEWAY_USER, GATEWAY_PASSWORD);
        let account = chain.dir.join("portal-account");
        write_root_only(
            &account,
            &format!("Username=\"{GATEWAY_USER}\"\nPassword=\"{GATEWAY_PASSWORD}\"\n"),
        );
        let config = chain.dir.join("pam_ticket.conf");
        write_root_only(
            &config,
            &format!(
                "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}\"\nPortalAccountFile=\"{}\"\n\
                 CAFile=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"2\"\nMaxAttempts=\"2\"\n",
                chain.portal_url(),
                account.display(),
                chain.pki.ca_pem_path().display(),
                audit_path(&chain).display(),
            ),
        );
        let service = PamService::new(
            &chain.dir.join("pam.d"),
            "psmp",
            &module_path(),
            &[format!("config={}", config.display())],
        );
        Rig { chain, service }
    }

    /// Logs in as `user`, typing `answers` at the ticket prompts.
    fn login(&self, user: &str, answers: &[&str]) -> PamOutcome {
        let login = answers
            .iter()
            .fold(Login::new(user).rhost("10.9.8.7"), |login, answer| {
                login.answer(answer)
            });
        authenticate(&self.service, &login)
    }

    /// The audit records written since `skip` records.
    fn audit_since(&self, skip: usize) -> Vec<Value> {
        fs::read_to_string(audit_path(&self.chain))
            .unwrap_or_default()
            .lines()
            .skip(skip)
            .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
            .collect()
    }
}

fn audit_path(chain: &PortalChain) -> PathBuf {
    chain.dir.join("audit.jsonl")
}

/// One login no ticket can fix: who connects, how many prompts the module may show before
/// it knows, the message, the audit reason's start, and the portal calls it makes
/// (logons, searches, retrieves, logoffs).
struct Hopeless {
    user: String,
    prompts: usize,
    message: String,
    audit_reason_starts: &'static str,
    portal_calls: (usize, usize, usize, usize),
}

#[test]
fn a_refusal_no_ticket_can_fix_ends_like_the_last_refused_ticket() {
    let rig = Rig::start("final-refusal");

    // The reference: MaxAttempts (2) refused tickets.
    let last_refused = rig.login("alice@root@db01.example.com", &["INC0010002", "INC0010002"]);
    assert_eq!(
        last_refused.code,
        PAM_MAXTRIES,
        "{}",
        last_refused.transcript()
    );
    assert_eq!(last_refused.prompts().len(), 2);
    assert_eq!(rig.chain.portal.counts(), (2, 2, 2, 2));
    let records = rig.audit_since(0);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|record| record["decision"] == "deny"));

    let no_target_help = |got: &str| {
        format!(
            "This gateway needs a target: connect as <you>@<target user>[#domain]@<target address>[#port] (got {got})"
        )
    };
    let cases = [
        Hopeless {
            user: "alice".to_string(),
            prompts: 0,
            message: no_target_help("alice"),
            audit_reason_starts: "no target in PAM_USER (portal mode)",
            portal_calls: (0, 0, 0, 0),
        },
        Hopeless {
            user: "alice@ro ot@db01.example.com".to_string(),
            prompts: 0,
            message: format!(
                "the target user in your login name is not a valid name or address; {}",
                no_target_help("alice@ro ot@db01.example.com")
            ),
            audit_reason_starts: "malformed target in PAM_USER (portal mode): the target user",
            portal_calls: (0, 0, 0, 0),
        },
        Hopeless {
            user: "alice@root@db09.example.com".to_string(),
            prompts: 1,
            message: "No vault account root@db09.example.com is available to this gateway; \
                      check the target user and address"
                .to_string(),
            audit_reason_starts: "No vault account root@db09.example.com",
            portal_calls: (1, 1, 0, 1),
        },
        Hopeless {
            user: "alice@deploy@app01.example.com".to_string(),
            prompts: 1,
            message: "2 vault accounts match deploy@app01.example.com; the target is ambiguous, \
                      ask your vault administrator"
                .to_string(),
            audit_reason_starts: "2 vault accounts match deploy@app01.example.com",
            portal_calls: (1, 1, 0, 1),
        },
    ];
    for case in cases {
        let before = rig.chain.portal.counts();
        let records_before = rig.audit_since(0).len();
        // Two answers are ready: the module must not ask for the second.
        let outcome = rig.login(&case.user, &["INC0010001", "INC0010001"]);
        let context = format!("{}: {}", case.user, outcome.transcript());
        assert_eq!(outcome.code, last_refused.code, "{context}");
        assert_eq!(outcome.code_name, "PAM_MAXTRIES", "{context}");
        assert_eq!(outcome.prompts().len(), case.prompts, "{context}");
        assert_eq!(outcome.errors(), vec![case.message.as_str()], "{context}");
        assert!(!outcome.env.contains_key("TICKET_ID"), "{context}");
        let after = rig.chain.portal.counts();
        assert_eq!(
            (
                after.0 - before.0,
                after.1 - before.1,
                after.2 - before.2,
                after.3 - before.3
            ),
            case.portal_calls,
            "{context}"
        );
        let records = rig.audit_since(records_before);
        assert_eq!(records.len(), 1, "{context}: {records:?}");
        assert_eq!(records[0]["decision"], "deny");
        assert_eq!(records[0]["system"], "portal");
        assert_eq!(records[0]["user"], case.user.as_str());
        let reason = records[0]["reason"].as_str().unwrap_or("");
        assert!(
            reason.starts_with(case.audit_reason_starts),
            "{context}: {reason}"
        );
    }
    assert_eq!(
        rig.chain.portal.sessions_opened(),
        rig.chain.portal.sessions_closed()
    );
    assert_eq!(
        rig.chain.servicenow.query_count(),
        2,
        "only the two real tickets reached ServiceNow"
    );
}
