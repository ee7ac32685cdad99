//! Secrets are wiped before their memory is given back: a global allocator looks into
//! every block as it is freed (or left behind by a growing buffer) and counts the blocks
//! that still hold a marker. Each scenario builds what the module builds around a password
//! or a token (the secret itself, the Basic header, the Remedy form body, the portal
//! logon body, a response body as the transport reads it and the response that carries
//! it, the Remedy log-on answer and token cache, the portal logon answer, an account
//! file), drops it, and expects no block with the marker.
//!
//! One test function runs the scenarios in order, so that no other test of this binary
//! frees a marker meanwhile. Copies that ureq and rustls make while sending cannot be
//! wiped (README, "What cannot be wiped"); no request is sent here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::time::Duration;

use pam_ticket::backend::{portal, remedy, servicenow};
use pam_ticket::config::{
    AuthMethod, Credentials, Origin, read_account_file, read_service_now_account,
};
use pam_ticket::http::{HttpResponse, encode_form, encode_json, read_wiped_body};
use pam_ticket::secret::Secret;
use serde_json::json;

/// A password made only of characters percent-encoding keeps, so it is the same in a form.
const MARKER: &str = "Zq7Wipe-Me-Marker-2a61b9d04f";

/// The first bytes of the marker: long enough to be found nowhere else, short enough that
/// the partial copy a growing buffer leaves behind (capacity 8, 16 …) still holds them.
const MARKER_START: &[u8] = b"Zq7Wipe";

static NEEDLE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static NEEDLE_LENGTH: AtomicUsize = AtomicUsize::new(0);
static FOUND: AtomicUsize = AtomicUsize::new(0);

/// Hands out zeroed blocks (so that every byte of a block is initialised when it is looked
/// at) and looks for the needle in each block it takes back.
struct Inspecting;

