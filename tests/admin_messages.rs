//! Messages that must send an administrator the right way (issue 11, item 5), through the
//! real libpam against the simulators over HTTPS: a SystemURL or PortalURL with a path the
//! module would add again, a symlinked account file, a DER CAFile, `HTTPS://`, a mistyped
//! module argument, and an error that a pam.d override causes.
//!
//! Every case asserts the PAM code, what the user saw, what the server received and what
//! was audited (configuration errors are audited through `AuditLogFile=` on the pam.d line).

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use support::https::TestServer;
use support::pam::{self, Login, PAM_SERVICE_ERR, PAM_SUCCESS, PamOutcome, PamService};
use support::pki::{ServerCert, TestPki};
use support::portal::PortalChain;
use support::remedy::RemedySim;
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "Adm1n-Msg-Pass";
const MISCONFIGURED: &str =
    "Ticket validation is misconfigured on this gateway; contact your administrator";

/// One world: a simulator behind HTTPS, an account file, and a pam.d service whose line
/// names the audit file (so that configuration errors are audited too).
struct Rig {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    system: &'static str,
}

impl Rig {
    fn servicenow(label: &str) -> (Rig, Arc<ServiceNowSim>) {
        let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
        (Rig::start(label, "ServiceNow", sim.clone()), sim)
    }

    fn remedy(label: &str) -> (Rig, Arc<RemedySim>) {
        let sim = Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
        (Rig::start(label, "BMCRemedy", sim.clone()), sim)
    }

    fn start(label: &str, system: &'static str, handler: Arc<dyn support::http::Handler>) -> Rig {
        let dir = TestDir::new(&format!("messages-{label}"));
        let pki = TestPki::generate(&dir.join("pki"));
        let server = TestServer::start(pki.server_config(ServerCert::Good), handler);
        let rig = Rig {
            dir,
            pki,
            server,
            system,
        };
        write_mode(
            &rig.account_path(),
            &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
            0o600,
        );
        rig
    }

