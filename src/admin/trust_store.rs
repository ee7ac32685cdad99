//! The system trust store route of `pam-ticket ca add`: the CA goes where the
//! distribution keeps local CAs, and the distribution's own tool rebuilds the system bundle
//! from there (RHEL: `update-ca-trust extract`; Debian: `update-ca-certificates`). A CA
//! placed so survives ca-certificates updates, which rewrite the bundle and drop whatever
//! was appended to it by hand (after which every login through a server that CA vouches
//! for would be denied).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::ca::{AddError, AddRequest, certificates_in, read_if_present, under};
use super::x509::{CertificateFacts, to_pem};
use crate::clock::{Clock, SystemClock};

/// A distribution's own trust store: CA files dropped into a directory, and the tool that
/// rebuilds the system bundle from them. A CA placed there survives ca-certificates
/// updates, which rewrite the bundle and drop whatever was appended to it by hand (and
/// then every login through a portal that CA vouches for is denied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TrustStore {
    /// The tool, looked up on PATH.
    pub(super) tool: &'static str,
    tool_args: &'static [&'static str],
    /// Where the CA files go.
    anchors: &'static str,
    /// The extension the tool picks up there.
    extension: &'static str,
    /// The bundle the tool rebuilds, which the module reads when CAFile is not set.
    pub(super) bundle: &'static str,
}

/// RHEL, Rocky, Alma: p11-kit's update-ca-trust, the route the vendor documents for PSM for
/// SSH machines.
pub(super) const RHEL_TRUST_STORE: TrustStore = TrustStore {
    tool: "update-ca-trust",
    tool_args: &["extract"],
    anchors: "/etc/pki/ca-trust/source/anchors",
    extension: "pem",
    bundle: "/etc/pki/tls/certs/ca-bundle.crt",
};

/// Debian, Ubuntu: ca-certificates' update-ca-certificates, which reads only `*.crt`.
pub(super) const DEBIAN_TRUST_STORE: TrustStore = TrustStore {
    tool: "update-ca-certificates",
    tool_args: &[],
    anchors: "/usr/local/share/ca-certificates",
    extension: "crt",
    bundle: "/etc/ssl/certs/ca-certificates.crt",
};

/// Where the tools live when PATH misses them (`su` without `-` keeps a user's PATH
/// without the sbin directories).
const STANDARD_DIRS: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The first executable `name` in PATH, then (with `standard_dirs`) in [`STANDARD_DIRS`].
/// Tests pass `false`, so that only their fake tools are found.
pub(super) fn find_tool(name: &str, standard_dirs: bool) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut search: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    if standard_dirs {
        search.extend(std::env::split_paths(STANDARD_DIRS));
    }
    search
        .into_iter()
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate).is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
}

/// A CA file already in the trust store's directory.
struct AnchorFile {
    path: PathBuf,
    /// The DER certificates it holds.
    certificates: Vec<Vec<u8>>,
}

