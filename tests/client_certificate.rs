//! Mutual TLS (issue 12, item 3) through the real libpam: ClientCertificateFile and
//! ClientKeyFile against simulators whose HTTPS server requires a client certificate
//! issued by the test CA (rustls' WebPkiClientVerifier). A good certificate lets the login
//! through and is what the server saw; a missing one, or one of another CA, is refused by
//! the server and denied in both fail modes; a key that does not match its certificate,
//! or a key file others may read, is a configuration error before anything is sent. Each
//! of ServiceNow, BMC Remedy and the portal is covered; `pam-ticket check` says what the
//! refusal means; no key material reaches syslog, the audit file or check's output.

use pam_ticket_testkit as support;

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::Value;

use support::devlog::{DevLogRun, run_with_private_dev_log};
use support::files::{audit_records, write_root_only};
use support::http::Handler;
use support::https::TestServer;
use support::pam::{
    self, Login, PAM_AUTHINFO_UNAVAIL, PAM_SERVICE_ERR, PAM_SUCCESS, PamOutcome, PamService,
    assert_code,
};
use support::pki::{ClientCert, ServerCert, TestPki};
use support::portal::{PortalSim, TicketingLink};
use support::remedy::RemedySim;
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";
const GATEWAY_USER: &str = "PSMPGateway01";
const GATEWAY_PASSWORD: &str = "Gw-Pass-4412";
const UNAVAILABLE: &str =
    "Ticket validation is unavailable right now; try again later or use a failsafe bypass code";
const MISCONFIGURED: &str =
    "Ticket validation is misconfigured on this gateway; contact your administrator";
const NOT_AN_OUTAGE: &str = "unavailable (not an outage, so never failsafe): ";
const REFUSED_OURS: &str = "the server refused the client certificate (TLS alert UnknownCA)";
const REQUIRES_ONE: &str = "the server requires a client certificate and none is configured \
                            (TLS alert CertificateRequired)";

/// Which system the module asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    ServiceNow,
    Remedy,
    Portal,
}

/// A simulator behind a server that requires client certificates, and the files of one
/// test. The configuration's line 7 is ClientCertificateFile, line 8 ClientKeyFile.
struct Rig {
    dir: TestDir,
    pki: TestPki,
    system: System,
    server: TestServer,
    servicenow: Option<Arc<ServiceNowSim>>,
    remedy: Option<Arc<RemedySim>>,
    portal: Option<Arc<PortalSim>>,
    /// The ServiceNow server the portal asks (it requires no client certificate).
    _portal_backend: Option<TestServer>,
}

impl Rig {
    fn start(label: &str, system: System) -> Rig {
        let dir = TestDir::new(&format!("mtls-{label}"));
        let pki = TestPki::generate(&dir.join("pki"));
        let require = |handler: Arc<dyn Handler>| {
            TestServer::start_requiring_client_certificates(&pki, ServerCert::Good, handler)
        };
        let (mut servicenow, mut remedy, mut portal, mut portal_backend) = (None, None, None, None);
        let server = match system {
            System::ServiceNow => {
                let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
                servicenow = Some(sim.clone());
                require(sim)
            }
            System::Remedy => {
                let sim = Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
                remedy = Some(sim.clone());
                require(sim)
            }
            System::Portal => {
                let tickets = Arc::new(ServiceNowSim::new("portal.integration", "Sn-Int-Pass"));
                let backend = TestServer::start(pki.server_config(ServerCert::Good), tickets);
                let link = TicketingLink {
                    url: backend.base_url(),
                    ca_file: pki.ca_pem_path(),
                    username: "portal.integration".to_string(),
                    password: "Sn-Int-Pass".to_string(),
                };
                let sim = Arc::new(PortalSim::new(GATEWAY_USER, GATEWAY_PASSWORD, link));
                portal = Some(sim.clone());
                portal_backend = Some(backend);
                require(sim)
            }
        };
        Rig {
            dir,
            pki,
            system,
            server,
            servicenow,
            remedy,
            portal,
            _portal_backend: portal_backend,
        }
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("pam_ticket.conf")
    }

