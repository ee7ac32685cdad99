//! `pam-ticket ca add` and `pam-ticket ca check`, run as the built binary on temporary
//! bundles, and the proof that matters: after `ca add`, the module (through the real
//! libpam) trusts a portal whose certificate that CA issued, and did not before.

use pam_ticket_testkit as support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use support::files::{audit_records, write_root_only};
use support::https::TestServer;
use support::pam::{
    Login, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS, PamService, authenticate, module_path,
};
use support::pki::{ServerCert, TestPki, UNTRUSTED_CA_NAME};
use support::portal::{PortalSim, TicketingLink};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pam-ticket"))
        .args(args)
        .env_clear()
        .output()
        .expect("run pam-ticket")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn backups(bundle: &Path) -> Vec<PathBuf> {
    let name = bundle
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let mut found: Vec<PathBuf> = fs::read_dir(bundle.parent().expect("parent"))
        .expect("list")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().is_some_and(|file| {
                file.to_string_lossy()
                    .starts_with(&format!("{name}.pam-ticket-"))
            })
        })
        .collect();
    found.sort();
    found
}

fn certificate_count(bundle: &Path) -> usize {
    pam_ticket::trust::parse_pem_certificates(&fs::read(bundle).expect("bundle")).len()
}

/// A test directory, a PKI in it, and a bundle holding only its root CA.
fn bundle_with_test_root(label: &str) -> (TestDir, TestPki, PathBuf) {
    let dir = TestDir::new(label);
    let pki = TestPki::generate(&dir.join("pki"));
    let bundle = dir.join("ca-bundle.crt");
    fs::write(&bundle, &pki.ca.cert_pem).expect("write the bundle");
    (dir, pki, bundle)
}

/// `pam-ticket ca add <input> --bundle <bundle>`
fn ca_add(input: &Path, bundle: &Path) -> Output {
    tool(&[
        "ca",
        "add",
        input.to_str().expect("utf-8"),
        "--bundle",
        bundle.to_str().expect("utf-8"),
    ])
}

/// `pam-ticket ca check <url> --config <config>`
fn ca_check(url: &str, config: &Path) -> Output {
    tool(&[
        "ca",
        "check",
        url,
        "--config",
        config.to_str().expect("utf-8"),
    ])
}

/// The tool exited with `code` (else the failure shows `context` and both outputs);
/// returns its standard output and error.
fn assert_exit(output: &Output, code: i32, context: &str) -> (String, String) {
    let (stdout, stderr) = text(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{context}{stdout}{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn der_input_is_added_once_after_a_backup() {
    let (dir, pki, bundle) = bundle_with_test_root("ca-der");
    let original = fs::read(&bundle).expect("bundle");
    let cer = dir.join("PortalRootCA.cer");
    fs::write(&cer, &pki.untrusted_ca.cert_der).expect("write the DER certificate");

    let output = ca_add(&cer, &bundle);
    let (stdout, _) = assert_exit(&output, 0, "");
    assert!(
        stdout.contains(&format!(
            "Added: CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests"
        )),
        "{stdout}"
    );
    let made = backups(&bundle);
    assert_eq!(made.len(), 1, "one backup");
    assert_eq!(
        fs::read(&made[0]).expect("backup"),
        original,
        "the backup is the old bundle"
    );
    assert!(
        stdout.contains(&format!(
            "To undo: cp -p '{}' '{}'",
            made[0].display(),
            bundle.display()
        )),
        "{stdout}"
    );
    let now = fs::read(&bundle).expect("bundle");
    assert!(now.starts_with(&original), "appended, never rewritten");
    assert_eq!(certificate_count(&bundle), 2);
    assert!(
        pam_ticket::trust::parse_pem_certificates(&now)
            .iter()
            .any(|certificate| certificate.der() == pki.untrusted_ca.cert_der.as_slice())
    );

    // Twice: nothing added, no second backup.
    let output = ca_add(&cer, &bundle);
    let (stdout, _) = assert_exit(&output, 0, "");
    assert!(
        stdout.contains("Already trusted, nothing added"),
        "{stdout}"
    );
    assert_eq!(fs::read(&bundle).expect("bundle"), now);
    assert_eq!(backups(&bundle).len(), 1);
}

#[test]
fn pem_input_is_added_and_the_same_ca_in_der_is_then_known() {
    let (dir, _pki, bundle) = bundle_with_test_root("ca-pem");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "Example Corp Issuing CA 2");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example Corp");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).expect("self-sign");
    let pem_path = dir.join("issuing.pem");
    fs::write(&pem_path, ca.pem()).expect("write PEM");

    let output = ca_add(&pem_path, &bundle);
    let (stdout, _) = assert_exit(&output, 0, "");
    assert!(
        stdout.contains("Added: CN=Example Corp Issuing CA 2, O=Example Corp"),
        "{stdout}"
    );
    assert_eq!(certificate_count(&bundle), 2);
    let after = fs::read(&bundle).expect("bundle");

    // The same certificate as DER is recognised by its bytes, not by its file.
    let der_path = dir.join("issuing.cer");
    fs::write(&der_path, ca.der()).expect("write DER");
    let output = ca_add(&der_path, &bundle);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output).0.contains("Already trusted"));
    assert_eq!(fs::read(&bundle).expect("bundle"), after);
    assert_eq!(backups(&bundle).len(), 1);
}

