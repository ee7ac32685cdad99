//! ServiceNow with OAuth 2.0 (AuthMethod=oauth-password and oauth-client-credentials)
//! through the real libpam: a token from `/oauth_token.do` sent as Bearer (the instance has
//! Basic turned off), shared by logins and processes through the root-only token cache,
//! renewed near its end with the refresh token, renewed once after a 401, a refused client
//! denied in both fail modes, one token request for a burst of logins, no token or secret
//! in syslog, the audit file or `pam-ticket check`, and `pam-ticket check --flush-cache`.

use pam_ticket_testkit as support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use support::devlog::{DevLogRun, run_with_private_dev_log};
use support::files::{audit_records, write_root_only};
use support::https::TestServer;
use support::pam::{
    self, Login, PAM_AUTHINFO_UNAVAIL, PAM_SERVICE_ERR, PAM_SUCCESS, PamOutcome, PamService, Steps,
    assert_code,
};
use support::pki::{ClientCert, ServerCert, TestPki};
use support::servicenow::{OAuthErrors, ServiceNowSim, TokenRequest};
use support::tmp::TestDir;

const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const USER: &str = "svc_pam_oauth";
const PASSWORD: &str = "Us3r-Passw0rd-7781";
const CLIENT_ID: &str = "3f1c0ffee5b44c1e9d2a7b6c5d4e3f21";
const CLIENT_SECRET: &str = "Cl1ent-S3cret-0042";
const ACCOUNT_REFUSED: &str = "Ticket validation is unavailable: the ticketing system refused this gateway's account; contact your administrator";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Password,
    ClientCredentials,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Password => "oauth-password",
            Method::ClientCredentials => "oauth-client-credentials",
        }
    }

    fn grant(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::ClientCredentials => "client_credentials",
        }
    }

    fn account_text(self, client_secret: &str) -> String {
        match self {
            Method::Password => format!(
                "ClientID=\"{CLIENT_ID}\"\nClientSecret=\"{client_secret}\"\nUsername=\"{USER}\"\nPassword=\"{PASSWORD}\"\n"
            ),
            Method::ClientCredentials => {
                format!("ClientID=\"{CLIENT_ID}\"\nClientSecret=\"{client_secret}\"\n")
            }
        }
    }
}

/// A ServiceNow instance with Basic turned off and one OAuth client, behind HTTPS; a
/// root-only account file for `method`, an audit file, a token cache directory.
struct OAuthGate {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    sim: Arc<ServiceNowSim>,
    method: Method,
}

impl OAuthGate {
    fn new(method: Method) -> OAuthGate {
        OAuthGate::start(method, false)
    }

    /// `requiring_client_certificates`: the instance's HTTPS server, token endpoint
    /// included, refuses a connection without a client certificate of the test CA.
    fn start(method: Method, requiring_client_certificates: bool) -> OAuthGate {
        let dir = TestDir::new(&format!("servicenow-{}", method.name()));
        let pki = TestPki::generate(&dir.join("pki"));
        let sim = Arc::new(ServiceNowSim::new(USER, PASSWORD));
        sim.set_oauth_client(Some((CLIENT_ID, CLIENT_SECRET)));
        sim.set_client_credentials_enabled(true);
        sim.set_basic_auth_enabled(false);
        let server = if requiring_client_certificates {
            TestServer::start_requiring_client_certificates(&pki, ServerCert::Good, sim.clone())
        } else {
            TestServer::start(pki.server_config(ServerCert::Good), sim.clone())
        };
        let gate = OAuthGate {
            dir,
            pki,
            server,
            sim,
            method,
        };
        gate.write_account(CLIENT_SECRET);
        gate
    }

    fn write_account(&self, client_secret: &str) {
        write_root_only(
            &self.account_path(),
            &self.method.account_text(client_secret),
        );
    }

    fn account_path(&self) -> PathBuf {
        self.dir.join("account.conf")
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.join("token-cache")
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("pam_ticket.conf")
    }

