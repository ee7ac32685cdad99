//! A byte buffer for passwords, tokens, bypass codes and retrieved passwords: wiped by the
//! `zeroize` crate when dropped, and never printed by `Debug`.
//!
//! Wiping covers the buffer a value ends up in. Every buffer that grows while a secret is
//! written into it leaves the old allocation behind unwiped, so buffers for secrets are
//! sized before the secret goes in ([`Secret::with_capacity`], [`SecretText`]).

use std::fmt;
use std::io::{self, Read};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Secret bytes: zeroed on drop, masked in `Debug`, never `Display`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes over `bytes` (no copy is made).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// Takes over a buffer that is already wiped on drop (no copy is made).
    pub fn from_wiped(bytes: Zeroizing<Vec<u8>>) -> Secret {
        Secret(bytes)
    }

    /// Takes over the text's buffer (no copy is made).
    pub fn from_string(text: String) -> Secret {
        Secret::new(text.into_bytes())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads at most `limit` bytes into a buffer allocated once, up front, for `limit`
    /// bytes: a buffer that grew while reading would leave copies behind unwiped.
    pub fn read_from(reader: &mut impl Read, limit: usize) -> io::Result<Secret> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(limit));
        reader
            .take(u64::try_from(limit).unwrap_or(u64::MAX))
            .read_to_end(&mut bytes)?;
        Ok(Secret(bytes))
    }
}

impl Zeroize for Secret {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// `Zeroizing` wipes its contents when dropped.
impl ZeroizeOnDrop for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Text that holds a secret (an Authorization header, a form body): wiped on drop.
pub type SecretText = Zeroizing<String>;

/// An empty [`SecretText`] with room for `capacity` bytes, so that filling it up to that
/// size never moves it (a move would leave the first buffer unwiped).
pub fn secret_text(capacity: usize) -> SecretText {
    Zeroizing::new(String::with_capacity(capacity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::from_string("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    fn assert_wiped_on_drop<T: ZeroizeOnDrop>() {}

    /// What `Drop` does (through `Zeroizing`), observed on the buffer itself: every byte
    /// of the allocation, spare capacity included, is zero afterwards. (After a real drop
    /// the memory is freed and may not be read; `tests/secret_wipe.rs` checks that case
    /// with an allocator that inspects each block as it is freed.)
    #[test]
    fn zeroize_clears_the_whole_allocation() {
        assert_wiped_on_drop::<Secret>();
        assert_wiped_on_drop::<SecretText>();
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(b"hunter2-hunter2");
        let mut secret = Secret::new(bytes);
        let pointer = secret.as_bytes().as_ptr();
        let capacity = secret.0.capacity();
        secret.zeroize();
        assert!(secret.is_empty());
        assert_eq!(secret.0.capacity(), capacity, "the allocation is kept");
        // SAFETY: `zeroize` clears the Vec but keeps its allocation (checked above), so
        // `pointer` still points at `capacity` initialised (zeroed) bytes owned by `secret`,
        // which is alive and not touched while the slice exists.
        let memory = unsafe { std::slice::from_raw_parts(pointer, capacity) };
        assert!(memory.iter().all(|byte| *byte == 0), "{memory:?}");
    }

    #[test]
    fn read_from_never_grows_its_buffer() {
        let file = b"pam_ticket remedy token cache 1\ntoken=abc\n";
        let secret = Secret::read_from(&mut &file[..], file.len()).expect("read");
        assert_eq!(secret.as_bytes(), file);
        assert_eq!(secret.0.capacity(), file.len());
        // A longer source is cut at the limit rather than growing the buffer.
        let secret = Secret::read_from(&mut &file[..], 10).expect("read");
        assert_eq!(secret.as_bytes(), &file[..10]);
        assert_eq!(secret.0.capacity(), 10);
    }

    #[test]
    fn secret_text_is_sized_up_front() {
        let mut text = secret_text(12);
        let before = text.as_ptr();
        text.push_str("Basic abcdef");
        assert_eq!(text.as_ptr(), before, "filled to capacity without moving");
    }
}