    /// The configuration, `client` on lines 7 and 8 (blank lines when `None`), then
    /// `extra`; the account file beside it.
    fn write_config(&self, client: Option<ClientCert>, extra: &str) -> PathBuf {
        let account = self.dir.join("account.conf");
        let (user, password) = match self.system {
            System::Portal => (GATEWAY_USER, GATEWAY_PASSWORD),
            System::ServiceNow | System::Remedy => (ACCOUNT_USER, ACCOUNT_PASSWORD),
        };
        write_root_only(
            &account,
            &format!("Username=\"{user}\"\nPassword=\"{password}\"\n"),
        );
        let (system_lines, mode_lines) = match self.system {
            System::ServiceNow => (
                format!(
                    "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n",
                    self.server.base_url(),
                    account.display()
                ),
                String::new(),
            ),
            System::Remedy => (
                format!(
                    "TicketingSystem=\"BMCRemedy\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n",
                    self.server.base_url(),
                    account.display()
                ),
                format!(
                    "CacheDirectory=\"{}\"\n",
                    self.dir.join("token-cache").display()
                ),
            ),
            System::Portal => (
                format!(
                    "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}/PasswordVault\"\nPortalAccountFile=\"{}\"\n",
                    self.server.base_url(),
                    account.display()
                ),
                String::new(),
            ),
        };
        let client_lines = match client {
            Some(kind) => {
                let files = self.pki.client(kind);
                format!(
                    "ClientCertificateFile=\"{}\"\nClientKeyFile=\"{}\"\n",
                    files.cert_path.display(),
                    files.key_path.display()
                )
            }
            None => "\n\n".to_string(),
        };
        let text = format!(
            "{system_lines}CAFile=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"3\"\n{client_lines}MaxAttempts=\"1\"\n{mode_lines}{extra}",
            self.pki.ca_pem_path().display(),
            self.audit_path().display(),
        );
        write_root_only(&self.config_path(), &text);
        self.config_path()
    }

    /// A PAM service over `write_config(client, extra)`, with `arguments` on its line.
    fn service(&self, client: Option<ClientCert>, extra: &str, arguments: &[&str]) -> PamService {
        let config = self.write_config(client, extra);
        let mut line = vec![format!("config={}", config.display())];
        line.extend(arguments.iter().map(|argument| argument.to_string()));
        PamService::new(&self.dir.join("pam.d"), "mtls", &pam::module_path(), &line)
    }

    /// The user and ticket of a login that the simulator lets in.
    fn valid_login(&self) -> (&'static str, &'static str) {
        match self.system {
            System::ServiceNow => ("alice", "INC0010001"),
            System::Remedy => ("alice", "INC000000000001"),
            System::Portal => ("alice@root@db01.example.com", "INC0010001"),
        }
    }

    fn log_in(&self, service: &PamService) -> PamOutcome {
        let (user, ticket) = self.valid_login();
        pam::authenticate(
            service,
            &Login::new(user).rhost("192.0.2.30").answer(ticket),
        )
    }

    fn audit(&self) -> Vec<Value> {
        audit_records(&self.audit_path())
    }

    /// Requests the simulator handled (any endpoint).
    fn handled(&self) -> usize {
        self.server.request_count()
    }
}

/// Denied in both fail modes with `reason` (after "unavailable (not an outage …): "), the
/// server having received no request.
fn assert_refused_in_both_modes(rig: &Rig, client: Option<ClientCert>, reason: &str) {
    for mode in ["secure", "safe"] {
        let _ = fs::remove_file(rig.audit_path());
        let service = rig.service(client, &format!("FailMode=\"{mode}\"\n"), &[]);
        let outcome = rig.log_in(&service);
        let context = format!("{:?} {mode}: {}", rig.system, outcome.transcript());
        assert_eq!(outcome.code, PAM_AUTHINFO_UNAVAIL, "{context}");
        assert_eq!(outcome.errors(), vec![UNAVAILABLE], "{context}");
        assert!(!outcome.env.contains_key("TICKET_DECISION"), "{context}");
        assert!(!outcome.env.contains_key("TICKET_ID"), "{context}");
        assert_eq!(rig.handled(), 0, "{context}: the server got no request");
        assert!(rig.server.connection_count() > 0, "{context}");
        let records = rig.audit();
        assert_eq!(records.len(), 1, "{context}: {records:?}");
        assert_eq!(records[0]["decision"], "unavailable", "{context}");
        let written = records[0]["reason"].as_str().unwrap_or_default();
        assert!(
            written.starts_with(NOT_AN_OUTAGE) && written.contains(reason),
            "{context}: {written}"
        );
    }
}