    fn write_config(&self, extra: &str) {
        let text = format!(
            "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nAuthMethod=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nCacheDirectory=\"{}\"\nMaxAttempts=1\n{}{extra}",
            self.server.base_url(),
            self.method.name(),
            self.account_path().display(),
            self.pki.ca_pem_path().display(),
            self.audit_path().display(),
            self.cache_dir().display(),
            if extra.contains("Timeout=") {
                ""
            } else {
                "Timeout=5\n"
            },
        );
        fs::write(self.config_path(), text).expect("write config");
    }

    fn service(&self, extra: &str) -> PamService {
        self.write_config(extra);
        PamService::new(
            &self.dir.join("pam.d"),
            "servicenow-oauth",
            &pam::module_path(),
            &[format!("config={}", self.config_path().display())],
        )
    }

    fn login(&self, service: &PamService, answer: &str) -> PamOutcome {
        pam::authenticate(
            service,
            &Login::new("alice").rhost("192.0.2.30").answer(answer),
        )
    }

    fn audit(&self) -> Vec<Value> {
        audit_records(&self.audit_path())
    }

    /// Logs alice in with INC0010001, which must be let in and audited as such.
    fn log_in_allowed(&self, service: &PamService) {
        let outcome = self.login(service, "INC0010001");
        assert_code(&outcome, PAM_SUCCESS);
        assert!(outcome.errors().is_empty(), "{}", outcome.transcript());
        assert_eq!(
            outcome.env.get("TICKETING_SYSTEM").map(String::as_str),
            Some("ServiceNow")
        );
        let last = self.audit().pop().expect("an audit record");
        assert_eq!(last["decision"], "allow", "{last}");
        assert_eq!(last["ticket"], "INC0010001", "{last}");
    }

    fn grants(&self) -> Vec<(String, u16)> {
        self.sim
            .token_requests()
            .into_iter()
            .map(
                |TokenRequest {
                     grant_type, status, ..
                 }| (grant_type, status),
            )
            .collect()
    }

    /// The files in the cache directory whose names end in `.token`, sorted.
    fn token_files(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.cache_dir()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".token"))
            .collect();
        names.sort();
        names
    }

    /// Every text the module left on disk for the admin, for the secret checks.
    fn audit_text(&self) -> String {
        fs::read_to_string(self.audit_path()).unwrap_or_default()
    }

    fn check(&self, extra_args: &[&str]) -> (i32, String) {
        let config = self.config_path();
        let mut args = vec!["check", "--config", config.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra_args);
        let output = Command::new(TOOL)
            .args(&args)
            .output()
            .expect("run pam-ticket");
        (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }
}

/// Neither a secret of the account file nor a token the instance issued is in `text`.
fn assert_no_secret(gate: &OAuthGate, text: &str, what: &str) {
    for secret in [CLIENT_SECRET, PASSWORD] {
        assert!(!text.contains(secret), "{what} holds a secret:\n{text}");
    }
    for request in gate.sim.token_requests() {
        if let Some(token) = request.issued {
            assert!(!text.contains(&token), "{what} holds a token:\n{text}");
        }
    }
    for token in gate.sim.live_tokens() {
        assert!(!text.contains(&token), "{what} holds a token:\n{text}");
    }
}

fn assert_account_refused(outcome: &PamOutcome, what: &str) {
    assert_eq!(
        outcome.code,
        PAM_AUTHINFO_UNAVAIL,
        "{what}: {}",
        outcome.transcript()
    );
    assert_eq!(outcome.errors(), vec![ACCOUNT_REFUSED], "{what}");
    assert!(!outcome.env.contains_key("TICKET_DECISION"), "{what}");
}

