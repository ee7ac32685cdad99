//! The Remedy token cache reader: `token_cache::TokenCache::parse`, the check of a
//! cache file's bytes that `TokenCache::read` runs after its owner, mode and size checks.
//!
//! Input: the cache file's bytes. The cache is the one for
//! `https://remedy.example.com` and account `svc_pam`. Invariants: no panic; a token is
//! accepted only from a file that starts with the cache's magic line, this SystemURL and
//! this account, and is 1 to 8192 printable ASCII bytes; the freshness check never
//! overflows and never calls a time in the future fresh.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pam_ticket::token_cache::{TokenCache, TokenKind};

const PREFIX: &[u8] =
    b"pam_ticket remedy token cache 1\nsystem_url=https://remedy.example.com\nusername=svc_pam\nobtained=";

fn cache() -> &'static TokenCache {
    static CACHE: OnceLock<TokenCache> = OnceLock::new();
    CACHE.get_or_init(|| {
        TokenCache::new(
            PathBuf::from("/run/pam_ticket"),
            TokenKind::RemedyJwt,
            "https://remedy.example.com",
            "svc_pam",
            Duration::from_secs(3300),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let cache = cache();
    let Some(cached) = cache.parse(data) else {
        return;
    };
    assert!(
        data.starts_with(PREFIX),
        "a token from another cache's file"
    );
    let token = cached.token.as_bytes();
    assert!(!token.is_empty() && token.len() <= 8192);
    assert!(token.iter().all(u8::is_ascii_graphic));
    for now in [
        0,
        cached.obtained,
        cached.obtained.saturating_add(3299),
        u64::MAX,
    ] {
        if cache.is_fresh(cached.obtained, now) {
            assert!(
                cached.obtained <= now.saturating_add(60),
                "a token from the future counts as fresh"
            );
            assert!(now.saturating_sub(cached.obtained) < 3300);
        }
    }
});
