//! Test infrastructure shared by the integration tests and the demo: certificates made at
//! run time (`pki`), an HTTPS server with named faults (`https`), a server that misbehaves
//! in named hostile ways (`hostile`), a CONNECT proxy (`proxy`), a real-libpam client
//! (`pam`), one login in a child process of its own (`isolated`), temporary directories
//! (`tmp`), the ServiceNow, Remedy and portal simulators (`servicenow`, `remedy`,
//! `portal`), and a private sshd with a real ssh client (`sshd`).

// Each integration test uses only part of this; unused helpers are expected.
#![allow(dead_code)]
// Servers, simulators and the harness run on real time and wait for real processes; the
// rule that time is read through a Clock (clippy.toml) is the module's, not theirs.
#![allow(clippy::disallowed_methods)]

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