#[test]
fn each_oauth_method_lets_a_valid_ticket_in_with_bearer_only() {
    for method in [Method::Password, Method::ClientCredentials] {
        let gate = OAuthGate::new(method);
        let service = gate.service("");
        gate.log_in_allowed(&service);
        let requests = gate.sim.token_requests();
        assert_eq!(requests.len(), 1, "{method:?}: {requests:?}");
        assert_eq!(requests[0].grant_type, method.grant());
        assert_eq!(requests[0].client_id, CLIENT_ID);
        assert_eq!(
            requests[0].username.as_deref(),
            (method == Method::Password).then_some(USER)
        );
        assert_eq!(gate.sim.table_auth_schemes(), vec!["Bearer"], "{method:?}");
        // The access token (and with the password grant its refresh token) are cached,
        // root-only.
        let expected: &[&str] = match method {
            Method::Password => &["servicenow-access", "servicenow-refresh"],
            Method::ClientCredentials => &["servicenow-access"],
        };
        let files = gate.token_files();
        assert_eq!(files.len(), expected.len(), "{files:?}");
        for (file, prefix) in files.iter().zip(expected) {
            assert!(file.starts_with(prefix), "{files:?}");
            let mode = fs::metadata(gate.cache_dir().join(file))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        assert_no_secret(&gate, &gate.audit_text(), "the audit file");
    }
}

/// Basic stays what it was: the same instance with Basic on, no token request.
#[test]
fn basic_sends_basic_and_asks_for_no_token() {
    let gate = OAuthGate::new(Method::Password);
    gate.sim.set_basic_auth_enabled(true);
    write_root_only(
        &gate.account_path(),
        &format!("Username=\"{USER}\"\nPassword=\"{PASSWORD}\"\n"),
    );
    gate.write_config("");
    let text = fs::read_to_string(gate.config_path())
        .expect("config")
        .replace("AuthMethod=\"oauth-password\"", "AuthMethod=\"basic\"");
    fs::write(gate.config_path(), text).expect("config");
    let service = PamService::new(
        &gate.dir.join("pam.d"),
        "servicenow-basic",
        &pam::module_path(),
        &[format!("config={}", gate.config_path().display())],
    );
    gate.log_in_allowed(&service);
    assert!(gate.sim.token_requests().is_empty());
    assert_eq!(gate.sim.table_auth_schemes(), vec!["Basic"]);
    assert!(gate.token_files().is_empty());
}

/// Three logins, the third in a process of its own (with a private /dev/log): one token
/// request in all. No syslog line, debug included, holds a token or a secret.
#[test]
fn the_token_is_reused_across_logins_and_processes_and_never_logged() {
    for method in [Method::Password, Method::ClientCredentials] {
        let gate = OAuthGate::new(method);
        let service = gate.service("");
        gate.log_in_allowed(&service);
        gate.log_in_allowed(&service);
        let debug_service = PamService::new(
            &gate.dir.join("pam.d-debug"),
            "servicenow-oauth-debug",
            &pam::module_path(),
            &[
                format!("config={}", gate.config_path().display()),
                "debug".to_string(),
            ],
        );
        let DevLogRun { output, lines } = run_with_private_dev_log(
            gate.dir.path(),
            "oauth_login_child",
            &[
                ("OAUTH_CHILD_PAMD", debug_service.dir().as_os_str()),
                ("OAUTH_CHILD_SERVICE", OsStr::new(debug_service.name())),
            ],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("CHILD_CODE={PAM_SUCCESS}")),
            "child failed: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            lines.iter().any(|line| line.contains("decision=allow")),
            "{lines:#?}"
        );
        assert_eq!(gate.grants(), vec![(method.grant().to_string(), 200)]);
        assert_eq!(gate.sim.table_auth_schemes(), vec!["Bearer"; 3]);
        assert_eq!(gate.audit().len(), 3);
        for line in &lines {
            assert_no_secret(&gate, line, "a syslog line");
        }
        assert_no_secret(&gate, &gate.audit_text(), "the audit file");
    }
}

