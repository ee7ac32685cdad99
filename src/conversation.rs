//! The conversation with the person logging in, as the flow sees it, and the fixed
//! messages it shows. `pam_glue.rs` implements it over libpam; tests script it.

use crate::secret::Secret;

/// The message shown when the ticketing system cannot be asked (FailMode=secure).
pub const UNAVAILABLE_MESSAGE: &str =
    "Ticket validation is unavailable right now; try again later or use a failsafe bypass code";
/// The message shown when the ticketing system's certificate does not verify.
pub const UNTRUSTED_MESSAGE: &str = "Ticket validation is unavailable: the ticketing system's certificate could not be verified; contact your administrator";
/// The message shown when the ticketing system refuses the module's own account.
pub const ACCOUNT_REFUSED_MESSAGE: &str = "Ticket validation is unavailable: the ticketing system refused this gateway's account; contact your administrator";
/// The message shown when the module cannot run as configured.
pub const MISCONFIGURED_MESSAGE: &str =
    "Ticket validation is misconfigured on this gateway; contact your administrator";

/// The conversation with the person logging in.
pub trait Conversation {
    /// Asks a question with echo on and returns the raw answer.
    fn ask(&mut self, prompt: &str) -> Result<Secret, ConversationFailed>;
    /// Shows an error message (PAM_ERROR_MSG).
    fn show_error(&mut self, message: &str);
    /// Shows an informational message (PAM_TEXT_INFO).
    fn show_info(&mut self, message: &str);
}

/// The application could not ask or did not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConversationFailed;
