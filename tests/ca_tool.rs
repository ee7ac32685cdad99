//! `pam-ticket ca add` and `pam-ticket ca check`, run as the built binary on temporary
//! bundles, and the proof that matters: after `ca add`, the module (through the real
//! libpam) trusts a portal whose certificate that CA issued, and did not before.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
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

// ------------------------------------------------------------ the system trust store route

/// Which distribution's trust store a scratch root imitates.
#[derive(Clone, Copy)]
enum Distro {
    Rhel,
    Debian,
}

/// What the fake trust tool does when run.
#[derive(Clone, Copy)]
enum FakeTool {
    /// Rebuilds the bundle from the CA files, as the real one does.
    Rebuilds,
    /// Fails, as when the disk is full.
    Fails,
    /// Exits 0 without touching the bundle.
    LeavesTheBundle,
}

/// A scratch system root with RHEL's or Debian's trust store layout, its bundle holding
/// the test root CA, and a fake `update-ca-trust` / `update-ca-certificates` alone on PATH
/// that records each invocation.
struct FakeSystem {
    dir: TestDir,
    root: PathBuf,
    bin: PathBuf,
    tool: PathBuf,
    calls: PathBuf,
    anchors: PathBuf,
    bundle: PathBuf,
}

impl FakeSystem {
    fn new(label: &str, pki: &TestPki, distro: Distro, fake: FakeTool) -> FakeSystem {
        let dir = TestDir::new(label);
        let root = dir.join("root");
        let bin = dir.join("bin");
        let (tool_name, anchors, extension, bundle) = match distro {
            Distro::Rhel => (
                "update-ca-trust",
                "etc/pki/ca-trust/source/anchors",
                "pem",
                "etc/pki/tls/certs/ca-bundle.crt",
            ),
            Distro::Debian => (
                "update-ca-certificates",
                "usr/local/share/ca-certificates",
                "crt",
                "etc/ssl/certs/ca-certificates.crt",
            ),
        };
        let anchors = root.join(anchors);
        let bundle = root.join(bundle);
        fs::create_dir_all(&anchors).expect("anchors directory");
        fs::create_dir_all(bundle.parent().expect("parent")).expect("bundle directory");
        fs::create_dir_all(&bin).expect("bin");
        fs::write(&bundle, &pki.ca.cert_pem).expect("bundle");
        let base = dir.join("distribution-cas.pem");
        fs::write(&base, &pki.ca.cert_pem).expect("base bundle");
        let calls = dir.join("calls");
        let action = match fake {
            FakeTool::Rebuilds => format!(
                // Only the fake is on PATH, so everything else by its full path.
                "/bin/cat '{}' '{}'/*.{extension} > '{}'\necho '{tool_name}: bundle rebuilt'",
                base.display(),
                anchors.display(),
                bundle.display()
            ),
            FakeTool::Fails => {
                "echo 'p11-kit: cannot write the bundle: No space left on device' >&2\nexit 1"
                    .to_string()
            }
            FakeTool::LeavesTheBundle => "exit 0".to_string(),
        };
        let tool = bin.join(tool_name);
        fs::write(
            &tool,
            format!(
                "#!/bin/sh\necho \"args:$*\" >> '{}'\n{action}\n",
                calls.display()
            ),
        )
        .expect("fake tool");
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).expect("chmod");
        FakeSystem {
            dir,
            root,
            bin,
            tool,
            calls,
            anchors,
            bundle,
        }
    }

    /// Runs `pam-ticket ca add ARGS --root ROOT` with only the fake tool on PATH.
    fn ca_add(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pam-ticket"))
            .args(["ca", "add"])
            .args(args)
            .args(["--root", self.root.to_str().expect("utf-8")])
            .env_clear()
            .env("PATH", &self.bin)
            .output()
            .expect("run pam-ticket")
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(&self.calls)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn anchor_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(&self.anchors)
            .expect("list anchors")
            .flatten()
            .map(|entry| entry.path())
            .collect();
        files.sort();
        files
    }

    fn bundle_holds(&self, der: &[u8]) -> bool {
        pam_ticket::trust::parse_pem_certificates(&fs::read(&self.bundle).expect("bundle"))
            .iter()
            .any(|certificate| certificate.der() == der)
    }
}

fn exported_cer(system: &FakeSystem, pki: &TestPki) -> PathBuf {
    let cer = system.dir.join("PortalRootCA.cer");
    fs::write(&cer, &pki.untrusted_ca.cert_der).expect("write the DER certificate");
    cer
}

