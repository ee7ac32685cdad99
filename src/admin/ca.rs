//! `pam-ticket ca`: the CA trust a gateway needs for its portal or ticketing system,
//! made safe and checkable.
//!
//! * `ca add CERT` puts a CA certificate (DER `.cer` or PEM) where the system's trust store
//!   keeps local CAs and rebuilds the system bundle with the distribution's own tool
//!   (`update-ca-trust extract` on RHEL, `update-ca-certificates` on Debian), so that it
//!   survives ca-certificates updates. `--bundle PATH` (and a system with neither tool)
//!   appends to a PEM bundle instead, after a timestamped backup. `--dry-run` says what
//!   would happen. It refuses anything that is not a CA certificate or that carries a
//!   private key, and adds nothing twice.
//! * `ca check URL [--config PATH]` (`ca_check.rs`) connects with the module's trust settings and says
//!   whether the server's chain verifies, and if not, which issuer is missing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::trust_store::{DEBIAN_TRUST_STORE, RHEL_TRUST_STORE, add_to_trust_store, find_tool};
use super::x509::{CertificateFacts, ParseError, parse_certificate, to_pem};
use crate::clock::{Clock, SystemClock};
use crate::config::DEFAULT_CONFIG_PATH;
use crate::trust::SYSTEM_CA_BUNDLES;

const USAGE: &str = "usage: pam-ticket ca add CERT [--name NAME] [--dry-run] [--bundle PATH]
       pam-ticket ca check URL [--config PATH]

Run `pam-ticket ca add --help` or `pam-ticket ca check --help` for details.";

const ADD_HELP: &str = "usage: pam-ticket ca add CERT [--name NAME] [--dry-run] [--bundle PATH]

Makes the module trust servers whose certificates the CA in CERT issued (DER, e.g. a .cer
exported from Windows, or PEM). The CA goes where the system's trust store keeps local
CAs, and the distribution's tool rebuilds the system bundle, so that a ca-certificates
update keeps it:
  RHEL, Rocky, Alma (update-ca-trust):  /etc/pki/ca-trust/source/anchors/NAME.pem,
      then `update-ca-trust extract` rebuilds /etc/pki/tls/certs/ca-bundle.crt
  Debian, Ubuntu (update-ca-certificates):  /usr/local/share/ca-certificates/NAME.crt,
      then `update-ca-certificates` rebuilds /etc/ssl/certs/ca-certificates.crt
Afterwards it checks that the rebuilt bundle holds the CA.

  --name NAME     the CA file's name (default: CERT's file name without extension)
  --dry-run       say what would be written and run; change nothing
  --bundle PATH   append to this PEM bundle instead, after a backup to
                  PATH.pam-ticket-<UTC time>: use it when the module's CAFile names a
                  file of its own. Also the route on a system with neither tool (then
                  the first existing system bundle); a ca-certificates update may undo it.

Refuses a certificate that is not a CA (basicConstraints CA:TRUE) and any file that holds
a private key, and adds nothing that is already trusted.
Exit status: 0 added, already trusted, or --dry-run; 1 refused (not a CA, a private key,
NAME taken by another certificate); 2 usage or I/O error, or the trust store tool failed.";

/// Runs `ca`; returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("add") => add(&args[1..]),
        Some("check") => super::ca_check::check(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    }
}

/// One positional argument and one optional `--flag VALUE`.
pub(super) enum Parsed {
    Run {
        positional: String,
        option: Option<String>,
    },
    Help,
    Bad(String),
}

pub(super) fn parse_args(args: &[String], flag: &str) -> Parsed {
    let mut positional = None;
    let mut option = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-h" | "--help" => return Parsed::Help,
            _ if arg == flag => match iter.next() {
                Some(value) if option.is_none() => option = Some(value.clone()),
                Some(_) => return Parsed::Bad(format!("{flag} is given twice")),
                None => return Parsed::Bad(format!("{flag} needs a value")),
            },
            _ if arg.starts_with('-') => return Parsed::Bad(format!("unknown option {arg}")),
            _ if positional.is_none() => positional = Some(arg.clone()),
            _ => return Parsed::Bad(format!("unexpected argument {arg}")),
        }
    }
    match positional {
        Some(positional) => Parsed::Run { positional, option },
        None => Parsed::Bad("missing argument".to_string()),
    }
}

// ---------------------------------------------------------------- ca add

