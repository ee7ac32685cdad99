//! Portal mode against CyberArk Privilege Cloud (PortalAuthMethod=PlatformToken) through
//! the real libpam: the built module gets a platform token from the Identity tenant
//! simulator (a server of its own, another origin than the portal's), sends it as
//! `Authorization: Bearer` to the portal simulator, which takes nothing else and validates
//! the ticket by asking the ServiceNow simulator. Every test checks the PAM code, what the
//! user saw, the requests per endpoint (token requests, portal calls, and never a logoff),
//! and the audit record.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use support::files::{audit_records, write_root_only};
use support::http::Response;
use support::https::TestServer;
use support::isolated::{self, ChildLogin};
use support::pam::{
    Login, PAM_AUTHINFO_UNAVAIL, PAM_SERVICE_ERR, PAM_SUCCESS, PamOutcome, PamService, assert_code,
    authenticate, module_path,
};
use support::pki::{ClientCert, ServerCert};
use support::portal::{IdentityTenant, PortalChain, ROOT_PASSWORD};

const SERVICE_USER: &str = "pam-gateway@cyberark.cloud.4711";
const SERVICE_SECRET: &str = "Svc-Secret-9Qz!71";
const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const ACCOUNT_REFUSED: &str = "Ticket validation is unavailable: the ticketing system refused this gateway's account; contact your administrator";
const UNAVAILABLE: &str =
    "Ticket validation is unavailable right now; try again later or use a failsafe bypass code";

/// A Privilege Cloud chain (Identity tenant, portal, ServiceNow), and the test's files.
struct Cloud(PortalChain);

impl std::ops::Deref for Cloud {
    type Target = PortalChain;
    fn deref(&self) -> &PortalChain {
        &self.0
    }
}

impl Cloud {
    fn start(label: &str) -> Cloud {
        Cloud(PortalChain::start_privilege_cloud(
            label,
            SERVICE_USER,
            SERVICE_SECRET,
        ))
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.join("token-cache")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("pam_ticket.conf")
    }

    /// Writes the service user's account file and a Privilege Cloud configuration
    /// (`extra` appended), and a PAM service running the module with it.
    fn service(&self, extra: &str, args: &[&str]) -> PamService {
        let account = self.dir.join("portal-account");
        write_root_only(
            &account,
            &format!("Username=\"{SERVICE_USER}\"\nPassword=\"{SERVICE_SECRET}\"\n"),
        );
        let mut text = format!(
            "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}\"\nPortalAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nCacheDirectory=\"{}\"\n",
            self.portal_url(),
            account.display(),
            self.pki.ca_pem_path().display(),
            self.audit_path().display(),
            self.cache_dir().display(),
        );
        if !extra.contains("PortalAuthMethod") {
            text.push_str(&format!(
                "PortalAuthMethod=\"PlatformToken\"\nIdentityURL=\"{}\"\n",
                self.identity_url()
            ));
        }
        if !extra.contains("Timeout") {
            text.push_str("Timeout=\"3\"\n");
        }
        text.push_str(extra);
        write_root_only(&self.config_path(), &text);
        let mut arguments = vec![format!("config={}", self.config_path().display())];
        arguments.extend(args.iter().map(|arg| arg.to_string()));
        PamService::new(&self.dir.join("pam.d"), "psmp", &module_path(), &arguments)
    }

    fn audit(&self) -> Vec<Value> {
        audit_records(&self.audit_path())
    }

    /// `(token requests, logons, searches, retrieves, logoffs)`
    fn counts(&self) -> (usize, usize, usize, usize, usize) {
        let (logons, searches, retrieves, logoffs) = self.portal.counts();
        (
            self.portal.token_requests(),
            logons,
            searches,
            retrieves,
            logoffs,
        )
    }

    /// The tokens the Identity tenant issued, in order.
    fn issued_tokens(&self) -> Vec<String> {
        self.portal
            .token_request_log()
            .into_iter()
            .filter_map(|request| request.token)
            .collect()
    }