#[test]
fn leaves_and_private_keys_are_refused_and_nothing_is_touched() {
    let (dir, pki, bundle) = bundle_with_test_root("ca-refuse");
    let original = fs::read(&bundle).expect("bundle");

    let leaf = pki.leaf(ServerCert::Good).cert_path.clone();
    let with_key = dir.join("ca-and-key.pem");
    fs::write(
        &with_key,
        format!("{}{}", pki.untrusted_ca.cert_pem, pki.untrusted_ca.key_pem),
    )
    .expect("write");
    let der_key = dir.join("ca-key.der");
    fs::write(&der_key, &pki.untrusted_ca.key_der).expect("write");
    let garbage = dir.join("notes.txt");
    fs::write(&garbage, "not a certificate\n").expect("write");

    for (input, expected) in [
        (
            &leaf,
            "CN=localhost is not a CA certificate (no basicConstraints CA:TRUE); add the CA that issued it (CN=pam_ticket Test Root CA, O=pam_ticket tests)",
        ),
        (&with_key, "holds a private key"),
        (&der_key, "private key"),
        (&garbage, "not a DER or PEM certificate"),
    ] {
        let output = ca_add(input, &bundle);
        let (_, stderr) = assert_exit(&output, 1, &input.display().to_string());
        assert!(stderr.contains(expected), "{}: {stderr}", input.display());
        assert_eq!(fs::read(&bundle).expect("bundle"), original);
        assert!(backups(&bundle).is_empty());
    }
}

