//! Reading files that decide security: account files, the configuration, CA bundles; and
//! checking the folder the audit file is written into. One policy for all of them, checked
//! on the opened file (so swapping the path between check and read gains nothing): a
//! regular file, owned by root (or by the user the module runs as, when that is not root),
//! not writable by group or others, and for secrets not readable by them either.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, FromRawFd};
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
    read_with_metadata(path, readers, follow_symlinks).map(|(bytes, _)| bytes)
}

/// [`read`], and the metadata of the file that was opened and read, for a caller that has
/// a stricter rule to apply to that same file (never to the path again, which may by then
/// name another file).
pub fn read_with_metadata(
    path: &Path,
    readers: Readers,
    follow_symlinks: bool,
) -> Result<(Vec<u8>, fs::Metadata), String> {
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
    Ok((bytes, metadata))
}

/// `read` for text files.
pub fn read_text(path: &Path, readers: Readers, follow_symlinks: bool) -> Result<String, String> {
    read_text_with_metadata(path, readers, follow_symlinks).map(|(text, _)| text)
}

/// [`read_with_metadata`] for text files.
pub fn read_text_with_metadata(
    path: &Path,
    readers: Readers,
    follow_symlinks: bool,
) -> Result<(String, fs::Metadata), String> {
    let (bytes, metadata) = read_with_metadata(path, readers, follow_symlinks)?;
    let text = String::from_utf8(bytes).map_err(|refused| {
        refused.into_bytes().zeroize();
        format!("{} is not UTF-8 text", path.display())
    })?;
    Ok((text, metadata))
}

/// Opens the folder at `path` itself, never a symbolic link in its place (`O_NOFOLLOW`,
/// `O_DIRECTORY`), so that a folder checked on this descriptor is the folder written
/// into. The folders above it are followed as usual. A link in its place fails with
/// `ELOOP` or `ENOTDIR` (Linux reports the latter with `O_DIRECTORY`), see
/// [`is_symlink`].
pub fn open_folder(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Whether `path` is a symbolic link now: only for saying why [`open_folder`] failed,
/// never for a decision.
pub fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_symlink())
}

/// `openat(folder, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`: `name` is looked up in the
/// folder that was opened and checked, not through its path again, and a link in its
/// place is refused (`ELOOP`).
pub fn open_in(
    folder: &fs::File,
    name: &OsStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<fs::File> {
    let name = c_name(name)?;
    // SAFETY: `folder` is an open descriptor that outlives the call and `name` is a
    // NUL-terminated string that outlives it too; openat keeps neither.
    let descriptor = unsafe {
        libc::openat(
            folder.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    };
    if descriptor < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `descriptor` was just returned by openat, is valid, and nothing else owns it.
    Ok(unsafe { fs::File::from_raw_fd(descriptor) })
}

/// `renameat(folder, from, folder, to)`: replaces `to` with `from`, both in `folder`.
pub fn rename_in(folder: &fs::File, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: `folder` is an open descriptor and both names are NUL-terminated strings,
    // all alive for the call; renameat keeps none of them.
    let status = unsafe {
        libc::renameat(
            folder.as_raw_fd(),
            from.as_ptr(),
            folder.as_raw_fd(),
            to.as_ptr(),
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `unlinkat(folder, name, 0)`: removes the file `name` in `folder`.
pub fn remove_in(folder: &fs::File, name: &OsStr) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `folder` is an open descriptor and `name` a NUL-terminated string, both
    // alive for the call; unlinkat keeps neither.
    if unsafe { libc::unlinkat(folder.as_raw_fd(), name.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file name holds a NUL"))
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