    fn account_path(&self) -> PathBuf {
        self.dir.join("account.conf")
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// The configuration lines every case starts from, for a SystemURL.
    fn config_text(&self, system_url: &str) -> String {
        format!(
            "TicketingSystem=\"{}\"\nSystemURL=\"{system_url}\"\nConnectionAccountFile=\"{}\"\n\
             CAFile=\"{}\"\nTimeout=\"3\"\nMaxAttempts=\"1\"\nCacheDirectory=\"{}\"\n",
            self.system,
            self.account_path().display(),
            self.pki.ca_pem_path().display(),
            self.dir.join("cache").display(),
        )
    }

    /// Writes `text` as the configuration and a service whose line is `config=…`, then
    /// `arguments`, then `AuditLogFile=…`.
    fn service(&self, text: &str, arguments: &[&str]) -> PamService {
        let config = self.dir.join("pam_ticket.conf");
        write_mode(&config, text, 0o600);
        let mut line = vec![format!("config={}", config.display())];
        line.extend(arguments.iter().map(|argument| argument.to_string()));
        line.push(format!("AuditLogFile={}", self.audit_path().display()));
        PamService::new(
            &self.dir.join("pam.d"),
            "ticket-messages",
            &pam::module_path(),
            &line,
        )
    }

    fn login(&self, service: &PamService, answers: &[&str]) -> PamOutcome {
        let login = answers
            .iter()
            .fold(Login::new("alice").rhost("192.0.2.10"), |login, answer| {
                login.answer(answer)
            });
        pam::authenticate(service, &login)
    }

    /// The audit records written since the file had `skip` lines.
    fn audit_since(&self, skip: usize) -> Vec<Value> {
        fs::read_to_string(self.audit_path())
            .unwrap_or_default()
            .lines()
            .skip(skip)
            .map(|line| serde_json::from_str(line).expect("audit lines are JSON"))
            .collect()
    }

    fn audit_len(&self) -> usize {
        self.audit_since(0).len()
    }
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A configuration error: PAM_SERVICE_ERR, no prompt, the one fixed message, no request,
/// and one `error` record (with the login's rhost) whose reason is returned.
fn assert_configuration_error(
    rig: &Rig,
    server: &TestServer,
    outcome: &PamOutcome,
    audit_before: usize,
) -> String {
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_SERVICE_ERR, "{context}");
    assert!(outcome.prompts().is_empty(), "{context}");
    assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
    assert_eq!(server.request_count(), 0, "nothing is sent: {context}");
    let records = rig.audit_since(audit_before);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "error", "{records:?}");
    assert_eq!(records[0]["rhost"], "192.0.2.10", "{records:?}");
    records[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// ServiceNow instances have no path: a URL copied from the browser or the API explorer is
/// a configuration error at load that names the bare instance URL. Before, one such URL
/// was an "unexpected HTTP 400" at every login (denied as "unavailable"), and the other
/// was let through by a server that ignored the path.
#[test]
fn a_servicenow_url_with_a_path_names_the_bare_instance_url() {
    let (rig, sim) = Rig::servicenow("sn-path");
    let base = rig.server.base_url();
    for path in ["/api/now/table/incident", "/now/nav/ui/home"] {
        let url = format!("{base}{path}");
        let service = rig.service(&rig.config_text(&url), &[]);
        let before = rig.audit_len();
        let outcome = rig.login(&service, &["INC0010001"]);
        let reason = assert_configuration_error(&rig, &rig.server, &outcome, before);
        assert!(
            reason.contains(&format!(
                "pam_ticket.conf:2: SystemURL: \"{url}\" has a path ({path}), but a ServiceNow \
                 instance has none: use \"{base}\""
            )),
            "{reason}"
        );
        assert_eq!(sim.query_count(), 0);
    }
    // The bare URL is what works.
    let service = rig.service(&rig.config_text(&base), &[]);
    let outcome = rig.login(&service, &["INC0010001"]);
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(sim.query_count(), 1);
}

/// Remedy may sit under a reverse proxy's prefix, which is kept; only a path that already
/// ends in the AR REST API's routes is an error, naming the base in front of them.
#[test]
fn a_remedy_url_that_ends_in_an_api_route_names_the_base() {
    let (rig, sim) = Rig::remedy("remedy-path");
    let base = rig.server.base_url();
    for (path, route, prefix) in [
        ("/api/jwt/login", "api/jwt/login", ""),
        (
            "/itsm/api/arsys/v1/entry/HPD:Help%20Desk",
            "api/arsys/v1/entry/HPD:Help%20Desk",
            "/itsm",
        ),
    ] {
        let url = format!("{base}{path}");
        let service = rig.service(&rig.config_text(&url), &[]);
        let before = rig.audit_len();
        let outcome = rig.login(&service, &["INC000000000001"]);
        let reason = assert_configuration_error(&rig, &rig.server, &outcome, before);
        assert!(
            reason.contains(&format!(
                "pam_ticket.conf:2: SystemURL: \"{url}\" ends in the AR REST API's route \
                 /{route}: use the base in front of it, \"{base}{prefix}\""
            )),
            "{reason}"
        );
    }
    assert_eq!(sim.request_count(), 0);
    // A proxy's prefix in front of the API keeps working.
    let service = rig.service(&rig.config_text(&format!("{base}/itsm")), &[]);
    let outcome = rig.login(&service, &["INC000000000001"]);
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    let received = sim.received();
    assert!(
        received.iter().all(|request| request.prefix == "/itsm"),
        "{received:?}"
    );
    assert_eq!(sim.query_count(), 1);
}

/// The portal's URL is the base in front of PVWA's `/API/` routes (`…/PasswordVault`); one
/// that already ends in them names that base. `…/PasswordVault` keeps working.
#[test]
fn a_portal_url_that_ends_in_an_api_route_names_the_base() {
    let chain = PortalChain::start("messages-portal", "PSMPGateway01", "Gw-Pass-4412");
    let account = chain.dir.join("portal-account");
    write_mode(
        &account,
        "Username=\"PSMPGateway01\"\nPassword=\"Gw-Pass-4412\"\n",
        0o600,
    );
    let audit = chain.dir.join("audit.jsonl");
    let service_for = |portal_url: &str| {
        let config = chain.dir.join("pam_ticket.conf");
        write_mode(
            &config,
            &format!(
                "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{portal_url}\"\n\
                 PortalAccountFile=\"{}\"\nCAFile=\"{}\"\nTimeout=\"3\"\nMaxAttempts=\"1\"\n",
                account.display(),
                chain.pki.ca_pem_path().display(),
            ),
            0o600,
        );
        PamService::new(
            &chain.dir.join("pam.d"),
            "psmp",
            &pam::module_path(),
            &[
                format!("config={}", config.display()),
                format!("AuditLogFile={}", audit.display()),
            ],
        )
    };
    let good = chain.portal_url();
    let login = Login::new("alice@root@db01.example.com")
        .rhost("192.0.2.10")
        .answer("INC0010001");
    for suffix in ["/API/auth/CyberArk/Logon", "/API/Accounts"] {
        let url = format!("{good}{suffix}");
        let outcome = pam::authenticate(&service_for(&url), &login);
        let context = outcome.transcript();
        assert_eq!(outcome.code, PAM_SERVICE_ERR, "{context}");
        assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
        assert_eq!(chain.server.request_count(), 0, "{context}");
        let text = fs::read_to_string(&audit).unwrap_or_default();
        let last: Value =
            serde_json::from_str(text.lines().last().unwrap_or("{}")).expect("an audit record");
        let reason = last["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(&format!(
                "pam_ticket.conf:2: PortalURL: \"{url}\" ends in the portal's API route \
                 /{}: use the base in front of it, \"{good}\"",
                suffix.trim_start_matches('/')
            )),
            "{reason}"
        );
    }
    let outcome = pam::authenticate(&service_for(&good), &login);
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(chain.portal.retrieves(), 1);
}

