//! A byte buffer for passwords, tokens and bypass codes that is wiped when dropped and
//! never printed by `Debug`.

use std::fmt;

/// Secret bytes: zeroed on drop, masked in `Debug`, never `Display`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn from_string(text: String) -> Secret {
        Secret(text.into_bytes())
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
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Overwrites a buffer with zeros in a way the optimiser may not remove.
pub fn wipe(buffer: &mut [u8]) {
    for byte in buffer.iter_mut() {
        // SAFETY: `byte` is a valid, aligned, exclusive reference into the slice.
        unsafe { std::ptr::write_volatile(byte, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Wipes a `String`'s bytes in place and empties it.
pub fn wipe_string(text: &mut String) {
    // SAFETY: writing zeros keeps the buffer valid UTF-8 (NUL is a valid code point).
    wipe(unsafe { text.as_bytes_mut() });
    text.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::from_string("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn wipe_string_zeroes_and_clears() {
        let mut text = "topsecret".to_string();
        wipe_string(&mut text);
        assert!(text.is_empty());
    }
}
