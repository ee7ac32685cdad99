//! The whole configuration load from text: `config::parse_entries` on the file,
//! `config::parse_module_arguments` on the pam.d arguments, then `config::from_entries`,
//! which validates everything and builds the typed `Config`.
//!
//! Input: the configuration file's text; after a NUL, the pam.d module arguments, one per
//! NUL-separated piece. Settings that name a file the parser opens (the account files,
//! CAFile, PSMPServerConfig) are pointed at fixture files (see `fixtures`), chosen by the
//! length of the value; a relative path is kept, so that its refusal is fuzzed too.
//!
//! Regular expressions are compiled by the regex crate, which is fuzzed upstream; an input
//! whose regex settings hold a counted repetition (`{`) or more than 100 characters is
//! skipped, because compiling such patterns took three quarters of the time and exercises
//! nothing of ours.
//!
//! Invariants: no panic; every error names a line of the file, an argument, or the file;
//! a key set twice in the file is an error; an accepted configuration keeps every promise
//! the parser makes about its values (ranges, https URLs, non-empty lists, absolute paths,
//! a prompt without control characters, no gateway check in force in portal mode, a
//! TicketFormatRegex that is a regex on its own, so that the anchors put around it hold).

#![no_main]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use pam_ticket::backend::{self, remedy};
use pam_ticket::config::{self, BaseUrl, Config, ConfigError, Entry, Origin};
use pam_ticket::ticket::TicketKind;
use pam_ticket_fuzz::{assert_shown_text, fixtures};

const CONFIG_PATH: &str = "/etc/security/pam_ticket.conf";

/// Points a setting that names a file the parser reads at a fixture file.
fn redirect(entry: &mut Entry) {
    if !entry.value.trim().starts_with('/') {
        return;
    }
    let fixtures = fixtures();
    let pick = |files: &[PathBuf; 3]| files[entry.value.len() % 3].clone();
    let fixture = match entry.key.as_str() {
        "ConnectionAccountFile" | "PortalAccountFile" => pick(&fixtures.accounts),
        "PSMPServerConfig" => pick(&fixtures.psmp_configs),
        "CAFile" => fixtures.ca_bundle.clone(),
        _ => return,
    };
    entry.value = fixture.display().to_string();
}

fn check_error(error: &ConfigError, file_lines: usize, arguments: usize) {
    match &error.origin {
        // Lines of the fuzzed file; the fixtures (PSMPServerConfig) have lines of their own.
        Origin::File { path, line } if path == Path::new(CONFIG_PATH) => assert!(
            *line >= 1 && *line <= file_lines.max(1),
            "line {line} of {file_lines}: {error}"
        ),
        Origin::File { .. } => {}
        Origin::ModuleArgument { index, .. } => {
            assert!(
                *index >= 1 && *index <= arguments,
                "argument {index}: {error}"
            );
        }
        Origin::Whole { .. } => {}
    }
    let _ = error.to_string();
}

/// An accepted SystemURL or PortalURL: https, no user info, query or fragment, and every
/// request URL the module builds from it is one that ureq accepts. A URL that ureq would
/// refuse must be a configuration error at load time, never a failure at login time.
fn check_url(url: &BaseUrl, request_urls: &[String]) {
    let base = url.to_string();
    assert!(base.starts_with("https://"), "{base:?}");
    assert!(!base.contains(['?', '#', '@']), "{base:?}");
    assert!(!base.ends_with('/'), "{base:?}");
    assert!(url.port > 0 && !url.host.is_empty(), "{base:?}");
    for request_url in request_urls {
        if let Err(error) = ureq::http::Uri::try_from(request_url.as_str()) {
            panic!(
                "the configuration accepted {base:?}, but ureq refuses {request_url:?}: {error}"
            );
        }
    }
}

