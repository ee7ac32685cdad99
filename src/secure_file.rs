//! Reading files that decide security: account files, the configuration, CA bundles; and
//! checking the folder the audit file is written into. One policy for all of them, checked
//! on the opened file (so swapping the path between check and read gains nothing): a
//! regular file, owned by root (or by the user the module runs as, when that is not root),
//! not writable by group or others, and for secrets not readable by them either.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroize;

/// Who besides the owner may read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers {
    /// Secrets: mode must have no group or other bits at all.
    OwnerOnly,
    /// Public but security-relevant (a CA bundle): others may read, not write.
    Anyone,
}

/// Whether a file's owner may be trusted: root always; another user only when the module
/// itself runs as that user (a PAM application that is not root, such as the demo, can
/// only ever read its own files). Under sshd, su or sudo the module runs as root, so there
/// only root-owned files pass.
pub fn is_trusted_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// Why an opened file's owner or mode does not pass: the one rule of this module, which
/// each caller words for its own context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untrusted {
    /// Owned by a user other than root (or the user the module runs as).
    Owner { uid: u32 },
    /// Group or others have a permission bit that `readers` forbids.
    Mode { mode: u32, readers: Readers },
}

/// The owner and mode rule, on the metadata of an opened file or folder: owned by root (or
/// by the user the module runs as, see [`is_trusted_owner`]); never writable by group or
/// others; for [`Readers::OwnerOnly`] not readable or searchable by them either.
pub fn owner_and_mode(metadata: &fs::Metadata, readers: Readers) -> Result<(), Untrusted> {
    if !is_trusted_owner(metadata.uid()) {
        return Err(Untrusted::Owner {
            uid: metadata.uid(),
        });
    }
    let mode = metadata.mode() & 0o7777;
    let forbidden = match readers {
        Readers::OwnerOnly => 0o077,
        Readers::Anyone => 0o022,
    };
    if mode & forbidden != 0 {
        return Err(Untrusted::Mode { mode, readers });
    }
    Ok(())
}

/// Checks an opened file's metadata against the policy.
pub fn check(path: &Path, metadata: &fs::Metadata, readers: Readers) -> Result<(), String> {
    if !metadata.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    owner_and_mode(metadata, readers).map_err(|untrusted| match untrusted {
        Untrusted::Owner { uid } => format!(
            "{} must be owned by root (owner uid is {uid})",
            path.display()
        ),
        Untrusted::Mode { mode, readers } => {
            let (what, fix) = match readers {
                Readers::OwnerOnly => ("readable or writable by group or others", "chmod 600"),
                Readers::Anyone => ("writable by group or others", "chmod go-w"),
            };
            format!(
                "{} must not be {what} (mode is {mode:04o}; run {fix})",
                path.display()
            )
        }
    })
}

/// Checks an opened folder that files deciding security are written into (the audit
/// file's): a folder owned by root (or by the user the module runs as, see
/// [`is_trusted_owner`]) that neither group nor others may write to. A sticky bit does not
/// make a world-writable folder such as /tmp acceptable: anyone could still plant a link,
/// a FIFO or a file of their own under a name not yet taken.
pub fn check_directory(metadata: &fs::Metadata) -> Result<(), String> {
    if !metadata.is_dir() {
        return Err("not a folder".to_string());
    }
    owner_and_mode(metadata, Readers::Anyone).map_err(|untrusted| match untrusted {
        Untrusted::Owner { uid } => format!("it is owned by uid {uid}, not by root"),
        Untrusted::Mode { mode, .. } => {
            format!("group or others may write to it (mode is {mode:04o}; run chmod go-w)")
        }
    })
}

/// Opens and reads a file after checking it. `follow_symlinks` is false for secrets, so a
/// link planted in their place is refused; a CA bundle is a link on RHEL, and the checks
/// then apply to the file it points at.
pub fn read(path: &Path, readers: Readers, follow_symlinks: bool) -> Result<Vec<u8>, String> {
    let flags = if follow_symlinks { 0 } else { libc::O_NOFOLLOW };
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK)
        .open(path)
        .map_err(|io_error| {
            // O_NOFOLLOW refuses a link with ELOOP, whose own words ("Too many levels of
            // symbolic links") send an admin looking for a loop.
            let is_link = !follow_symlinks
                && io_error.raw_os_error() == Some(libc::ELOOP)
                && fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_symlink());
            if is_link {
                format!(
                    "{} is a symbolic link; it must be a regular file, not a symbolic link \
                     (links are never followed here: name the file itself)",
                    path.display()
                )
            } else {
                format!("cannot open {}: {io_error}", path.display())
            }
        })?;
    let metadata = file
        .metadata()
        .map_err(|io_error| format!("cannot stat {}: {io_error}", path.display()))?;
    check(path, &metadata, readers)?;
    // File::read_to_end reserves the file's size before it reads, so the buffer does not
    // grow (which would leave copies of an account file's password behind unwiped).
    let mut bytes = Vec::new();
    if let Err(io_error) = file.read_to_end(&mut bytes) {
        bytes.zeroize();
        return Err(format!("cannot read {}: {io_error}", path.display()));
    }
    Ok(bytes)
}

/// `read` for text files.
pub fn read_text(path: &Path, readers: Readers, follow_symlinks: bool) -> Result<String, String> {
    let bytes = read(path, readers, follow_symlinks)?;
    String::from_utf8(bytes).map_err(|refused| {
        refused.into_bytes().zeroize();
        format!("{} is not UTF-8 text", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn modes_are_checked_per_policy() {
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_secure_file_{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("file");
        fs::write(&path, "x").expect("write");
        for (mode, readers, ok) in [
            (0o600, Readers::OwnerOnly, true),
            (0o640, Readers::OwnerOnly, false),
            (0o644, Readers::Anyone, true),
            (0o664, Readers::Anyone, false),
            (0o646, Readers::Anyone, false),
        ] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            assert_eq!(
                read(&path, readers, false).is_ok(),
                ok,
                "{mode:o} {readers:?}"
            );
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let link = dir.join("link");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        let refused = read(&link, Readers::Anyone, false).expect_err("a link");
        assert!(
            refused.ends_with(
                "link is a symbolic link; it must be a regular file, not a symbolic link \
                 (links are never followed here: name the file itself)"
            ),
            "{refused}"
        );
        assert!(read(&link, Readers::Anyone, true).is_ok());
        let _ = fs::remove_dir_all(&dir);
    }
}
