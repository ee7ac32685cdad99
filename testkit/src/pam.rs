//! Drives the real libpam, the way sshd does, against a service file written by the test.
//!
//! ```ignore
//! let service = PamService::new(dir.path(), "ticket", &module_path(), &args);
//! let outcome = authenticate(&service, &Login::new("alice").rhost("10.0.0.1").answer("INC0010001"));
//! assert_eq!(outcome.code, PAM_SUCCESS, "{outcome:?}");
//! ```
//!
//! What libpam returns is not always what the module returned: with the `auth required`
//! line that `PamService::new` writes, a module's own code comes through unchanged for every
//! code except `PAM_IGNORE`. A stack whose only module returns `PAM_IGNORE` fails with
//! `PAM_PERM_DENIED` (libpam's "no module made a decision"), and a module that cannot be
//! loaded fails with `PAM_MODULE_UNKNOWN`. `testkit/tests/selftest.rs` proves each of these
//! with `pam_debug.so`.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

// Return codes, checked against /usr/include/security/_pam_types.h (Linux-PAM 1.5.2).
pub const PAM_SUCCESS: i32 = 0;
pub const PAM_OPEN_ERR: i32 = 1;
pub const PAM_SYMBOL_ERR: i32 = 2;
pub const PAM_SERVICE_ERR: i32 = 3;
pub const PAM_SYSTEM_ERR: i32 = 4;
pub const PAM_BUF_ERR: i32 = 5;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_CRED_INSUFFICIENT: i32 = 8;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_USER_UNKNOWN: i32 = 10;
pub const PAM_MAXTRIES: i32 = 11;
pub const PAM_SESSION_ERR: i32 = 14;
pub const PAM_CRED_ERR: i32 = 17;
pub const PAM_CONV_ERR: i32 = 19;
pub const PAM_TRY_AGAIN: i32 = 24;
pub const PAM_IGNORE: i32 = 25;
pub const PAM_ABORT: i32 = 26;
pub const PAM_MODULE_UNKNOWN: i32 = 28;

// Conversation message styles.
pub const PAM_PROMPT_ECHO_OFF: c_int = 1;
pub const PAM_PROMPT_ECHO_ON: c_int = 2;
pub const PAM_ERROR_MSG: c_int = 3;
pub const PAM_TEXT_INFO: c_int = 4;

// Items and flags.
const PAM_TTY: c_int = 3;
const PAM_RHOST: c_int = 4;
const PAM_ESTABLISH_CRED: c_int = 2;

/// The symbolic name of a PAM return code, for readable assertion messages.
pub fn code_name(code: i32) -> &'static str {
    match code {
        PAM_SUCCESS => "PAM_SUCCESS",
        PAM_OPEN_ERR => "PAM_OPEN_ERR",
        PAM_SYMBOL_ERR => "PAM_SYMBOL_ERR",
        PAM_SERVICE_ERR => "PAM_SERVICE_ERR",
        PAM_SYSTEM_ERR => "PAM_SYSTEM_ERR",
        PAM_BUF_ERR => "PAM_BUF_ERR",
        PAM_PERM_DENIED => "PAM_PERM_DENIED",
        PAM_AUTH_ERR => "PAM_AUTH_ERR",
        PAM_CRED_INSUFFICIENT => "PAM_CRED_INSUFFICIENT",
        PAM_AUTHINFO_UNAVAIL => "PAM_AUTHINFO_UNAVAIL",
        PAM_USER_UNKNOWN => "PAM_USER_UNKNOWN",
        PAM_MAXTRIES => "PAM_MAXTRIES",
        12 => "PAM_NEW_AUTHTOK_REQD",
        13 => "PAM_ACCT_EXPIRED",
        PAM_SESSION_ERR => "PAM_SESSION_ERR",
        15 => "PAM_CRED_UNAVAIL",
        16 => "PAM_CRED_EXPIRED",
        PAM_CRED_ERR => "PAM_CRED_ERR",
        18 => "PAM_NO_MODULE_DATA",
        PAM_CONV_ERR => "PAM_CONV_ERR",
        20 => "PAM_AUTHTOK_ERR",
        21 => "PAM_AUTHTOK_RECOVERY_ERR",
        22 => "PAM_AUTHTOK_LOCK_BUSY",
        23 => "PAM_AUTHTOK_DISABLE_AGING",
        PAM_TRY_AGAIN => "PAM_TRY_AGAIN",
        PAM_IGNORE => "PAM_IGNORE",
        PAM_ABORT => "PAM_ABORT",
        27 => "PAM_AUTHTOK_EXPIRED",
        PAM_MODULE_UNKNOWN => "PAM_MODULE_UNKNOWN",
        29 => "PAM_BAD_ITEM",
        30 => "PAM_CONV_AGAIN",
        31 => "PAM_INCOMPLETE",
        _ => "PAM_<unknown code>",
    }
}

