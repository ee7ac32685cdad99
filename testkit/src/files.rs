//! Files a test writes for the module and reads back from it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

/// Writes `text` to `path` with mode 0600, as the module wants its configuration, account
/// and bypass files.
pub fn write_root_only(path: &Path, text: &str) {
    fs::write(path, text).expect("write a root-only file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 0600");
}

/// The records of a JSON-lines audit file, oldest first; none when it does not exist.
pub fn audit_records(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmp::TestDir;

    #[test]
    fn a_root_only_file_has_mode_0600_and_its_text() {
        let dir = TestDir::new("files-root-only");
        let path = dir.join("account");
        fs::write(&path, "old").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        write_root_only(&path, "Username=\"a\"\n");
        let metadata = fs::metadata(&path).expect("metadata");
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&path).expect("read"), "Username=\"a\"\n");
    }

    #[test]
    fn audit_records_are_read_line_by_line_and_none_without_a_file() {
        let dir = TestDir::new("files-audit");
        let path = dir.join("audit.jsonl");
        assert!(audit_records(&path).is_empty());
        fs::write(&path, "{\"decision\":\"allow\"}\n{\"decision\":\"deny\"}\n").expect("write");
        let records = audit_records(&path);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["decision"], "allow");
        assert_eq!(records[1]["decision"], "deny");
    }
}
