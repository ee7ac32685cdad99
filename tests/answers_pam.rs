//! What the module reads from a server's answer, and what it makes of it, through the real
//! libpam against the simulators over HTTPS:
//!
//! * an answer that names a key twice is denied in both fail modes (ServiceNow, Remedy,
//!   portal), where reading the last one would have let the login in;
//! * a state is matched as the server sent it, so a control character in it is a
//!   mismatch, never sanitised into a match;
//! * nothing a server hides in its text (control, bidirectional or invisible characters)
//!   reaches the person logging in or the audit file. Syslog is checked in
//!   `syslog_and_exports.rs`, the one test binary that may bind `/dev/log`.
//!
//! Each server misbehaves through a [`Rewrite`] of the simulator's own answer, so that
//! everything else about the exchange stays real.

use pam_ticket_testkit as support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use support::files::{audit_records, write_root_only};
use support::http::{Handler, Request, Response};
use support::https::TestServer;
use support::pam::{
    self, Login, PAM_AUTHINFO_UNAVAIL, PAM_MAXTRIES, PAM_SUCCESS, PamOutcome, PamService,
    assert_code,
};
use support::pki::{ServerCert, TestPki};
use support::portal::{PortalSim, TicketingLink, pvwa_error};
use support::remedy::RemedySim;
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";
const GATEWAY_USER: &str = "PSMPGateway01";
const GATEWAY_PASSWORD: &str = "Gw-Pass-4412";
const UNAVAILABLE: &str =
    "Ticket validation is unavailable right now; try again later or use a failsafe bypass code";
const FAIL_MODES: [&str; 2] = ["secure", "safe"];

/// A simulator whose answers are edited on the way out.
struct Rewrite {
    inner: Arc<dyn Handler>,
    edit: fn(&Request, Response) -> Response,
}

impl Handler for Rewrite {
    fn handle(&self, request: &Request) -> Response {
        (self.edit)(request, self.inner.handle(request))
    }
}

fn rewrite(inner: Arc<dyn Handler>, edit: fn(&Request, Response) -> Response) -> Arc<dyn Handler> {
    Arc::new(Rewrite { inner, edit })
}

/// `{…}` with `,"key":value` written before its closing brace: the same key a second time,
/// which a JSON library cannot produce.
fn with_extra_key(object: &Value, key: &str, value: &Value) -> String {
    let text = object.to_string();
    let open = text.strip_suffix('}').expect("an object");
    format!("{open},{}:{value}}}", json!(key))
}

/// `{"<list>":[],"<list>":[…]}`: an empty list first, then the simulator's own.
fn with_empty_list_first(body: &[u8], list: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let prefix = format!("{{\"{list}\":");
    let rest = text.strip_prefix(&prefix).expect("the list comes first");
    format!("{prefix}[],\"{list}\":{rest}").into_bytes()
}

fn body_json(response: &Response) -> Value {
    serde_json::from_slice(&response.body).expect("the simulator answers JSON")
}

/// A directly queried system (ServiceNow or Remedy) behind HTTPS, and the test's files.
struct World {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
}