/// The login went through, and the server saw the good client certificate on every
/// request.
fn assert_allowed_with_our_certificate(rig: &Rig, outcome: &PamOutcome) {
    let (_, ticket) = rig.valid_login();
    assert_code(outcome, PAM_SUCCESS);
    assert!(outcome.errors().is_empty(), "{}", outcome.transcript());
    assert_eq!(
        outcome.env.get("TICKET_ID").map(String::as_str),
        Some(ticket)
    );
    let records = rig.audit();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "allow", "{records:?}");
    let requests = rig.server.requests();
    assert!(!requests.is_empty());
    let good = &rig.pki.client(ClientCert::Good).cert_der;
    for request in &requests {
        assert_eq!(
            request.client_certificate.as_ref(),
            Some(good),
            "{} {} came without our certificate",
            request.method,
            request.path
        );
    }
    assert!(
        contains(good, support::pki::CLIENT_COMMON_NAME.as_bytes()),
        "the certificate the server saw names our subject"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn servicenow_good_client_certificate_lets_the_login_through() {
    let rig = Rig::start("sn-good", System::ServiceNow);
    let outcome = rig.log_in(&rig.service(Some(ClientCert::Good), "", &[]));
    assert_allowed_with_our_certificate(&rig, &outcome);
    let sim = rig.servicenow.as_ref().expect("ServiceNow");
    assert_eq!(sim.query_count(), 1);
}

#[test]
fn remedy_good_client_certificate_is_sent_on_log_on_and_query() {
    let rig = Rig::start("remedy-good", System::Remedy);
    let outcome = rig.log_in(&rig.service(Some(ClientCert::Good), "", &[]));
    assert_allowed_with_our_certificate(&rig, &outcome);
    let sim = rig.remedy.as_ref().expect("Remedy");
    assert_eq!((sim.login_count(), sim.query_count()), (1, 1));
}

#[test]
fn portal_good_client_certificate_is_sent_on_every_portal_call() {
    let rig = Rig::start("portal-good", System::Portal);
    let outcome = rig.log_in(&rig.service(Some(ClientCert::Good), "", &[]));
    assert_allowed_with_our_certificate(&rig, &outcome);
    let portal = rig.portal.as_ref().expect("portal");
    assert_eq!(portal.counts(), (1, 1, 1, 1));
}

#[test]
fn servicenow_requiring_a_certificate_we_do_not_have_is_denied_in_both_modes() {
    let rig = Rig::start("sn-missing", System::ServiceNow);
    assert_refused_in_both_modes(&rig, None, REQUIRES_ONE);
}

#[test]
fn remedy_requiring_a_certificate_we_do_not_have_is_denied_in_both_modes() {
    let rig = Rig::start("remedy-missing", System::Remedy);
    assert_refused_in_both_modes(&rig, None, REQUIRES_ONE);
    assert_eq!(rig.remedy.as_ref().expect("Remedy").login_count(), 0);
}

#[test]
fn servicenow_refusing_a_certificate_of_another_ca_is_denied_in_both_modes() {
    let rig = Rig::start("sn-other-ca", System::ServiceNow);
    assert_refused_in_both_modes(&rig, Some(ClientCert::OtherCa), REFUSED_OURS);
}

#[test]
fn portal_refusing_a_certificate_of_another_ca_is_denied_in_both_modes() {
    let rig = Rig::start("portal-other-ca", System::Portal);
    assert_refused_in_both_modes(&rig, Some(ClientCert::OtherCa), REFUSED_OURS);
    assert_eq!(rig.portal.as_ref().expect("portal").counts(), (0, 0, 0, 0));
}

/// A configuration error with `expected` at pam_ticket.conf:`line`: PAM_SERVICE_ERR, no
/// prompt, no connection at all, the error in the audit file named on the pam.d line.
fn assert_configuration_error(rig: &Rig, service: &PamService, expected: &str) {
    let outcome = rig.log_in(service);
    let context = outcome.transcript();
    assert_eq!(pam::code_name(outcome.code), "PAM_SERVICE_ERR", "{context}");
    assert_eq!(outcome.code, PAM_SERVICE_ERR);
    assert!(outcome.prompts().is_empty(), "{context}");
    assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
    assert_eq!(rig.server.connection_count(), 0, "nothing was sent");
    let records = audit_records(&rig.dir.join("pam-d-audit.jsonl"));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "error");
    let reason = records[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(expected), "{reason}");
    assert!(
        !rig.audit_path().exists(),
        "the refused configuration's AuditLogFile was written"
    );
}

