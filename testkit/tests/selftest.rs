//! Proves the test infrastructure itself: certificates, the HTTPS server and its faults, the
//! CONNECT proxy (all through `curl`, an independent client), and the libpam harness against
//! Linux-PAM's own modules. If one of these fails, module tests built on it mean nothing.

use pam_ticket_testkit as support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::http::{Handler, Request, Response};
use support::https::{Fault, TestServer, refusing_port};
use support::pam::{self, Event, Login, PamService, Steps};
use support::pki::{ClientCert, ServerCert, TestPki};
use support::proxy::ConnectProxy;
use support::tmp::TestDir;

/// Echoes what it parsed, so tests can check the parser through a real client.
struct Echo;

impl Handler for Echo {
    fn handle(&self, request: &Request) -> Response {
        let value = serde_json::json!({
            "method": request.method,
            "path": request.path,
            "raw_query": request.raw_query,
            "query": request.query,
            "body": String::from_utf8_lossy(&request.body),
            "auth": request.header("Authorization"),
        });
        Response::json(200, &value)
    }
}

fn start(pki: &TestPki, kind: ServerCert) -> TestServer {
    TestServer::start(pki.server_config(kind), Arc::new(Echo))
}

/// Runs curl trusting only our CA and ignoring any proxy set in the environment.
fn curl(pki: &TestPki, extra: &[&str]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--noproxy", "*", "--cacert"])
        .arg(pki.ca_pem_path())
        .args(extra)
        .output()
        .expect("run curl")
}

fn body_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "curl failed: {:?} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the echo handler answers JSON")
}

fn exit_code(output: &Output) -> i32 {
    output.status.code().expect("curl exited normally")
}

// curl's exit codes (man curl, EXIT CODES).
const CURL_COULDNT_CONNECT: i32 = 7;
const CURL_PARTIAL_FILE: i32 = 18;
const CURL_OPERATION_TIMEDOUT: i32 = 28;
const CURL_SSL_CONNECT_ERROR: i32 = 35;
const CURL_RECV_ERROR: i32 = 56;
const CURL_PEER_FAILED_VERIFICATION: i32 = 60;

