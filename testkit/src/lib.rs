//! pam_ticket's test kit, shared by the integration tests and the examples: certificates
//! made at run time (`pki`), an HTTPS server with named faults (`https`), a server that
//! misbehaves in named hostile ways (`hostile`), a CONNECT proxy (`proxy`), a real-libpam
//! client (`pam`), one login in a child process of its own (`isolated`), a child test
//! with a private `/dev/log` (`devlog`), temporary directories (`tmp`), root-only files
//! and audit records (`files`), the ServiceNow, Remedy and portal simulators
//! (`servicenow`, `remedy`, `portal`), and a private sshd with a real ssh client (`sshd`).
//!
//! It does not link pam_ticket: it reaches the module through the real libpam and over
//! HTTPS only. Its own tests (the unit tests of each module and `tests/selftest.rs`) prove
//! the kit itself and run once, here, not in every test binary that uses it.

pub mod devlog;
pub mod files;
pub mod hostile;
pub mod http;
pub mod https;
pub mod isolated;
pub mod pam;
pub mod pki;
pub mod portal;
pub mod proxy;
pub mod remedy;
pub mod servicenow;
pub mod sshd;
pub mod tmp;