fn pam_d_audit(rig: &Rig) -> String {
    format!(
        "AuditLogFile={}",
        rig.dir.join("pam-d-audit.jsonl").display()
    )
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_a_configuration_error() {
    for system in [System::ServiceNow, System::Remedy] {
        let rig = Rig::start(&format!("mismatch-{system:?}"), system);
        let argument = pam_d_audit(&rig);
        let service = rig.service(Some(ClientCert::MismatchedKey), "", &[&argument]);
        let files = rig.pki.client(ClientCert::MismatchedKey);
        assert_configuration_error(
            &rig,
            &service,
            &format!(
                "pam_ticket.conf:8: ClientKeyFile {} does not match the certificate in \
                 ClientCertificateFile {}",
                files.key_path.display(),
                files.cert_path.display()
            ),
        );
    }
}

#[test]
fn a_key_file_others_may_read_is_a_configuration_error() {
    let rig = Rig::start("loose-key", System::ServiceNow);
    let argument = pam_d_audit(&rig);
    let service = rig.service(Some(ClientCert::Good), "", &[&argument]);
    let key = &rig.pki.client(ClientCert::Good).key_path;
    fs::set_permissions(key, fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_configuration_error(
        &rig,
        &service,
        &format!(
            "pam_ticket.conf:8: cannot use the client key: {} must not be readable or \
             writable by group or others (mode is 0644; run chmod 600)",
            key.display()
        ),
    );
}

#[test]
fn one_of_the_two_files_without_the_other_is_a_configuration_error() {
    let rig = Rig::start("half", System::ServiceNow);
    let argument = pam_d_audit(&rig);
    let files = rig.pki.client(ClientCert::Good);
    let extra = format!("ClientCertificateFile=\"{}\"\n", files.cert_path.display());
    let service = rig.service(None, &extra, &[&argument]);
    assert_configuration_error(
        &rig,
        &service,
        "pam_ticket.conf:10: ClientCertificateFile is set but ClientKeyFile is not",
    );
}

/// An encrypted key is refused with what to do, never read as "no key".
#[test]
fn an_encrypted_key_is_refused_with_what_to_do() {
    let rig = Rig::start("encrypted", System::ServiceNow);
    let argument = pam_d_audit(&rig);
    let service = rig.service(Some(ClientCert::Good), "", &[&argument]);
    let key = &rig.pki.client(ClientCert::Good).key_path;
    write_root_only(
        key,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n\
         -----END ENCRYPTED PRIVATE KEY-----\n",
    );
    assert_configuration_error(
        &rig,
        &service,
        &format!(
            "pam_ticket.conf:8: ClientKeyFile {} is encrypted with a passphrase",
            key.display()
        ),
    );
}

fn tool(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(TOOL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pam-ticket");
    drop(child.stdin.take().map(|mut stdin| stdin.write_all(b"")));
    let output = child.wait_with_output().expect("wait for pam-ticket");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The base64 lines of a PEM key: what must appear in no log and no output.
fn key_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|line| !line.starts_with("-----") && line.len() >= 16)
        .collect()
}

fn assert_no_key_material(text: &str, rig: &Rig, kind: ClientCert) {
    for line in key_lines(&rig.pki.client(kind).key_pem) {
        assert!(!text.contains(line), "key material in: {text}");
    }
}

/// The value `pam-ticket check` shows for `key` among the effective settings.
fn setting(output: &str, key: &str) -> String {
    output
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("  ")?.strip_prefix(key)?;
            rest.starts_with(' ').then(|| rest.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key} line in:\n{output}"))
}

/// `pam-ticket check` says what a refused client certificate means, in words an admin can
/// act on, and shows the certificate (never the key) it presents.
#[test]
fn check_says_the_server_refused_the_client_certificate() {
    let rig = Rig::start("check-refused", System::ServiceNow);
    let config = rig.write_config(Some(ClientCert::OtherCa), "");
    let (code, output) = tool(&["check", "--config", &config.display().to_string()]);
    let files = rig.pki.client(ClientCert::OtherCa);
    assert_eq!(code, 1, "{output}");
    assert_eq!(
        setting(&output, "ClientCertificateFile"),
        format!(
            "{} (subject CN={}, O=pam_ticket tests, issued by CN={}, O=pam_ticket tests)",
            files.cert_path.display(),
            support::pki::CLIENT_COMMON_NAME,
            support::pki::UNTRUSTED_CA_NAME
        )
    );
    assert_eq!(
        setting(&output, "ClientKeyFile"),
        format!(
            "{} (matches the certificate; not shown)",
            files.key_path.display()
        )
    );
    for expected in [
        "  OK    TLS: the server's certificate verified against the trusted CAs".to_string(),
        format!(
            "  FAIL  TLS: the ticketing system refused the client certificate {} (TLS alert \
             UnknownCA); check that the server trusts the CA that issued it",
            files.cert_path.display()
        ),
        "not an outage: every login is denied, in both fail modes".to_string(),
        "result: FAILED".to_string(),
    ] {
        assert!(output.contains(&expected), "{expected:?} not in:\n{output}");
    }
    assert_eq!(rig.handled(), 0);
    assert_no_key_material(&output, &rig, ClientCert::OtherCa);

    // No certificate at all: check says to configure one.
    let config = rig.write_config(None, "");
    let (code, output) = tool(&["check", "--config", &config.display().to_string()]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(
            "  FAIL  TLS: the ticketing system requires a client certificate and none is \
             configured (TLS alert CertificateRequired); set ClientCertificateFile and \
             ClientKeyFile"
        ),
        "{output}"
    );
    assert_eq!(setting(&output, "ClientCertificateFile"), "(none)");
    assert_eq!(setting(&output, "ClientKeyFile"), "(none)");

    // A key that does not match: a configuration error with file:line, nothing sent.
    let config = rig.write_config(Some(ClientCert::MismatchedKey), "");
    rig.server.reset_counters();
    let (code, output) = tool(&["check", "--config", &config.display().to_string()]);
    let files = rig.pki.client(ClientCert::MismatchedKey);
    assert_eq!(code, 3, "{output}");
    assert!(
        output.contains(&format!(
            "{}:8: ClientKeyFile {} does not match the certificate in ClientCertificateFile {}",
            config.display(),
            files.key_path.display(),
            files.cert_path.display()
        )),
        "{output}"
    );
    assert_eq!(rig.server.connection_count(), 0, "{output}");
    assert_no_key_material(&output, &rig, ClientCert::MismatchedKey);

    // The good one: check passes.
    let config = rig.write_config(Some(ClientCert::Good), "");
    let config = config.display().to_string();
    let (code, output) = tool(&["check", "--config", &config]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("result: OK"), "{output}");
    assert_no_key_material(&output, &rig, ClientCert::Good);

    assert_eq!(rig.handled(), 1, "check's one query");

    // `ca check` (and doctor, which uses it) still sees the server's chain, though the
    // server wants a client certificate that its handshake does not present; it sends
    // no request.
    rig.server.reset_counters();
    let (code, output) = tool(&["ca", "check", &rig.server.base_url(), "--config", &config]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("OK: the chain of localhost:"), "{output}");
    assert_eq!(rig.handled(), 0);
}

/// With `debug`, a refused and an accepted login: no line of syslog, no audit record
/// holds any of the key.
#[test]
fn no_key_material_in_syslog_or_the_audit_file() {
    let rig = Rig::start("no-key-in-logs", System::ServiceNow);
    let mut everything = String::new();
    for (kind, expected_code) in [
        (ClientCert::OtherCa, PAM_AUTHINFO_UNAVAIL),
        (ClientCert::Good, PAM_SUCCESS),
    ] {
        let service = rig.service(Some(kind), "", &["debug"]);
        let (user, ticket) = rig.valid_login();
        let DevLogRun { output, lines } = run_with_private_dev_log(
            rig.dir.path(),
            "mtls_syslog_child",
            &[
                ("MTLS_CHILD_PAMD", service.dir().as_os_str()),
                ("MTLS_CHILD_USER", OsStr::new(user)),
                ("MTLS_CHILD_TICKET", OsStr::new(ticket)),
            ],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("CHILD_CODE={expected_code}")),
            "{kind:?}: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            lines.iter().any(|line| line.contains("decision=")),
            "{kind:?}: the verdict reached syslog: {lines:#?}"
        );
        let text = lines.join("\n");
        assert_no_key_material(&text, &rig, kind);
        everything.push_str(&text);
    }
    assert!(everything.contains(REFUSED_OURS), "{everything}");
    let audit = fs::read_to_string(rig.audit_path()).expect("the audit file");
    assert_eq!(audit.lines().count(), 2, "{audit}");
    for kind in [ClientCert::OtherCa, ClientCert::Good] {
        assert_no_key_material(&audit, &rig, kind);
    }
}

/// The login of `no_key_material_in_syslog_or_the_audit_file`, in its child process.
#[test]
#[ignore = "run by no_key_material_in_syslog_or_the_audit_file in its own mount namespace"]
fn mtls_syslog_child() {
    let Some(dir) = std::env::var_os("MTLS_CHILD_PAMD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let text = fs::read_to_string(dir.join("mtls")).expect("the service file");
    let service = PamService::with_text(&dir, "mtls", &text);
    let user = std::env::var("MTLS_CHILD_USER").unwrap_or_default();
    let ticket = std::env::var("MTLS_CHILD_TICKET").unwrap_or_default();
    let outcome = pam::authenticate(&service, &Login::new(&user).answer(&ticket));
    println!("CHILD_CODE={}", outcome.code);
    println!("{}", outcome.transcript());
}