#[allow(non_camel_case_types)]
#[repr(C)]
pub struct pam_message {
    pub msg_style: c_int,
    pub msg: *const c_char,
}

#[allow(non_camel_case_types)]
#[repr(C)]
pub struct pam_response {
    pub resp: *mut c_char,
    pub resp_retcode: c_int,
}

#[allow(non_camel_case_types)]
#[repr(C)]
pub struct pam_conv {
    pub conv:
        extern "C" fn(c_int, *mut *const pam_message, *mut *mut pam_response, *mut c_void) -> c_int,
    pub appdata_ptr: *mut c_void,
}

/// Opaque `pam_handle_t`.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct pam_handle_t {
    _private: [u8; 0],
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const pam_conv,
        confdir: *const c_char,
        pamh: *mut *mut pam_handle_t,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut pam_handle_t, flags: c_int) -> c_int;
    fn pam_setcred(pamh: *mut pam_handle_t, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut pam_handle_t, flags: c_int) -> c_int;
    fn pam_open_session(pamh: *mut pam_handle_t, flags: c_int) -> c_int;
    fn pam_close_session(pamh: *mut pam_handle_t, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut pam_handle_t, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_getenvlist(pamh: *mut pam_handle_t) -> *mut *mut c_char;
    fn pam_putenv(pamh: *mut pam_handle_t, name_value: *const c_char) -> c_int;
    fn pam_end(pamh: *mut pam_handle_t, status: c_int) -> c_int;
    fn pam_strerror(pamh: *mut pam_handle_t, errnum: c_int) -> *const c_char;
}

/// A PAM service file in a directory of the test's own, passed to `pam_start_confdir`.
#[derive(Clone, Debug)]
pub struct PamService {
    dir: PathBuf,
    name: String,
}

impl PamService {
    /// Writes `<dir>/<name>` with the single line `auth required <module_path> <args...>`.
    pub fn new(dir: &Path, name: &str, module_path: &Path, args: &[String]) -> PamService {
        let text = format!("auth required {}\n", module_line(module_path, args));
        PamService::with_text(dir, name, &text)
    }

