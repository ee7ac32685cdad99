//! `pam-ticket`: the admin tool for pam_ticket.

use pam_ticket::admin;

const USAGE: &str = "usage: pam-ticket <command> [options]

commands:
  check [--config PATH]                    parse the configuration as the module does and test the account and TLS trust
  check --flush-cache [--config PATH]      remove this configuration's cached tokens (Remedy JWT, ServiceNow OAuth,
                                            Privilege Cloud platform token)
  test --user NAME [--rhost HOST] TICKET   run the whole validation for one ticket, without PAM
  hash-code [--generate]                   hash a failsafe bypass code for FailsafeBypassCode
  ca add CERT [--dry-run] [--bundle PATH]  trust a CA: in the system trust store (update-ca-trust, update-ca-certificates) or a bundle
  ca check URL [--config PATH]             say whether a server's certificate chain verifies
  doctor [--sshd-config FILE] [--pam-service NAME | --pam-file FILE] [--config FILE]
                                           find the sshd and pam.d mistakes that lock people out
                                           or let them around the ticket, each with its fix

Run `pam-ticket <command> --help` for a command's options.

exit status: 0 all is well (test: the login would be let in), 1 a check failed (test: the
login would be refused), 2 usage error, 3 configuration error.";

fn main() {
    // Like other command-line tools, end quietly when the reader of our output goes away
    // (`pam-ticket check | head`) instead of panicking on a broken pipe.
    // SAFETY: resetting SIGPIPE to its default disposition at start-up, before any other
    // thread exists, has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("check") => admin::check::run(&args[1..]),
        Some("test") => admin::test_ticket::run(&args[1..]),
        Some("hash-code") => admin::hash_code::run(&args[1..]),
        Some("ca") => admin::ca::run(&args[1..]),
        Some("doctor") => admin::doctor::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