#[test]
fn pki_writes_files_and_the_good_server_answers() {
    let dir = TestDir::new("pki");
    let pki = TestPki::generate(dir.path());
    for name in [
        "ca.pem",
        "ca-key.pem",
        "untrusted_ca.pem",
        "good.pem",
        "good-key.pem",
        "wrong_host.pem",
        "untrusted_ca_leaf.pem",
        "expired.pem",
    ] {
        assert!(dir.join(name).exists(), "{name} written");
    }
    assert!(pki.ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(pki.good.key_pem.contains("PRIVATE KEY"));
    assert!(!pki.ca.cert_der.is_empty());
    assert_ne!(pki.ca.cert_der, pki.untrusted_ca.cert_der);

    let server = start(&pki, ServerCert::Good);
    let url = server.url("/api/now/table/incident?sysparm_query=number%3DINC0010001&x=a+b");
    let value = body_json(&curl(&pki, &["-u", "svc:pw", &url]));
    assert_eq!(value["method"], "GET");
    assert_eq!(value["path"], "/api/now/table/incident");
    assert_eq!(
        value["raw_query"],
        "sysparm_query=number%3DINC0010001&x=a+b"
    );
    assert_eq!(
        value["query"],
        serde_json::json!([["sysparm_query", "number=INC0010001"], ["x", "a b"]])
    );
    assert_eq!(value["auth"], "Basic c3ZjOnB3");

    // The IP form verifies too: the Good leaf carries 127.0.0.1.
    body_json(&curl(&pki, &[&format!("{}/x", server.ip_url())]));
    assert_eq!(server.request_count(), 2);
    assert_eq!(server.requests()[0].path, "/api/now/table/incident");
}

#[test]
fn rustls_client_config_trusts_the_good_server() {
    let dir = TestDir::new("rustls");
    let pki = TestPki::generate(dir.path());
    let server = start(&pki, ServerCert::Good);
    let name = "localhost".try_into().expect("valid server name");
    let conn = rustls::ClientConnection::new(pki.client_config(), name).expect("client");
    let tcp = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /raw HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    assert!(answer.contains("\"path\":\"/raw\""), "{answer}");
}

/// The server that requires client certificates, through curl: the good one gets an
/// answer and is recorded with the request; none, one of the other CA, or the good
/// certificate with a key that is not its own, fail the handshake with no request.
#[test]
fn a_server_requiring_client_certificates_takes_only_the_trusted_ones() {
    let dir = TestDir::new("client-certs");
    let pki = TestPki::generate(dir.path());
    let server =
        TestServer::start_requiring_client_certificates(&pki, ServerCert::Good, Arc::new(Echo));
    let with = |kind: ClientCert| {
        let files = pki.client(kind);
        curl(
            &pki,
            &[
                "--cert",
                &files.cert_path.display().to_string(),
                "--key",
                &files.key_path.display().to_string(),
                &server.url("/mtls"),
            ],
        )
    };
    let answered = body_json(&with(ClientCert::Good));
    assert_eq!(answered["path"], "/mtls");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].client_certificate.as_ref(),
        Some(&pki.client(ClientCert::Good).cert_der)
    );
    server.reset_counters();
    for (label, output) in [
        ("none", curl(&pki, &[&server.url("/mtls")])),
        ("other CA", with(ClientCert::OtherCa)),
        ("mismatched key", with(ClientCert::MismatchedKey)),
    ] {
        assert!(!output.status.success(), "{label}: {output:?}");
        assert_eq!(server.request_count(), 0, "{label}");
    }
    // The ordinary server records that no certificate came.
    let plain = start(&pki, ServerCert::Good);
    body_json(&curl(&pki, &[&plain.url("/")]));
    assert_eq!(plain.requests()[0].client_certificate, None);
}