#[test]
fn help_and_usage() {
    for args in [
        &["ca", "add", "--help"][..],
        &["ca", "check", "--help"],
        &["ca", "--help"],
    ] {
        let output = tool(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(text(&output).0.contains("usage: pam-ticket ca"), "{args:?}");
    }
    let output = tool(&["ca", "add"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("missing argument"));
}

/// A portal whose certificate comes from `untrusted_ca` (a CA the module does not trust
/// yet), validating tickets with a ServiceNow simulator.
struct Portal {
    _servicenow_server: TestServer,
    server: TestServer,
    portal: Arc<PortalSim>,
}

fn portal(pki: &TestPki, cert: ServerCert) -> Portal {
    let servicenow = Arc::new(ServiceNowSim::new("integration", "Sn-Pass"));
    let servicenow_server = TestServer::start(pki.server_config(ServerCert::Good), servicenow);
    let link = TicketingLink {
        url: servicenow_server.base_url(),
        ca_file: pki.ca_pem_path(),
        username: "integration".to_string(),
        password: "Sn-Pass".to_string(),
    };
    let portal = Arc::new(PortalSim::new("gw", "Gw-Pass", link));
    let server = TestServer::start(pki.server_config(cert), portal.clone());
    Portal {
        _servicenow_server: servicenow_server,
        server,
        portal,
    }
}

#[test]
fn after_ca_add_the_module_trusts_the_portal_and_not_before() {
    let (dir, pki, bundle) = bundle_with_test_root("ca-module");
    let portal = portal(&pki, ServerCert::UntrustedCa);
    let account = dir.join("portal-account");
    write_root_only(&account, "Username=\"gw\"\nPassword=\"Gw-Pass\"\n");
    let audit = dir.join("audit.jsonl");
    let config = dir.join("pam_ticket.conf");
    write_root_only(
        &config,
        &format!(
            "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}/PasswordVault\"\nPortalAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nFailMode=\"safe\"\nTimeout=\"3\"\n",
            portal.server.base_url(),
            account.display(),
            bundle.display(),
            audit.display()
        ),
    );
    let service = PamService::new(
        &dir.join("pam.d"),
        "psmp",
        &module_path(),
        &[format!("config={}", config.display())],
    );
    let login = || {
        Login::new("alice@root@db01.example.com")
            .rhost("10.1.1.1")
            .answer("INC0010001")
    };

    // Before: not trusted, and denied even with FailMode=safe.
    let before = authenticate(&service, &login());
    assert_eq!(before.code, PAM_AUTHINFO_UNAVAIL, "{}", before.transcript());
    assert_eq!(
        before.errors(),
        vec![
            "Ticket validation is unavailable: the ticketing system's certificate could not be verified; contact your administrator"
        ]
    );
    assert_eq!(portal.portal.counts(), (0, 0, 0, 0));
    assert_eq!(portal.server.request_count(), 0);

    let cer = dir.join("portal-ca.cer");
    fs::write(&cer, &pki.untrusted_ca.cert_der).expect("write");
    let output = ca_add(&cer, &bundle);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));

    // After: the whole exchange runs and the ticket is accepted.
    let after = authenticate(&service, &login());
    assert_eq!(after.code, PAM_SUCCESS, "{}", after.transcript());
    assert!(after.errors().is_empty());
    assert_eq!(portal.portal.counts(), (1, 1, 1, 1));

    let records = audit_records(&audit);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["decision"], "unavailable");
    assert!(
        records[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("server certificate not trusted")
    );
    assert_eq!(records[1]["decision"], "allow");
    assert_eq!(records[1]["system"], "portal");
}

#[test]
fn ca_check_verifies_a_good_server_and_names_the_missing_issuer() {
    let (dir, pki, bundle) = bundle_with_test_root("ca-check");
    let config = dir.join("pam_ticket.conf");
    fs::write(
        &config,
        format!("# only CAFile is read\nCAFile=\"{}\"\n", bundle.display()),
    )
    .expect("write");
    let good = portal(&pki, ServerCert::Good);
    let untrusted = portal(&pki, ServerCert::UntrustedCa);

    let output = ca_check(&good.server.base_url(), &config);
    let (stdout, _) = assert_exit(&output, 0, "");
    assert!(
        stdout.contains(&format!("Trusting: {}", bundle.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("Server certificate: CN=localhost"),
        "{stdout}"
    );
    assert!(stdout.contains("OK: the chain of localhost:"), "{stdout}");

    let output = ca_check(&untrusted.server.base_url(), &config);
    let (stdout, _) = assert_exit(&output, 1, "");
    assert!(stdout.contains("NOT VERIFIED"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Missing issuer: CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests"
        )),
        "{stdout}"
    );

    // The fix the tool suggests works.
    let output = ca_add(&pki.untrusted_ca_pem_path(), &bundle);
    assert_eq!(output.status.code(), Some(0));
    let output = ca_check(&untrusted.server.base_url(), &config);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    // No request was ever made: only handshakes.
    assert_eq!(good.portal.counts(), (0, 0, 0, 0));
    assert_eq!(untrusted.portal.counts(), (0, 0, 0, 0));
}

#[test]
fn ca_check_without_a_server_is_a_usage_error() {
    let (dir, _pki, bundle) = bundle_with_test_root("ca-check-down");
    let config = dir.join("pam_ticket.conf");
    fs::write(&config, format!("CAFile=\"{}\"\n", bundle.display())).expect("write");
    let port = support::https::refusing_port();
    let output = ca_check(&format!("https://localhost:{port}"), &config);
    let (_, stderr) = assert_exit(&output, 2, "");
    assert!(stderr.contains("cannot connect to localhost"), "{stderr}");
}
