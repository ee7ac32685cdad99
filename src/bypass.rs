//! Failsafe bypass codes, stored only as salted SHA-256 hashes
//! (`sha256:<salt-hex>:<hex of sha256(salt bytes ‖ code)>`) and compared in constant time.

use sha2::{Digest, Sha256};

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

/// The entry number of the hash that `code` matches. Every hash is computed and compared,
/// whether or not an earlier one matched, so timing says nothing about which or whether.
pub fn find_match(hashes: &[BypassHash], code: &[u8]) -> Option<usize> {
    let mut matched = None;
    for hash in hashes {
        if hash.matches(code) && matched.is_none() {
            matched = Some(hash.entry);
        }
    }
    matched
}

fn digest(salt: &[u8], code: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(code);
    hasher.finalize().into()
}

fn constant_time_eq(left: &[u8; 32], right: &[u8; 32]) -> bool {
    let difference = left
        .iter()
        .zip(right.iter())
        .fold(0u8, |accumulated, (a, b)| accumulated | (a ^ b));
    // black_box keeps the compiler from turning the fold into an early-exit comparison.
    std::hint::black_box(difference) == 0
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