/// Each CA file already in the anchors directory, with the certificates it holds.
fn existing_anchors(anchors: &Path) -> Result<Vec<AnchorFile>, AddError> {
    let entries = match fs::read_dir(anchors) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(AddError::Io {
                action: "list",
                path: anchors.to_path_buf(),
                error,
            });
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let bytes = fs::read(&path).map_err(|error| AddError::Io {
            action: "read",
            path: path.clone(),
            error,
        })?;
        found.push(AnchorFile {
            certificates: certificates_in(&bytes),
            path,
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// What happens to one certificate on the trust store route.
enum Step<'a> {
    /// The bundle already holds it: nothing to do.
    AlreadyTrusted(&'a CertificateFacts),
    /// A CA file already holds it, but the bundle does not yet: rebuild only.
    AlreadyAnAnchor(&'a CertificateFacts, PathBuf),
    /// Write this CA file.
    Write(&'a CertificateFacts, PathBuf),
}

/// Writes each CA into the store's directory (one file each), runs the store's tool, and
/// checks that the bundle it rebuilds now holds every one.
pub(super) fn add_to_trust_store(
    request: &AddRequest,
    store: TrustStore,
    tool: &Path,
    certificates: &[CertificateFacts],
) -> Result<String, AddError> {
    let anchors = under(&request.root, store.anchors);
    let bundle = under(&request.root, store.bundle);
    let command = std::iter::once(tool.display().to_string())
        .chain(store.tool_args.iter().map(|arg| arg.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let in_bundle = |bundle_text: &Option<Vec<u8>>, certificate: &CertificateFacts| {
        bundle_text
            .as_deref()
            .is_some_and(|text| certificates_in(text).contains(&certificate.der))
    };
    let bundle_before = read_if_present(&bundle)?;
    let existing = existing_anchors(&anchors)?;

    let mut steps = Vec::new();
    let mut file_number = 0;
    for (index, certificate) in certificates.iter().enumerate() {
        if certificates[..index]
            .iter()
            .any(|earlier| earlier.der == certificate.der)
        {
            continue;
        }
        if in_bundle(&bundle_before, certificate) {
            steps.push(Step::AlreadyTrusted(certificate));
            continue;
        }
        if let Some(anchor) = existing
            .iter()
            .find(|anchor| anchor.certificates.contains(&certificate.der))
        {
            steps.push(Step::AlreadyAnAnchor(certificate, anchor.path.clone()));
            continue;
        }
        file_number += 1;
        let file_name = if file_number == 1 {
            format!("{}.{}", request.name, store.extension)
        } else {
            format!("{}-{file_number}.{}", request.name, store.extension)
        };
        let path = anchors.join(file_name);
        if path.exists() {
            return Err(AddError::NameTaken { path });
        }
        steps.push(Step::Write(certificate, path));
    }

    let mut report = String::new();
    for step in &steps {
        if let Step::AlreadyTrusted(certificate) = step {
            report.push_str(&format!(
                "Already trusted, nothing added: {} (in {})\n",
                certificate.subject,
                bundle.display()
            ));
        }
    }
    if steps
        .iter()
        .all(|step| matches!(step, Step::AlreadyTrusted(_)))
    {
        return Ok(report);
    }

    if request.dry_run {
        for step in &steps {
            match step {
                Step::AlreadyTrusted(_) => {}
                Step::AlreadyAnAnchor(certificate, path) => report.push_str(&format!(
                    "Would keep {} (it already holds {})\n",
                    path.display(),
                    certificate.subject
                )),
                Step::Write(certificate, path) => report.push_str(&format!(
                    "Would write {}: {}\n  issued by {}\n",
                    path.display(),
                    certificate.subject,
                    certificate.issuer
                )),
            }
        }
        report.push_str(&format!(
            "Would run: {command}\nThen {} would hold it, and the module trusts that bundle when CAFile is not set.\nDry run: nothing was changed.\n",
            bundle.display()
        ));
        return Ok(report);
    }

    let now = SystemClock.now();
    let mut written = Vec::new();
    for step in &steps {
        if let Step::Write(certificate, path) = step {
            write_anchor(&anchors, path, certificate, &now)?;
            written.push(path.clone());
        }
    }

    let output = std::process::Command::new(tool)
        .args(store.tool_args)
        .output()
        .map_err(|error| AddError::ToolFailed {
            command: command.clone(),
            outcome: format!("cannot run it: {error}"),
            written: written.clone(),
        })?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        let outcome = match indented(&said) {
            said if said.is_empty() => output.status.to_string(),
            said => format!("{}\n{said}", output.status),
        };
        return Err(AddError::ToolFailed {
            command,
            outcome,
            written,
        });
    }
    let bundle_after = read_if_present(&bundle)?;
    for step in &steps {
        if let Step::Write(certificate, _) | Step::AlreadyAnAnchor(certificate, _) = step
            && !in_bundle(&bundle_after, certificate)
        {
            return Err(AddError::NotInBundle {
                command,
                bundle,
                subject: certificate.subject.clone(),
            });
        }
    }

    for step in &steps {
        match step {
            Step::AlreadyTrusted(_) => {}
            Step::AlreadyAnAnchor(certificate, path) => report.push_str(&format!(
                "Added: {}\n  issued by {}\n  already in {}\n",
                certificate.subject,
                certificate.issuer,
                path.display()
            )),
            Step::Write(certificate, path) => report.push_str(&format!(
                "Added: {}\n  issued by {}\n  as {}\n",
                certificate.subject,
                certificate.issuer,
                path.display()
            )),
        }
    }
    report.push_str(&format!("Ran: {command}\n"));
    if !said.trim().is_empty() {
        report.push_str(&indented(&said));
        report.push('\n');
    }
    report.push_str(&format!(
        "Now trusted: {} holds it (the module reads that bundle when CAFile is not set); it stays there across ca-certificates updates.\n",
        bundle.display()
    ));
    if !written.is_empty() {
        let files = written
            .iter()
            .map(|path| format!("'{}'", path.display()))
            .collect::<Vec<_>>()
            .join(" ");
        report.push_str(&format!("To undo: rm {files} && {command}\n"));
    }
    Ok(report)
}

/// The non-blank lines of `text`, each indented, for a tool's output inside our report.
fn indented(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes one CA file (0644, as the trust store's own) under a temporary name, then renames
/// it into place, so the tool never reads half a file. The comment line lets
/// `make uninstall` and the .deb's purge name the file as the admin's.
fn write_anchor(
    anchors: &Path,
    path: &Path,
    certificate: &CertificateFacts,
    now: &chrono::DateTime<chrono::Utc>,
) -> Result<(), AddError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |error| AddError::Io {
            action,
            path,
            error,
        }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(anchors)
        .map_err(io("create", anchors))?;
    let text = format!(
        "# {} (added by pam-ticket ca add, {})\n{}",
        certificate.subject,
        now.format("%Y-%m-%d %H:%M:%S UTC"),
        to_pem(&certificate.der)
    );
    let temporary = path.with_extension(format!("pam-ticket-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)
            .map_err(io("create", &temporary))?;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io("chmod", &temporary))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io("write", &temporary))?;
        fs::rename(&temporary, path).map_err(io("rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}