/// Why `ca add` did not finish. Each says what happened; [`AddError::exit_code`] maps it.
#[derive(Debug)]
pub(super) enum AddError {
    /// The command line is wrong.
    Usage(String),
    /// The input is nothing to trust: not a CA, a private key, not a certificate.
    Refused { input: PathBuf, reason: String },
    /// A CA file of the chosen name already holds another certificate.
    NameTaken { path: PathBuf },
    /// Reading or writing a file failed.
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// There is no trust store tool and no system bundle to append to.
    NoSystemBundle { looked_for: Vec<PathBuf> },
    /// The trust store tool could not be started or exited with a failure.
    ToolFailed {
        command: String,
        outcome: String,
        written: Vec<PathBuf>,
    },
    /// The tool ran, yet the bundle it rebuilds does not hold the CA.
    NotInBundle {
        command: String,
        bundle: PathBuf,
        subject: String,
    },
}

impl AddError {
    fn exit_code(&self) -> i32 {
        match self {
            AddError::Refused { .. } | AddError::NameTaken { .. } => 1,
            AddError::Usage(_)
            | AddError::Io { .. }
            | AddError::NoSystemBundle { .. }
            | AddError::ToolFailed { .. }
            | AddError::NotInBundle { .. } => 2,
        }
    }
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddError::Usage(problem) => write!(f, "{problem}"),
            AddError::Refused { input, reason } => {
                write!(f, "refused {}: {reason}", input.display())
            }
            AddError::NameTaken { path } => write!(
                f,
                "{} already holds another certificate; choose another name with --name",
                path.display()
            ),
            AddError::Io {
                action,
                path,
                error,
            } => write!(f, "cannot {action} {}: {error}", path.display()),
            AddError::NoSystemBundle { looked_for } => write!(
                f,
                "neither update-ca-trust nor update-ca-certificates is installed and there is no system CA bundle ({}); name one with --bundle",
                looked_for
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            AddError::ToolFailed {
                command,
                outcome,
                written,
            } => {
                write!(f, "`{command}` failed: {outcome}")?;
                for path in written {
                    write!(
                        f,
                        "\n  {} was written; fix the cause and run `{command}` again, or remove the file",
                        path.display()
                    )?;
                }
                Ok(())
            }
            AddError::NotInBundle {
                command,
                bundle,
                subject,
            } => write!(
                f,
                "`{command}` ran, but {} does not hold {subject}; the module would not trust it",
                bundle.display()
            ),
        }
    }
}

/// What `ca add` was asked to do.
pub(super) struct AddRequest {
    pub(super) input: PathBuf,
    /// The CA file name (without extension) for the trust store route.
    pub(super) name: String,
    pub(super) bundle: Option<PathBuf>,
    pub(super) dry_run: bool,
    /// Prefixed to every system path; `/` but in tests.
    pub(super) root: PathBuf,
}

fn add(args: &[String]) -> i32 {
    let request = match parse_add(args) {
        Ok(Some(request)) => request,
        Ok(None) => {
            println!("{ADD_HELP}");
            return 0;
        }
        Err(problem) => {
            eprintln!("pam-ticket ca add: {problem}\n\n{ADD_HELP}");
            return problem.exit_code();
        }
    };
    match add_ca(&request) {
        Ok(report) => {
            print!("{report}");
            0
        }
        Err(problem) => {
            eprintln!("pam-ticket ca add: {problem}");
            problem.exit_code()
        }
    }
}

fn parse_add(args: &[String]) -> Result<Option<AddRequest>, AddError> {
    // --root is a test seam, deliberately left out of the help: the trust store under a
    // scratch directory, with fake update-ca-trust / update-ca-certificates on PATH.
    let options = match super::args::parse(args, &["name", "bundle", "root"], &[], &["dry-run"])
        .map_err(AddError::Usage)?
    {
        super::args::Parsed::Help => return Ok(None),
        super::args::Parsed::Run(options) => options,
    };
    let input = match options.positional.as_slice() {
        [input] => PathBuf::from(input),
        [] => return Err(AddError::Usage("missing argument CERT".to_string())),
        [_, extra, ..] => return Err(AddError::Usage(format!("unexpected argument {extra}"))),
    };
    let name = match options.value("name") {
        Some(name) => checked_name(name)?,
        None => name_from_file(&input),
    };
    Ok(Some(AddRequest {
        name,
        bundle: options.value("bundle").map(PathBuf::from),
        dry_run: options.switch("dry-run"),
        root: PathBuf::from(options.value("root").unwrap_or("/")),
        input,
    }))
}

/// A `--name` as given, minus a certificate extension; only letters, digits, `.`, `_`, `-`.
fn checked_name(name: &str) -> Result<String, AddError> {
    let stem = [".pem", ".crt", ".cer"]
        .iter()
        .find_map(|extension| name.strip_suffix(extension))
        .unwrap_or(name);
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if stem.is_empty() || stem.starts_with('.') || !stem.chars().all(allowed) {
        return Err(AddError::Usage(format!(
            "--name {name}: use letters, digits, '.', '_' and '-' only (a file name, not a path)"
        )));
    }
    Ok(stem.to_string())
}