    /// The one platform token cache file (`platform-<key>.token`).
    fn token_file(&self) -> PathBuf {
        let files: Vec<PathBuf> = fs::read_dir(self.cache_dir())
            .expect("the cache directory")
            .map(|entry| entry.expect("an entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "token"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().and_then(|name| name.to_str());
        assert!(
            name.is_some_and(|name| name.starts_with("platform-")),
            "{files:?}"
        );
        files[0].clone()
    }

    fn cached_token(&self) -> String {
        fs::read_to_string(self.token_file())
            .expect("the cache file")
            .lines()
            .find_map(|line| line.strip_prefix("token="))
            .expect("a token line")
            .to_string()
    }

    /// The last audit record: an allow in portal mode.
    fn assert_last_allowed(&self, outcome: &PamOutcome) {
        assert_code(outcome, PAM_SUCCESS);
        assert!(outcome.errors().is_empty(), "{}", outcome.transcript());
        assert_eq!(
            outcome.env.get("TICKET_ID").map(String::as_str),
            Some("INC0010001")
        );
        let record = self.audit().pop().expect("an audit record");
        assert_eq!(record["decision"], "allow", "{record}");
        assert_eq!(record["system"], "portal", "{record}");
    }
}

/// alice asks for root@db01.example.com with incident INC0010001, which the portal accepts.
fn alice_to_root_at_db01(service: &PamService) -> PamOutcome {
    authenticate(service, &alice_login())
}

fn alice_login() -> Login {
    Login::new("alice@root@db01.example.com")
        .rhost("10.9.8.7")
        .answer("INC0010001")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn tool(args: &[&str]) -> (i32, String) {
    let output = Command::new(TOOL)
        .args(args)
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

/// Rewrites the cache file's `obtained=` and `expires=` lines `seconds` into the past, as
/// root may (the file is root's, 0600).
fn age_cache_file(path: &Path, seconds: u64) {
    let text = fs::read_to_string(path).expect("the cache file");
    let aged: Vec<String> = text
        .lines()
        .map(|line| {
            for key in ["obtained=", "expires="] {
                if let Some(value) = line.strip_prefix(key) {
                    let value: u64 = value.parse().expect("a Unix time");
                    return format!("{key}{}", value - seconds);
                }
            }
            line.to_string()
        })
        .collect();
    fs::write(path, aged.join("\n") + "\n").expect("rewrite the cache file");
}

/// The whole exchange on the wire: one form-encoded client-credentials request to the
/// Identity tenant, then the account search and Retrieve with `Bearer <token>`, and no
/// logoff (nor a PVWA logon); the token is cached root-only, bound to the tenant.
#[test]
fn a_valid_ticket_is_let_in_with_a_bearer_platform_token() {
    let cloud = Cloud::start("cloud-accept");
    let service = cloud.service("", &[]);
    let outcome = alice_to_root_at_db01(&service);
    cloud.assert_last_allowed(&outcome);
    assert_eq!(cloud.counts(), (1, 0, 1, 1, 0), "no logon, no logoff");
    let [request] = cloud.portal.token_request_log().try_into().expect("one");
    assert_eq!(request.content_type, "application/x-www-form-urlencoded");
    assert_eq!(request.grant_type, "client_credentials");
    assert_eq!(request.client_id, SERVICE_USER);
    assert!(request.secret_matched);
    assert_eq!(request.status, 200);
    let token = request.token.expect("a token");
    assert_eq!(
        cloud.portal.authorizations(),
        vec![bearer(&token), bearer(&token)]
    );
    let retrieve = &cloud.portal.retrieve_calls()[0];
    assert_eq!(
        (retrieve.account_id.as_str(), retrieve.status),
        ("12_1", 200)
    );
    assert_eq!(retrieve.body["TicketId"], "INC0010001");
    // The cache: a 0700 directory holding a 0600 file, both root's, with this token.
    let file = cloud.token_file();
    let metadata = fs::symlink_metadata(&file).expect("stat");
    assert_eq!((metadata.uid(), metadata.mode() & 0o7777), (0, 0o600));
    assert_eq!(
        fs::metadata(cloud.cache_dir()).expect("stat").mode() & 0o7777,
        0o700
    );
    assert_eq!(cloud.cached_token(), token);
    let text = fs::read_to_string(&file).expect("read");
    assert!(
        text.contains(&format!("system_url={}\n", cloud.identity_url())),
        "{text}"
    );
    assert!(
        text.contains(&format!("username={SERVICE_USER}\n")),
        "{text}"
    );
    assert!(text.contains("expires="), "the tenant's expires_in is kept");
    assert!(!outcome.transcript().contains(ROOT_PASSWORD));
}

/// The token is reused by the next login in this process and by a login in another
/// process (sshd forks one per connection): one token request for three logins.
#[test]
fn the_token_is_reused_across_logins_and_processes() {
    if isolated::serve_if_child() {
        return;
    }
    let cloud = Cloud::start("cloud-reuse");
    let service = cloud.service("", &[]);
    for _ in 0..2 {
        let outcome = alice_to_root_at_db01(&service);
        cloud.assert_last_allowed(&outcome);
    }
    let login = alice_login();
    let report = isolated::run(
        "the_token_is_reused_across_logins_and_processes",
        &ChildLogin {
            service: &service,
            login: &login,
            capture_syslog: false,
            dir: &cloud.dir.join("child"),
        },
        Duration::from_secs(20),
    );
    let outcome = report
        .outcome
        .unwrap_or_else(|| panic!("the child wrote no result: {}", report.output))
        .as_pam_outcome();
    cloud.assert_last_allowed(&outcome);
    assert_eq!(cloud.counts(), (1, 0, 3, 3, 0));
    let token = cloud.cached_token();
    assert_eq!(cloud.issued_tokens(), vec![token.clone()]);
    assert!(
        cloud
            .portal
            .authorizations()
            .iter()
            .all(|authorization| *authorization == bearer(&token))
    );
    assert_eq!(cloud.audit().len(), 3);
}

/// A token the tenant revoked (or expired early) is refused by the portal with a 401: one
/// new token, the search sent once more, and the new token cached for the next login.
#[test]
fn a_revoked_token_is_renewed_exactly_once() {
    let cloud = Cloud::start("cloud-revoked");
    let service = cloud.service("", &[]);
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    let old = cloud.cached_token();
    cloud.portal.revoke_platform_tokens();
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    // The first login's search and Retrieve, the refused search, then the new token's.
    assert_eq!(cloud.counts(), (2, 0, 3, 2, 0));
    let new = cloud.cached_token();
    assert_ne!(new, old);
    assert_eq!(cloud.issued_tokens(), vec![old.clone(), new.clone()]);
    assert_eq!(
        cloud.portal.authorizations(),
        vec![
            bearer(&old),
            bearer(&old),
            bearer(&old),
            bearer(&new),
            bearer(&new)
        ]
    );
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    assert_eq!(cloud.counts(), (2, 0, 4, 3, 0), "the new token is reused");
}

/// A token past its `expires_in` (here: the cache file aged by an hour) is replaced before
/// it is sent: one new token request, and no call with the old one.
#[test]
fn an_expired_token_is_renewed_before_it_is_sent() {
    let cloud = Cloud::start("cloud-expired");
    let service = cloud.service("", &[]);
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    let old = cloud.cached_token();
    age_cache_file(&cloud.token_file(), 3600);
    cloud.portal.revoke_platform_tokens();
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    assert_eq!(cloud.counts(), (2, 0, 2, 2, 0));
    let new = cloud.cached_token();
    assert_ne!(new, old);
    assert_eq!(
        cloud.portal.authorizations(),
        vec![bearer(&old), bearer(&old), bearer(&new), bearer(&new)],
        "no call with the expired token, no 401"
    );
}

/// Tokens issued with a life shorter than the renewal margin are renewed at the next
/// login, before they are sent (the margin is a tenth of a short life).
#[test]
#[allow(clippy::disallowed_methods)] // real time: the token's real expires_in runs out
fn a_token_near_its_expiry_is_not_sent() {
    let cloud = Cloud::start("cloud-nearexpiry");
    // Two seconds: long enough for the first login's calls on a loaded machine.
    cloud.portal.set_token_lifetime(Duration::from_secs(2));
    let service = cloud.service("", &[]);
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    std::thread::sleep(Duration::from_millis(2100));
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    let [first, second] = cloud.issued_tokens().try_into().expect("two tokens");
    assert_eq!(
        cloud.portal.authorizations(),
        vec![
            bearer(&first),
            bearer(&first),
            bearer(&second),
            bearer(&second)
        ]
    );
    assert_eq!(cloud.counts(), (2, 0, 2, 2, 0));
}

/// A token request refused with the tenant's real error body (400 or 401, access_denied
/// "invalid client creds or client not allowed") is the module's account refused: denied
/// in both fail modes, not retried, no portal call, and the audit says who and what.
#[test]
fn a_refused_client_is_denied_in_both_fail_modes() {
    for status in [400, 401] {
        let cloud = Cloud::start("cloud-refused");
        cloud.portal.set_gateway_password("rotated-on-the-tenant");
        cloud.portal.set_refusal_status(status);
        for mode in ["secure", "safe"] {
            let service = cloud.service(&format!("FailMode=\"{mode}\"\n"), &[]);
            let outcome = alice_to_root_at_db01(&service);
            assert_code(&outcome, PAM_AUTHINFO_UNAVAIL);
            assert_eq!(outcome.errors(), vec![ACCOUNT_REFUSED], "{mode}");
            assert!(!outcome.env.contains_key("TICKET_DECISION"), "{mode}");
        }
        assert_eq!(
            cloud.counts(),
            (2, 0, 0, 0, 0),
            "one token request per login (a {status} is not retried), nothing else"
        );
        let records = cloud.audit();
        assert_eq!(records.len(), 2);
        for record in &records {
            assert_eq!(record["decision"], "unavailable");
            let expected = format!(
                "unavailable (not an outage, so never failsafe): the module's account \
                 {SERVICE_USER} was refused by {} (platform token for {}) (HTTP {status}: \
                 access_denied: invalid client creds or client not allowed): check \
                 PortalAccountFile ({})",
                cloud.identity_url(),
                cloud.portal_url(),
                cloud.dir.join("portal-account").display()
            );
            assert!(
                record["reason"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(&expected),
                "{record}"
            );
        }
        let cached = fs::read_dir(cloud.cache_dir())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "token"))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(cached, 0, "a refused request caches nothing");
    }
}

/// A cached token the tenant revoked, and a new one refused because the secret was
/// rotated: the renewal is the logon step, and its refusal the account refused, in both
/// fail modes. One refused search, one refused token request, nothing more.
#[test]
fn a_refused_renewal_is_the_account_refused_in_both_fail_modes() {
    for mode in ["secure", "safe"] {
        let cloud = Cloud::start("cloud-refused-renewal");
        let service = cloud.service(&format!("FailMode=\"{mode}\"\n"), &[]);
        cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
        cloud.portal.revoke_platform_tokens();
        cloud.portal.set_gateway_password("rotated-on-the-tenant");
        let outcome = alice_to_root_at_db01(&service);
        assert_code(&outcome, PAM_AUTHINFO_UNAVAIL);
        assert_eq!(outcome.errors(), vec![ACCOUNT_REFUSED], "{mode}");
        assert_eq!(cloud.counts(), (2, 0, 2, 1, 0), "{mode}");
        let record = cloud.audit().pop().expect("a record");
        assert_eq!(record["decision"], "unavailable", "{mode}");
    }
}

/// The Identity tenant down (5xx after the one retry) is an outage like a PVWA logon's:
/// FailMode decides, and nothing reaches the portal.
#[test]
fn an_identity_tenant_outage_is_an_outage() {
    for (mode, code, decision) in [
        ("secure", PAM_AUTHINFO_UNAVAIL, "unavailable"),
        ("safe", PAM_SUCCESS, "failsafe"),
    ] {
        let cloud = Cloud::start("cloud-tenant-down");
        cloud
            .portal
            .set_token_override(Some(Response::text(503, "Service Unavailable")));
        let service = cloud.service(&format!("FailMode=\"{mode}\"\n"), &[]);
        let outcome = alice_to_root_at_db01(&service);
        assert_code(&outcome, code);
        if mode == "secure" {
            assert_eq!(outcome.errors(), vec![UNAVAILABLE]);
        }
        assert_eq!(cloud.counts(), (2, 0, 0, 0, 0), "{mode}: one retry");
        let record = cloud.audit().pop().expect("a record");
        assert_eq!(record["decision"], decision, "{record}");
        assert!(
            record["reason"]
                .as_str()
                .unwrap_or("")
                .contains("server error HTTP 503"),
            "{record}"
        );
    }
}

/// A 200 from the tenant that is not a Bearer token (a sign-in page, a token of another
/// type) is no outage and no token: denied in both fail modes, nothing cached, nothing
/// sent to the portal.
#[test]
fn a_token_answer_that_is_not_a_bearer_token_is_denied_in_both_fail_modes() {
    for body in [
        Response::text(200, "<html>Sign in to CyberArk Identity</html>"),
        Response::json(
            200,
            &serde_json::json!({"access_token": "abc", "token_type": "MAC", "expires_in": 900}),
        ),
    ] {
        let cloud = Cloud::start("cloud-not-bearer");
        cloud.portal.set_token_override(Some(body));
        for mode in ["secure", "safe"] {
            let service = cloud.service(&format!("FailMode=\"{mode}\"\n"), &[]);
            let outcome = alice_to_root_at_db01(&service);
            assert_code(&outcome, PAM_AUTHINFO_UNAVAIL);
            assert_eq!(outcome.errors(), vec![UNAVAILABLE], "{mode}");
            let record = cloud.audit().pop().expect("a record");
            assert_eq!(record["decision"], "unavailable", "{record}");
            assert!(
                record["reason"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("unavailable (not an outage, so never failsafe): "),
                "{record}"
            );
        }
        assert_eq!(cloud.counts(), (2, 0, 0, 0, 0));
    }
}

/// 50 logins at once: one token request, every portal call with the same token.
#[test]
fn fifty_concurrent_logins_make_one_token_request() {
    let cloud = Arc::new(Cloud::start("cloud-fifty"));
    // A slow tenant widens the window in which the logins race for the token.
    cloud.portal.set_token_delay(Duration::from_millis(300));
    let service = cloud.service("Timeout=\"20\"\n", &[]);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let service = service.clone();
            std::thread::spawn(move || alice_to_root_at_db01(&service))
        })
        .collect();
    for thread in threads {
        let outcome = thread.join().expect("a login thread");
        assert_code(&outcome, PAM_SUCCESS);
        assert!(outcome.errors().is_empty(), "{}", outcome.transcript());
    }
    assert_eq!(cloud.counts(), (1, 0, 50, 50, 0));
    let token = cloud.cached_token();
    let authorizations = cloud.portal.authorizations();
    assert_eq!(authorizations.len(), 100);
    assert!(authorizations.iter().all(|seen| *seen == bearer(&token)));
    let audit = cloud.audit();
    assert_eq!(audit.len(), 50);
    assert!(audit.iter().all(|record| record["decision"] == "allow"));
}

/// Privilege Cloud takes no PVWA session token: a gateway left on PortalAuthMethod=
/// CyberArk logs on, but its session token is refused by the search. The module's
/// account refused, and the session logged off as always.
#[test]
fn the_portal_takes_only_bearer_platform_tokens() {
    let cloud = Cloud::start("cloud-bearer-only");
    let service = cloud.service("PortalAuthMethod=\"CyberArk\"\nFailMode=\"safe\"\n", &[]);
    let outcome = alice_to_root_at_db01(&service);
    assert_code(&outcome, PAM_AUTHINFO_UNAVAIL);
    assert_eq!(outcome.errors(), vec![ACCOUNT_REFUSED]);
    assert_eq!(cloud.counts(), (0, 1, 1, 0, 1));
    let authorizations = cloud.portal.authorizations();
    assert!(
        !authorizations[0].starts_with("Bearer "),
        "{authorizations:?}"
    );
}

/// With a client certificate configured (ClientCertificateFile/ClientKeyFile), the token
/// request carries it too: here the Identity tenant requires one and verifies ours; without
/// it the handshake fails, which is refused in both fail modes, never an outage.
#[test]
fn the_token_request_carries_the_client_certificate() {
    let mut chain = PortalChain::start_privilege_cloud("cloud-mtls", SERVICE_USER, SERVICE_SECRET);
    chain.identity_server = Some(TestServer::start_requiring_client_certificates(
        &chain.pki,
        ServerCert::Good,
        Arc::new(IdentityTenant(chain.portal.clone())),
    ));
    let cloud = Cloud(chain);
    let identity = cloud.identity_server.as_ref().expect("the tenant's server");
    let files = cloud.pki.client(ClientCert::Good);
    let service = cloud.service(
        &format!(
            "ClientCertificateFile=\"{}\"\nClientKeyFile=\"{}\"\n",
            files.cert_path.display(),
            files.key_path.display()
        ),
        &[],
    );
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    assert_eq!(cloud.counts(), (1, 0, 1, 1, 0));
    let requests = identity.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].client_certificate.as_ref(),
        Some(&files.cert_der)
    );

