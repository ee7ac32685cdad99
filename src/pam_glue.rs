//! The libpam side: reading PAM items, the conversation, and pam_putenv. This file and
//! lib.rs are the only places that touch libpam; everything else is plain Rust.

use std::ffi::{CString, c_char, c_int};

use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO, PamResultCode};
use pam::conv::Conv;
use pam::items::{RHost, Service, User};
use pam::module::PamHandle;

use crate::conversation::{Conversation, ConversationFailed};
use crate::secret::Secret;

#[link(name = "pam")]
unsafe extern "C" {
    /// Not wrapped by pam-bindings. `name_value` is `NAME=value`; libpam copies it.
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
    /// Not wrapped by pam-bindings. The answer points into libpam's own copy, valid until
    /// the variable changes; null when unset.
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// The conversation the application registered.
pub struct PamConversation<'a> {
    conv: Conv<'a>,
}

impl<'a> PamConversation<'a> {
    /// `None` when the application registered no conversation.
    pub fn from_handle(handle: &'a PamHandle) -> Option<PamConversation<'a>> {
        handle
            .get_item::<Conv>()
            .ok()
            .flatten()
            .map(|conv| PamConversation { conv })
    }

    fn say(&self, style: c_int, message: &str) {
        // Server text in a message has been sanitised where it was put in; this is the last
        // line of defence for whatever else reaches the terminal: no control character, no
        // bidirectional override, nothing invisible.
        let message = crate::sanitise::one_line(message);
        // A message that cannot be shown changes no decision; the audit has the reason.
        let _ = self.conv.send(style, &message);
    }
}

impl Conversation for PamConversation<'_> {
    fn ask(&mut self, prompt: &str) -> Result<Secret, ConversationFailed> {
        match self.conv.send(PAM_PROMPT_ECHO_ON, prompt) {
            Ok(Some(answer)) => Ok(Secret::new(answer.as_bytes().to_vec())),
            Ok(None) => Ok(Secret::default()),
            Err(_) => Err(ConversationFailed),
        }
    }

    fn show_error(&mut self, message: &str) {
        self.say(PAM_ERROR_MSG, message);
    }

    fn show_info(&mut self, message: &str) {
        self.say(PAM_TEXT_INFO, message);
    }
}

/// PAM_USER, asking libpam to obtain it if the application did not set it.
pub fn user(handle: &mut PamHandle) -> Result<String, PamResultCode> {
    handle.get_user(None)
}

/// PAM_USER as the application set it, without prompting; `None` when unset.
pub fn user_item(handle: &PamHandle) -> Option<String> {
    let item = handle.get_item::<User>().ok().flatten()?;
    item.0.to_str().ok().map(str::to_string)
}

/// PAM_RHOST, when set and valid UTF-8.
pub fn rhost(handle: &PamHandle) -> Option<String> {
    let item = handle.get_item::<RHost>().ok().flatten()?;
    item.0.to_str().ok().map(str::to_string)
}

/// PAM_SERVICE, when set and valid UTF-8.
pub fn service(handle: &PamHandle) -> Option<String> {
    let item = handle.get_item::<Service>().ok().flatten()?;
    item.0.to_str().ok().map(str::to_string)
}

/// Sets `name=value` in the PAM environment, so later modules and the session see it.
pub fn putenv(handle: &mut PamHandle, name: &str, value: &str) -> Result<(), PamResultCode> {
    let pair = CString::new(format!("{name}={value}")).map_err(|_| PamResultCode::PAM_BUF_ERR)?;
    // SAFETY: `handle` is the live handle libpam passed to this hook, so the pointer is
    // valid for the call; `pair` is a NUL-terminated string that outlives the call, and
    // libpam copies it rather than keeping the pointer.
    let code = unsafe { pam_putenv(std::ptr::from_mut(handle), pair.as_ptr()) };
    if code == PamResultCode::PAM_SUCCESS as c_int {
        Ok(())
    } else {
        Err(PamResultCode::PAM_BUF_ERR)
    }
}

/// `name` from the PAM environment, when set and valid UTF-8.
pub fn getenv(handle: &mut PamHandle, name: &str) -> Option<String> {
    let name = CString::new(name).ok()?;
    // SAFETY: `handle` is the live handle libpam passed to this hook and `name` is a
    // NUL-terminated string that outlives the call.
    let value = unsafe { pam_getenv(std::ptr::from_mut(handle), name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: libpam returned a non-null pointer to a NUL-terminated string it owns, which
    // stays valid until the environment changes; it is copied here, before anything else
    // touches the handle.
    let text = unsafe { std::ffi::CStr::from_ptr(value) };
    text.to_str().ok().map(str::to_string)
}

/// Removes `name` from the PAM environment (`pam_putenv` with the bare name).
pub fn unsetenv(handle: &mut PamHandle, name: &str) {
    let Ok(bare) = CString::new(name) else {
        return;
    };
    // SAFETY: as in `putenv`; a name without `=` asks libpam to delete the variable.
    let _ = unsafe { pam_putenv(std::ptr::from_mut(handle), bare.as_ptr()) };
}

/// The type kept under [`crate::notes::session_record::DATA_NAME`]: only this module sets that
/// name, always with this type, which is what makes reading it back sound.
struct SessionRecordData(String);

/// Keeps the session record's handle (`v2.<handle>`) with the PAM handle (`pam_set_data`)
/// for applications that authenticate and close the session in one process.
pub fn set_session_record(handle: &mut PamHandle, value: &str) -> Result<(), PamResultCode> {
    handle.set_data(
        crate::notes::session_record::DATA_NAME,
        Box::new(SessionRecordData(value.to_string())),
    )
}

/// The session record's handle kept with `pam_set_data`, if this process set one.
pub fn session_record(handle: &PamHandle) -> Option<String> {
    // SAFETY: the name is this module's own, and `set_session_record` is the only code
    // that sets it, always with a `SessionRecordData`, so the data behind it has that type.
    let data =
        unsafe { handle.get_data::<SessionRecordData>(crate::notes::session_record::DATA_NAME) };
    data.ok()
        .map(|record| record.0.clone())
        .filter(|record| !record.is_empty())
}

/// Forgets the session record's handle kept with the PAM handle (libpam cannot delete data, so it is
/// replaced by an empty one, which [`session_record`] does not return).
pub fn clear_session_record(handle: &mut PamHandle) {
    let _ = handle.set_data(
        crate::notes::session_record::DATA_NAME,
        Box::new(SessionRecordData(String::new())),
    );
}
