//! `pam-ticket check` (issue 11, item 6), run as a process: it reports every
//! configuration error at once, not only the first, and warns about Allowed* entries that
//! name no choice the ServiceNow instance (sys_choice) or the Remedy server (the forms'
//! field definitions) knows, with the nearest choice. A choice list it cannot read is a
//! warning, never a failure.

use pam_ticket_testkit as support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use support::https::TestServer;
use support::pki::{ServerCert, TestPki};
use support::remedy::{Endpoint, RemedySim};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const USER: &str = "svc_pam_ticket";
const PASSWORD: &str = "Ch3ck-All-Pass";

fn tool(args: &[&str]) -> (i32, String, String) {
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
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write_root_only(path: &Path, text: &str) {
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

struct Setup {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    system: &'static str,
}

impl Setup {
    fn start(label: &str, system: &'static str, handler: Arc<dyn support::http::Handler>) -> Setup {
        let dir = TestDir::new(&format!("check-{label}"));
        let pki = TestPki::generate(&dir.join("pki"));
        let server = TestServer::start(pki.server_config(ServerCert::Good), handler);
        write_root_only(
            &dir.join("account.conf"),
            &format!("Username=\"{USER}\"\nPassword=\"{PASSWORD}\"\n"),
        );
        Setup {
            dir,
            pki,
            server,
            system,
        }
    }

    /// The configuration: six lines of its own, then `extra`.
    fn config(&self, extra: &str) -> PathBuf {
        let path = self.dir.join("pam_ticket.conf");
        write_root_only(
            &path,
            &format!(
                "TicketingSystem=\"{}\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n\
                 CAFile=\"{}\"\nTimeout=\"3\"\nCacheDirectory=\"{}\"\n{extra}",
                self.system,
                self.server.base_url(),
                self.dir.join("account.conf").display(),
                self.pki.ca_pem_path().display(),
                self.dir.join("cache").display(),
            ),
        );
        path
    }
}

/// Every mistake of the file and of the `--arg`s is reported, each with its place, in the
/// order the module meets them; mistakes that only follow from another (a key reported
/// missing because its line did not parse) are not. Before, only the first was.
#[test]
fn check_reports_every_configuration_error() {
    let sim = Arc::new(ServiceNowSim::new(USER, PASSWORD));
    let setup = Setup::start("all-errors", "ServiceNow", sim.clone());
    let config = setup.config(
        "ValidateRequestngUser=\"Yes\"\nFailMode=\"open\"\nthis is not a setting\n\
         Timeout=\"ten\"\nTicketFormatRegex=\"INC[0-9\"\n",
    );
    let path = config.display().to_string();
    let (code, out, err) = tool(&[
        "check",
        "--config",
        &path,
        "--arg",
        "degub",
        "--arg",
        "MaxAttempts=99",
    ]);
    assert_eq!(code, 3, "{out}{err}");
    eprintln!("{out}");
    let errors: Vec<&str> = out
        .lines()
        .filter_map(|line| line.strip_prefix("  ERROR "))
        .collect();
    assert_eq!(
        errors,
        vec![
            "pam.d/pam-ticket argument 2: unknown module argument \"degub\" (did you mean debug?)"
                .to_string(),
            format!("{path}:9: expected Key=\"Value\""),
            format!(
                "{path}:7: unknown key ValidateRequestngUser (did you mean ValidateRequestingUser?)"
            ),
            format!("{path}:10: Timeout is set twice (first at {path}:5)"),
            format!("{path}:8: FailMode must be secure or safe, not \"open\""),
            // The regex crate's message goes on over several lines.
            format!("{path}:11: TicketFormatRegex is not a valid regex: regex parse error:"),
            "pam.d/pam-ticket argument 3: MaxAttempts must be a whole number from 1 to 10, not \"99\""
                .to_string(),
        ],
        "{out}"
    );
    assert!(
        out.contains("result: configuration error (7 problems); the module would return PAM_SERVICE_ERR, logging the first"),
        "{out}"
    );
    assert_eq!(
        setup.server.request_count(),
        0,
        "no request with a broken configuration"
    );

    // A required key whose line did not parse is not reported missing as well.
    let config = setup.config("");
    let text = fs::read_to_string(&config).expect("read");
    write_root_only(
        &config,
        &text.replace("SystemURL=\"", "SystemURL \"").to_string(),
    );
    let (code, out, _) = tool(&["check", "--config", &path]);
    assert_eq!(code, 3, "{out}");
    let errors: Vec<&str> = out
        .lines()
        .filter(|line| line.starts_with("  ERROR "))
        .collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(errors[0].contains(&format!("{path}:2: ")), "{out}");
    assert!(!out.contains("SystemURL is required"), "{out}");
}

/// Allowed* entries are compared with the active sys_choice rows of their field, read once
/// each: an entry that names no state is a warning with the nearest one. Labels and stored
/// values both count, as they do at a login. The exit status stays OK.
#[test]
fn check_warns_about_allowed_servicenow_choices_the_instance_does_not_know() {
    let sim = Arc::new(ServiceNowSim::new(USER, PASSWORD));
    let setup = Setup::start("sn-choices", "ServiceNow", sim.clone());
    let config = setup.config(
        "ValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"New,In-Progress,2\"\n\
         ValidateChangeTicketState=\"Yes\"\nAllowedChangeTicketStates=\"Implement,Schedule\"\n\
         ValidateApprovalStatus=\"Yes\"\nAllowedApprovalStatuses=\"approved,Not Yet Requested\"\n",
    );
    let (code, out, err) = tool(&["check", "--config", &config.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    eprintln!("{out}");
    for line in [
        "allowed choices: compared with the choices ServiceNow knows (warnings only)",
        "  WARN  AllowedIncidentTicketStates entry \"In-Progress\" names no incident state \
         ServiceNow knows, so it never matches (did you mean \"In Progress\"?); ServiceNow \
         knows: New, In Progress, On Hold, Resolved, Closed, Canceled",
        "  WARN  AllowedChangeTicketStates entry \"Schedule\" names no change state ServiceNow \
         knows, so it never matches (did you mean \"Scheduled\"?); ServiceNow knows: New, \
         Assess, Authorize, Scheduled, Implement, Review, Closed, Canceled",
        "  OK    AllowedApprovalStatuses: every entry names one of the change approvals ServiceNow knows",
    ] {
        assert!(
            out.contains(&format!("{line}\n")),
            "missing {line:?} in\n{out}"
        );
    }
    assert!(out.ends_with("result: OK\n"), "{out}");
    // The probe, then one sys_choice query per list.
    let received = sim.received();
    let tables: Vec<&str> = received.iter().map(|query| query.table.as_str()).collect();
    assert_eq!(
        tables,
        ["incident", "sys_choice", "sys_choice", "sys_choice"],
        "{received:?}"
    );
    let queries: Vec<Option<&str>> = received[1..]
        .iter()
        .map(|query| query.sysparm_query.as_deref())
        .collect();
    assert_eq!(
        queries,
        [
            Some("name=incident^element=state^inactive=false"),
            Some("name=change_request^element=state^inactive=false"),
            Some("name=change_request^element=approval^inactive=false"),
        ]
    );
    assert!(
        received[1..]
            .iter()
            .all(|query| query.fields.as_deref() == Some("label,value") && query.status == 200),
        "{received:?}"
    );
}

/// A choice list the account cannot read (here the instance answers that there is no such
/// table) is a warning that says so; the check's result does not change.
#[test]
fn a_choice_list_that_cannot_be_read_is_a_warning() {
    let sim = Arc::new(ServiceNowSim::new(USER, PASSWORD));
    sim.remove_table("sys_choice");
    let setup = Setup::start("sn-no-choices", "ServiceNow", sim.clone());
    let config =
        setup.config("ValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"New\"\n");
    let (code, out, err) = tool(&["check", "--config", &config.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "  WARN  could not read the incident state choices (unexpected HTTP 400: Invalid \
             table sys_choice); AllowedIncidentTicketStates was not compared\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("result: OK\n"), "{out}");
    assert_eq!(sim.received().last().map(|query| query.status), Some(400));
}

/// Remedy: one more log-on of its own, each form's field definitions read once (the
/// change form's for both its status and its approval), a log-off; the token cache is
/// left alone. Entries that name no selection value are warnings with the nearest value.
#[test]
fn check_warns_about_allowed_remedy_choices_the_forms_do_not_know() {
    let sim = Arc::new(RemedySim::new(USER, PASSWORD));
    let setup = Setup::start("remedy-choices", "BMCRemedy", sim.clone());
    let config = setup.config(
        "ValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"Assigned,In-Progress\"\n\
         ValidateChangeTicketState=\"Yes\"\nAllowedChangeTicketStates=\"Implementation In Progres\"\n\
         ValidateApprovalStatus=\"Yes\"\nAllowedApprovalStatuses=\"Approved\"\n",
    );
    let (code, out, err) = tool(&["check", "--config", &config.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "  WARN  AllowedIncidentTicketStates entry \"In-Progress\" names no incident state \
         BMCRemedy knows, so it never matches (did you mean \"In Progress\"?); BMCRemedy \
         knows: New, Assigned, In Progress, Pending, Resolved, Closed, Cancelled",
        "  WARN  AllowedChangeTicketStates entry \"Implementation In Progres\" names no change \
         state BMCRemedy knows, so it never matches (did you mean \"Implementation In \
         Progress\"?)",
        "  OK    AllowedApprovalStatuses: every entry names one of the change approvals BMCRemedy knows",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert!(out.ends_with("result: OK\n"), "{out}");
    let received = sim.received();
    let endpoints: Vec<Endpoint> = received.iter().map(|request| request.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            // The probe: the incident and change forms (the types accepted).
            Endpoint::Login,
            Endpoint::Query,
            Endpoint::Query,
            Endpoint::Logout,
            Endpoint::Login,
            Endpoint::Fields,
            Endpoint::Fields,
            Endpoint::Logout,
        ],
        "{received:?}"
    );
    let forms: Vec<Option<&str>> = received[5..7]
        .iter()
        .map(|request| request.form.as_deref())
        .collect();
    assert_eq!(
        forms,
        [Some("HPD:Help Desk"), Some("CHG:Infrastructure Change")]
    );
    let requests = setup.server.requests();
    let fields_requests: Vec<&str> = requests
        .iter()
        .map(|request| request.path.as_str())
        .filter(|path| path.contains("/api/arsys/v1.0/fields/"))
        .collect();
    assert_eq!(fields_requests.len(), 2, "{fields_requests:?}");
    assert!(
        requests
            .iter()
            .filter(|request| request.path.contains("/fields/"))
            .all(|request| request.param("field_criteria") == Some("NAME,DATATYPE,LIMIT")),
        "{requests:?}"
    );
    assert!(sim.live_tokens().is_empty(), "every token is logged off");
    assert!(
        !setup.dir.join("cache").exists(),
        "the token cache is left alone"
    );
}

/// WorkNotes=Yes: ServiceNow says whether the account has a role that writes work notes,
/// read from sys_user_has_role (never by writing one); none is a failure, since every note
/// would fail.
#[test]
fn check_says_whether_the_servicenow_account_may_write_work_notes() {
    let sim = Arc::new(ServiceNowSim::new(USER, PASSWORD));
    let setup = Setup::start("sn-write", "ServiceNow", sim.clone());
    let config = setup.config("WorkNotes=\"Yes\"\n");
    let config = config.display().to_string();
    sim.grant_role(USER, "snc_read_only");
    let (code, out, err) = tool(&["check", "--config", &config]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!(
            "  FAIL  work notes: the account {USER} has none of the roles that write work_notes \
             (itil, sn_incident_write, sn_change_write, admin; roles: snc_read_only): every note \
             would fail; give it one\n"
        )),
        "{out}"
    );
    sim.grant_role(USER, "itil");
    let (code, out, err) = tool(&["check", "--config", &config]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "  OK    work notes: the account {USER} has the role itil, which writes work_notes \
             on incident and change_request on a stock instance (roles: itil, snc_read_only)\n"
        )),
        "{out}"
    );
    assert!(sim.updates().is_empty(), "check never writes");
    let roles = sim
        .received()
        .into_iter()
        .find(|query| query.table == "sys_user_has_role")
        .expect("the roles were read");
    assert_eq!(
        roles.sysparm_query.as_deref(),
        Some(format!("user.user_name={USER}").as_str())
    );
}

/// WorkNotes=Yes with Remedy: the work-log forms' field definitions are read (a misspelt
/// form fails here, not at a login); create permission cannot be told without writing.
#[test]
fn check_reads_the_remedy_work_log_forms() {
    let sim = Arc::new(RemedySim::new(USER, PASSWORD));
    let setup = Setup::start("remedy-write", "BMCRemedy", sim.clone());
    let config = setup.config("WorkNotes=\"Yes\"\nRemedyChangeWorkLogForm=\"CHG:WorkLogg\"\n");
    let (code, out, err) = tool(&["check", "--config", &config.display().to_string()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "  OK    work notes: form \"HPD:WorkLog\" exists; whether the account may create \
             entries on it cannot be told without writing one (a failed note is logged at warning)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "  FAIL  work notes: form \"CHG:WorkLogg\" cannot be read (HTTP 404: ARERR 303"
        ),
        "{out}"
    );
    assert!(sim.entries("HPD:WorkLog").is_empty(), "check never writes");
}
