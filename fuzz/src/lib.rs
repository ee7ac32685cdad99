//! What the fuzz targets share: the header line that response inputs start with, and the
//! invariants that hold for every error a backend returns.
//!
//! Every target calls the module's own parse functions (`pam_ticket::…`); nothing here
//! parses a configuration, an answer or a cache file itself.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use pam_ticket::backend::{BadAnswer, LookupError, Outage};
use pam_ticket::ticket::{TicketId, TicketKind};

/// Splits a response input into its header line (UTF-8, up to the first `\n`) and the
/// body (every byte after it, unchanged). Seeds look like
/// `200 incident INC0010001\n{"result":[…]}`.
pub fn split_header(data: &[u8]) -> Option<(&str, &[u8])> {
    let newline = data.iter().position(|byte| *byte == b'\n')?;
    let header = std::str::from_utf8(&data[..newline]).ok()?;
    Some((header, &data[newline + 1..]))
}

/// An HTTP status as the transport would hand it over (three digits, 100 to 999).
pub fn status(word: &str) -> Option<u16> {
    word.parse()
        .ok()
        .filter(|status| (100..=999).contains(status))
}

/// `incident INC0010001`, `change CHG0030001` (or another type's audit name, such as
/// `request_item`) from a header: the ticket asked for. The
/// ID must pass the charset and length rule that `TicketId::parse` applies before any
/// request is made, so only IDs a real lookup could ask for are used.
pub fn ticket_id(kind: &str, text: &str) -> Option<TicketId> {
    let kind = TicketKind::ORDER
        .into_iter()
        .find(|known| known.audit_name() == kind)?;
    let valid = !text.is_empty()
        && text.len() <= pam_ticket::ticket::MAX_ID_LENGTH
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    valid.then(|| TicketId {
        text: text.to_string(),
        kind,
    })
}

/// The body of an answer the module accepted, read again as JSON (a second, independent
/// reading to check what the module's parser concluded from it).
pub fn accepted_json(body: &[u8]) -> serde_json::Value {
    match serde_json::from_slice(body) {
        Ok(document) => document,
        Err(error) => panic!("an answer that is not JSON was accepted: {error}"),
    }
}

/// Text that the module shows or logs after `sanitise` must not carry a control character.
pub fn assert_shown_text(text: &str, what: &str) {
    assert!(
        !text.chars().any(char::is_control),
        "{what} carries a control character: {text:?}"
    );
}

/// Invariants of every backend error: the server's words in it are sanitised, and its
/// `Display` (what goes to syslog and the audit file) works. Variants that carry no
/// server text fall through the wildcard arms, so that a variant added later compiles.
pub fn check_lookup_error(error: &LookupError) {
    match error {
        LookupError::RefusedByPortal { code, message } => {
            if let Some(code) = code {
                assert_shown_text(code, "a portal error code");
            }
            assert_shown_text(message, "a portal refusal");
        }
        LookupError::NotCheckable { message } => assert_shown_text(message, "a message"),
        LookupError::UntrustedServer { detail } | LookupError::Misconfigured { detail } => {
            assert_shown_text(detail, "an error detail");
        }
        LookupError::Unavailable(outage) => {
            if let Outage::ServerError { detail, .. } = outage {
                assert_shown_text(detail, "an error detail");
            }
            assert_shown_text(&outage.to_string(), "an outage description");
        }
        LookupError::AccountRefused { detail, .. } => {
            assert_shown_text(detail, "an error detail");
        }
        LookupError::BadAnswer(bad) => {
            match bad {
                BadAnswer::BadResponse { detail } | BadAnswer::UnexpectedStatus { detail, .. } => {
                    assert_shown_text(detail, "an error detail");
                }
                _ => {}
            }
            assert_shown_text(&bad.to_string(), "a bad answer's description");
        }
        _ => {}
    }
}

/// Files the configuration parser reads while it builds a configuration (account files,
/// the CA bundle, PSM for SSH's basic_psmpserver.conf). The config target points every
/// path it finds at one of these, so that fuzzing never reads the machine's own files.
pub struct Fixtures {
    pub ca_bundle: PathBuf,
    /// A good account file, one without a password, one that others may read (refused).
    pub accounts: [PathBuf; 3],
    /// basic_psmpserver.conf with FetchCredentialsThroughPVWA Yes, No, and broken.
    pub psmp_configs: [PathBuf; 3],
}

/// A self-signed certificate: the CA bundle only has to hold one PEM certificate.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBkTCCATegAwIBAgIUB2khOD+xj+y9rJE7O9LUIHcbn7QwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwScGFtX3RpY2tldCBmdXp6IENBMCAXDTI2MTIwNTA3MjAyOVoY
DzIxMjYxMTExMDcyMDI5WjAdMRswGQYDVQQDDBJwYW1fdGlja2V0IGZ1enogQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQTxluWORov6mXUcX1RztIw/iN6IG/2
Tb2OUgGUvqW1yAiMW4Ev8cD6w0vim8xI7PTAWAkojaBcWVVLMi0jtRfqo1MwUTAd
BgNVHQ4EFgQUzzZn/YiEh4Vw7judqO7KASW1cIAwHwYDVR0jBBgwFoAUzzZn/YiE
h4Vw7judqO7KASW1cIAwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF
AiAfApfOc0aoX/oP5Ule5/tYkzQLWWQkDCA0kENky5fycgIhAMMF0BETUywADOs4
WIX5Ah+O44k0QWBuhK1c5y0ZUhJ+
-----END CERTIFICATE-----
";

/// The fixture files, written once per process into `$TMPDIR/pam_ticket_fuzz_fixtures`
/// (each through a private temporary name and a rename, so fuzzers running side by side
/// never see half a file). Their modes are the ones the module's checks expect.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let directory = std::env::temp_dir().join("pam_ticket_fuzz_fixtures");
        fs::create_dir_all(&directory).expect("create the fixture directory");
        let write = |name: &str, text: &str, mode: u32| {
            let path = directory.join(name);
            let temporary = directory.join(format!(".{name}.{}", std::process::id()));
            fs::write(&temporary, text).expect("write a fixture");
            fs::set_permissions(&temporary, fs::Permissions::from_mode(mode))
                .expect("chmod a fixture");
            fs::rename(&temporary, &path).expect("rename a fixture");
            path
        };
        Fixtures {
            ca_bundle: write("ca-bundle.crt", CA_PEM, 0o644),
            accounts: [
                write(
                    "account",
                    "Username=\"svc_pam\"\nPassword=\"s3cret\"\n",
                    0o600,
                ),
                write("account-no-password", "Username=\"svc_pam\"\n", 0o600),
                write(
                    "account-readable",
                    "Username=\"svc_pam\"\nPassword=\"s3cret\"\n",
                    0o644,
                ),
            ],
            psmp_configs: [
                write(
                    "basic_psmpserver-yes.conf",
                    "InstallationFolder=\"/opt/CARKpsmp\"\nFetchCredentialsThroughPVWA=\"Yes\"\n",
                    0o644,
                ),
                write(
                    "basic_psmpserver-no.conf",
                    "FetchCredentialsThroughPVWA=\"No\"\n",
                    0o644,
                ),
                write(
                    "basic_psmpserver-broken.conf",
                    "FetchCredentialsThroughPVWA=\"Yes\n",
                    0o644,
                ),
            ],
        }
    })
}