/// The login of `the_token_is_reused_across_logins_and_processes_and_never_logged`, in
/// its own process.
#[test]
#[ignore = "run by the_token_is_reused_across_logins_and_processes_and_never_logged"]
fn oauth_login_child() {
    let (Some(dir), Ok(name)) = (
        std::env::var_os("OAUTH_CHILD_PAMD"),
        std::env::var("OAUTH_CHILD_SERVICE"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let text = fs::read_to_string(dir.join(&name)).expect("the service file");
    let service = PamService::with_text(&dir, &name, &text);
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice").rhost("192.0.2.31").answer("INC0010001"),
    );
    println!("CHILD_CODE={}", outcome.code);
}

/// The instance ends the access token early: the Table API answers 401, the module gets
/// one new token (password grant: with its refresh token) and retries once.
#[test]
fn an_expired_token_is_renewed_exactly_once() {
    for method in [Method::Password, Method::ClientCredentials] {
        let gate = OAuthGate::new(method);
        let service = gate.service("");
        gate.log_in_allowed(&service);
        gate.sim.expire_access_tokens();
        gate.log_in_allowed(&service);
        let renewal = match method {
            Method::Password => "refresh_token",
            Method::ClientCredentials => "client_credentials",
        };
        assert_eq!(
            gate.grants(),
            vec![
                (method.grant().to_string(), 200),
                (renewal.to_string(), 200)
            ],
            "{method:?}"
        );
        assert_eq!(gate.sim.table_auth_schemes(), vec!["Bearer"; 3]);
        let statuses: Vec<u16> = gate
            .sim
            .received()
            .iter()
            .map(|query| query.status)
            .collect();
        assert_eq!(statuses, vec![200, 401, 200], "{method:?}");
        // The renewed token is the cached one now: the next login asks for none.
        gate.log_in_allowed(&service);
        assert_eq!(gate.grants().len(), 2);
    }
}

/// Revoked on the instance, access and refresh token alike: the refresh is refused, the
/// module falls back to a new password grant, once, and the login goes through. With
/// ServiceNow's refusal body (401 server_error) and with RFC 6749's (400 invalid_grant).
#[test]
fn a_revoked_token_falls_back_from_the_refresh_token_to_a_new_grant() {
    for errors in [OAuthErrors::ServiceNow, OAuthErrors::Rfc6749] {
        let gate = OAuthGate::new(Method::Password);
        gate.sim.set_oauth_errors(errors);
        let service = gate.service("");
        gate.log_in_allowed(&service);
        gate.sim.revoke_tokens();
        gate.log_in_allowed(&service);
        let refused = match errors {
            OAuthErrors::ServiceNow => 401,
            OAuthErrors::Rfc6749 => 400,
        };
        assert_eq!(
            gate.grants(),
            vec![
                ("password".to_string(), 200),
                ("refresh_token".to_string(), refused),
                ("password".to_string(), 200)
            ],
            "{errors:?}"
        );
        let statuses: Vec<u16> = gate
            .sim
            .received()
            .iter()
            .map(|query| query.status)
            .collect();
        assert_eq!(statuses, vec![200, 401, 200], "{errors:?}");
        // The new grant's refresh token replaced the refused one.
        gate.sim.expire_access_tokens();
        gate.log_in_allowed(&service);
        assert_eq!(gate.grants()[3], ("refresh_token".to_string(), 200));
    }
}

/// Near its end (here: a 2 s token, after 2 s) the access token is renewed with the
/// refresh token before it is used, so the Table API never sees an expired one.
#[test]
#[allow(clippy::disallowed_methods)] // real time: the token's life passes on the simulator too
fn the_refresh_token_is_used_near_the_end_of_the_access_token() {
    let gate = OAuthGate::new(Method::Password);
    gate.sim.set_access_token_lifetime(Duration::from_secs(2));
    let service = gate.service("");
    gate.log_in_allowed(&service);
    std::thread::sleep(Duration::from_millis(2100));
    gate.log_in_allowed(&service);
    assert_eq!(
        gate.grants(),
        vec![
            ("password".to_string(), 200),
            ("refresh_token".to_string(), 200)
        ]
    );
    let statuses: Vec<u16> = gate
        .sim
        .received()
        .iter()
        .map(|query| query.status)
        .collect();
    assert_eq!(statuses, vec![200, 200]);
}

/// A client the instance refuses (wrong secret; for client credentials also the grant
/// switched off on the instance) is the module's account refused: denied in both fail
/// modes, never failsafe, and the audit says which client to check.
#[test]
fn a_refused_client_is_denied_in_both_fail_modes() {
    for method in [Method::Password, Method::ClientCredentials] {
        for errors in [OAuthErrors::ServiceNow, OAuthErrors::Rfc6749] {
            let gate = OAuthGate::new(method);
            gate.sim.set_oauth_errors(errors);
            gate.write_account("not-the-secret");
            for mode in ["secure", "safe"] {
                let service = gate.service(&format!("FailMode={mode}\n"));
                let outcome = gate.login(&service, "INC0010001");
                assert_account_refused(&outcome, &format!("{method:?} {errors:?} {mode}"));
                let record = gate.audit().pop().expect("an audit record");
                assert_eq!(record["decision"], "unavailable", "{record}");
                let reason = record["reason"].as_str().unwrap_or("");
                assert!(
                    reason.contains(&format!("OAuth client {CLIENT_ID}"))
                        && reason.contains(method.name())
                        && reason.contains("Application Registry"),
                    "{reason}"
                );
            }
            assert!(
                gate.sim.received().is_empty(),
                "no Table API call without a token"
            );
            assert_no_secret(&gate, &gate.audit_text(), "the audit file");
            assert!(gate.token_files().is_empty());
        }
    }
    let gate = OAuthGate::new(Method::ClientCredentials);
    gate.sim.set_client_credentials_enabled(false);
    let service = gate.service("FailMode=safe\n");
    assert_account_refused(&gate.login(&service, "INC0010001"), "grant off");
    let reason = gate.audit().pop().expect("a record")["reason"].to_string();
    assert!(
        reason.contains("glide.oauth.inbound.client.credential.grant_type.enabled"),
        "{reason}"
    );
}

/// A refused client reaches syslog at err (authpriv), naming the client and what to
/// check, and no line holds the secret it was refused for.
#[test]
fn a_refused_client_is_logged_at_err_without_its_secret() {
    let gate = OAuthGate::new(Method::Password);
    gate.write_account("Wr0ng-Cl1ent-S3cret");
    gate.write_config("FailMode=safe\n");
    let service = PamService::new(
        &gate.dir.join("pam.d-refused"),
        "servicenow-oauth-refused",
        &pam::module_path(),
        &[format!("config={}", gate.config_path().display())],
    );
    let DevLogRun { output, lines } = run_with_private_dev_log(
        gate.dir.path(),
        "oauth_login_child",
        &[
            ("OAUTH_CHILD_PAMD", service.dir().as_os_str()),
            ("OAUTH_CHILD_SERVICE", OsStr::new(service.name())),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("CHILD_CODE={PAM_AUTHINFO_UNAVAIL}")),
        "{stdout}"
    );
    // authpriv (10) * 8 + err (3)
    let refused: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("<83>"))
        .filter(|line| line.contains(&format!("OAuth client {CLIENT_ID}")))
        .collect();
    assert_eq!(refused.len(), 1, "{lines:#?}");
    assert!(
        refused[0].contains("access_denied") && refused[0].contains("Application Registry"),
        "{}",
        refused[0]
    );
    for line in &lines {
        assert!(!line.contains("Wr0ng-Cl1ent-S3cret"), "{line}");
        assert_no_secret(&gate, line, "a syslog line");
    }
}