/// An account file that is a symbolic link is refused (links to secrets are never
/// followed); the message says so instead of the kernel's "Too many levels of symbolic
/// links (os error 40)", which sent admins looking for a loop.
#[test]
fn a_symlinked_account_file_says_it_must_be_a_regular_file() {
    let (rig, sim) = Rig::servicenow("symlink");
    let link = rig.dir.join("account-link.conf");
    std::os::unix::fs::symlink(rig.account_path(), &link).expect("symlink");
    let text = rig.config_text(&rig.server.base_url()).replace(
        &rig.account_path().display().to_string(),
        &link.display().to_string(),
    );
    let service = rig.service(&text, &[]);
    let outcome = rig.login(&service, &["INC0010001"]);
    let reason = assert_configuration_error(&rig, &rig.server, &outcome, 0);
    assert!(
        reason.contains(&format!(
            "pam_ticket.conf:3: {} is a symbolic link; it must be a regular file, not a \
             symbolic link (links are never followed here: name the file itself)",
            link.display()
        )),
        "{reason}"
    );
    assert!(!reason.contains("os error"), "{reason}");
    assert_eq!(sim.query_count(), 0);
}

/// A CA certificate exported from Windows is DER (`.cer`): CAFile reads it as such, and
/// the module trusts it exactly as it trusts the same certificate in PEM.
#[test]
fn a_der_ca_file_is_read_as_der() {
    let (rig, sim) = Rig::servicenow("der");
    let pem = fs::read(rig.pki.ca_pem_path()).expect("the CA in PEM");
    let certificates = pam_ticket::trust::parse_pem_certificates(&pem);
    assert_eq!(certificates.len(), 1);
    let der_path = rig.dir.join("PortalRootCA.cer");
    fs::write(&der_path, certificates[0].der()).expect("write the DER file");
    fs::set_permissions(&der_path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let text = rig.config_text(&rig.server.base_url()).replace(
        &rig.pki.ca_pem_path().display().to_string(),
        &der_path.display().to_string(),
    );
    let service = rig.service(&text, &[]);
    let outcome = rig.login(&service, &["INC0010001"]);
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(sim.query_count(), 1);
    let records = rig.audit_since(0);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["ticket"], "INC0010001");
}