fn check_config(config: &Config) {
    assert!((1..=120).contains(&config.timeout.as_secs()));
    assert!((1..=10).contains(&config.max_attempts));
    assert!((60..=86_400).contains(&config.remedy.token_lifetime.as_secs()));
    assert!(!config.prompt.trim().is_empty());
    assert_shown_text(&config.prompt, "the prompt");
    for list in config
        .allowed_states
        .values()
        .chain(config.allowed_approvals.values())
    {
        assert!(!list.is_empty(), "a check in force with nothing allowed");
        for item in list {
            assert!(!item.is_empty() && item.trim() == item && !item.contains(','));
        }
    }
    if let Some(url) = &config.system_url {
        let probe = |kind| {
            let spec = remedy::form_spec(&config.remedy, kind).expect("a Remedy kind");
            remedy::query_url(url, &spec, &backend::probe_id(kind), true)
        };
        let request_urls = [
            url.join("/api/now/table/incident"),
            url.join("/api/jwt/login"),
            probe(TicketKind::Incident),
            probe(TicketKind::Change),
        ];
        check_url(url, &request_urls);
    }
    if let Some(portal) = &config.portal {
        let logon = format!("/API/auth/{}/Logon/", portal.auth_method.path_segment());
        check_url(&portal.url, &[portal.url.join(&logon)]);
    }
    if let Some(proxy) = &config.https_proxy {
        assert!(
            proxy.port > 0,
            "HTTPSProxy {proxy} was accepted without a port"
        );
        if let Err(error) = ureq::Proxy::new(&proxy.to_string()) {
            panic!("the configuration accepted HTTPSProxy {proxy}, but ureq refuses it: {error}");
        }
    }

    if let Some(path) = &config.audit_log_file {
        assert!(path.is_absolute());
    }
    assert!(config.cache_directory.is_absolute());
    match &config.portal {
        Some(portal) => {
            assert!(config.allowed_states.is_empty());
            assert!(config.allowed_approvals.is_empty());
            assert!(config.ci_check.is_none());
            assert!(!config.validate_operation_time && !config.validate_requesting_user);
            assert!(!portal.ticketing_system_name.is_empty());
            assert!(!portal.reason_template.is_empty());
            assert!(!portal.account.username.is_empty());
        }
        None => {
            assert!(config.ticketing_system.is_some(), "no system and no portal");
            if config.validate_ticket_number {
                assert!(config.system_url.is_some() && config.connection_account.is_some());
            }
        }
    }
    let remedy = &config.remedy;
    for text in [
        &remedy.incident_form,
        &remedy.incident_id_field,
        &remedy.incident_status_field,
        &remedy.change_form,
        &remedy.change_id_field,
        &remedy.change_status_field,
        &remedy.change_approval_field,
        &remedy.change_start_field,
        &remedy.change_end_field,
    ] {
        assert!(!text.is_empty() && text.trim() == text, "{text:?}");
    }
    assert!(!remedy.incident_requester_fields.is_empty());
    assert!(!remedy.change_requester_fields.is_empty());
    assert!(
        config.ca_bundle.is_some(),
        "CAFile is always set by this target"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file_text, argument_text) = text.split_once('\0').unwrap_or((text, ""));
    let argument_list: Vec<String> = if argument_text.is_empty() {
        Vec::new()
    } else {
        argument_text.split('\0').map(str::to_string).collect()
    };
    let file_lines = file_text.lines().count();
    let path = Path::new(CONFIG_PATH);

    let file_entries = match config::parse_entries(file_text, path) {
        Ok(entries) => entries,
        Err(error) => return check_error(&error, file_lines, 0),
    };
    for entry in &file_entries {
        let key_is_word = entry
            .key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && entry
                .key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        assert!(key_is_word, "key {:?}", entry.key);
        assert!(
            !entry.value.contains('\n'),
            "a value across lines: {:?}",
            entry.value
        );
        assert!(
            matches!(entry.origin, Origin::File { line, .. } if line >= 1 && line <= file_lines)
        );
    }
    let mut file_entries = file_entries;
    let argument_count = argument_list.len();
    let arguments = match config::parse_module_arguments(&argument_list, "sshd") {
        Ok(arguments) => arguments,
        Err(error) => return check_error(&error, file_lines, argument_count),
    };
    let is_regex_key = |key: &str| key.ends_with("Regex") || key.ends_with("Identification");
    if file_entries
        .iter()
        .chain(&arguments.overrides)
        .any(|entry| {
            is_regex_key(&entry.key) && (entry.value.contains('{') || entry.value.len() > 100)
        })
    {
        return;
    }
    // The TicketFormatRegex in force: an argument overrides the file.
    let ticket_format = arguments
        .overrides
        .iter()
        .chain(&file_entries)
        .find(|entry| entry.key == "TicketFormatRegex")
        .map(|entry| entry.value.clone());
    let mut overrides = arguments.overrides;
    let mut keys = HashSet::new();
    let duplicate_in_file = !file_entries
        .iter()
        .all(|entry| keys.insert(entry.key.clone()));
    for entry in file_entries.iter_mut().chain(overrides.iter_mut()) {
        redirect(entry);
    }
    // Without CAFile the system bundle would be read on every run: use the fixture.
    if !keys.contains("CAFile") && !overrides.iter().any(|entry| entry.key == "CAFile") {
        file_entries.push(Entry {
            key: "CAFile".to_string(),
            value: fixtures().ca_bundle.display().to_string(),
            origin: Origin::File {
                path: path.to_path_buf(),
                line: file_lines.max(1),
            },
        });
    }

    match config::from_entries(path, file_entries, overrides) {
        Ok(config) => {
            assert!(
                !duplicate_in_file,
                "a key set twice in the file was accepted"
            );
            check_config(&config);
            if let (Some(pattern), Some(anchored)) = (&ticket_format, &config.ticket_format) {
                assert_eq!(anchored.as_str(), format!("^(?:{pattern})$"));
                if let Err(error) = regex::Regex::new(pattern) {
                    panic!(
                        "TicketFormatRegex {pattern:?} was accepted, but is not a regex on its own, so the anchors around it do not hold: {error}"
                    );
                }
            }
        }
        Err(error) => check_error(&error, file_lines, argument_count),
    }
});