/// With ClientCertificateFile and ClientKeyFile, the token request goes over the same
/// client as the Table API: it presents the certificate too, so an instance that
/// requires one issues the token; without the certificate nothing gets through.
#[test]
fn the_token_endpoint_gets_the_client_certificate_too() {
    let gate = OAuthGate::start(Method::ClientCredentials, true);
    let files = gate.pki.client(ClientCert::Good);
    let service = gate.service(&format!(
        "ClientCertificateFile=\"{}\"\nClientKeyFile=\"{}\"\n",
        files.cert_path.display(),
        files.key_path.display()
    ));
    gate.log_in_allowed(&service);
    assert_eq!(gate.grants(), vec![("client_credentials".to_string(), 200)]);
    assert_eq!(gate.sim.table_auth_schemes(), vec!["Bearer"]);

    let without = gate.service("FailMode=safe\n");
    fs::remove_dir_all(gate.cache_dir()).expect("empty the cache");
    let outcome = gate.login(&without, "INC0010001");
    assert_eq!(
        outcome.code,
        PAM_AUTHINFO_UNAVAIL,
        "{}",
        outcome.transcript()
    );
    assert!(
        !outcome.env.contains_key("TICKET_DECISION"),
        "never failsafe"
    );
    assert_eq!(gate.grants().len(), 1, "no token request got through");
}

