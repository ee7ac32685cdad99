//! `pam-ticket` subcommand (to be written).

/// Runs the subcommand; returns the process exit code.
pub fn run(_args: &[String]) -> i32 {
    eprintln!("pam-ticket: this command is not available yet");
    2
}
