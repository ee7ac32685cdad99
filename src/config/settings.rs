//! The merged settings: file entries and pam.d overrides in one map keyed by [`Key`]
//! (unknown and duplicate keys refused on the way in), with typed accessors that take
//! their defaults from the key table and report a bad value at its file:line.
//!
//! Every accessor reaches the entries through [`Settings::entry`], and the map holds only
//! keys of the table: the code cannot read a key the table does not list. In a test build
//! `entry` also records which keys were consulted, so that a key the table lists but
//! `build()` never reads fails a test (see `build.rs`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::Config;
use super::TicketingSystem;
use super::keys::{self, DefaultValue, Key};
use super::syntax::{ConfigError, Entry, Origin, error, split_list};
use crate::url::{BaseUrl, parse_https_url};

/// Merges file entries and argument overrides into a map, refusing unknown and duplicate
/// keys, then builds the typed configuration; the first problem is the error.
pub fn from_entries(
    path: &Path,
    file_entries: Vec<Entry>,
    overrides: Vec<Entry>,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let merged = merge(file_entries, overrides, &mut problems, true);
    if let Some(problem) = problems.into_iter().next() {
        return Err(problem);
    }
    Settings::new(path, merged).build()
}

/// [`from_entries`] after `earlier` problems (of the file's syntax), going on after a
/// problem unless `stop_at_first`: every problem, in the order the module would meet them.
pub(super) fn from_entries_reporting(
    path: &Path,
    file_entries: Vec<Entry>,
    overrides: Vec<Entry>,
    earlier: Vec<ConfigError>,
    stop_at_first: bool,
) -> Result<Config, Vec<ConfigError>> {
    let mut problems = earlier;
    if stop_at_first && !problems.is_empty() {
        return Err(problems);
    }
    let merged = merge(file_entries, overrides, &mut problems, stop_at_first);
    if stop_at_first && !problems.is_empty() {
        return Err(problems);
    }
    // A line that was refused may have set a key: that the key is missing is then no
    // news, so such errors are left out.
    let incomplete = !problems.is_empty();
    let settings = Settings::reporting(path, merged, stop_at_first, incomplete);
    match settings.build_reporting_all() {
        Ok(config) if problems.is_empty() => Ok(config),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// The file's entries, each key at most once, then the overrides, each at most once,
/// replacing the file's value. An unknown or repeated key is a problem, and its entry is
/// left out.
pub(super) fn merge(
    file_entries: Vec<Entry>,
    overrides: Vec<Entry>,
    problems: &mut Vec<ConfigError>,
    stop_at_first: bool,
) -> BTreeMap<Key, Entry> {
    let mut settings: BTreeMap<Key, Entry> = BTreeMap::new();
    for entry in file_entries {
        if stop_at_first && !problems.is_empty() {
            return settings;
        }
        let key = match keys::known(&entry) {
            Ok(key) => key,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        if let Some(previous) = settings.get(&key) {
            problems.push(error(
                &entry.origin,
                format!("{} is set twice (first at {})", entry.key, previous.origin),
            ));
            continue;
        }
        settings.insert(key, entry);
    }
    let mut overridden: BTreeMap<Key, Origin> = BTreeMap::new();
    for entry in overrides {
        if stop_at_first && !problems.is_empty() {
            return settings;
        }
        let key = match keys::known(&entry) {
            Ok(key) => key,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        if let Some(previous) = overridden.get(&key) {
            problems.push(error(
                &entry.origin,
                format!("{} is given twice (first at {})", entry.key, previous),
            ));
            continue;
        }
        overridden.insert(key, entry.origin.clone());
        settings.insert(key, entry);
    }
    settings
}

/// The merged entries, with typed accessors that report errors at the entry's origin,
/// and the problems found so far.
pub(super) struct Settings {
    pub(super) path: PathBuf,
    entries: BTreeMap<Key, Entry>,
    problems: RefCell<Vec<ConfigError>>,
    /// The module's way: once a problem is found, no further check runs.
    stop_at_first: bool,
    /// Some lines were refused before the settings were made, so a key that seems
    /// missing may be on one of them.
    incomplete: bool,
    /// Every key an accessor was asked for (test builds only).
    #[cfg(test)]
    pub(super) consulted: std::cell::RefCell<std::collections::BTreeSet<Key>>,
}

impl Settings {
    /// Settings that stop at the first problem, as the module does.
    pub(super) fn new(path: &Path, entries: BTreeMap<Key, Entry>) -> Settings {
        Settings::reporting(path, entries, true, false)
    }

    pub(super) fn reporting(
        path: &Path,
        entries: BTreeMap<Key, Entry>,
        stop_at_first: bool,
        incomplete: bool,
    ) -> Settings {
        Settings {
            path: path.to_path_buf(),
            entries,
            problems: RefCell::new(Vec::new()),
            stop_at_first,
            incomplete,
            #[cfg(test)]
            consulted: Default::default(),
        }
    }

    /// Runs one check: its value, or `None` with the problem recorded. Once a problem is
    /// recorded, a settings that stops at the first runs no further check.
    pub(super) fn check<T>(&self, read: impl FnOnce() -> Result<T, ConfigError>) -> Option<T> {
        if self.stop_at_first && self.has_problems() {
            return None;
        }
        match read() {
            Ok(value) => Some(value),
            Err(problem) => {
                self.problems.borrow_mut().push(problem);
                None
            }
        }
    }

    /// Records a problem found by combining keys that were read without one.
    pub(super) fn report(&self, problem: ConfigError) {
        if !(self.stop_at_first && self.has_problems()) {
            self.problems.borrow_mut().push(problem);
        }
    }

    /// Records that a required key is missing, unless a refused line may have set it.
    pub(super) fn report_missing(&self, problem: ConfigError) {
        if !self.incomplete {
            self.report(problem);
        }
    }

    pub(super) fn has_problems(&self) -> bool {
        !self.problems.borrow().is_empty()
    }

    pub(super) fn take_problems(&self) -> Vec<ConfigError> {
        self.problems.take()
    }

    /// The first of `problems` (there is always one when this is called).
    pub(super) fn first_problem(&self, problems: Vec<ConfigError>) -> ConfigError {
        problems.into_iter().next().unwrap_or_else(|| {
            error(
                &self.whole(),
                "internal error: the configuration was refused without a reason",
            )
        })
    }

    pub(super) fn whole(&self) -> Origin {
        Origin::Whole {
            path: self.path.clone(),
        }
    }

    /// The one way to a key's entry: every accessor goes through here.
    pub(super) fn entry(&self, key: Key) -> Option<&Entry> {
        #[cfg(test)]
        self.consulted.borrow_mut().insert(key);
        self.entries.get(&key)
    }

    /// Where the key was set, or the whole file when it was not.
    pub(super) fn origin(&self, key: Key) -> Origin {
        self.entry(key)
            .map_or_else(|| self.whole(), |entry| entry.origin.clone())
    }

    /// The table gives `key` a default of another kind than its accessor reads: a
    /// mistake in the table, reported (the login fails closed), never guessed around.
    pub(super) fn table_error(&self, key: Key, kind: &str) -> ConfigError {
        error(
            &self.whole(),
            format!("internal error: the key table gives {key} no {kind} default"),
        )
    }

    /// The value as written with its origin, or else the table's default text (for
    /// `system`) with the whole file as origin; `None` for a key without a default.
    pub(super) fn text_or_default(
        &self,
        key: Key,
        system: Option<TicketingSystem>,
    ) -> Result<Option<(String, Origin)>, ConfigError> {
        if let Some(entry) = self.entry(key) {
            return Ok(Some((entry.value.clone(), entry.origin.clone())));
        }
        let default = key.spec().default;
        match (default.text(system), default) {
            (Some(text), _) => Ok(Some((text.to_string(), self.whole()))),
            (None, DefaultValue::Required | DefaultValue::Unset(_)) => Ok(None),
            (None, _) => Err(self.table_error(key, "text")),
        }
    }

    /// The value as written, or else the table's default text: for keys that have one.
    pub(super) fn text(
        &self,
        key: Key,
        system: Option<TicketingSystem>,
    ) -> Result<(String, Origin), ConfigError> {
        self.text_or_default(key, system)?
            .ok_or_else(|| self.table_error(key, "text"))
    }

    /// A text that must not be blank, trimmed.
    pub(super) fn non_empty_text(
        &self,
        key: Key,
        system: Option<TicketingSystem>,
    ) -> Result<String, ConfigError> {
        let (value, origin) = self.text(key, system)?;
        if value.trim().is_empty() {
            return Err(error(&origin, format!("{key} must not be empty")));
        }
        Ok(value.trim().to_string())
    }

    pub(super) fn flag(&self, key: Key) -> Result<bool, ConfigError> {
        let DefaultValue::Flag(default) = key.spec().default else {
            return Err(self.table_error(key, "Yes/No"));
        };
        let Some(entry) = self.entry(key) else {
            return Ok(default);
        };
        match entry.value.trim().to_ascii_lowercase().as_str() {
            "yes" => Ok(true),
            "no" => Ok(false),
            _ => Err(error(
                &entry.origin,
                format!("{key} must be Yes or No, not {:?}", entry.value),
            )),
        }
    }

    pub(super) fn number(&self, key: Key) -> Result<u64, ConfigError> {
        let DefaultValue::Number { default, min, max } = key.spec().default else {
            return Err(self.table_error(key, "number"));
        };
        let Some(entry) = self.entry(key) else {
            return Ok(default);
        };
        match entry.value.trim().parse::<u64>() {
            Ok(number) if (min..=max).contains(&number) => Ok(number),
            _ => Err(error(
                &entry.origin,
                format!(
                    "{key} must be a whole number from {min} to {max}, not {:?}",
                    entry.value
                ),
            )),
        }
    }

    /// A list that is empty when not set.
    pub(super) fn list(&self, key: Key) -> Vec<String> {
        self.entry(key)
            .map(|entry| split_list(&entry.value))
            .unwrap_or_default()
    }

    /// A list of field names, the table's when not set, never empty.
    pub(super) fn field_list(&self, key: Key) -> Result<Vec<String>, ConfigError> {
        let DefaultValue::List(default) = key.spec().default else {
            return Err(self.table_error(key, "list"));
        };
        match self.entry(key) {
            None => Ok(default.iter().map(|item| item.to_string()).collect()),
            Some(entry) => {
                let items = split_list(&entry.value);
                if items.is_empty() {
                    return Err(error(
                        &entry.origin,
                        format!("{key} must name at least one field"),
                    ));
                }
                Ok(items)
            }
        }
    }

    /// A regular expression (the table's default for `system` when not set); `anchor`
    /// makes it match the whole text.
    pub(super) fn regex(
        &self,
        key: Key,
        system: Option<TicketingSystem>,
        anchor: bool,
    ) -> Result<Option<Regex>, ConfigError> {
        let Some((pattern, origin)) = self.text_or_default(key, system)? else {
            return Ok(None);
        };
        if pattern.trim().is_empty() {
            return Err(error(&origin, format!("{key} must not be empty")));
        }
        let not_a_regex = |regex_error: regex::Error| {
            error(
                &origin,
                format!("{key} is not a valid regex: {regex_error}"),
            )
        };
        let source = if anchor {
            // The pattern must be a regex on its own: `A)|(.*` is not, but would pass
            // inside the anchors as `^(?:A)|(.*)$`, which matches every ID (found by
            // fuzz/config).
            Regex::new(&pattern).map_err(not_a_regex)?;
            format!("^(?:{pattern})$")
        } else {
            pattern.clone()
        };
        Regex::new(&source).map(Some).map_err(not_a_regex)
    }

    /// A Validate* switch and its Allowed* list: `Some(list)` when the check is on.
    pub(super) fn checked_list(
        &self,
        switch: Key,
        list_key: Key,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        if !self.flag(switch)? {
            // A list without its switch would look like a check in force and never run
            // (an admin adding `[AllowedIncidentTicketStates=…]` to one pam.d line, say).
            if let Some(entry) = self
                .entry(list_key)
                .filter(|entry| !split_list(&entry.value).is_empty())
            {
                return Err(error(
                    &entry.origin,
                    format!(
                        "{list_key} is set but {switch} is not Yes, so the list would never be checked; set {switch}=Yes or remove the list"
                    ),
                ));
            }
            return Ok(None);
        }
        let allowed = self.list(list_key);
        if allowed.is_empty() {
            // An empty list given on the pam.d line is what made the switch in the file
            // wrong: name the argument.
            return Err(error(
                &self.blame(self.origin(switch), &[list_key]),
                format!("{switch} is Yes but {list_key} is empty: nothing could ever pass"),
            ));
        }
        Ok(Some(allowed))
    }

    pub(super) fn https_url(&self, key: Key) -> Result<Option<BaseUrl>, ConfigError> {
        self.entry(key)
            .map(|entry| {
                parse_https_url(&entry.value)
                    .map_err(|problem| error(&entry.origin, format!("{key}: {problem}")))
            })
            .transpose()
    }

    pub(super) fn absolute_path(&self, key: Key) -> Result<Option<(PathBuf, Origin)>, ConfigError> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        let path = PathBuf::from(entry.value.trim());
        if !path.is_absolute() {
            return Err(error(
                &entry.origin,
                format!("{key} must be an absolute path, not {:?}", entry.value),
            ));
        }
        Ok(Some((path, entry.origin.clone())))
    }

    /// An absolute path, the table's when not set.
    pub(super) fn path_or_default(&self, key: Key) -> Result<PathBuf, ConfigError> {
        if let Some((path, _)) = self.absolute_path(key)? {
            return Ok(path);
        }
        match key.spec().default {
            DefaultValue::Text(path) => Ok(PathBuf::from(path)),
            _ => Err(self.table_error(key, "path")),
        }
    }
}