// SAFETY: every call is passed on to the system allocator with the same arguments; the
// only addition reads a block that is still allocated and fully initialised.
unsafe impl GlobalAlloc for Inspecting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `alloc_zeroed` shares.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let length = NEEDLE_LENGTH.load(Ordering::SeqCst);
        let needle = NEEDLE.load(Ordering::SeqCst);
        if length > 0 && !needle.is_null() && layout.size() >= length {
            // SAFETY: `block` is a live allocation of `layout.size()` bytes, zeroed when it
            // was allocated and written only through safe code since; the needle is a
            // 'static byte string.
            let (bytes, wanted) = unsafe {
                (
                    std::slice::from_raw_parts(block, layout.size()),
                    std::slice::from_raw_parts(needle, length),
                )
            };
            if bytes.windows(length).any(|window| window == wanted) {
                FOUND.fetch_add(1, Ordering::SeqCst);
            }
        }
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(block, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Inspecting = Inspecting;

/// Runs `scenario` with the allocator watching for `needle`; returns the blocks that were
/// freed while still holding it.
fn freed_with(needle: &'static [u8], scenario: impl FnOnce()) -> usize {
    FOUND.store(0, Ordering::SeqCst);
    NEEDLE.store(needle.as_ptr().cast_mut(), Ordering::SeqCst);
    NEEDLE_LENGTH.store(needle.len(), Ordering::SeqCst);
    scenario();
    NEEDLE_LENGTH.store(0, Ordering::SeqCst);
    FOUND.load(Ordering::SeqCst)
}

fn credentials() -> Credentials {
    Credentials {
        username: "svc_pam_ticket".to_string(),
        password: Secret::from_string(MARKER.to_string()),
        source: PathBuf::from("/etc/security/pam_ticket.account"),
    }
}

#[test]
fn secrets_are_wiped_before_their_memory_is_freed() {
    let start = MARKER_START;

    // The detector works: a plain buffer and a growing one are both caught.
    assert_eq!(freed_with(start, || drop(MARKER.as_bytes().to_vec())), 1);
    let grown = freed_with(start, || {
        let mut text = String::new();
        for c in MARKER.chars() {
            text.push(c);
        }
        drop(Secret::from_string(text));
    });
    assert!(
        grown > 0,
        "a buffer that grew left its first allocation behind"
    );

    assert_eq!(
        freed_with(start, || drop(Secret::new(MARKER.as_bytes().to_vec()))),
        0,
        "Secret"
    );
    assert_eq!(
        freed_with(start, || drop(Secret::from_string(MARKER.to_string()))),
        0,
        "Secret::from_string"
    );

    // ServiceNow's Basic header: the raw user:password and the base64 text.
    let account = credentials();
    // The base64 text alone: a copy of it without the "Basic " in front is a leak too.
    let header = servicenow::basic_authorization(&account).to_string();
    let encoded = header.strip_prefix("Basic ").expect("a Basic header");
    let header: &'static [u8] = encoded.as_bytes().to_vec().leak();
    assert_eq!(
        freed_with(header, || drop(servicenow::basic_authorization(&account))),
        0,
        "Basic header"
    );
    assert_eq!(
        freed_with(start, || drop(servicenow::basic_authorization(&account))),
        0,
        "user:password before base64"
    );
    drop(account);

    // Remedy's log-on form.
    assert_eq!(
        freed_with(start, || {
            drop(encode_form(&[
                ("username", "svc_pam_ticket"),
                ("password", MARKER),
            ]))
        }),
        0,
        "form body"
    );

    // The portal's logon body, and the JSON value it is made from.
    assert_eq!(
        freed_with(start, || {
            let mut body = json!({"username": "gw", "password": MARKER, "concurrentSession": true});
            drop(encode_json(&body));
            pam_ticket::json::wipe_strings(&mut body);
        }),
        0,
        "JSON body"
    );

    // A response body as the transport reads it: the marker arrives in the first bytes of
    // a chunked answer (no Content-Length) that is long enough to outgrow the first buffer
    // twice, in pieces the size of TLS records. Every buffer left behind must be wiped.
    let chunked: &'static [u8] = format!("\"{MARKER}\"{}", " ".repeat(40_000))
        .into_bytes()
        .leak();
    assert_eq!(
        freed_with(start, || {
            let mut reader = Pieces {
                bytes: chunked,
                piece: 1400,
            };
            let body = read_wiped_body(&mut reader, None, 1 << 20).expect("read");
            assert_eq!(body.as_slice(), chunked);
        }),
        0,
        "response body read in pieces"
    );
    // The same with the length announced: one buffer of exactly that size.
    assert_eq!(
        freed_with(start, || {
            let mut reader = Pieces {
                bytes: chunked,
                piece: 1400,
            };
            let body =
                read_wiped_body(&mut reader, Some(chunked.len() as u64), 1 << 20).expect("read");
            assert_eq!(body.capacity(), chunked.len());
        }),
        0,
        "response body of an announced length"
    );

    // A response that is dropped unread (a log-on answer nobody took the token from).
    let unread = HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: MARKER.as_bytes().to_vec().into(),
    };
    assert_eq!(freed_with(start, || drop(unread)), 0, "response dropped");

    // Answers that carry a token: Remedy's log-on, the portal's logon.
    let answer = |body: &str| HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: body.as_bytes().to_vec().into(),
    };
    let remedy_answer = answer(MARKER);
    assert_eq!(
        freed_with(start, || drop(remedy::read_token(remedy_answer))),
        0,
        "Remedy log-on answer"
    );
    let portal_answer = answer(&format!("\"{MARKER}\""));
    assert_eq!(
        freed_with(start, || drop(portal::interpret_logon(portal_answer))),
        0,
        "portal logon answer"
    );

    // The Remedy token cache, written and read back.
    let directory = std::env::temp_dir().join(format!("pam_ticket-wipe-{}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(&directory).expect("a scratch directory");
    let cache = pam_ticket::token_cache::TokenCache::new(
        directory.join("cache"),
        pam_ticket::token_cache::TokenKind::RemedyJwt,
        "https://remedy.example.com",
        "svc_pam_ticket",
        Duration::from_secs(3300),
    );
    cache.prepare_directory().expect("a cache directory");
    let token = Secret::from_string(MARKER.to_string());
    assert_eq!(
        freed_with(start, || {
            cache.write(&token, 1).expect("written");
            let cached = cache.read().map_err(|miss| format!("{miss:?}"));
            assert_eq!(
                cached
                    .as_ref()
                    .ok()
                    .and_then(|cached| cached.token.as_str()),
                Some(MARKER)
            );
        }),
        0,
        "token cache"
    );
    drop(token);

    // An account file, read and parsed as the module does.
    let path = directory.join("account");
    fs::write(
        &path,
        format!("Username=\"svc_pam_ticket\"\nPassword=\"{MARKER}\"\n"),
    )
    .expect("an account file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    let origin = Origin::Whole { path: path.clone() };
    assert_eq!(
        freed_with(start, || {
            let read = read_account_file(&path, &origin).map_err(|error| error.to_string());
            assert_eq!(
                read.as_ref()
                    .ok()
                    .and_then(|account| account.password.as_str()),
                Some(MARKER)
            );
        }),
        0,
        "account file"
    );

    // A ServiceNow OAuth account file: the client secret is wiped as the password is,
    // read or refused (a ClientSecret where the method sends none).
    fs::write(
        &path,
        format!("ClientID=\"cid\"\nClientSecret=\"{MARKER}\"\n"),
    )
    .expect("an account file");
    assert_eq!(
        freed_with(start, || {
            let read = read_service_now_account(&path, &origin, AuthMethod::OAuthClientCredentials)
                .map_err(|error| error.to_string());
            assert_eq!(
                read.as_ref()
                    .ok()
                    .and_then(|account| account.client.as_ref())
                    .and_then(|client| client.client_secret.as_str()),
                Some(MARKER)
            );
            assert!(read_service_now_account(&path, &origin, AuthMethod::Basic).is_err());
        }),
        0,
        "OAuth account file"
    );

    // Account files the module refuses: the password read before the problem is wiped too.
    for text in [
        format!("Password=\"{MARKER}\"\nnot a Key=Value line\n"),
        format!("Password=\"{MARKER}\"\nUsername=\"a\"\nUsername=\"b\"\n"),
        format!("Username=\"svc\"\nPassword=\"{MARKER}\"\nColour=\"blue\"\n"),
        format!("Username=\"svc\"\nPassword=\"{MARKER}"),
    ] {
        fs::write(&path, &text).expect("an account file");
        drop(text);
        assert_eq!(
            freed_with(start, || {
                assert!(read_account_file(&path, &origin).is_err());
            }),
            0,
            "refused account file"
        );
    }
    let _ = fs::remove_dir_all(&directory);
}

/// A reader that hands out its bytes a piece at a time, as a TLS stream does.
struct Pieces {
    bytes: &'static [u8],
    piece: usize,
}

impl Read for Pieces {
    fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
        let length = self.piece.min(into.len()).min(self.bytes.len());
        into[..length].copy_from_slice(&self.bytes[..length]);
        self.bytes = &self.bytes[length..];
        Ok(length)
    }
}
