//! Failsafe bypass codes, stored only as salted SHA-256 hashes
//! (`sha256:<salt-hex>:<hex of sha256(salt bytes ‖ code)>`) and compared in constant time.
//! Codes are compared without regard to case, dashes or white space (see [`normalise`]).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The longest bypass code `pam-ticket hash-code` reads.
pub const MAX_CODE_BYTES: usize = 1024;

/// One configured bypass code hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BypassHash {
    /// 1-based position in FailsafeBypassCode, so the audit can say which entry matched.
    pub entry: usize,
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl BypassHash {
    /// Parses one list entry. The error never repeats the entry itself: a plain-text entry
    /// is a live bypass code and must not end up in a log.
    pub fn parse(text: &str, entry: usize) -> Result<BypassHash, String> {
        let how_to = "store it as sha256:<salt-hex>:<hex of sha256(salt bytes followed by the code)>; \
                      `pam-ticket hash-code` prints such a line";
        let mut parts = text.split(':');
        let (Some("sha256"), Some(salt_hex), Some(digest_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "FailsafeBypassCode entry {entry} is not a hash; {how_to}"
            ));
        };
        let salt = decode_hex(salt_hex)
            .filter(|salt| !salt.is_empty())
            .ok_or_else(|| format!("FailsafeBypassCode entry {entry} has a bad salt; {how_to}"))?;
        let digest: [u8; 32] = decode_hex(digest_hex)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                format!(
                    "FailsafeBypassCode entry {entry} has a bad digest (64 hex digits); {how_to}"
                )
            })?;
        Ok(BypassHash {
            entry,
            salt,
            digest,
        })
    }

    /// Builds the hash of `code` with `salt`, as `pam-ticket hash-code` does.
    pub fn create(code: &[u8], salt: &[u8]) -> String {
        format!(
            "sha256:{}:{}",
            encode_hex(salt),
            encode_hex(&digest(salt, code))
        )
    }

    fn matches(&self, code: &[u8]) -> bool {
        constant_time_eq(&digest(&self.salt, code), &self.digest)
    }
}

/// A code as it is hashed and compared: without `-` and white space, in upper case, so
/// that `K7QX-M2ZD-…` (as `hash-code --generate` prints it), `k7qx m2zd …` and `K7QXM2ZD…`
/// are one code. Sized up front and wiped when dropped.
pub fn normalise(code: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut normalised = Zeroizing::new(Vec::with_capacity(code.len()));
    for byte in code {
        if *byte != b'-' && !byte.is_ascii_whitespace() {
            normalised.push(byte.to_ascii_uppercase());
        }
    }
    normalised
}

/// The entry number of the hash that `code` matches, as typed or [`normalise`]d: a hash
/// made by `pam-ticket hash-code` (of the normalised code) matches however the code is
/// grouped or cased, and a hash made of a code as it was typed, before codes were
/// normalised, still matches that code typed the same way. Every hash is computed and
/// compared both ways, whether or not an earlier one matched, so timing says nothing about
/// which or whether.
pub fn find_match(hashes: &[BypassHash], code: &[u8]) -> Option<usize> {
    let normalised = normalise(code);
    let mut matched = None;
    for hash in hashes {
        let as_typed = hash.matches(code);
        // Nothing but dashes and spaces normalises to nothing, which names no code.
        let as_normalised = hash.matches(&normalised) && !normalised.is_empty();
        if (as_typed | as_normalised) && matched.is_none() {
            matched = Some(hash.entry);
        }
    }
    matched
}

fn digest(salt: &[u8], code: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(code);
    let digest = hasher.finalize_reset();
    // The hasher keeps the last partial block of its input (up to 63 bytes: the end of the
    // code) in a buffer that neither finalising nor resetting clears, and sha2 0.10 has no
    // zeroize support. 63 bytes hashed after the reset land in that buffer, over it;
    // black_box keeps the compiler from dropping writes to a value about to go away.
    hasher.update([0u8; 63]);
    std::hint::black_box(&hasher);
    digest.into()
}

/// subtle's comparison: every byte is looked at, whatever the first difference, and the
/// result is kept opaque to the optimiser until it becomes a bool.
fn constant_time_eq(left: &[u8; 32], right: &[u8; 32]) -> bool {
    left.ct_eq(right).into()
}

pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|start| u8::from_str_radix(&text[start..start + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_hash_matches_its_code_only() {
        let line = BypassHash::create(b"break-glass-42", b"\x01\x02\x03\x04");
        let hash = BypassHash::parse(&line, 1).expect("valid");
        assert_eq!(
            find_match(std::slice::from_ref(&hash), b"break-glass-42"),
            Some(1)
        );
        assert_eq!(
            find_match(std::slice::from_ref(&hash), b"break-glass-43"),
            None
        );
    }

    #[test]
    fn known_vector() {
        // Computed independently with: printf 'saltcode' | sha256sum
        let line =
            "sha256:73616c74:9de3ee6e9ddd58f23a712280d64c4944f121e20034597e9b607e15efca6bab66";
        assert_eq!(BypassHash::create(b"code", b"salt"), line);
        let hash = BypassHash::parse(line, 1).expect("valid");
        assert_eq!(find_match(&[hash], b"code"), Some(1));
    }

    #[test]
    fn second_entry_is_reported() {
        let hashes = vec![
            BypassHash::parse(&BypassHash::create(b"one", b"s1"), 1).expect("valid"),
            BypassHash::parse(&BypassHash::create(b"two", b"s2"), 2).expect("valid"),
        ];
        assert_eq!(find_match(&hashes, b"two"), Some(2));
    }

    #[test]
    fn codes_match_whatever_their_case_dashes_and_spaces() {
        let normalised = normalise(b"k7qx-m2zd pq4r");
        assert_eq!(normalised.as_slice(), b"K7QXM2ZDPQ4R");
        let new = BypassHash::parse(&BypassHash::create(&normalised, b"salt"), 1).expect("valid");
        for typed in [
            &b"K7QX-M2ZD-PQ4R"[..],
            b"k7qx-m2zd-pq4r",
            b"K7QXM2ZDPQ4R",
            b"k7qx m2zd pq4r",
        ] {
            assert_eq!(
                find_match(std::slice::from_ref(&new), typed),
                Some(1),
                "{typed:?}"
            );
        }
        assert_eq!(
            find_match(std::slice::from_ref(&new), b"K7QX-M2ZD-PQ4S"),
            None
        );
        // A hash made of the code as typed, before codes were normalised: that spelling
        // still matches.
        let old =
            BypassHash::parse(&BypassHash::create(b"break-Glass-42", b"salt"), 1).expect("valid");
        assert_eq!(
            find_match(std::slice::from_ref(&old), b"break-Glass-42"),
            Some(1)
        );
        assert_eq!(find_match(&[old], b"---"), None);
    }

    #[test]
    fn malformed_entries_are_refused_without_echo() {
        for bad in [
            "letmein",
            "sha256::00",
            "sha256:zz:00",
            "sha256:00:abcd",
            "md5:00:00",
        ] {
            let problem = BypassHash::parse(bad, 3).expect_err(bad);
            assert!(problem.contains("entry 3"), "{problem}");
            assert!(!problem.contains(bad) || bad.len() < 3, "{problem}");
        }
    }
}