    for mode in ["secure", "safe"] {
        fs::remove_dir_all(cloud.cache_dir()).expect("empty the cache");
        let service = cloud.service(&format!("FailMode=\"{mode}\"\n"), &[]);
        let outcome = alice_to_root_at_db01(&service);
        assert_code(&outcome, PAM_AUTHINFO_UNAVAIL);
        let record = cloud.audit().pop().expect("a record");
        assert_eq!(record["decision"], "unavailable", "{mode}: {record}");
        assert!(
            record["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("unavailable (not an outage, so never failsafe): "),
            "{record}"
        );
    }
    assert_eq!(cloud.counts(), (1, 0, 1, 1, 0), "no handshake, no request");
}

/// PlatformToken without IdentityURL is a configuration error at its line: the module
/// returns PAM_SERVICE_ERR before it prompts, and nothing is asked.
#[test]
fn platform_token_without_identity_url_is_a_configuration_error() {
    let cloud = Cloud::start("cloud-noidentity");
    let service = cloud.service("PortalAuthMethod=\"PlatformToken\"\n", &[]);
    let outcome = alice_to_root_at_db01(&service);
    assert_code(&outcome, PAM_SERVICE_ERR);
    assert!(outcome.prompts().is_empty(), "{}", outcome.transcript());
    assert_eq!(cloud.counts(), (0, 0, 0, 0, 0));
    let (code, output) = tool(&[
        "check",
        "--config",
        &cloud.config_path().display().to_string(),
    ]);
    assert_ne!(code, 0, "{output}");
    assert!(
        output.contains(":8: IdentityURL is required when PortalAuthMethod is PlatformToken"),
        "{output}"
    );
}

/// `pam-ticket check` gets a token of its own (a cached one proves nothing about the
/// secret) and leaves the cache as it was; it sends no logoff. A refused service user is
/// reported as such. Neither the token nor the secret is ever printed.
#[test]
fn check_gets_a_token_of_its_own_and_leaves_the_cache_alone() {
    let cloud = Cloud::start("cloud-check");
    let service = cloud.service("", &[]);
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    let cache_before = fs::read(cloud.token_file()).expect("the cache file");
    let config = cloud.config_path().display().to_string();
    let (code, output) = tool(&["check", "--config", &config]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(&format!(
            "connection: getting a platform token from {} for the portal at {}",
            cloud.identity_url(),
            cloud.portal_url()
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "OK    got a platform token from {}/oauth2/platformtoken as {SERVICE_USER} (expires_in 900 s; the token cache in {} was neither read nor written)",
            cloud.identity_url(),
            cloud.cache_dir().display()
        )),
        "{output}"
    );
    assert!(
        output.contains("OK    no logoff: a platform token has none, it expires on its own"),
        "{output}"
    );
    assert!(output.contains("result: OK"), "{output}");
    // One search with the login's token, one count with the check's own.
    assert_eq!(cloud.counts(), (2, 0, 2, 1, 0));
    assert_eq!(fs::read(cloud.token_file()).expect("read"), cache_before);
    let tokens = cloud.issued_tokens();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        cloud.portal.authorizations().last(),
        Some(&bearer(&tokens[1]))
    );
    for token in &tokens {
        assert!(!output.contains(token.as_str()), "{output}");
    }
    assert!(!output.contains(SERVICE_SECRET), "{output}");

