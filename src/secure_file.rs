//! Reading files that decide security: account files, the configuration, CA bundles; and
//! checking the folder the audit file is written into. One policy for all of them, checked
//! on the opened file (so swapping the path between check and read gains nothing): a
//! regular file, owned by root (or by the user the module runs as, when that is not root),
//! not writable by group or others, and for secrets not readable by them either.
//!
//! Also the private folders the module writes its own files into (the token cache, the
//! session records): a folder nobody else may enter, opened with `O_NOFOLLOW` and checked
//! on that descriptor, whose files are opened, replaced and removed relative to it.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// `mkdirat(folder, name, mode)`: creates the folder `name` in `folder`.
pub fn create_folder_in(folder: &fs::File, name: &OsStr, mode: libc::mode_t) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `folder` is an open descriptor and `name` a NUL-terminated string, both
    // alive for the call; mkdirat keeps neither.
    if unsafe { libc::mkdirat(folder.as_raw_fd(), name.as_ptr(), mode) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The names in an opened folder, `.` and `..` left out. A read error part-way ends the
/// list early: the callers (pruning) only ever do less then.
pub fn names_in(folder: &fs::File) -> io::Result<Vec<OsString>> {
    // fdopendir takes its descriptor over (closedir closes it), so it gets a copy.
    let descriptor = folder.try_clone()?.into_raw_fd();
    // SAFETY: `descriptor` is an open descriptor of a folder that nothing else owns now.
    let stream = unsafe { libc::fdopendir(descriptor) };
    if stream.is_null() {
        let error = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the descriptor is still this function's to close.
        unsafe { libc::close(descriptor) };
        return Err(error);
    }
    // SAFETY: `stream` is a valid directory stream. The copy shares its offset with
    // `folder`, so a folder read before is listed from its start.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    loop {
        // SAFETY: `stream` is a valid directory stream, used by this thread only.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: a non-null entry points at a dirent whose `d_name` is NUL-terminated and
        // stays valid until the next readdir on this stream; it is copied before that.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    // SAFETY: `stream` is valid and closed exactly once; this also closes `descriptor`.
    unsafe { libc::closedir(stream) };
    Ok(names)
}

/// The rule for a private folder and its files, through [`owner_and_mode`] with
/// [`Readers::OwnerOnly`]: owned by root (or the user the module runs as) and closed to
/// group and others; anything else may have been planted.
pub fn private(path: &Path, metadata: &fs::Metadata) -> Result<(), String> {
    owner_and_mode(metadata, Readers::OwnerOnly).map_err(|untrusted| match untrusted {
        Untrusted::Owner { uid } => {
            format!("{} is owned by uid {uid}, not by root", path.display())
        }
        Untrusted::Mode { mode, .. } => format!(
            "{} has mode {mode:04o}; group and others must have no access",
            path.display()
        ),
    })
}

/// Checks an opened folder at `path` against [`private`].
fn checked_private_folder(path: &Path, folder: fs::File) -> Result<fs::File, String> {
    let metadata = folder
        .metadata()
        .map_err(|error| format!("cannot stat {}: {error}", path.display()))?;
    if !metadata.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    private(path, &metadata)?;
    Ok(folder)
}

/// The private folder at `path` itself, opened with `O_NOFOLLOW` and checked on that
/// descriptor: every file in it is then opened, renamed or removed relative to it. `None`
/// when there is no such folder.
pub fn open_private_folder(path: &Path) -> Result<Option<fs::File>, String> {
    let folder = match open_folder(path) {
        Ok(folder) => folder,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) if is_symlink(path) => {
            return Err(format!(
                "{} is a symbolic link, which is never followed",
                path.display()
            ));
        }
        Err(error) => return Err(format!("cannot open {}: {error}", path.display())),
    };
    checked_private_folder(path, folder).map(Some)
}

/// [`open_private_folder`], creating the folder (0700) when it is missing.
pub fn prepare_private_folder(path: &Path) -> Result<fs::File, String> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(format!("cannot create {}: {error}", path.display())),
    }
    open_private_folder(path)?.ok_or_else(|| format!("{} vanished", path.display()))
}

/// The private folder `name` inside the private folder `parent` (opened from
/// `parent_path`), opened relative to it and checked like [`open_private_folder`].
/// `None` when there is no such folder.
pub fn open_private_folder_in(
    parent: &fs::File,
    parent_path: &Path,
    name: &OsStr,
) -> Result<Option<fs::File>, String> {
    let path = parent_path.join(name);
    match open_in(parent, name, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
        Ok(folder) => checked_private_folder(&path, folder).map(Some),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        // O_NOFOLLOW with O_DIRECTORY: a link in its place fails with ELOOP or ENOTDIR.
        Err(error) if matches!(error.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => Err(
            format!("{} is a symbolic link or not a directory", path.display()),
        ),
        Err(error) => Err(format!("cannot open {}: {error}", path.display())),
    }
}

/// [`open_private_folder_in`], creating the folder (0700) when it is missing.
pub fn prepare_private_folder_in(
    parent: &fs::File,
    parent_path: &Path,
    name: &OsStr,
) -> Result<fs::File, String> {
    match create_folder_in(parent, name, 0o700) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(format!(
                "cannot create {}: {error}",
                parent_path.join(name).display()
            ));
        }
    }
    open_private_folder_in(parent, parent_path, name)?
        .ok_or_else(|| format!("{} vanished", parent_path.join(name).display()))
}

/// Opens the file `name` in a private folder (opened from `folder_path`) for reading:
/// never a link in its place (`O_NOFOLLOW`), and only a regular file that passes
/// [`private`] on the opened file. `None` when there is no such file.
pub fn open_private_file_in(
    folder: &fs::File,
    folder_path: &Path,
    name: &OsStr,
) -> Result<Option<(fs::File, fs::Metadata)>, String> {
    let path = folder_path.join(name);
    let file = match open_in(folder, name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!(
                "{} is a symbolic link, which is never followed",
                path.display()
            ));
        }
        Err(error) => return Err(format!("cannot open {}: {error}", path.display())),
    };
    let metadata = file
        .metadata()
        .map_err(|error| format!("cannot stat {}: {error}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    private(&path, &metadata)?;
    Ok(Some((file, metadata)))
}

/// Replaces the file `name` in a private folder (opened from `folder_path`) with
/// `contents`: a new 0600 file beside it, written and synced, then renamed over it, so a
/// reader sees the old file or the new one, never half of one, and a planted file (a
/// link, a file of another owner) is replaced rather than written through.
pub fn replace_in(
    folder: &fs::File,
    folder_path: &Path,
    name: &OsStr,
    contents: &[u8],
) -> Result<(), String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut temporary_name = OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temporary = folder_path.join(&temporary_name);
    let result = (|| {
        let mut file = open_in(
            folder,
            &temporary_name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )
        .map_err(|error| format!("cannot create {}: {error}", temporary.display()))?;
        // The umask can only take bits away; set the mode explicitly all the same.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|error| format!("cannot chmod {}: {error}", temporary.display()))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
        rename_in(folder, &temporary_name, name).map_err(|error| {
            format!(
                "cannot rename {} to {}: {error}",
                temporary.display(),
                folder_path.join(name).display()
            )
        })
    })();
    if result.is_err() {
        let _ = remove_in(folder, &temporary_name);
    }
    result
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