/// AllowedUserRoles=assignment_group: the `sys_user_grmember` query goes with the same
/// shared Bearer token as the ticket's (Basic is off on this instance), and `check`'s
/// membership probe with the check's own token.
#[test]
fn the_group_membership_query_uses_the_token_too() {
    let gate = OAuthGate::new(Method::Password);
    let service = gate.service(
        "ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"requester, assignment_group\"\n",
    );
    // bob is no requester of INC0010001 but a member of its assignment group.
    let outcome = pam::authenticate(
        &service,
        &Login::new("bob").rhost("192.0.2.32").answer("INC0010001"),
    );
    assert_code(&outcome, PAM_SUCCESS);
    let tables: Vec<String> = gate
        .sim
        .received()
        .into_iter()
        .map(|query| query.table)
        .collect();
    assert_eq!(tables, ["incident", "sys_user_grmember"]);
    assert_eq!(gate.sim.table_auth_schemes(), vec!["Bearer"; 2]);
    assert_eq!(gate.grants(), vec![("password".to_string(), 200)]);

    let (code, output) = gate.check(&[]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("OK    sys_user_grmember answered a membership query"),
        "{output}"
    );
    assert_eq!(gate.sim.table_auth_schemes(), vec!["Bearer"; 4]);
    assert_eq!(gate.grants().len(), 2, "check used a token of its own");
}

/// 50 PAM logins at once: one token request, every query with the same Bearer token.
#[test]
fn fifty_concurrent_logins_make_one_token_request() {
    let gate = Arc::new(OAuthGate::new(Method::Password));
    let service = gate.service("Timeout=20\n");
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let gate = Arc::clone(&gate);
            let service = service.clone();
            std::thread::spawn(move || gate.login(&service, "INC0010001"))
        })
        .collect();
    for thread in threads {
        let outcome = thread.join().expect("login thread");
        assert_code(&outcome, PAM_SUCCESS);
        assert!(outcome.errors().is_empty());
    }
    assert_eq!(gate.grants(), vec![("password".to_string(), 200)]);
    assert_eq!(gate.sim.query_count(), 50);
    assert_eq!(gate.sim.table_auth_schemes(), vec!["Bearer"; 50]);
    let audit = gate.audit();
    assert_eq!(audit.len(), 50);
    assert!(audit.iter().all(|record| record["decision"] == "allow"));
}