    /// Writes `<dir>/<name>` with exactly `text`, for stacks of several modules.
    pub fn with_text(dir: &Path, name: &str, text: &str) -> PamService {
        fs::create_dir_all(dir).expect("create the PAM configuration directory");
        fs::write(dir.join(name), text).expect("write the PAM service file");
        PamService {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// A service file that is already there, e.g. written by the parent of a child
    /// process that runs the login (`isolated.rs`).
    pub fn existing(dir: &Path, name: &str) -> PamService {
        PamService {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

/// `<module_path> <args...>`, quoted for a service file: an argument with whitespace (or
/// starting with `[`) is written in Linux-PAM bracket syntax `[Key=Value with spaces]`,
/// where a `]` inside is escaped as `\]`. Use it to build `with_text` stacks.
pub fn module_line(module_path: &Path, args: &[String]) -> String {
    let mut line = module_path.display().to_string();
    for arg in args {
        line.push(' ');
        if arg.contains(char::is_whitespace) || arg.starts_with('[') {
            line.push('[');
            line.push_str(&arg.replace(']', "\\]"));
            line.push(']');
        } else {
            line.push_str(arg);
        }
    }
    line
}

/// Who logs in and what they type.
#[derive(Clone, Debug, Default)]
pub struct Login {
    pub user: String,
    /// Set as `PAM_RHOST` when present, as sshd does.
    pub rhost: Option<String>,
    /// One per prompt, in order. `None` makes the conversation fail that prompt with
    /// `PAM_CONV_ERR` (a client that hung up). Prompts beyond the list fail the same way
    /// and are counted in `PamOutcome::unanswered`.
    pub answers: Vec<Option<String>>,
    /// `pam_start` gets no user name, so libpam asks for one (`login: `) when the module
    /// wants it; the first answer gives it.
    pub user_from_prompt: bool,
    /// Runs with each prompt's text before it is answered: lets a test change the world
    /// at a known point of a login.
    pub on_prompt: Option<PromptHook>,
    /// `NAME=value` pairs put into the PAM environment right after `pam_start`, before any
    /// module runs: what an application, or a module above in the stack, left there.
    pub preset_env: Vec<(String, String)>,
}

/// A closure run before each prompt is answered (see `Login::on_prompt`).
#[derive(Clone)]
pub struct PromptHook(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for PromptHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PromptHook")
    }
}

impl Login {
    pub fn new(user: &str) -> Login {
        Login {
            user: user.to_string(),
            ..Login::default()
        }
    }

    pub fn rhost(mut self, rhost: &str) -> Login {
        self.rhost = Some(rhost.to_string());
        self
    }

    pub fn answer(mut self, answer: &str) -> Login {
        self.answers.push(Some(answer.to_string()));
        self
    }

    /// No user name for `pam_start`: the module's `pam_get_user` makes libpam prompt for
    /// it, and the first answer is the user name.
    pub fn user_from_prompt(mut self) -> Login {
        self.user_from_prompt = true;
        self.answers.insert(0, Some(self.user.clone()));
        self
    }

    /// Runs `hook` with each prompt's text before the prompt is answered.
    pub fn on_prompt(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Login {
        self.on_prompt = Some(PromptHook(Arc::new(hook)));
        self
    }

    /// Puts `name=value` into the PAM environment before `pam_authenticate`.
    pub fn preset_env(mut self, name: &str, value: &str) -> Login {
        self.preset_env.push((name.to_string(), value.to_string()));
        self
    }

    /// The next prompt gets `PAM_CONV_ERR`.
    pub fn hang_up(mut self) -> Login {
        self.answers.push(None);
        self
    }
}

/// One thing the module said through the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Prompt { echo: bool, text: String },
    Error(String),
    Info(String),
}

#[derive(Clone, Debug)]
pub struct PamOutcome {
    /// What `pam_authenticate` returned.
    pub code: i32,
    pub code_name: &'static str,
    /// libpam's `pam_strerror` text for `code`.
    pub message: String,
    pub events: Vec<Event>,
    /// `pam_getenvlist` after authentication (and `pam_setcred` when that ran).
    pub env: BTreeMap<String, String>,
    /// `pam_setcred(PAM_ESTABLISH_CRED)`, called only when authentication succeeded.
    pub setcred_code: Option<i32>,
    /// Prompts that came after the scripted answers ran out.
    pub unanswered: usize,
    /// Wall time of `pam_authenticate` alone.
    pub elapsed: Duration,
}

impl PamOutcome {
    pub fn prompts(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Prompt { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Error(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn infos(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Info(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Every message the user saw (prompts, errors, infos), in order, one per line.
    pub fn transcript(&self) -> String {
        self.events
            .iter()
            .map(|event| match event {
                Event::Prompt { echo, text } => {
                    format!("PROMPT({}): {text}", if *echo { "echo" } else { "noecho" })
                }
                Event::Error(text) => format!("ERROR: {text}"),
                Event::Info(text) => format!("INFO: {text}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `outcome` returned `code`; otherwise fails showing what it returned and the transcript.
pub fn assert_code(outcome: &PamOutcome, code: i32) {
    assert_eq!(
        outcome.code,
        code,
        "got {} ({}); transcript:\n{}",
        outcome.code_name,
        outcome.message,
        outcome.transcript()
    );
}

/// What the conversation function works on, reached through `appdata_ptr`.
struct ConvState {
    answers: VecDeque<Option<String>>,
    on_prompt: Option<PromptHook>,
    events: Vec<Event>,
    unanswered: usize,
}

/// Which PAM calls `run` makes after `pam_authenticate`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Steps {
    /// `pam_acct_mgmt`, when authentication succeeded.
    pub acct_mgmt: bool,
    /// `pam_open_session`, when authentication succeeded.
    pub open_session: bool,
    /// Sets `PAM_TTY` to `ssh`, as sshd does.
    pub tty_ssh: bool,
    /// `pam_close_session` this long after authentication (after `pam_open_session` when
    /// that ran), when authentication succeeded.
    pub close_session_after: Option<Duration>,
}

/// Everything `run` observed; `authenticate` returns only the `PamOutcome` part.
#[derive(Clone, Debug)]
pub struct FullOutcome {
    pub auth: PamOutcome,
    pub acct_mgmt_code: Option<i32>,
    pub open_session_code: Option<i32>,
    pub close_session_code: Option<i32>,
}

/// `pam_start_confdir`, `PAM_RHOST`, `pam_authenticate`, then on success
/// `pam_setcred(PAM_ESTABLISH_CRED)`, `pam_getenvlist`, `pam_end`.
pub fn authenticate(service: &PamService, login: &Login) -> PamOutcome {
    run(service, login, Steps::default()).auth
}

/// `authenticate` with optional further steps of a login.
pub fn run(service: &PamService, login: &Login, steps: Steps) -> FullOutcome {
    let service_name = CString::new(service.name.as_str()).expect("service name without NUL");
    let user = CString::new(login.user.as_str()).expect("user name without NUL");
    let confdir = CString::new(service.dir.to_str().expect("UTF-8 configuration directory"))
        .expect("configuration directory without NUL");
    let rhost = login
        .rhost
        .as_deref()
        .map(|rhost| CString::new(rhost).expect("rhost without NUL"));
    let tty = CString::new("ssh").expect("literal without NUL");

    let mut state = Box::new(ConvState {
        answers: login.answers.iter().cloned().collect(),
        on_prompt: login.on_prompt.clone(),
        events: Vec::new(),
        unanswered: 0,
    });
    let conv = pam_conv {
        conv: converse,
        appdata_ptr: (&mut *state as *mut ConvState).cast(),
    };

    let mut pamh: *mut pam_handle_t = ptr::null_mut();
    // SAFETY: every pointer is a live NUL-terminated string, `conv` or (for the user, when
    // libpam is to prompt for it) NULL, which pam_start accepts; `conv` (like `state`
    // behind its appdata pointer) outlives the handle: `pam_end` runs before both drop.
    let start = unsafe {
        pam_start_confdir(
            service_name.as_ptr(),
            if login.user_from_prompt {
                ptr::null()
            } else {
                user.as_ptr()
            },
            &conv,
            confdir.as_ptr(),
            &mut pamh,
        )
    };
    assert_eq!(
        start,
        PAM_SUCCESS,
        "pam_start_confdir failed: {}",
        code_name(start)
    );

    if let Some(rhost) = &rhost {
        // SAFETY: `pamh` is a live handle; libpam copies the string.
        let set = unsafe { pam_set_item(pamh, PAM_RHOST, rhost.as_ptr().cast()) };
        assert_eq!(set, PAM_SUCCESS, "pam_set_item(PAM_RHOST)");
    }
    for (name, value) in &login.preset_env {
        let pair = CString::new(format!("{name}={value}")).expect("environment without NUL");
        // SAFETY: `pamh` is a live handle; libpam copies the string.
        let set = unsafe { pam_putenv(pamh, pair.as_ptr()) };
        assert_eq!(set, PAM_SUCCESS, "pam_putenv({name})");
    }
    if steps.tty_ssh {
        // SAFETY: as above.
        let set = unsafe { pam_set_item(pamh, PAM_TTY, tty.as_ptr().cast()) };
        assert_eq!(set, PAM_SUCCESS, "pam_set_item(PAM_TTY)");
    }

    let started = Instant::now();
    // SAFETY: `pamh` is a live handle.
    let code = unsafe { pam_authenticate(pamh, 0) };
    let elapsed = started.elapsed();

    let mut setcred_code = None;
    let mut acct_mgmt_code = None;
    let mut open_session_code = None;
    if code == PAM_SUCCESS {
        // SAFETY: `pamh` is a live handle.
        setcred_code = Some(unsafe { pam_setcred(pamh, PAM_ESTABLISH_CRED) });
        if steps.acct_mgmt {
            // SAFETY: `pamh` is a live handle.
            acct_mgmt_code = Some(unsafe { pam_acct_mgmt(pamh, 0) });
        }
        if steps.open_session {
            // SAFETY: `pamh` is a live handle.
            open_session_code = Some(unsafe { pam_open_session(pamh, 0) });
        }
    }
    let mut close_session_code = None;
    if let Some(length) = steps.close_session_after
        && code == PAM_SUCCESS
    {
        std::thread::sleep(length);
        // SAFETY: `pamh` is a live handle.
        close_session_code = Some(unsafe { pam_close_session(pamh, 0) });
    }

    // SAFETY: `pamh` is a live handle.
    let env = unsafe { take_env(pamh) };
    // SAFETY: `pam_strerror` returns a static (or handle-owned) C string; copied at once.
    let message = unsafe {
        let text = pam_strerror(pamh, code);
        if text.is_null() {
            String::new()
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    };
    // SAFETY: `pamh` is live and not used after this.
    unsafe { pam_end(pamh, code) };

    let state = *state;
    FullOutcome {
        auth: PamOutcome {
            code,
            code_name: code_name(code),
            message,
            events: state.events,
            env,
            setcred_code,
            unanswered: state.unanswered,
            elapsed,
        },
        acct_mgmt_code,
        open_session_code,
        close_session_code,
    }
}

/// Copies and frees the list `pam_getenvlist` hands over (the caller owns it).
///
/// # Safety
/// `pamh` must be a live handle.
unsafe fn take_env(pamh: *mut pam_handle_t) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    // SAFETY: the caller guarantees a live handle.
    let list = unsafe { pam_getenvlist(pamh) };
    if list.is_null() {
        return env;
    }
    let mut i = 0;
    loop {
        // SAFETY: the list is NULL-terminated and every entry before the NULL is a
        // malloc'ed NUL-terminated string that we own and free exactly once.
        unsafe {
            let entry = *list.add(i);
            if entry.is_null() {
                break;
            }
            let text = CStr::from_ptr(entry).to_string_lossy().into_owned();
            let (key, value) = text.split_once('=').unwrap_or((&text, ""));
            env.insert(key.to_string(), value.to_string());
            libc::free(entry.cast());
        }
        i += 1;
    }
    // SAFETY: the array itself was malloc'ed by libpam and is ours to free.
    unsafe { libc::free(list.cast()) };
    env
}

extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const pam_message,
    resp: *mut *mut pam_response,
    appdata: *mut c_void,
) -> c_int {
    // A panic must not unwind into libpam (C frames); it becomes a conversation error.
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libpam passes back the appdata pointer we gave it, a live `ConvState`
        // that nothing else touches during `pam_authenticate`.
        let state = unsafe { &mut *appdata.cast::<ConvState>() };
        // SAFETY: Linux-PAM passes `num_msg` pointers to messages (an array of pointers,
        // not a pointer to an array) and a writable `resp`.
        unsafe { converse_inner(state, num_msg, msg, resp) }
    }))
    .unwrap_or(PAM_CONV_ERR)
}

/// # Safety
/// `msg` must point to `num_msg` valid message pointers and `resp` must be writable.
unsafe fn converse_inner(
    state: &mut ConvState,
    num_msg: c_int,
    msg: *mut *const pam_message,
    resp: *mut *mut pam_response,
) -> c_int {
    if num_msg <= 0 || msg.is_null() || resp.is_null() {
        return PAM_CONV_ERR;
    }
    let count = num_msg as usize;
    // libpam frees the array and each `resp` with free(), so both must come from malloc.
    // SAFETY: plain allocation; zeroed so unused `resp` fields are NULL.
    let replies =
        unsafe { libc::calloc(count, std::mem::size_of::<pam_response>()) }.cast::<pam_response>();
    if replies.is_null() {
        return 5; // PAM_BUF_ERR
    }
    for i in 0..count {
        // SAFETY: the caller guarantees `count` message pointers.
        let message = unsafe { &**msg.add(i) };
        let text = if message.msg.is_null() {
            String::new()
        } else {
            // SAFETY: a non-NULL message text is a NUL-terminated C string.
            unsafe { CStr::from_ptr(message.msg) }
                .to_string_lossy()
                .into_owned()
        };
        let answer = match message.msg_style {
            PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => {
                if let Some(hook) = &state.on_prompt {
                    (hook.0)(&text);
                }
                state.events.push(Event::Prompt {
                    echo: message.msg_style == PAM_PROMPT_ECHO_ON,
                    text,
                });
                match state.answers.pop_front() {
                    Some(Some(answer)) => answer,
                    Some(None) => {
                        // SAFETY: `replies` holds `count` entries, filled up to `i`.
                        unsafe { free_replies(replies, count) };
                        return PAM_CONV_ERR;
                    }
                    None => {
                        state.unanswered += 1;
                        // SAFETY: as above.
                        unsafe { free_replies(replies, count) };
                        return PAM_CONV_ERR;
                    }
                }
            }
            PAM_ERROR_MSG => {
                state.events.push(Event::Error(text));
                continue;
            }
            PAM_TEXT_INFO => {
                state.events.push(Event::Info(text));
                continue;
            }
            _ => {
                // SAFETY: as above.
                unsafe { free_replies(replies, count) };
                return PAM_CONV_ERR;
            }
        };
        let Ok(answer) = CString::new(answer) else {
            // SAFETY: as above.
            unsafe { free_replies(replies, count) };
            return PAM_CONV_ERR;
        };
        // SAFETY: strdup allocates with malloc, as libpam's free() expects; `i < count`.
        unsafe {
            (*replies.add(i)).resp = libc::strdup(answer.as_ptr());
            (*replies.add(i)).resp_retcode = 0;
        }
    }
    // SAFETY: `resp` is writable (checked non-NULL above); libpam now owns `replies`.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// # Safety
/// `replies` must be a calloc'ed array of `count` entries whose `resp` fields are NULL or
/// strdup'ed.
unsafe fn free_replies(replies: *mut pam_response, count: usize) {
    for i in 0..count {
        // SAFETY: within the array, per the contract above.
        unsafe {
            let reply = &mut *replies.add(i);
            if !reply.resp.is_null() {
                libc::free(reply.resp.cast());
            }
        }
    }
    // SAFETY: allocated by calloc.
    unsafe { libc::free(replies.cast()) };
}

/// The workspace root, where pam_ticket's `src/` is (this kit lives in `testkit/`).
pub const WORKSPACE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The module under test: `$PAM_TICKET_SO` if set, else `libpam_ticket.so` next to the
/// `deps/` directory holding the running test executable (`target/<profile>/`).
///
/// `cargo test` does not refresh that file (only `cargo build` does), so a module older
/// than the sources would test yesterday's code: that is refused here, loudly.
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PAM_TICKET_SO") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("path of the test executable");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps/")
        .join("libpam_ticket.so");
    let built = fs::metadata(&path)
        .and_then(|metadata| metadata.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run `cargo build` (make test does)",
                path.display()
            )
        });
    let sources = Path::new(WORKSPACE_ROOT).join("src");
    if let Some(newest) = newest_modification(&sources) {
        assert!(
            built >= newest,
            "{} is older than the sources: run `cargo build` first (make test does)",
            path.display()
        );
    }
    path
}

fn newest_modification(dir: &Path) -> Option<std::time::SystemTime> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                newest_modification(&path)
            } else {
                entry.metadata().ok()?.modified().ok()
            }
        })
        .max()
}

/// Where the system keeps a Linux-PAM module such as `pam_permit.so`. A service file may
/// also name it bare; libpam then looks in its own module directory.
pub fn system_module(name: &str) -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/security",
        "/lib/x86_64-linux-gnu/security",
        "/usr/lib/aarch64-linux-gnu/security",
        "/usr/lib64/security",
        "/usr/lib/security",
        "/lib/security",
    ];
    candidates
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