/// The CA file's name from the input's (`PortalRootCA.cer` -> `PortalRootCA`), with any
/// other character made a `-`.
fn name_from_file(input: &Path) -> String {
    let stem = input
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "pam-ticket-ca".to_string()
    } else {
        cleaned
    }
}

/// `path` (absolute) under `root`.
pub(super) fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn add_ca(request: &AddRequest) -> Result<String, AddError> {
    let input = fs::read(&request.input).map_err(|error| AddError::Io {
        action: "read",
        path: request.input.clone(),
        error,
    })?;
    let certificates = read_ca_certificates(&input).map_err(|reason| AddError::Refused {
        input: request.input.clone(),
        reason,
    })?;
    if let Some(bundle) = &request.bundle {
        return append_to_bundle(bundle, &certificates, request.dry_run);
    }
    // Under a test root only the PATH the test gives is searched.
    let standard_dirs = request.root == Path::new("/");
    for store in [RHEL_TRUST_STORE, DEBIAN_TRUST_STORE] {
        if let Some(tool) = find_tool(store.tool, standard_dirs) {
            let mut report = add_to_trust_store(request, store, &tool, &certificates)?;
            report.push_str(&ca_file_note(request, &under(&request.root, store.bundle)));
            return Ok(report);
        }
    }
    // Neither tool: append to the system bundle, as before the trust stores existed.
    let looked_for: Vec<PathBuf> = SYSTEM_CA_BUNDLES
        .iter()
        .map(|bundle| under(&request.root, bundle))
        .collect();
    let Some(bundle) = looked_for.iter().find(|path| path.is_file()).cloned() else {
        return Err(AddError::NoSystemBundle { looked_for });
    };
    let mut report = String::from(
        "Neither update-ca-trust nor update-ca-certificates is installed: appending to the bundle itself.\n",
    );
    report.push_str(&append_to_bundle(&bundle, &certificates, request.dry_run)?);
    Ok(report)
}

/// The DER certificates a PEM (or DER) file holds.
pub(super) fn certificates_in(bytes: &[u8]) -> Vec<Vec<u8>> {
    let from_pem: Vec<Vec<u8>> = crate::trust::parse_pem_certificates(bytes)
        .iter()
        .map(|certificate| certificate.der().to_vec())
        .collect();
    if !from_pem.is_empty() {
        return from_pem;
    }
    // The anchors directory may also hold DER files (p11-kit reads both).
    match parse_certificate(bytes) {
        Ok(facts) => vec![facts.der],
        Err(_) => Vec::new(),
    }
}

pub(super) fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, AddError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(AddError::Io {
            action: "read",
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// When the module's configuration names its own CAFile, the system bundle is not what it
/// reads: say so, with the command that would help.
fn ca_file_note(request: &AddRequest, system_bundle: &Path) -> String {
    let config = under(&request.root, DEFAULT_CONFIG_PATH);
    let Ok(text) = fs::read_to_string(&config) else {
        return String::new();
    };
    let Ok(entries) = crate::config::parse_entries(&text, &config) else {
        return String::new();
    };
    match entries.iter().rev().find(|entry| entry.key == "CAFile") {
        Some(entry) if under(&request.root, entry.value.trim()) != system_bundle => format!(
            "Note: {} sets CAFile=\"{}\", so the module trusts only that file; to add this CA there as well:\n  pam-ticket ca add {} --bundle {}\n",
            config.display(),
            entry.value.trim(),
            request.input.display(),
            entry.value.trim()
        ),
        _ => String::new(),
    }
}

/// The CA certificates in a DER or PEM file. Anything else is refused with the reason.
pub fn read_ca_certificates(input: &[u8]) -> Result<Vec<CertificateFacts>, String> {
    let text = String::from_utf8_lossy(input);
    // Checked on the raw text as well as through the PEM parser, so that key types the
    // parser does not know (ENCRYPTED PRIVATE KEY, OpenSSH keys) are refused too.
    if text.contains("PRIVATE KEY-----") {
        return Err(
            "the file holds a private key; export the CA certificate alone (never copy a key around)"
                .to_string(),
        );
    }
    let ders: Vec<Vec<u8>> = if text.contains("-----BEGIN") {
        let mut ders = Vec::new();
        for item in ureq::tls::parse_pem(input) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(certificate)) => {
                    ders.push(certificate.der().to_vec())
                }
                Ok(ureq::tls::PemItem::PrivateKey(_)) => {
                    return Err("the file holds a private key".to_string());
                }
                Ok(_) => {}
                Err(problem) => return Err(format!("unreadable PEM: {problem}")),
            }
        }
        if ders.is_empty() {
            return Err("no CERTIFICATE block in this PEM file".to_string());
        }
        ders
    } else {
        vec![input.to_vec()]
    };
    let mut facts = Vec::new();
    for der in ders {
        let certificate = parse_certificate(&der).map_err(|problem| match problem {
            ParseError::LooksLikeKeyOrKeyStore => format!("{problem}; it may hold a private key"),
            other => other.to_string(),
        })?;
        if !certificate.is_ca {
            return Err(format!(
                "{} is not a CA certificate (no basicConstraints CA:TRUE); add the CA that issued it ({}), not the server's own certificate",
                certificate.subject, certificate.issuer
            ));
        }
        facts.push(certificate);
    }
    Ok(facts)
}