/// `pam-ticket check` gets a token of its own (never the cached one, nor the refresh
/// token), leaves the cache alone, shows no secret or token, and names a refused client.
#[test]
fn check_signs_in_on_its_own_and_says_when_the_client_is_refused() {
    for method in [Method::Password, Method::ClientCredentials] {
        let gate = OAuthGate::new(method);
        let service = gate.service("");
        gate.log_in_allowed(&service);
        let cached_before: Vec<(String, Vec<u8>)> = gate
            .token_files()
            .into_iter()
            .map(|name| {
                let bytes = fs::read(gate.cache_dir().join(&name)).expect("read");
                (name, bytes)
            })
            .collect();
        let (code, output) = gate.check(&[]);
        assert_eq!(code, 0, "{output}");
        assert!(
            output.contains(&format!("AuthMethod                     {}", method.name())),
            "{output}"
        );
        assert!(
            output.contains(&format!("ClientID={CLIENT_ID}, ClientSecret=********")),
            "{output}"
        );
        assert!(
            output.contains(&format!("got an OAuth access token for client {CLIENT_ID}"))
                && output.contains(&format!("grant_type={}", method.grant())),
            "{output}"
        );
        assert!(output.contains("neither read nor written"), "{output}");
        assert_eq!(
            gate.grants(),
            vec![
                (method.grant().to_string(), 200),
                (method.grant().to_string(), 200)
            ]
        );
        let cached_after: Vec<(String, Vec<u8>)> = gate
            .token_files()
            .into_iter()
            .map(|name| {
                let bytes = fs::read(gate.cache_dir().join(&name)).expect("read");
                (name, bytes)
            })
            .collect();
        assert_eq!(cached_before, cached_after, "the cache was left alone");
        assert_no_secret(&gate, &output, "check's output");

        gate.write_account("not-the-secret");
        let (code, output) = gate.check(&[]);
        assert_eq!(code, 1, "{output}");
        assert!(
            output.contains(&format!("FAIL  the module's OAuth client {CLIENT_ID}"))
                && output.contains("was refused")
                && output.contains("every login is denied, in both fail modes"),
            "{output}"
        );
        assert_no_secret(&gate, &output, "check's output");
    }
}

/// `check` with a fresh configuration creates no cache directory.
#[test]
fn check_creates_no_cache_directory() {
    let gate = OAuthGate::new(Method::Password);
    gate.write_config("");
    let (code, output) = gate.check(&[]);
    assert_eq!(code, 0, "{output}");
    assert!(!gate.cache_dir().exists(), "{output}");
}