impl World {
    fn start(label: &str, handler: Arc<dyn Handler>) -> World {
        let dir = TestDir::new(label);
        let pki = TestPki::generate(&dir.join("pki"));
        let server = TestServer::start(pki.server_config(ServerCert::Good), handler);
        write_root_only(
            &dir.join("account.conf"),
            &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
        );
        World { dir, pki, server }
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// A configuration for `system` with `extra` appended, and a PAM service for it.
    /// The audit file starts empty.
    fn service(&self, system: &str, extra: &str) -> PamService {
        let _ = fs::remove_file(self.audit_path());
        let config = self.dir.join("pam_ticket.conf");
        write_root_only(
            &config,
            &format!(
                "TicketingSystem=\"{system}\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nCacheDirectory=\"{}\"\nTimeout=\"3\"\nMaxAttempts=1\n{extra}",
                self.server.base_url(),
                self.dir.join("account.conf").display(),
                self.pki.ca_pem_path().display(),
                self.audit_path().display(),
                self.dir.join("token-cache").display(),
            ),
        );
        PamService::new(
            &self.dir.join("pam.d"),
            "answers-test",
            &pam::module_path(),
            &[format!("config={}", config.display())],
        )
    }

    fn audit(&self) -> Vec<Value> {
        audit_records(&self.audit_path())
    }
}

fn login(user: &str, answer: &str) -> Login {
    Login::new(user).rhost("192.0.2.44").answer(answer)
}

/// A bad answer: denied in both fail modes as "unavailable, not an outage", with the
/// duplicate key named in the audit, and no failsafe anywhere.
fn assert_denied_for_duplicate(
    outcome: &PamOutcome,
    records: &[Value],
    ticket: &str,
    reason: &str,
    fail_mode: &str,
) {
    let context = format!("{ticket} in FailMode={fail_mode}");
    assert_eq!(
        outcome.code,
        PAM_AUTHINFO_UNAVAIL,
        "{context}: {}",
        outcome.transcript()
    );
    assert_eq!(outcome.errors(), vec![UNAVAILABLE], "{context}");
    assert!(
        outcome.infos().is_empty(),
        "{context}: {}",
        outcome.transcript()
    );
    assert!(!outcome.env.contains_key("TICKET_ID"), "{context}");
    assert_eq!(records.len(), 1, "{context}: {records:?}");
    let record = &records[0];
    assert_eq!(record["decision"], "unavailable", "{context}: {record}");
    assert_eq!(record["ticket"], ticket, "{context}");
    let text = record["reason"].as_str().unwrap_or_default();
    assert!(text.contains(reason), "{context}: {text}");
}

/// ServiceNow: `number=INC0010002` (Closed) gets a second `state` saying In Progress;
/// `number=INC0010001` gets an empty `result` list before its real one.
fn servicenow_duplicates(request: &Request, response: Response) -> Response {
    if response.status != 200 {
        return response;
    }
    match request.param("sysparm_query") {
        Some("number=INC0010002") => {
            let record = &body_json(&response)["result"][0];
            let in_progress = json!({"display_value": "In Progress", "value": "2"});
            let body = format!(
                "{{\"result\":[{}]}}",
                with_extra_key(record, "state", &in_progress)
            );
            Response {
                body: body.into_bytes(),
                ..response
            }
        }
        Some("number=INC0010001") => Response {
            body: with_empty_list_first(&response.body, "result"),
            ..response
        },
        _ => response,
    }
}

#[test]
fn a_duplicate_key_in_a_servicenow_answer_is_denied_in_both_fail_modes() {
    let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let world = World::start(
        "answers-dup-servicenow",
        rewrite(sim.clone(), servicenow_duplicates),
    );
    for fail_mode in FAIL_MODES {
        for (ticket, key) in [("INC0010002", "state"), ("INC0010001", "result")] {
            let service = world.service(
                "ServiceNow",
                &format!(
                    "FailMode=\"{fail_mode}\"\nValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\n"
                ),
            );
            let queries = sim.query_count();
            let outcome = pam::authenticate(&service, &login("alice", ticket));
            assert_eq!(sim.query_count(), queries + 1, "one query, no retry");
            assert_denied_for_duplicate(
                &outcome,
                &world.audit(),
                ticket,
                &format!("the body names the key \"{key}\" twice in one object"),
                fail_mode,
            );
        }
    }
    // The same simulator without the duplicate: a valid ticket still passes.
    let service = world.service("ServiceNow", "");
    let outcome = pam::authenticate(&service, &login("alice", "INC0010003"));
    assert_code(&outcome, PAM_SUCCESS);
    assert_eq!(world.audit()[0]["decision"], "allow");
}

/// Remedy: INC000000000002 (Closed) gets a second `Status` saying In Progress;
/// INC000000000001 gets an empty `entries` list before its real one.
fn remedy_duplicates(request: &Request, response: Response) -> Response {
    if response.status != 200 || !request.path.contains("/api/arsys/v1/entry/") {
        return response;
    }
    let qualification = request.param("q").unwrap_or_default();
    if qualification.contains("INC000000000002") {
        let document = body_json(&response);
        let values = with_extra_key(
            &document["entries"][0]["values"],
            "Status",
            &json!("In Progress"),
        );
        let body = format!("{{\"entries\":[{{\"values\":{values}}}]}}");
        Response {
            body: body.into_bytes(),
            ..response
        }
    } else if qualification.contains("INC000000000001") {
        Response {
            body: with_empty_list_first(&response.body, "entries"),
            ..response
        }
    } else {
        response
    }
}

#[test]
fn a_duplicate_key_in_a_remedy_answer_is_denied_in_both_fail_modes() {
    let sim = Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let world = World::start(
        "answers-dup-remedy",
        rewrite(sim.clone(), remedy_duplicates),
    );
    for fail_mode in FAIL_MODES {
        for (ticket, key) in [
            ("INC000000000002", "Status"),
            ("INC000000000001", "entries"),
        ] {
            let service = world.service(
                "BMCRemedy",
                &format!(
                    "FailMode=\"{fail_mode}\"\nValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\n"
                ),
            );
            let queries = sim.query_count();
            let outcome = pam::authenticate(&service, &login("alice", ticket));
            assert_eq!(sim.query_count(), queries + 1, "one query, no retry");
            assert_denied_for_duplicate(
                &outcome,
                &world.audit(),
                ticket,
                &format!("the body names the key \"{key}\" twice in one object"),
                fail_mode,
            );
        }
    }
    let service = world.service("BMCRemedy", "");
    let outcome = pam::authenticate(&service, &login("alice", "INC000000000003"));
    assert_code(&outcome, PAM_SUCCESS);
}

/// A portal simulator (in front of a ServiceNow simulator it asks about tickets) whose
/// answers go through `edit`.
struct PortalWorld {
    dir: TestDir,
    pki: TestPki,
    _servicenow_server: TestServer,
    server: TestServer,
    portal: Arc<PortalSim>,
}

impl PortalWorld {
    fn start(label: &str, edit: fn(&Request, Response) -> Response) -> PortalWorld {
        let dir = TestDir::new(label);
        let pki = TestPki::generate(&dir.join("pki"));
        let servicenow = Arc::new(ServiceNowSim::new("portal.integration", "Sn-Int-Pass"));
        let servicenow_server = TestServer::start(pki.server_config(ServerCert::Good), servicenow);
        let link = TicketingLink {
            url: servicenow_server.base_url(),
            ca_file: pki.ca_pem_path(),
            username: "portal.integration".to_string(),
            password: "Sn-Int-Pass".to_string(),
        };
        let portal = Arc::new(PortalSim::new(GATEWAY_USER, GATEWAY_PASSWORD, link));
        let server = TestServer::start(
            pki.server_config(ServerCert::Good),
            rewrite(portal.clone(), edit),
        );
        write_root_only(
            &dir.join("portal-account"),
            &format!("Username=\"{GATEWAY_USER}\"\nPassword=\"{GATEWAY_PASSWORD}\"\n"),
        );
        PortalWorld {
            dir,
            pki,
            _servicenow_server: servicenow_server,
            server,
            portal,
        }
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn service(&self, extra: &str) -> PamService {
        let _ = fs::remove_file(self.audit_path());
        let config = self.dir.join("pam_ticket.conf");
        write_root_only(
            &config,
            &format!(
                "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}/PasswordVault\"\nPortalAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"3\"\nMaxAttempts=1\n{extra}",
                self.server.base_url(),
                self.dir.join("portal-account").display(),
                self.pki.ca_pem_path().display(),
                self.audit_path().display(),
            ),
        );
        PamService::new(
            &self.dir.join("pam.d"),
            "answers-portal",
            &pam::module_path(),
            &[format!("config={}", config.display())],
        )
    }

    fn audit(&self) -> Vec<Value> {
        audit_records(&self.audit_path())
    }

    fn assert_logged_off(&self) {
        assert_eq!(self.portal.sessions_opened(), self.portal.sessions_closed());
        assert_eq!(self.portal.open_sessions(), 0);
    }
}

/// The account search answers `{"value":[],"value":[…the accounts…],…}`.
fn portal_duplicates(request: &Request, response: Response) -> Response {
    let search = request.method == "GET" && request.path.ends_with("/API/Accounts");
    if response.status != 200 || !search {
        return response;
    }
    Response {
        body: with_empty_list_first(&response.body, "value"),
        ..response
    }
}

#[test]
fn a_duplicate_key_in_a_portal_answer_is_denied_in_both_fail_modes() {
    let world = PortalWorld::start("answers-dup-portal", portal_duplicates);
    for fail_mode in FAIL_MODES {
        let service = world.service(&format!("FailMode=\"{fail_mode}\"\n"));
        let searches = world.portal.searches();
        let outcome = pam::authenticate(
            &service,
            &login("alice@root@db01.example.com", "INC0010001"),
        );
        assert_eq!(world.portal.searches(), searches + 1);
        assert_eq!(
            world.portal.retrieves(),
            0,
            "no password retrieval is asked for"
        );
        world.assert_logged_off();
        assert_denied_for_duplicate(
            &outcome,
            &world.audit(),
            "INC0010001",
            "account search: the body names the key \"value\" twice in one object",
            fail_mode,
        );
    }
}

/// ServiceNow: INC0010001 (In Progress) comes back with `In\u0000Progress` as both its
/// label and its value.
fn servicenow_nul_in_state(request: &Request, response: Response) -> Response {
    if response.status != 200 || request.param("sysparm_query") != Some("number=INC0010001") {
        return response;
    }
    let mut document = body_json(&response);
    document["result"][0]["state"] =
        json!({"display_value": "In\u{0}Progress", "value": "In\u{0}Progress"});
    Response::json(200, &document)
}

#[test]
fn a_control_character_in_a_state_is_a_mismatch_in_both_fail_modes() {
    let servicenow = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let servicenow_world = World::start(
        "answers-nul-servicenow",
        rewrite(servicenow.clone(), servicenow_nul_in_state),
    );
    let remedy = Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    remedy.set_field(
        "HPD:Help Desk",
        "Incident Number",
        "INC000000000001",
        "Status",
        json!("In\u{0}Progress"),
    );
    let remedy_world = World::start("answers-nul-remedy", remedy.clone());
    let systems: [(&str, &World, &str); 2] = [
        ("ServiceNow", &servicenow_world, "INC0010001"),
        ("BMCRemedy", &remedy_world, "INC000000000001"),
    ];
    for (system, world, ticket) in systems {
        for fail_mode in FAIL_MODES {
            let service = world.service(
                system,
                &format!(
                    "FailMode=\"{fail_mode}\"\nValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\n"
                ),
            );
            let outcome = pam::authenticate(&service, &login("alice", ticket));
            let context = format!("{system} in FailMode={fail_mode}");
            assert_eq!(
                outcome.code,
                PAM_MAXTRIES,
                "{context}: {}",
                outcome.transcript()
            );
            let message = format!(
                "Ticket {ticket} is In Progress (with control or invisible characters); allowed states: In Progress"
            );
            assert_eq!(outcome.errors(), vec![message.as_str()], "{context}");
            assert!(!outcome.env.contains_key("TICKET_ID"), "{context}");
            let records = world.audit();
            assert_eq!(records.len(), 1, "{context}: {records:?}");
            assert_eq!(records[0]["decision"], "deny", "{context}");
            assert_eq!(records[0]["check"], "state", "{context}");
            assert_eq!(records[0]["reason"], message.as_str(), "{context}");
        }
    }
    assert_eq!(servicenow.query_count(), 2);
    assert_eq!(remedy.query_count(), 2);
}

/// Characters that must never reach a terminal or a log from a server: every control
/// character, the bidirectional controls and the invisible ones used to disguise text.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Every bidirectional control, zero-width characters and terminal escapes.
const HIDDEN: &str = "\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}\u{200E}\u{200F}\u{061C}\u{200B}\u{2060}\u{FEFF}\u{1b}[2J\u{7}\r\n";

/// ServiceNow: INC0010002's state label and INC0010004's requester carry `HIDDEN`, and
/// INC0010005 is answered with a 500 whose error message and detail carry it.
fn servicenow_hidden_text(request: &Request, response: Response) -> Response {
    match request.param("sysparm_query") {
        Some("number=INC0010002") if response.status == 200 => {
            let mut document = body_json(&response);
            document["result"][0]["state"]["display_value"] = json!(format!("Clo{HIDDEN}sed"));
            Response::json(200, &document)
        }
        Some("number=INC0010005") => Response::json(
            500,
            &json!({"error": {"message": format!("Maintenance{HIDDEN} window"),
                              "detail": format!("back {HIDDEN}soon")},
                    "status": "failure"}),
        ),
        _ => response,
    }
}

/// The portal refuses every ticket with an ErrorMessage that carries `HIDDEN`.
fn portal_hidden_refusal(request: &Request, response: Response) -> Response {
    if request
        .path
        .to_ascii_lowercase()
        .ends_with("/password/retrieve")
    {
        return pvwa_error(
            403,
            &format!("ITATS542E{HIDDEN}"),
            &format!("Ticket is {HIDDEN}closed\u{202E}desolc"),
        );
    }
    response
}

/// Every message the user saw, one by one (the transcript joins them with newlines).
fn assert_user_saw_nothing_hidden(outcome: &PamOutcome) {
    for message in outcome
        .prompts()
        .into_iter()
        .chain(outcome.errors())
        .chain(outcome.infos())
    {
        assert_nothing_hidden("a message to the user", message);
    }
}

fn assert_nothing_hidden(what: &str, text: &str) {
    let found: Vec<String> = text
        .chars()
        .filter(|c| is_hidden(*c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect();
    assert!(found.is_empty(), "{what} holds {found:?}: {text:?}");
}

/// The audit file, as bytes on disk and as the strings a JSON reader gets out of it.
fn assert_audit_clean(path: &Path) {
    let raw = fs::read_to_string(path).expect("an audit file");
    // Lines end in '\n'; nothing else in the file may be a control character.
    for line in raw.lines() {
        assert_nothing_hidden("an audit line", line);
        let record: Value = serde_json::from_str(line).expect("an audit line is JSON");
        for (key, value) in record.as_object().expect("an object") {
            assert_nothing_hidden(&format!("audit field {key}"), &value.to_string());
            if let Some(text) = value.as_str() {
                assert_nothing_hidden(&format!("audit field {key}"), text);
            }
        }
    }
}

#[test]
fn hidden_characters_from_servers_reach_neither_the_user_nor_the_audit() {
    let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let world = World::start(
        "answers-hidden-servicenow",
        rewrite(sim.clone(), servicenow_hidden_text),
    );
    let service = world.service(
        "ServiceNow",
        "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\nFailMode=\"secure\"\n",
    );

    // A state label the user is shown.
    let outcome = pam::authenticate(&service, &login("alice", "INC0010002"));
    assert_code(&outcome, PAM_MAXTRIES);
    assert_user_saw_nothing_hidden(&outcome);
    let shown = "Ticket INC0010002 is Clo [2J sed (with control or invisible characters); allowed states: In Progress";
    assert_eq!(outcome.errors(), vec![shown]);
    assert_audit_clean(&world.audit_path());
    assert_eq!(world.audit()[0]["reason"], shown);

    // A server error message that goes to the audit only.
    let service = world.service("ServiceNow", "FailMode=\"secure\"\n");
    let outcome = pam::authenticate(&service, &login("alice", "INC0010005"));
    assert_code(&outcome, PAM_AUTHINFO_UNAVAIL);
    assert_user_saw_nothing_hidden(&outcome);
    assert_audit_clean(&world.audit_path());
    let reason = world.audit()[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("server error HTTP 500: Maintenance [2J window: back [2J soon"),
        "{reason}"
    );

    // A portal's refusal, shown to the user word for word but for what it hides.
    let portal = PortalWorld::start("answers-hidden-portal", portal_hidden_refusal);
    let service = portal.service("FailMode=\"secure\"\n");
    let outcome = pam::authenticate(
        &service,
        &login("alice@root@db01.example.com", "INC0010001"),
    );
    assert_code(&outcome, PAM_MAXTRIES);
    assert_user_saw_nothing_hidden(&outcome);
    assert_eq!(
        outcome.errors(),
        vec!["Ticket INC0010001 was refused: Ticket is [2J closeddesolc"]
    );
    assert_audit_clean(&portal.audit_path());
    let records = portal.audit();
    assert_eq!(records[0]["decision"], "deny");
    assert_eq!(records[0]["error_code"], "ITATS542E [2J");
    portal.assert_logged_off();
}