/// The scheme of a URL is case-insensitive: `HTTPS://` works as `https://` does.
#[test]
fn an_upper_case_scheme_is_accepted() {
    let (rig, sim) = Rig::servicenow("scheme");
    let url = rig.server.base_url().replacen("https://", "HTTPS://", 1);
    let service = rig.service(&rig.config_text(&url), &[]);
    let outcome = rig.login(&service, &["INC0010001"]);
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(sim.query_count(), 1);
    let records = rig.audit_since(0);
    assert_eq!(records[0]["decision"], "allow", "{records:?}");
}

/// A mistyped module argument gets the "did you mean" a mistyped key gets.
#[test]
fn module_arguments_get_did_you_mean() {
    let (rig, sim) = Rig::servicenow("arguments");
    let text = rig.config_text(&rig.server.base_url());
    for (argument, expected) in [
        (
            "degub",
            "pam.d/ticket-messages argument 2: unknown module argument \"degub\" (did you mean debug?)",
        ),
        (
            "confg=/etc/security/other.conf",
            "pam.d/ticket-messages argument 2: unknown key confg (did you mean config?)",
        ),
        (
            "MaxAtempts=2",
            "pam.d/ticket-messages argument 2: unknown key MaxAtempts (did you mean MaxAttempts?)",
        ),
        (
            "ValidateRequestingUser",
            "pam.d/ticket-messages argument 2: unknown module argument \"ValidateRequestingUser\" \
             (did you mean ValidateRequestingUser=VALUE?)",
        ),
    ] {
        let service = rig.service(&text, &[argument]);
        let before = rig.audit_len();
        let outcome = rig.login(&service, &["INC0010001"]);
        let reason = assert_configuration_error(&rig, &rig.server, &outcome, before);
        assert_eq!(
            reason,
            format!("configuration error: {expected}"),
            "{argument}"
        );
    }
    assert_eq!(sim.query_count(), 0);
}

/// An error that an override on the pam.d line causes names that argument, even when the
/// key it makes wrong is set in the file: the file alone is fine, and the admin must be
/// sent to the pam.d line.
#[test]
fn an_error_a_pam_d_override_causes_names_the_argument() {
    let (rig, sim) = Rig::servicenow("override");
    let base = rig.server.base_url();
    let states = format!(
        "{}ValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"New\"\n",
        rig.config_text(&base)
    );
    let no_url = rig.config_text(&base).replace(
        &format!("SystemURL=\"{base}\"\n"),
        "ValidateTicketNumber=\"No\"\n",
    );
    let portal_in_file_checks =
        format!("{}ValidateRequestingUser=\"Yes\"\n", rig.config_text(&base));
    for (text, argument, expected) in [
        (
            states.as_str(),
            "AllowedIncidentTicketStates=",
            "pam.d/ticket-messages argument 2: ValidateIncidentTicketState is Yes but \
             AllowedIncidentTicketStates is empty: nothing could ever pass",
        ),
        (
            no_url.as_str(),
            "ValidateTicketNumber=Yes",
            "pam.d/ticket-messages argument 2: SystemURL is required",
        ),
        (
            portal_in_file_checks.as_str(),
            "FetchCredentialsThroughPVWA=Yes",
            "pam.d/ticket-messages argument 2: ValidateRequestingUser (set at ",
        ),
    ] {
        let service = rig.service(text, &[argument]);
        let before = rig.audit_len();
        let outcome = rig.login(&service, &["INC0010001"]);
        let reason = assert_configuration_error(&rig, &rig.server, &outcome, before);
        assert!(
            reason.starts_with(&format!("configuration error: {expected}")),
            "{argument}: {reason}"
        );
    }
    assert_eq!(sim.query_count(), 0);
}