/// Appends the certificates the bundle does not hold yet, after a backup; with `dry_run`,
/// only says what it would append. Returns what to tell the admin.
fn append_to_bundle(
    bundle: &Path,
    certificates: &[CertificateFacts],
    dry_run: bool,
) -> Result<String, AddError> {
    let existing = read_if_present(bundle)?;
    let present: Vec<Vec<u8>> = existing.as_deref().map(certificates_in).unwrap_or_default();
    let mut report = String::new();
    let mut new = Vec::new();
    for certificate in certificates {
        if present.contains(&certificate.der)
            || new
                .iter()
                .any(|n: &&CertificateFacts| n.der == certificate.der)
        {
            report.push_str(&format!(
                "Already trusted, nothing added: {} (in {})\n",
                certificate.subject,
                bundle.display()
            ));
        } else {
            new.push(certificate);
        }
    }
    if new.is_empty() {
        return Ok(report);
    }
    if dry_run {
        for certificate in &new {
            report.push_str(&format!(
                "Would append to {}: {}\n  issued by {}\n",
                bundle.display(),
                certificate.subject,
                certificate.issuer
            ));
        }
        if existing.is_some() {
            report.push_str(&format!(
                "Would first back it up to {}.pam-ticket-<UTC time>\n",
                bundle.display()
            ));
        }
        report.push_str("Dry run: nothing was changed.\n");
        return Ok(report);
    }

    let now = SystemClock.now();
    let backup = match &existing {
        Some(_) => Some(backup_copy(
            bundle,
            &now.format("%Y%m%dT%H%M%SZ").to_string(),
        )?),
        None => None,
    };
    let mut text = String::new();
    if existing
        .as_deref()
        .is_some_and(|bytes| !bytes.is_empty() && !bytes.ends_with(b"\n"))
    {
        text.push('\n');
    }
    for certificate in &new {
        text.push_str(&format!(
            "# {} (added by pam-ticket ca add, {})\n",
            certificate.subject,
            now.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        text.push_str(&to_pem(&certificate.der));
    }
    let io = |action: &'static str| {
        move |error| AddError::Io {
            action,
            path: bundle.to_path_buf(),
            error,
        }
    };
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(bundle)
        .map_err(io("open for appending"))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("append to"))?;

    for certificate in &new {
        report.push_str(&format!(
            "Added: {}\n  issued by {}\n  to {}\n",
            certificate.subject,
            certificate.issuer,
            bundle.display()
        ));
    }
    match backup {
        Some(backup) => report.push_str(&format!(
            "Backup of the previous bundle: {}\nTo undo: cp -p '{}' '{}'\n",
            backup.display(),
            backup.display(),
            bundle.display()
        )),
        None => report.push_str(&format!(
            "{} did not exist and was created; to undo: rm '{}'\n",
            bundle.display(),
            bundle.display()
        )),
    }
    if SYSTEM_CA_BUNDLES
        .iter()
        .any(|system| bundle.ends_with(system.trim_start_matches('/')))
    {
        report.push_str(
            "Note: update-ca-trust (RHEL) and update-ca-certificates (Debian) rebuild this file and drop what was appended; `pam-ticket ca add CERT` without --bundle puts the CA where they keep it.\n",
        );
    }
    Ok(report)
}

/// Copies the bundle to `<bundle>.pam-ticket-<stamp>` (plus `-N` if that exists), keeping
/// its permissions; never overwrites an earlier backup.
fn backup_copy(bundle: &Path, stamp: &str) -> Result<PathBuf, AddError> {
    let name = bundle
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".to_string());
    for attempt in 0..100 {
        let suffix = if attempt == 0 {
            String::new()
        } else {
            format!("-{attempt}")
        };
        let backup = bundle.with_file_name(format!("{name}.pam-ticket-{stamp}{suffix}"));
        if backup.exists() {
            continue;
        }
        fs::copy(bundle, &backup).map_err(|error| AddError::Io {
            action: "back up (copy) to it",
            path: backup.clone(),
            error,
        })?;
        return Ok(backup);
    }
    Err(AddError::Io {
        action: "back up",
        path: bundle.to_path_buf(),
        error: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("100 backups with stamp {stamp} exist already"),
        ),
    })
}