/// `pam-ticket check --flush-cache` removes this configuration's tokens, access and
/// refresh, says which, and the next login asks for a new token with a new grant.
#[test]
fn flush_cache_removes_this_configurations_tokens() {
    let gate = OAuthGate::new(Method::Password);
    let service = gate.service("");
    gate.log_in_allowed(&service);
    assert_eq!(gate.token_files().len(), 2);
    // Another configuration's token in the same directory is not touched.
    let other = gate
        .cache_dir()
        .join("remedy-00000000000000000000000000000000.token");
    fs::write(&other, "not ours").expect("write");

    let (code, output) = gate.check(&["--flush-cache"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("ServiceNow OAuth token cache"), "{output}");
    assert!(
        output.contains("ServiceNow refresh token cache"),
        "{output}"
    );
    assert_eq!(output.matches("REMOVED").count(), 2, "{output}");
    assert!(output.contains("2 cached tokens removed"), "{output}");
    assert_eq!(
        gate.token_files(),
        vec!["remedy-00000000000000000000000000000000.token".to_string()]
    );
    assert_eq!(gate.grants().len(), 1, "flushing asks the instance nothing");
    assert_no_secret(&gate, &output, "check's output");

    let (code, output) = gate.check(&["--flush-cache"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("0 cached tokens removed"), "{output}");

    gate.log_in_allowed(&service);
    assert_eq!(
        gate.grants(),
        vec![("password".to_string(), 200), ("password".to_string(), 200)]
    );
}

/// ClientID and ClientSecret where nothing would send them, or missing where they are
/// needed, are configuration errors with file:line.
#[test]
fn account_files_that_do_not_fit_the_method_are_configuration_errors() {
    let gate = OAuthGate::new(Method::ClientCredentials);
    let account = gate.account_path().display().to_string();
    for (method, text, expected) in [
        (
            "basic",
            format!("Username=\"{USER}\"\nPassword=\"{PASSWORD}\"\nClientID=\"{CLIENT_ID}\"\n"),
            format!("{account}:3: ClientID is not used here"),
        ),
        (
            "oauth-client-credentials",
            format!(
                "ClientID=\"{CLIENT_ID}\"\nClientSecret=\"{CLIENT_SECRET}\"\nPassword=\"{PASSWORD}\"\n"
            ),
            format!("{account}:3: Password is not used with AuthMethod=oauth-client-credentials"),
        ),
        (
            "oauth-password",
            format!("ClientID=\"{CLIENT_ID}\"\nUsername=\"{USER}\"\nPassword=\"{PASSWORD}\"\n"),
            format!("{account}: ClientSecret is missing (AuthMethod=oauth-password needs it)"),
        ),
    ] {
        write_root_only(&gate.account_path(), &text);
        gate.write_config("");
        let config = fs::read_to_string(gate.config_path())
            .expect("config")
            .replace(
                "AuthMethod=\"oauth-client-credentials\"",
                &format!("AuthMethod=\"{method}\""),
            );
        fs::write(gate.config_path(), config).expect("config");
        let service = PamService::new(
            &gate.dir.join("pam.d"),
            "servicenow-oauth",
            &pam::module_path(),
            &[format!("config={}", gate.config_path().display())],
        );
        let outcome = gate.login(&service, "INC0010001");
        assert_code(&outcome, PAM_SERVICE_ERR);
        let (code, output) = gate.check(&[]);
        assert_eq!(code, 3, "{output}");
        assert!(output.contains(&expected), "{method}: {output}");
        assert_no_secret(&gate, &output, "check's output");
    }
    assert!(gate.sim.token_requests().is_empty());
}

/// With AuthMethod=oauth-client-credentials there is no account password at all (the
/// sealed record of older versions was keyed by one, so this method never got an end
/// note). The session record needs no key: both notes land, with the cached token.
#[test]
fn client_credentials_logins_get_their_end_note() {
    let gate = OAuthGate::new(Method::ClientCredentials);
    gate.write_config("WorkNotes=Yes\n");
    let line = pam::module_line(
        &pam::module_path(),
        &[format!("config={}", gate.config_path().display())],
    );
    let service = PamService::with_text(
        &gate.dir.join("pam.d"),
        "servicenow-oauth-notes",
        &format!("auth required {line}\nsession required {line}\n"),
    );
    let outcome = pam::run(
        &service,
        &Login::new("alice").rhost("192.0.2.30").answer("INC0010001"),
        Steps {
            acct_mgmt: false,
            open_session: true,
            tty_ssh: true,
            close_session_after: Some(Duration::ZERO),
        },
    );
    assert_code(&outcome.auth, PAM_SUCCESS);
    assert!(
        outcome.auth.errors().is_empty(),
        "{}",
        outcome.auth.transcript()
    );
    assert_eq!(outcome.open_session_code, Some(PAM_SUCCESS));
    assert_eq!(outcome.close_session_code, Some(PAM_SUCCESS));

    let notes = gate.sim.work_notes("INC0010001");
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(notes[0].starts_with("pam_ticket: SSH access granted on this ticket"));
    assert!(notes[1].starts_with("pam_ticket: SSH session ended after "));
    // One token for the lookup and both notes: the end note used the cached one.
    assert_eq!(gate.grants(), vec![("client_credentials".to_string(), 200)]);
    let audit = gate.audit();
    let decisions: Vec<&str> = audit
        .iter()
        .map(|record| record["decision"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(decisions, ["allow", "session_end"]);
    assert_eq!(audit[0]["work_note"], "written");
    assert_eq!(audit[1]["work_note"], "written");
    assert_eq!(audit[1]["ticket"], "INC0010001");
    assert_no_secret(&gate, &gate.audit_text(), "the audit file");
}
