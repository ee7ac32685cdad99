//! `pam-ticket hash-code`: turns a failsafe bypass code into the
//! `sha256:<salt-hex>:<hex>` line that FailsafeBypassCode holds, so that the code itself
//! is never stored on the gateway.

use std::io::{IsTerminal, Read, Write};

use super::args::{self, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parsed};
use crate::bypass::{self, BypassHash};
use zeroize::Zeroizing;

use crate::bypass::MAX_CODE_BYTES;
use crate::secret::Secret;

const HELP: &str = "usage: pam-ticket hash-code [--generate]

Prints the line to put in FailsafeBypassCode (several are separated by commas):
  sha256:<salt-hex>:<hex of sha256(salt bytes followed by the code)>
with a fresh random 16-byte salt from /dev/urandom.

Without --generate the code is read from standard input (the first line, at most 1024
bytes). On a terminal the code is not echoed.

What is hashed is the code without dashes and white space, in upper case, and the module
compares what a person types the same way: K7QX-M2ZD-..., k7qx m2zd ... and K7QXM2ZD...
are one code. (A hash made by an older version, of the code exactly as typed, still
matches that code typed the same way.)

  --generate   make a random code of 24 characters (about 120 bits) from /dev/urandom,
               print it once on standard output, grouped by four with dashes, then its
               hash line. Keep the code offline (e.g. sealed in a safe); it cannot be
               recovered from the hash.

The hash line is always the last line on standard output.
";

/// This command's exit statuses (it reads no configuration, so none is about one).
const EXIT_STATUS: &str = "exit status:
  0  the hash line was printed
  1  no hash: no code on standard input, a code longer than 1024 bytes or of nothing
     but dashes and spaces, or /dev/urandom could not be read
  2  usage error";

/// Letters and digits without look-alikes (0/O, 1/I/l): 32 symbols, so 5 random bits
/// pick one without bias.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Characters in a generated code (grouped by four with `-`).
const GENERATED_LENGTH: usize = 24;
/// Below this a code is easier to guess than a ticket ID is to find; warn.
const RECOMMENDED_LENGTH: usize = 20;
const SALT_LENGTH: usize = 16;

/// Runs the subcommand; returns the process exit code.
pub fn run(arguments: &[String]) -> i32 {
    let options = match args::parse(arguments, &[], &[], &["generate"]) {
        Ok(Parsed::Help) => {
            println!("{HELP}\n{EXIT_STATUS}");
            return EXIT_OK;
        }
        Ok(Parsed::Run(options)) => options,
        Err(problem) => {
            eprintln!("pam-ticket hash-code: {problem}\n\n{HELP}");
            return EXIT_USAGE;
        }
    };
    if !options.positional.is_empty() {
        // A code on the command line would sit in the shell history and in `ps`.
        eprintln!(
            "pam-ticket hash-code: the code is read from standard input, never from the command line"
        );
        return EXIT_USAGE;
    }
    let code = if options.switch("generate") {
        match generate_code() {
            Ok(code) => {
                // Printed once, here; nothing else keeps it.
                println!("bypass code: {}", String::from_utf8_lossy(code.as_bytes()));
                code
            }
            Err(problem) => {
                eprintln!("pam-ticket hash-code: {problem}");
                return EXIT_FAILED;
            }
        }
    } else {
        match read_code() {
            Ok(code) => code,
            Err(problem) => {
                eprintln!("pam-ticket hash-code: {problem}");
                return EXIT_FAILED;
            }
        }
    };
    // What is hashed, and what the module compares: the code without dashes and white
    // space, in upper case (bypass::normalise), so that it can be typed either way.
    let normalised = bypass::normalise(code.as_bytes());
    drop(code);
    if normalised.is_empty() {
        eprintln!("pam-ticket hash-code: the code holds nothing but dashes and spaces");
        return EXIT_FAILED;
    }
    if normalised.len() < RECOMMENDED_LENGTH {
        eprintln!(
            "pam-ticket hash-code: warning: this code has {} characters (not counting dashes and spaces); use at least {RECOMMENDED_LENGTH} (--generate makes one)",
            normalised.len()
        );
    }
    let salt = match args::random_bytes(SALT_LENGTH) {
        Ok(salt) => salt,
        Err(problem) => {
            eprintln!("pam-ticket hash-code: {problem}");
            return EXIT_FAILED;
        }
    };
    println!("{}", BypassHash::create(&normalised, &salt));
    EXIT_OK
}

/// A random code such as `K7QX-M2ZD-…`, 24 symbols from [`ALPHABET`].
pub fn generate_code() -> Result<Secret, String> {
    let random = Zeroizing::new(args::random_bytes(GENERATED_LENGTH)?);
    let mut code = Vec::with_capacity(GENERATED_LENGTH + GENERATED_LENGTH / 4);
    for (index, byte) in random.iter().enumerate() {
        if index > 0 && index % 4 == 0 {
            code.push(b'-');
        }
        code.push(ALPHABET[usize::from(byte & 0x1f)]);
    }
    Ok(Secret::new(code))
}

/// Reads the first line of standard input, without echo on a terminal, trimmed.
fn read_code() -> Result<Secret, String> {
    let stdin = std::io::stdin();
    let on_terminal = stdin.is_terminal();
    let echo = if on_terminal {
        eprint!("Bypass code: ");
        let _ = std::io::stderr().flush();
        EchoOff::new()
    } else {
        None
    };
    // Allocated once, for the longest code accepted, so that it never moves and leaves a
    // copy of the code behind; wiped on drop.
    let mut raw = Zeroizing::new(Vec::with_capacity(MAX_CODE_BYTES));
    let mut byte = Zeroizing::new([0u8; 1]);
    let mut handle = stdin.lock();
    // Byte by byte up to the first newline: nothing after it is read or kept.
    loop {
        match handle.read(&mut *byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if raw.len() == MAX_CODE_BYTES => {
                return Err(format!(
                    "the code is longer than {MAX_CODE_BYTES} bytes; use a shorter one"
                ));
            }
            Ok(_) => raw.push(byte[0]),
            Err(io_error) => {
                return Err(format!("cannot read standard input: {io_error}"));
            }
        }
    }
    drop(echo);
    if on_terminal {
        eprintln!();
    }
    let secret = Secret::new(raw.trim_ascii().to_vec());
    if secret.is_empty() {
        return Err("no code on standard input (or use --generate)".to_string());
    }
    Ok(secret)
}

/// Turns terminal echo off for standard input and back on when dropped.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: termios is plain data; tcgetattr fills it completely on success and we
        // use it only then.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is standard input; `saved` is a valid, writable termios.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return None;
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: `quiet` is a valid termios derived from the current settings.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &quiet) } != 0 {
            return None;
        }
        Some(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings tcgetattr returned for this same descriptor.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_long_grouped_and_different() {
        let first = generate_code().expect("urandom");
        let second = generate_code().expect("urandom");
        let text = first.as_str().expect("ASCII");
        assert_eq!(text.len(), 29);
        assert_eq!(text.split('-').count(), 6);
        assert!(
            text.bytes()
                .all(|byte| byte == b'-' || ALPHABET.contains(&byte))
        );
        assert_ne!(first, second);
    }
}