    cloud.portal.set_gateway_password("rotated-on-the-tenant");
    let (code, output) = tool(&["check", "--config", &config]);
    assert_ne!(code, 0, "{output}");
    assert!(
        output.contains(&format!(
            "FAIL  the module's account {SERVICE_USER} was refused by {} (platform token for {}) (HTTP 400: access_denied: invalid client creds or client not allowed)",
            cloud.identity_url(),
            cloud.portal_url()
        )),
        "{output}"
    );
    assert!(output.contains("not an outage"), "{output}");
    assert!(!output.contains(SERVICE_SECRET), "{output}");
    assert_eq!(fs::read(cloud.token_file()).expect("read"), cache_before);
}

/// Neither the platform token nor the service user's secret reaches syslog (with
/// `debug`), the audit file, or any file but the cache (the token) and the account file
/// (the secret). The login runs in a process of its own whose /dev/log the test reads.
#[test]
fn no_token_or_secret_in_syslog_or_the_audit() {
    if isolated::serve_if_child() {
        return;
    }
    let cloud = Cloud::start("cloud-secrets");
    let service = cloud.service("", &["debug"]);
    // A first login in this process caches a token; then a revoked one is replaced, so the
    // child's syslog covers a cached token, a 401 and a token request.
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    cloud.portal.revoke_platform_tokens();
    let login = alice_login();
    let report = isolated::run(
        "no_token_or_secret_in_syslog_or_the_audit",
        &ChildLogin {
            service: &service,
            login: &login,
            capture_syslog: true,
            dir: &cloud.dir.join("child"),
        },
        Duration::from_secs(20),
    );
    let outcome = report
        .outcome
        .unwrap_or_else(|| panic!("the child wrote no result: {}", report.output));
    cloud.assert_last_allowed(&outcome.as_pam_outcome());
    assert_eq!(cloud.counts(), (2, 0, 3, 2, 0));
    let tokens = cloud.issued_tokens();
    assert_eq!(tokens.len(), 2);
    let secrets: Vec<&str> = tokens
        .iter()
        .map(String::as_str)
        .chain([SERVICE_SECRET, ROOT_PASSWORD])
        .collect();
    match &outcome.syslog {
        Ok(lines) => {
            assert!(
                lines.iter().any(|line| line.contains("decision=allow")),
                "{lines:#?}"
            );
            for line in lines {
                for secret in &secrets {
                    assert!(!line.contains(secret), "{line}");
                }
            }
        }
        Err(why) => eprintln!("syslog not captured, so not checked: {why}"),
    }
    let audit = fs::read_to_string(cloud.audit_path()).expect("the audit file");
    assert_eq!(audit.lines().count(), 2);
    for file in files_under(cloud.dir.path()) {
        let bytes = fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for secret in &secrets {
            let allowed = (*secret == SERVICE_SECRET && file.ends_with("portal-account"))
                || (tokens.iter().any(|token| token == secret)
                    && file.starts_with(cloud.cache_dir()));
            assert!(
                allowed || !text.contains(secret),
                "{} holds a secret",
                file.display()
            );
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("read a test directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `pam-ticket check --flush-cache` removes the cached platform token, and the next login
/// asks the tenant for a new one.
#[test]
fn flush_cache_removes_the_platform_token() {
    let cloud = Cloud::start("cloud-flush");
    let service = cloud.service("", &[]);
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    let token_file = cloud.token_file();
    let config = cloud.config_path().display().to_string();
    let (code, output) = tool(&["check", "--flush-cache", "--config", &config]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(&format!(
            "REMOVED {} (Privilege Cloud platform token cache)",
            token_file.display()
        )),
        "{output}"
    );
    assert!(!token_file.exists());
    let tokens = cloud.issued_tokens();
    assert_eq!(tokens.len(), 1);
    assert!(!output.contains(tokens[0].as_str()), "{output}");
    cloud.assert_last_allowed(&alice_to_root_at_db01(&service));
    assert_eq!(
        cloud.issued_tokens().len(),
        2,
        "a new token after the flush"
    );
    assert_eq!(cloud.audit().len(), 2);
}
