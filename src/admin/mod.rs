//! The admin tool's subcommands. Each runs the same code the module runs (configuration,
//! HTTP client, backends, policy), so what the tool reports is what a login would see.

pub mod args;
pub mod ca;
pub mod ca_check;
pub mod check;
pub mod doctor;
pub mod hash_code;
pub mod test_ticket;
pub mod trust_store;
pub mod x509;