#[test]
fn bad_certificates_fail_verification() {
    let dir = TestDir::new("badcerts");
    let pki = TestPki::generate(dir.path());
    for kind in [
        ServerCert::WrongHost,
        ServerCert::UntrustedCa,
        ServerCert::Expired,
    ] {
        let server = start(&pki, kind);
        let output = curl(&pki, &[&server.url("/")]);
        assert_eq!(
            exit_code(&output),
            CURL_PEER_FAILED_VERIFICATION,
            "{kind:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(server.request_count(), 0, "{kind:?}");
        assert_eq!(server.connection_count(), 1, "{kind:?}");
    }

    // Trusting the untrusted CA makes its leaf work: the failure above is the trust anchor.
    let server = start(&pki, ServerCert::UntrustedCa);
    let output = Command::new("curl")
        .args(["--silent", "--noproxy", "*", "--cacert"])
        .arg(pki.untrusted_ca_pem_path())
        .arg(server.url("/"))
        .output()
        .expect("run curl");
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn keep_alive_chunked_bodies_and_post() {
    let dir = TestDir::new("keepalive");
    let pki = TestPki::generate(dir.path());
    let server = start(&pki, ServerCert::Good);

    // Two URLs in one curl run reuse the connection.
    let output = curl(&pki, &[&server.url("/one"), &server.url("/two")]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(server.request_count(), 2);
    assert_eq!(server.connection_count(), 1);

    server.reset_counters();
    assert_eq!(server.request_count(), 0);
    assert!(server.requests().is_empty());

    let value = body_json(&curl(
        &pki,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "hello chunked world",
            &server.url("/post"),
        ],
    ));
    assert_eq!(value["method"], "POST");
    assert_eq!(value["body"], "hello chunked world");

    let value = body_json(&curl(
        &pki,
        &["--data-binary", "plain body", &server.url("/post%20space")],
    ));
    assert_eq!(value["body"], "plain body");
    assert_eq!(value["path"], "/post space");
}

#[test]
fn status_and_fail_first_faults() {
    let dir = TestDir::new("status");
    let pki = TestPki::generate(dir.path());
    let server = start(&pki, ServerCert::Good);
    let status = |server: &TestServer| {
        let output = curl(
            &pki,
            &["-o", "/dev/null", "-w", "%{http_code}", &server.url("/")],
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    server.set_fault(Fault::Status(503, r#"{"error":"down"}"#.to_string()));
    assert_eq!(status(&server), "503");
    server.set_fault(Fault::FailFirst(1));
    assert_eq!(status(&server), "503");
    assert_eq!(status(&server), "200");
    assert_eq!(status(&server), "200");
    server.set_fault(Fault::None);
    assert_eq!(status(&server), "200");
    assert_eq!(server.request_count(), 5);
}

#[test]
#[allow(clippy::disallowed_methods)] // times real servers
fn hang_faults_time_out_and_drop_unblocks_them() {
    let dir = TestDir::new("hang");
    let pki = TestPki::generate(dir.path());

    let server = start(&pki, ServerCert::Good);
    server.set_fault(Fault::Hang);
    let started = Instant::now();
    let output = curl(&pki, &["--max-time", "2", &server.url("/")]);
    assert_eq!(exit_code(&output), CURL_OPERATION_TIMEDOUT, "{output:?}");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert_eq!(server.request_count(), 1, "a hung request is still counted");

    server.set_fault(Fault::HangBeforeTls);
    let output = curl(&pki, &["--max-time", "1", &server.url("/")]);
    assert_eq!(exit_code(&output), CURL_OPERATION_TIMEDOUT, "{output:?}");
    assert_eq!(server.request_count(), 1, "no request got through");
    assert_eq!(server.connection_count(), 2);

    // A client stuck on a hung connection sees it close soon after the server is dropped.
    let mut stuck = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    assert!(server.wait_for_connections(3, Duration::from_secs(2)));
    stuck
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    let dropped = Instant::now();
    drop(server);
    let mut byte = [0u8; 1];
    let read = stuck.read(&mut byte);
    assert!(matches!(read, Ok(0)), "closed, not timed out: {read:?}");
    assert!(dropped.elapsed() < Duration::from_secs(2));
}

#[test]
#[allow(clippy::disallowed_methods)] // times real servers
fn broken_responses_surface_as_client_errors() {
    let dir = TestDir::new("broken");
    let pki = TestPki::generate(dir.path());
    let server = start(&pki, ServerCert::Good);

    server.set_fault(Fault::ResetConnection);
    let output = curl(&pki, &[&server.url("/")]);
    assert_eq!(exit_code(&output), CURL_RECV_ERROR, "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("reset by peer"),
        "{output:?}"
    );

    server.set_fault(Fault::CloseMidResponse);
    let output = curl(&pki, &[&server.url("/")]);
    let code = exit_code(&output);
    assert!(
        code == CURL_PARTIAL_FILE || code == CURL_RECV_ERROR || code == CURL_SSL_CONNECT_ERROR,
        "{output:?}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("{\"result\""));

    server.set_fault(Fault::Drip {
        byte_every: Duration::from_millis(10),
    });
    let started = Instant::now();
    let value = body_json(&curl(&pki, &[&server.url("/drip")]));
    assert_eq!(value["path"], "/drip");
    // The head alone is over 60 bytes.
    assert!(started.elapsed() >= Duration::from_millis(600));
    let output = curl(&pki, &["--max-time", "1", &server.url("/drip")]);
    assert_eq!(exit_code(&output), CURL_OPERATION_TIMEDOUT, "{output:?}");
    assert_eq!(server.request_count(), 4);
}

#[test]
fn refusing_port_refuses() {
    let output = Command::new("curl")
        .args(["--silent", "--noproxy", "*", "--max-time", "5"])
        .arg(format!("https://127.0.0.1:{}/", refusing_port()))
        .output()
        .expect("run curl");
    assert_eq!(exit_code(&output), CURL_COULDNT_CONNECT, "{output:?}");
}

#[test]
fn connect_proxy_tunnels_to_the_server() {
    let dir = TestDir::new("proxy");
    let pki = TestPki::generate(dir.path());
    let server = start(&pki, ServerCert::Good);
    let proxy = ConnectProxy::start();

    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--proxytunnel", "--proxy"])
        .arg(proxy.url())
        .arg("--cacert")
        .arg(pki.ca_pem_path())
        .arg(server.url("/via-proxy"))
        .output()
        .expect("run curl");
    let value = body_json(&output);
    assert_eq!(value["path"], "/via-proxy");
    assert_eq!(proxy.connect_count(), 1);
    assert_eq!(
        proxy.targets(),
        vec![format!("localhost:{}", server.port())]
    );
    assert_eq!(server.request_count(), 1);

    // Plain HTTP through the proxy (a GET with an absolute URL) is refused.
    let output = Command::new("curl")
        .args([
            "--silent",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--proxy",
        ])
        .arg(proxy.url())
        .arg(format!("http://127.0.0.1:{}/", server.port()))
        .output()
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "405");
    assert_eq!(proxy.connect_count(), 1);
}

// ---- libpam harness ----

fn lone(dir: &TestDir, name: &str, line: &str) -> PamService {
    PamService::with_text(dir.path(), name, &format!("{line}\n"))
}

#[test]
fn pam_permit_and_deny() {
    let dir = TestDir::new("pam-basic");
    let permit = lone(&dir, "permit", "auth required pam_permit.so");
    let outcome = pam::authenticate(&permit, &Login::new("alice").rhost("10.1.2.3"));
    assert_eq!(outcome.code, pam::PAM_SUCCESS, "{outcome:?}");
    assert_eq!(outcome.code_name, "PAM_SUCCESS");
    assert_eq!(outcome.setcred_code, Some(pam::PAM_SUCCESS));

    let deny = lone(&dir, "deny", "auth required pam_deny.so");
    let outcome = pam::authenticate(&deny, &Login::new("alice"));
    assert_eq!(outcome.code, pam::PAM_AUTH_ERR, "{outcome:?}");
    assert_eq!(outcome.setcred_code, None);

    // A module that cannot be loaded (bad path, missing symbol) surfaces as PAM_MODULE_UNKNOWN.
    let missing = lone(&dir, "missing", "auth required /nonexistent/pam_nothing.so");
    let outcome = pam::authenticate(&missing, &Login::new("alice"));
    assert_eq!(outcome.code, pam::PAM_MODULE_UNKNOWN, "{outcome:?}");
}

/// How libpam turns a lone `auth required` module's return code into what
/// `pam_authenticate` returns. Every code passes through unchanged except `PAM_IGNORE`.
#[test]
fn pam_lone_module_codes() {
    let dir = TestDir::new("pam-codes");
    let cases = [
        ("success", pam::PAM_SUCCESS),
        ("auth_err", pam::PAM_AUTH_ERR),
        ("authinfo_unavail", pam::PAM_AUTHINFO_UNAVAIL),
        ("service_err", pam::PAM_SERVICE_ERR),
        ("system_err", pam::PAM_SYSTEM_ERR),
        ("maxtries", pam::PAM_MAXTRIES),
        ("abort", pam::PAM_ABORT),
        ("perm_denied", pam::PAM_PERM_DENIED),
        ("user_unknown", pam::PAM_USER_UNKNOWN),
        ("conv_err", pam::PAM_CONV_ERR),
        ("ignore", pam::PAM_PERM_DENIED),
    ];
    let mut report = Vec::new();
    for (value, expected) in cases {
        let service = lone(
            &dir,
            &format!("debug_{value}"),
            &format!("auth required pam_debug.so auth={value} cred=success"),
        );
        let outcome = pam::authenticate(&service, &Login::new("alice"));
        report.push(format!("auth={value} -> {}", outcome.code_name));
        assert_eq!(outcome.code, expected, "auth={value}: {outcome:?}");
    }
    eprintln!("{}", report.join("\n"));

    // PAM_IGNORE next to a module that decides lets that module's code through.
    let service = PamService::with_text(
        dir.path(),
        "ignore_then_permit",
        "auth required pam_debug.so auth=ignore\nauth required pam_permit.so\n",
    );
    assert_eq!(
        pam::authenticate(&service, &Login::new("alice")).code,
        pam::PAM_SUCCESS
    );
    let service = PamService::with_text(
        dir.path(),
        "ignore_then_deny",
        "auth required pam_debug.so auth=ignore\nauth required pam_deny.so\n",
    );
    assert_eq!(
        pam::authenticate(&service, &Login::new("alice")).code,
        pam::PAM_AUTH_ERR
    );
}

#[test]
fn pam_messages_reach_the_transcript() {
    let dir = TestDir::new("pam-echo");
    let service = PamService::with_text(
        dir.path(),
        "echo",
        "auth optional pam_echo.so Change ticket required for %u\nauth required pam_permit.so\n",
    );
    let outcome = pam::authenticate(&service, &Login::new("alice"));
    assert_eq!(outcome.code, pam::PAM_SUCCESS, "{outcome:?}");
    assert_eq!(outcome.infos(), vec!["Change ticket required for alice"]);
    assert!(outcome.prompts().is_empty());
    assert!(outcome.errors().is_empty());
}

#[test]
fn pam_prompts_get_scripted_answers() {
    let dir = TestDir::new("pam-prompt");
    // pam_exec with expose_authtok asks for the password and pipes it to the command; the
    // script argument has spaces, so this also checks the bracket quoting of module_line.
    let args = vec![
        "expose_authtok".to_string(),
        "quiet".to_string(),
        "/bin/sh".to_string(),
        "-c".to_string(),
        "read -r p; test \"$p\" = 'open [sesame]'".to_string(),
    ];
    let service = PamService::new(
        dir.path(),
        "exec",
        &pam::system_module("pam_exec.so"),
        &args,
    );
    let text = std::fs::read_to_string(service.path()).expect("service file");
    assert!(
        text.contains("[read -r p; test \"$p\" = 'open [sesame\\]']"),
        "{text}"
    );

    let outcome = pam::authenticate(&service, &Login::new("alice").answer("open [sesame]"));
    assert_eq!(outcome.code, pam::PAM_SUCCESS, "{outcome:?}");
    assert_eq!(
        outcome.events,
        vec![Event::Prompt {
            echo: false,
            text: "Password: ".to_string()
        }]
    );

    let outcome = pam::authenticate(&service, &Login::new("alice").answer("wrong"));
    // pam_exec reports a failing command as a system error.
    assert_eq!(outcome.code, pam::PAM_SYSTEM_ERR, "{outcome:?}");

    let outcome = pam::authenticate(&service, &Login::new("alice").hang_up());
    assert_eq!(outcome.code, pam::PAM_CONV_ERR, "{outcome:?}");
    assert_eq!(outcome.unanswered, 0);

    let outcome = pam::authenticate(&service, &Login::new("alice"));
    assert_eq!(outcome.unanswered, 1);
    assert_ne!(outcome.code, pam::PAM_SUCCESS);
}

#[test]
fn pam_env_is_collected_after_setcred() {
    let dir = TestDir::new("pam-env");
    let conf = dir.join("env.conf");
    std::fs::write(&conf, "PAM_TICKET_SELFTEST DEFAULT=hello\n").expect("write env conf");
    let service = PamService::with_text(
        dir.path(),
        "env",
        &format!(
            "auth required pam_permit.so\nauth optional pam_env.so readenv=0 user_readenv=0 conffile={}\n",
            conf.display()
        ),
    );
    let full = pam::run(
        &service,
        &Login::new("alice"),
        Steps {
            acct_mgmt: false,
            open_session: false,
            tty_ssh: true,
            close_session_after: None,
        },
    );
    assert_eq!(full.auth.code, pam::PAM_SUCCESS, "{:?}", full.auth);
    assert_eq!(
        full.auth.env.get("PAM_TICKET_SELFTEST").map(String::as_str),
        Some("hello"),
        "{:?}",
        full.auth
    );
}

/// The hostile server's misbehaviours do what their names say, seen by curl: the TLS
/// failures fail curl's handshake, the framing faults break curl's reading, the legal
/// interim answers do not, and the compressed bombs really inflate to 64 times the
/// module's body limit for a client that decompresses (`--compressed`).
#[test]
fn hostile_misbehaviours_do_what_their_names_say() {
    use support::hostile::{BOMB_INFLATED_BYTES, HostileServer, Misbehaviour as M};
    const CURL_WEIRD_SERVER_REPLY: i32 = 8;
    const CURL_UNSUPPORTED_PROTOCOL_OR_HTTP: [i32; 2] = [1, 8];
    let dir = TestDir::new("selftest-hostile");
    let pki = TestPki::generate(&dir.join("pki"));
    let fetch = |misbehaviour: M, extra: &[&str]| {
        let server = HostileServer::start(&pki, Arc::new(Echo), |_| true, misbehaviour.clone());
        let url = format!("{}/probe", server.base_url());
        let mut args = vec!["--max-time", "5"];
        args.extend_from_slice(extra);
        args.push(&url);
        let output = curl(&pki, &args);
        (output, server.requests().len())
    };

    for misbehaviour in [M::PlainHttp, M::Garbage, M::OldTlsOnly, M::TlsAlert] {
        let (output, requests) = fetch(misbehaviour.clone(), &[]);
        let code = exit_code(&output);
        assert!(
            code == CURL_SSL_CONNECT_ERROR || CURL_UNSUPPORTED_PROTOCOL_OR_HTTP.contains(&code),
            "{misbehaviour:?}: curl exit {code}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(requests, 0, "{misbehaviour:?}");
    }
    let (output, _) = fetch(M::ResetOnAccept, &[]);
    assert_eq!(
        exit_code(&output),
        CURL_SSL_CONNECT_ERROR,
        "reset on accept"
    );

    // curl believes the larger Content-Length and waits for bytes that never come.
    let (output, _) = fetch(M::DuplicateContentLength, &["--max-time", "1"]);
    assert!(
        [CURL_WEIRD_SERVER_REPLY, CURL_OPERATION_TIMEDOUT].contains(&exit_code(&output)),
        "duplicate Content-Length: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (output, _) = fetch(M::TruncatedBody, &[]);
    assert_eq!(exit_code(&output), CURL_PARTIAL_FILE, "truncated body");
    let (output, _) = fetch(M::ResetMidBody, &[]);
    assert!(
        [CURL_PARTIAL_FILE, CURL_RECV_ERROR].contains(&exit_code(&output)),
        "reset mid-body: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (output, _) = fetch(M::HangAfterHeaders, &["--max-time", "1"]);
    assert_eq!(
        exit_code(&output),
        CURL_OPERATION_TIMEDOUT,
        "hang after headers"
    );

    // Legal: interim answers are skipped and the real answer comes through.
    let (output, requests) = fetch(M::InterimResponsesThenAnswer, &[]);
    assert_eq!(body_json(&output)["path"], "/probe");
    assert_eq!(requests, 1);

    for (misbehaviour, encoding) in [(M::GzipBomb, "gzip"), (M::DeflateBomb, "deflate")] {
        let (raw, _) = fetch(misbehaviour.clone(), &[]);
        assert!(raw.status.success(), "{encoding}: {raw:?}");
        assert!(
            raw.stdout.len() < support::hostile::MODULE_BODY_LIMIT / 2,
            "{encoding}"
        );
        let (inflated, _) = fetch(misbehaviour, &["--compressed"]);
        assert!(
            inflated.status.success(),
            "{encoding}: {:?}",
            inflated.status
        );
        assert_eq!(inflated.stdout.len(), BOMB_INFLATED_BYTES, "{encoding}");
        assert!(
            inflated.stdout.iter().all(|&byte| byte == b' '),
            "{encoding}"
        );
    }
}
