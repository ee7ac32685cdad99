//! `pam-ticket`: the admin tool. Subcommands arrive with their own issues.

fn main() {
    eprintln!("usage: pam-ticket <command>");
    std::process::exit(2);
}
