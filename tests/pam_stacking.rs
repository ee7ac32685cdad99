//! The README's stacking rules, through the real libpam: what a password module or a
//! `sufficient` line above pam_ticket does, and how a pam_succeed_if exemption behaves.
//! Each stack runs the built module against the ServiceNow simulator over HTTPS, and each
//! test asserts the PAM code, the prompts the person saw, and the requests the simulator
//! received.

use pam_ticket_testkit as support;

use std::path::PathBuf;
use std::sync::Arc;

use support::files::write_root_only;
use support::https::TestServer;
use support::pam::{
    Login, PAM_AUTH_ERR, PAM_SUCCESS, PamOutcome, PamService, authenticate, module_line,
    module_path, system_module,
};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const TICKET_PROMPT: &str = "Ticket ID: ";

struct Gate {
    dir: TestDir,
    _pki: TestPki,
    server: TestServer,
    config: PathBuf,
}

impl Gate {
    fn new(label: &str) -> Gate {
        let dir = TestDir::new(label);
        let pki = TestPki::generate(&dir.join("pki"));
        let server = TestServer::start(
            pki.server_config(ServerCert::Good),
            Arc::new(ServiceNowSim::new("svc_stack", "stack-pass")),
        );
        let account = dir.join("account.conf");
        write_root_only(
            &account,
            "Username=\"svc_stack\"\nPassword=\"stack-pass\"\n",
        );
        let config = dir.join("pam_ticket.conf");
        write_root_only(
            &config,
            &format!(
                "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n\
                 CAFile=\"{}\"\nTimeout=\"5\"\nMaxAttempts=\"1\"\n",
                server.base_url(),
                account.display(),
                pki.ca_pem_path().display(),
            ),
        );
        Gate {
            dir,
            _pki: pki,
            server,
            config,
        }
    }

    /// The module's auth line.
    fn ticket_line(&self) -> String {
        format!(
            "auth required {}\n",
            module_line(
                &module_path(),
                &[format!("config={}", self.config.display())]
            )
        )
    }

    /// A service `name` whose text is `text`, with `{ticket}` standing for the module's
    /// line and `{module:NAME}` for a system module's path.
    fn service(&self, name: &str, text: &str) -> PamService {
        let mut text = text.replace("{ticket}", &self.ticket_line());
        for module in [
            "pam_unix.so",
            "pam_deny.so",
            "pam_permit.so",
            "pam_succeed_if.so",
        ] {
            text = text.replace(
                &format!("{{module:{module}}}"),
                &system_module(module).display().to_string(),
            );
        }
        PamService::with_text(&self.dir.join("pam.d"), name, &text)
    }
}

fn login(service: &PamService, user: &str, answers: &[&str]) -> PamOutcome {
    let login = answers
        .iter()
        .fold(Login::new(user).rhost("192.0.2.44"), |login, answer| {
            login.answer(answer)
        });
    authenticate(service, &login)
}

/// Debian's common-auth above the ticket: pam_unix asks `Password:`, a password the
/// account does not have ends the stack at `requisite pam_deny`, and the ticket is never
/// asked (sshd then runs the next keyboard-interactive round: three in all).
#[test]
fn debian_common_auth_above_the_ticket_asks_only_for_a_password() {
    let gate = Gate::new("stack-common-auth");
    // Debian's common-auth, less the optional pam_cap.
    gate.service(
        "common-auth",
        "auth [success=1 default=ignore] {module:pam_unix.so} nullok\n\
         auth requisite {module:pam_deny.so}\n\
         auth required {module:pam_permit.so}\n",
    );
    // libpam looks for a relative include in /etc/pam.d, not in pam_start_confdir's
    // directory: the test names its own file by path.
    let service = gate.service(
        "sshd",
        &format!(
            "@include {}\n{{ticket}}",
            gate.dir.join("pam.d/common-auth").display()
        ),
    );
    let outcome = login(&service, "nobody", &["not-the-password", "INC0010001"]);
    assert_eq!(outcome.code, PAM_AUTH_ERR, "{}", outcome.transcript());
    assert_eq!(
        outcome.prompts(),
        vec!["Password: "],
        "{}",
        outcome.transcript()
    );
    assert_eq!(gate.server.request_count(), 0);
}

/// RHEL's `auth substack password-auth` above the ticket: the substack fails at
/// `required pam_deny`, which does not stop the parent stack, so the person is asked
/// `Password:` and then for a ticket, and even a valid ticket cannot pass.
#[test]
fn rhel_password_auth_substack_above_the_ticket_fails_even_a_valid_ticket() {
    let gate = Gate::new("stack-password-auth");
    gate.service(
        "password-auth",
        "auth sufficient {module:pam_unix.so} nullok\n\
         auth required {module:pam_deny.so}\n",
    );
    let service = gate.service(
        "sshd",
        &format!(
            "auth substack {}\n{{ticket}}",
            gate.dir.join("pam.d/password-auth").display()
        ),
    );
    let outcome = login(&service, "nobody", &["not-the-password", "INC0010001"]);
    assert_eq!(outcome.code, PAM_AUTH_ERR, "{}", outcome.transcript());
    assert_eq!(
        outcome.prompts(),
        vec!["Password: ", TICKET_PROMPT],
        "{}",
        outcome.transcript()
    );
    assert_eq!(
        gate.server.request_count(),
        1,
        "the valid ticket was looked up"
    );
}

/// A `sufficient` line above the ticket that succeeds ends the stack: no ticket asked.
#[test]
fn a_sufficient_line_above_the_ticket_lets_people_in_without_one() {
    let gate = Gate::new("stack-sufficient");
    let service = gate.service("sshd", "auth sufficient {module:pam_permit.so}\n{ticket}");
    let outcome = login(&service, "nobody", &["INC0010001"]);
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert!(outcome.prompts().is_empty(), "{}", outcome.transcript());
    assert!(!outcome.env.contains_key("TICKET_ID"));
    assert_eq!(gate.server.request_count(), 0);

    // Below a required ticket it does no harm: the ticket decides.
    let service = gate.service(
        "sshd-below",
        "{ticket}auth sufficient {module:pam_permit.so}\n",
    );
    let outcome = login(&service, "nobody", &["INC0099999"]);
    assert_ne!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(outcome.prompts(), vec![TICKET_PROMPT]);
    assert_eq!(gate.server.request_count(), 1);
}

/// The README's exemption: members of the group end the stack at pam_succeed_if, everyone
/// else is asked for a ticket.
#[test]
fn pam_succeed_if_exempts_a_group_and_asks_everyone_else() {
    let gate = Gate::new("stack-succeed-if");
    let service = gate.service(
        "sshd",
        "auth [success=done default=ignore] {module:pam_succeed_if.so} quiet user ingroup root\n\
         {ticket}",
    );
    let exempt = login(&service, "root", &[]);
    assert_eq!(exempt.code, PAM_SUCCESS, "{}", exempt.transcript());
    assert!(exempt.prompts().is_empty());
    assert!(!exempt.env.contains_key("TICKET_ID"));
    assert_eq!(gate.server.request_count(), 0);

    let asked = login(&service, "nobody", &["INC0010001"]);
    assert_eq!(asked.code, PAM_SUCCESS, "{}", asked.transcript());
    assert_eq!(asked.prompts(), vec![TICKET_PROMPT]);
    assert_eq!(
        asked.env.get("TICKET_ID").map(String::as_str),
        Some("INC0010001")
    );
    assert_eq!(gate.server.request_count(), 1);
}