#[test]
fn on_rhel_the_ca_becomes_an_anchor_and_update_ca_trust_extract_runs() {
    let pki_dir = TestDir::new("ca-rhel-pki");
    let pki = TestPki::generate(pki_dir.path());
    let system = FakeSystem::new("ca-rhel", &pki, Distro::Rhel, FakeTool::Rebuilds);
    let cer = exported_cer(&system, &pki);
    let bundle_before = fs::read(&system.bundle).expect("bundle");

    let output = system.ca_add(&[cer.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let anchor = system.anchors.join("PortalRootCA.pem");
    assert_eq!(system.anchor_files(), vec![anchor.clone()]);
    assert_eq!(
        fs::metadata(&anchor).expect("anchor").permissions().mode() & 0o777,
        0o644
    );
    let anchor_text = fs::read_to_string(&anchor).expect("anchor");
    assert!(
        anchor_text.starts_with(&format!(
            "# CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests (added by pam-ticket ca add, "
        )),
        "{anchor_text}"
    );
    let in_anchor = pam_ticket::trust::parse_pem_certificates(anchor_text.as_bytes());
    assert_eq!(in_anchor.len(), 1);
    assert_eq!(in_anchor[0].der(), pki.untrusted_ca.cert_der.as_slice());
    assert_eq!(
        system.calls(),
        vec!["args:extract"],
        "run once, as `update-ca-trust extract`"
    );
    assert!(system.bundle_holds(&pki.untrusted_ca.cert_der));
    assert!(
        backups(&system.bundle).is_empty(),
        "the bundle is rebuilt, never appended to"
    );
    let command = format!("{} extract", system.tool.display());
    for expected in [
        format!("Added: CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests\n"),
        format!("  as {}\n", anchor.display()),
        format!("Ran: {command}\n  update-ca-trust: bundle rebuilt\n"),
        format!("Now trusted: {} holds it", system.bundle.display()),
        format!("To undo: rm '{}' && {command}\n", anchor.display()),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert_ne!(fs::read(&system.bundle).expect("bundle"), bundle_before);

    // Twice: already trusted, nothing written, the tool not run again.
    let output = system.ca_add(&[cer.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "Already trusted, nothing added: CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests (in {})",
            system.bundle.display()
        )),
        "{stdout}"
    );
    assert_eq!(system.calls().len(), 1);
    assert_eq!(system.anchor_files(), vec![anchor]);
}

#[test]
fn on_debian_the_ca_becomes_a_crt_and_update_ca_certificates_runs() {
    let pki_dir = TestDir::new("ca-debian-pki");
    let pki = TestPki::generate(pki_dir.path());
    let system = FakeSystem::new("ca-debian", &pki, Distro::Debian, FakeTool::Rebuilds);
    let cer = exported_cer(&system, &pki);

    let output = system.ca_add(&[cer.to_str().expect("utf-8"), "--name", "portal-root"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    // update-ca-certificates reads only *.crt files.
    let anchor = system.anchors.join("portal-root.crt");
    assert_eq!(system.anchor_files(), vec![anchor.clone()]);
    assert_eq!(system.calls(), vec!["args:"], "run once, without arguments");
    assert!(system.bundle_holds(&pki.untrusted_ca.cert_der));
    assert!(backups(&system.bundle).is_empty());
    let command = system.tool.display().to_string();
    for expected in [
        format!("  as {}\n", anchor.display()),
        format!("Ran: {command}\n"),
        format!("Now trusted: {} holds it", system.bundle.display()),
        format!("To undo: rm '{}' && {command}\n", anchor.display()),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn dry_run_says_what_it_would_do_and_changes_nothing() {
    let pki_dir = TestDir::new("ca-dry-pki");
    let pki = TestPki::generate(pki_dir.path());
    let system = FakeSystem::new("ca-dry", &pki, Distro::Rhel, FakeTool::Rebuilds);
    let cer = exported_cer(&system, &pki);
    let bundle_before = fs::read(&system.bundle).expect("bundle");

    let output = system.ca_add(&[cer.to_str().expect("utf-8"), "--dry-run"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "Would write {}: CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests\n  issued by CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests\nWould run: {} extract\nThen {} would hold it, and the module trusts that bundle when CAFile is not set.\nDry run: nothing was changed.\n",
            system.anchors.join("PortalRootCA.pem").display(),
            system.tool.display(),
            system.bundle.display()
        )
    );
    assert!(system.anchor_files().is_empty());
    assert!(system.calls().is_empty(), "the tool was run");
    assert_eq!(fs::read(&system.bundle).expect("bundle"), bundle_before);

    // The bundle route too.
    let own = system.dir.join("portal-ca-bundle.pem");
    fs::write(&own, &pki.ca.cert_pem).expect("own bundle");
    let output = system.ca_add(&[
        cer.to_str().expect("utf-8"),
        "--bundle",
        own.to_str().expect("utf-8"),
        "--dry-run",
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "Would append to {}: CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests",
            own.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("Dry run: nothing was changed."), "{stdout}");
    assert_eq!(
        fs::read(&own).expect("own bundle"),
        pki.ca.cert_pem.as_bytes()
    );
    assert!(backups(&own).is_empty());
    assert!(system.calls().is_empty());
}

#[test]
fn a_failing_trust_tool_or_an_unchanged_bundle_is_an_error() {
    let pki_dir = TestDir::new("ca-tool-fails-pki");
    let pki = TestPki::generate(pki_dir.path());

    let system = FakeSystem::new("ca-tool-fails", &pki, Distro::Rhel, FakeTool::Fails);
    let cer = exported_cer(&system, &pki);
    let output = system.ca_add(&[cer.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let anchor = system.anchors.join("PortalRootCA.pem");
    assert!(
        stderr.contains(&format!(
            "`{} extract` failed: exit status: 1\n  p11-kit: cannot write the bundle: No space left on device",
            system.tool.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} was written;", anchor.display())),
        "{stderr}"
    );
    assert!(!stdout.contains("Added"), "{stdout}");
    assert_eq!(system.calls().len(), 1);

    let system = FakeSystem::new(
        "ca-tool-idle",
        &pki,
        Distro::Rhel,
        FakeTool::LeavesTheBundle,
    );
    let cer = exported_cer(&system, &pki);
    let output = system.ca_add(&[cer.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "ran, but {} does not hold CN={UNTRUSTED_CA_NAME}, O=pam_ticket tests; the module would not trust it",
            system.bundle.display()
        )),
        "{stderr}"
    );
    assert!(!system.bundle_holds(&pki.untrusted_ca.cert_der));
}

#[test]
fn a_name_taken_by_another_certificate_is_refused() {
    let pki_dir = TestDir::new("ca-name-pki");
    let pki = TestPki::generate(pki_dir.path());
    let system = FakeSystem::new("ca-name", &pki, Distro::Rhel, FakeTool::Rebuilds);
    let cer = exported_cer(&system, &pki);
    let taken = system.anchors.join("PortalRootCA.pem");
    fs::write(&taken, &pki.ca.cert_pem).expect("another CA under that name");

    let output = system.ca_add(&[cer.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} already holds another certificate; choose another name with --name",
            taken.display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read(&taken).expect("taken"), pki.ca.cert_pem.as_bytes());
    assert!(system.calls().is_empty());

    // A path is not a name.
    let output = system.ca_add(&[cer.to_str().expect("utf-8"), "--name", "../../etc/evil"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("a file name, not a path"));

    let output = system.ca_add(&[cer.to_str().expect("utf-8"), "--name", "Portal.pem"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        system.anchor_files(),
        vec![system.anchors.join("Portal.pem"), taken]
    );
}

#[test]
fn bundle_is_the_fallback_and_stays_available_by_choice() {
    let pki_dir = TestDir::new("ca-fallback-pki");
    let pki = TestPki::generate(pki_dir.path());

    // --bundle on a system that has the tool: appended, the tool not run.
    let system = FakeSystem::new("ca-chosen-bundle", &pki, Distro::Rhel, FakeTool::Rebuilds);
    let cer = exported_cer(&system, &pki);
    let own = system.dir.join("portal-ca-bundle.pem");
    fs::write(&own, &pki.ca.cert_pem).expect("own bundle");
    let output = system.ca_add(&[
        cer.to_str().expect("utf-8"),
        "--bundle",
        own.to_str().expect("utf-8"),
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(certificate_count(&own), 2);
    assert_eq!(backups(&own).len(), 1);
    assert!(system.calls().is_empty());
    assert!(system.anchor_files().is_empty());

    // Neither tool on PATH: the first existing system bundle is appended to, with a backup.
    let system = FakeSystem::new("ca-no-tool", &pki, Distro::Debian, FakeTool::Rebuilds);
    fs::remove_file(&system.tool).expect("remove the tool");
    let cer = exported_cer(&system, &pki);
    let output = system.ca_add(&[cer.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Neither update-ca-trust nor update-ca-certificates is installed: appending to the bundle itself.\n"),
        "{stdout}"
    );
    assert!(system.bundle_holds(&pki.untrusted_ca.cert_der));
    assert_eq!(backups(&system.bundle).len(), 1);
    assert!(
        stdout.contains("`pam-ticket ca add CERT` without --bundle puts the CA where they keep it"),
        "{stdout}"
    );
}

#[test]
fn a_cafile_of_its_own_in_the_configuration_is_pointed_out() {
    let pki_dir = TestDir::new("ca-cafile-pki");
    let pki = TestPki::generate(pki_dir.path());
    let system = FakeSystem::new("ca-cafile", &pki, Distro::Rhel, FakeTool::Rebuilds);
    let cer = exported_cer(&system, &pki);
    fs::create_dir_all(system.root.join("etc/security")).expect("etc/security");
    write_root_only(
        &system.root.join("etc/security/pam_ticket.conf"),
        "TicketingSystem=\"ServiceNow\"\nCAFile=\"/etc/pam_ticket/portal-ca.pem\"\n",
    );
    let output = system.ca_add(&[cer.to_str().expect("utf-8")]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "Note: {} sets CAFile=\"/etc/pam_ticket/portal-ca.pem\", so the module trusts only that file; to add this CA there as well:\n  pam-ticket ca add {} --bundle /etc/pam_ticket/portal-ca.pem\n",
            system.root.join("etc/security/pam_ticket.conf").display(),
            cer.display()
        )),
        "{stdout}"
    );
}
