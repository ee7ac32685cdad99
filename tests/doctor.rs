//! `pam-ticket doctor` on the Debian 12 and RHEL 9 layouts as installed (fixtures), on the
//! same layouts set up as the README says (the repository's pam.d/sshd.debian and
//! pam.d/sshd.rhel, and the README's sshd_config drop-in), and on one broken variant per
//! mistake. Every test asserts the exit status and the exact ERROR/WARN lines, so a
//! variant also proves that nothing else was reported.
//!
//! The module's configuration points at a ServiceNow simulator over HTTPS with a CA made
//! for the run: doctor's certificate check is a TLS handshake only, and no request (so no
//! credential) ever reaches the server.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use support::https::TestServer;
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/doctor");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Distro {
    Debian,
    Rhel,
}

impl Distro {
    fn name(self) -> &'static str {
        match self {
            Distro::Debian => "debian",
            Distro::Rhel => "rhel",
        }
    }
}

/// One layout in a temporary directory: `etc/ssh`, `etc/pam.d`, the module's
/// configuration and the simulator it names.
struct Layout {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
}

impl Layout {
    /// The distribution's files as installed.
    fn stock(distro: Distro) -> Layout {
        let dir = TestDir::new(&format!("doctor-{}", distro.name()));
        copy_tree(
            &Path::new(FIXTURES).join(distro.name()),
            dir.path(),
            dir.path(),
        );
        let pki = TestPki::generate(&dir.join("pki"));
        let server = TestServer::start(
            pki.server_config(ServerCert::Good),
            Arc::new(ServiceNowSim::new("svc_doctor", "doctor-pass")),
        );
        let layout = Layout { dir, pki, server };
        layout.write_root_only(
            "account.conf",
            "Username=\"svc_doctor\"\nPassword=\"doctor-pass\"\n",
        );
        layout.write_config("");
        layout
    }

    /// Set up as the README says: the sshd_config drop-in and the repository's pam.d file.
    fn ticket(distro: Distro) -> Layout {
        let layout = Layout::stock(distro);
        let drop_in = fs::read_to_string(Path::new(FIXTURES).join("10-pam_ticket.conf"))
            .expect("read the drop-in fixture");
        layout.write("etc/ssh/sshd_config.d/10-pam_ticket.conf", &drop_in);
        let pam = fs::read_to_string(
            Path::new(REPO)
                .join("pam.d")
                .join(format!("sshd.{}", distro.name())),
        )
        .expect("read the shipped pam.d file");
        layout.write("etc/pam.d/sshd", &pam);
        layout
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create the directory");
        fs::write(&path, text).expect("write a layout file");
    }

    fn write_root_only(&self, relative: &str, text: &str) {
        self.write(relative, text);
        fs::set_permissions(self.path(relative), fs::Permissions::from_mode(0o600))
            .expect("chmod 0600");
    }

    /// The module's configuration, ServiceNow at the simulator, `extra` appended.
    fn write_config(&self, extra: &str) {
        self.write_root_only(
            "pam_ticket.conf",
            &format!(
                "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n\
                 CAFile=\"{}\"\nTimeout=\"5\"\n{extra}",
                self.server.base_url(),
                self.path("account.conf").display(),
                self.pki.ca_pem_path().display(),
            ),
        );
    }

    /// Replaces `from` (which must be there) with `to` in a layout file.
    fn edit(&self, relative: &str, from: &str, to: &str) {
        let text = fs::read_to_string(self.path(relative)).expect("read a layout file");
        assert!(text.contains(from), "{relative} has no {from:?}");
        self.write(relative, &text.replacen(from, to, 1));
    }

    /// `file:line` of the first line of a layout file, comments aside, that contains
    /// `text`.
    fn place(&self, relative: &str, text: &str) -> String {
        let path = self.path(relative);
        let content = fs::read_to_string(&path).expect("read a layout file");
        let line = content
            .lines()
            .position(|line| !line.trim_start().starts_with('#') && line.contains(text))
            .unwrap_or_else(|| panic!("{relative} has no {text:?}"));
        format!("{}:{}", path.display(), line + 1)
    }

    /// Runs doctor on this layout with the given extra arguments.
    fn doctor_with(&self, extra: &[&str]) -> Doctor {
        let mut command = Command::new(TOOL);
        command
            .arg("doctor")
            .arg("--sshd-config")
            .arg(self.path("etc/ssh/sshd_config"))
            .arg("--pam-file")
            .arg(self.path("etc/pam.d/sshd"))
            .arg("--config")
            .arg(self.path("pam_ticket.conf"))
            .args(extra);
        let output = command.output().expect("run pam-ticket doctor");
        let doctor = Doctor {
            code: output.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&output.stdout).into_owned(),
            err: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert_eq!(
            self.server.request_count(),
            0,
            "doctor sent a request:\n{}",
            doctor.out
        );
        doctor
    }

    fn doctor(&self) -> Doctor {
        self.doctor_with(&[])
    }
}

/// Copies a fixture tree, pointing `/etc/ssh/` in sshd_config files at the copy.
fn copy_tree(from: &Path, to: &Path, root: &Path) {
    fs::create_dir_all(to).expect("create a directory");
    for item in fs::read_dir(from).expect("read a fixture directory") {
        let item = item.expect("a directory entry");
        let target = to.join(item.file_name());
        if item.path().is_dir() {
            copy_tree(&item.path(), &target, root);
            continue;
        }
        let text = fs::read_to_string(item.path()).expect("read a fixture");
        let text = if to.ends_with("etc/ssh") || to.ends_with("etc/ssh/sshd_config.d") {
            text.replace("/etc/ssh/", &format!("{}/etc/ssh/", root.display()))
        } else {
            text
        };
        fs::write(&target, text).expect("copy a fixture");
    }
}

struct Doctor {
    code: i32,
    out: String,
    err: String,
}

impl Doctor {
    /// The ERROR and WARN lines, in order.
    fn problems(&self) -> Vec<&str> {
        self.out
            .lines()
            .filter(|line| line.starts_with("ERROR ") || line.starts_with("WARN  "))
            .collect()
    }

    /// The `fix:` line after a problem line.
    fn fix_for(&self, problem: &str) -> &str {
        let mut lines = self.out.lines();
        lines.find(|line| *line == problem);
        lines
            .next()
            .and_then(|line| line.trim().strip_prefix("fix: "))
            .unwrap_or("")
    }

    fn context(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.out, self.err
        )
    }
}

const MAX_AUTH_TRIES_WARNING: &str = "MaxAuthTries is 6: after the last refused ticket a stock \
     ssh client falls back to `password:` prompts that can never succeed before sshd \
     disconnects it";
const PASSWORD_WARNING: &str = "PasswordAuthentication is yes: password authentication can \
     answer only a hidden password prompt, so pam_ticket's ticket prompt fails there and any \
     `password:` prompt sshd offers can never succeed";

fn default_place(layout: &Layout) -> String {
    format!(
        "{} (not set; sshd's default)",
        layout.path("etc/ssh/sshd_config").display()
    )
}

// ------------------------------------------------------------------ the stock layouts

#[test]
fn debian_as_installed_asks_for_a_password_and_never_for_a_ticket() {
    let layout = Layout::stock(Distro::Debian);
    let doctor = layout.doctor();
    let sshd_config = "etc/ssh/sshd_config";
    let pam = layout.path("etc/pam.d/sshd");
    assert_eq!(doctor.code, 1, "{}", doctor.context());
    assert_eq!(
        doctor.problems(),
        vec![
            format!(
                "ERROR {}: KbdInteractiveAuthentication (or ChallengeResponseAuthentication) is \
                 no: sshd runs PAM authentication only through keyboard-interactive, so the \
                 ticket is never asked",
                layout.place(sshd_config, "KbdInteractiveAuthentication no")
            ),
            format!(
                "ERROR {}: AuthenticationMethods is any: publickey or password alone logs in, \
                 without a ticket",
                default_place(&layout)
            ),
            format!("WARN  {}: {PASSWORD_WARNING}", default_place(&layout)),
            format!("WARN  {}: {MAX_AUTH_TRIES_WARNING}", default_place(&layout)),
            format!(
                "ERROR {}: pam_ticket.so is not in the auth stack: sshd lets people in without \
                 asking for a ticket",
                pam.display()
            ),
            format!(
                "ERROR {}: `@include common-auth` brings pam_unix.so ({}) into the auth stack: \
                 people are asked `Password:` instead of a ticket",
                layout.place("etc/pam.d/sshd", "@include common-auth"),
                layout.place("etc/pam.d/common-auth", "pam_unix.so"),
            ),
        ],
        "{}",
        doctor.context()
    );
    assert_eq!(
        doctor.fix_for(doctor.problems()[5]),
        "remove this line: the SSH key (AuthenticationMethods \
         publickey,keyboard-interactive:pam) and the ticket replace the password (lines of \
         other types that include common-auth stay)"
    );
    assert!(doctor.out.ends_with(
        "result: 4 problem(s) that lock people out or let them around the ticket, 2 warning(s)\n"
    ));
}

#[test]
fn rhel_as_installed_asks_for_a_password_and_never_for_a_ticket() {
    let layout = Layout::stock(Distro::Rhel);
    let doctor = layout.doctor();
    assert_eq!(doctor.code, 1, "{}", doctor.context());
    assert_eq!(
        doctor.problems(),
        vec![
            format!(
                "ERROR {}: KbdInteractiveAuthentication (or ChallengeResponseAuthentication) is \
                 no: sshd runs PAM authentication only through keyboard-interactive, so the \
                 ticket is never asked",
                layout.place(
                    "etc/ssh/sshd_config.d/50-redhat.conf",
                    "ChallengeResponseAuthentication no"
                )
            ),
            format!(
                "ERROR {}: AuthenticationMethods is any: publickey or password or \
                 gssapi-with-mic alone logs in, without a ticket",
                default_place(&layout)
            ),
            format!("WARN  {}: {PASSWORD_WARNING}", default_place(&layout)),
            format!("WARN  {}: {MAX_AUTH_TRIES_WARNING}", default_place(&layout)),
            format!(
                "ERROR {}: pam_ticket.so is not in the auth stack: sshd lets people in without \
                 asking for a ticket",
                layout.path("etc/pam.d/sshd").display()
            ),
            format!(
                "ERROR {}: `auth       substack     password-auth` brings pam_unix.so ({}) into \
                 the auth stack: people are asked `Password:` instead of a ticket",
                layout.place("etc/pam.d/sshd", "substack     password-auth"),
                layout.place("etc/pam.d/password-auth", "pam_unix.so nullok"),
            ),
        ],
        "{}",
        doctor.context()
    );
}

// ------------------------------------------------------------ the README's layouts

#[test]
fn debian_set_up_as_the_readme_says_is_clean() {
    let layout = Layout::ticket(Distro::Debian);
    let doctor = layout.doctor();
    assert_eq!(doctor.code, 0, "{}", doctor.context());
    assert!(doctor.problems().is_empty(), "{}", doctor.context());
    assert!(
        doctor.out.ends_with("result: OK, 0 warning(s)\n"),
        "{}",
        doctor.out
    );
    assert!(
        doctor.out.contains(&format!(
            "  config   {} (for {})",
            layout.path("pam_ticket.conf").display(),
            layout.place("etc/pam.d/sshd", "auth       required     pam_ticket.so")
        )),
        "{}",
        doctor.out
    );
}

/// WorkNotes=Yes needs the module in the session stack for the end note: a warning
/// until the line is there.
#[test]
fn work_notes_without_a_session_line_are_a_warning() {
    let layout = Layout::ticket(Distro::Debian);
    layout.write_config("WorkNotes=\"Yes\"\n");
    let doctor = layout.doctor();
    assert_eq!(doctor.code, 0, "a warning only: {}", doctor.context());
    let warning = format!(
        "WARN  {}: WorkNotes is Yes but pam_ticket.so is not in the session stack: no work \
         note is written when a session ends",
        layout.path("etc/pam.d/sshd").display()
    );
    assert_eq!(
        doctor.problems(),
        vec![warning.as_str()],
        "{}",
        doctor.context()
    );
    assert_eq!(
        doctor.fix_for(&warning),
        "add `session optional pam_ticket.so` (with the auth line's arguments) as the last \
         session line"
    );
    let pam = fs::read_to_string(layout.path("etc/pam.d/sshd")).expect("pam.d file");
    layout.write(
        "etc/pam.d/sshd",
        &format!("{pam}session    optional     pam_ticket.so\n"),
    );
    let doctor = layout.doctor();
    assert!(doctor.problems().is_empty(), "{}", doctor.context());

    // The session records that carry a login to its end note live in CacheDirectory.
    let cache = layout.path("cache");
    fs::create_dir_all(&cache).expect("mkdir");
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o755)).expect("chmod");
    layout.write_config(&format!(
        "WorkNotes=\"Yes\"\nCacheDirectory=\"{}\"\n",
        cache.display()
    ));
    let doctor = layout.doctor();
    assert_eq!(doctor.code, 0, "a warning only: {}", doctor.context());
    assert_eq!(
        doctor.problems(),
        vec![format!(
            "WARN  {}: the cache directory {} is unusable (mode 0755; group and others must \
             have no access): no work note is written when a session ends",
            layout.path("pam_ticket.conf").display(),
            cache.display()
        )],
        "{}",
        doctor.context()
    );
}

#[test]
fn rhel_set_up_as_the_readme_says_is_clean() {
    let layout = Layout::ticket(Distro::Rhel);
    let doctor = layout.doctor();
    assert_eq!(doctor.code, 0, "{}", doctor.context());
    assert!(doctor.problems().is_empty(), "{}", doctor.context());
}

/// The README shows the drop-in these tests install, word for word.
#[test]
fn the_readme_shows_the_tested_sshd_settings() {
    let readme = fs::read_to_string(Path::new(REPO).join("README.md")).expect("read README");
    let drop_in = fs::read_to_string(Path::new(FIXTURES).join("10-pam_ticket.conf"))
        .expect("read the drop-in");
    assert!(readme.contains(&drop_in), "README lacks:\n{drop_in}");
}

// ------------------------------------------------------------ broken variants: sshd

/// Runs doctor on a README layout after `change`, and checks the exit status and that the
/// only problem lines are `expected`.
fn variant(
    distro: Distro,
    change: impl FnOnce(&Layout),
    expected: impl FnOnce(&Layout) -> Vec<String>,
    code: i32,
) -> (Layout, Doctor) {
    let layout = Layout::ticket(distro);
    change(&layout);
    let doctor = layout.doctor();
    assert_eq!(doctor.code, code, "{}", doctor.context());
    assert_eq!(doctor.problems(), expected(&layout), "{}", doctor.context());
    (layout, doctor)
}

const DROP_IN: &str = "etc/ssh/sshd_config.d/10-pam_ticket.conf";

#[test]
fn use_pam_off() {
    variant(
        Distro::Debian,
        |layout| {
            // sshd keeps the first value: an earlier line in the drop-in wins.
            layout.edit(DROP_IN, "UsePAM yes", "UsePAM no");
        },
        |layout| {
            vec![format!(
                "ERROR {}: UsePAM is no: sshd never runs the PAM stack, so nobody is asked for \
                 a ticket",
                layout.place(DROP_IN, "UsePAM no")
            )]
        },
        1,
    );
}

#[test]
fn keyboard_interactive_off() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                DROP_IN,
                "KbdInteractiveAuthentication yes",
                "KbdInteractiveAuthentication no",
            )
        },
        |layout| {
            vec![
                format!(
                    "ERROR {}: KbdInteractiveAuthentication (or ChallengeResponseAuthentication) \
                     is no: sshd runs PAM authentication only through keyboard-interactive, so \
                     the ticket is never asked",
                    layout.place(DROP_IN, "KbdInteractiveAuthentication no")
                ),
                format!(
                    "ERROR {}: no AuthenticationMethods list \
                     `publickey,keyboard-interactive:pam` can complete with the methods that \
                     are switched on: nobody can log in (sshd refuses to start)",
                    layout.place(DROP_IN, "AuthenticationMethods")
                ),
            ]
        },
        1,
    );
}

/// RHEL: a drop-in that sorts after 50-redhat.conf loses to its
/// `ChallengeResponseAuthentication no`, because sshd keeps the first value it reads.
#[test]
fn rhel_drop_in_after_50_redhat_loses_keyboard_interactive() {
    variant(
        Distro::Rhel,
        |layout| {
            fs::rename(
                layout.path(DROP_IN),
                layout.path("etc/ssh/sshd_config.d/60-pam_ticket.conf"),
            )
            .expect("rename the drop-in");
        },
        |layout| {
            vec![
                format!(
                    "ERROR {}: KbdInteractiveAuthentication (or ChallengeResponseAuthentication) \
                     is no: sshd runs PAM authentication only through keyboard-interactive, so \
                     the ticket is never asked",
                    layout.place(
                        "etc/ssh/sshd_config.d/50-redhat.conf",
                        "ChallengeResponseAuthentication no"
                    )
                ),
                format!(
                    "ERROR {}: no AuthenticationMethods list \
                     `publickey,keyboard-interactive:pam` can complete with the methods that \
                     are switched on: nobody can log in (sshd refuses to start)",
                    layout.place(
                        "etc/ssh/sshd_config.d/60-pam_ticket.conf",
                        "AuthenticationMethods"
                    )
                ),
            ]
        },
        1,
    );
}

#[test]
fn password_authentication_on_is_a_warning() {
    let (_, doctor) = variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                DROP_IN,
                "PasswordAuthentication no",
                "PasswordAuthentication yes",
            )
        },
        |layout| {
            vec![format!(
                "WARN  {}: {PASSWORD_WARNING}",
                layout.place(DROP_IN, "PasswordAuthentication yes")
            )]
        },
        0,
    );
    assert!(doctor.out.ends_with("result: OK, 1 warning(s)\n"));
}

#[test]
fn authentication_methods_left_at_any() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                DROP_IN,
                "AuthenticationMethods publickey,keyboard-interactive:pam\n",
                "",
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: AuthenticationMethods is any: publickey alone logs in, without a \
                 ticket",
                default_place(layout)
            )]
        },
        1,
    );
}

#[test]
fn authentication_methods_list_without_keyboard_interactive() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                DROP_IN,
                "publickey,keyboard-interactive:pam",
                "publickey,keyboard-interactive:pam publickey",
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: AuthenticationMethods list `publickey` never reaches \
                 keyboard-interactive: it logs in without a ticket",
                layout.place(DROP_IN, "AuthenticationMethods")
            )]
        },
        1,
    );
}

#[test]
fn authentication_methods_with_the_ticket_first_is_a_warning() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                DROP_IN,
                "publickey,keyboard-interactive:pam",
                "keyboard-interactive:pam,publickey",
            )
        },
        |layout| {
            vec![format!(
                "WARN  {}: AuthenticationMethods list `keyboard-interactive:pam,publickey` asks \
                 for the ticket before the key: anyone who reaches the port can make the \
                 gateway query the ticketing system",
                layout.place(DROP_IN, "AuthenticationMethods")
            )]
        },
        0,
    );
}

#[test]
fn authentication_methods_ticket_alone() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                DROP_IN,
                "publickey,keyboard-interactive:pam",
                "keyboard-interactive:pam",
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: AuthenticationMethods list `keyboard-interactive:pam` asks only for \
                 the ticket: the ticket is the only credential (a ticket number is no secret)",
                layout.place(DROP_IN, "AuthenticationMethods")
            )]
        },
        1,
    );
}

#[test]
fn max_auth_tries_left_at_six_is_a_warning() {
    let (layout, doctor) = variant(
        Distro::Rhel,
        |layout| layout.edit(DROP_IN, "MaxAuthTries 4\n", ""),
        |layout| {
            vec![format!(
                "WARN  {}: {MAX_AUTH_TRIES_WARNING}",
                default_place(layout)
            )]
        },
        0,
    );
    let _ = layout;
    assert_eq!(
        doctor.fix_for(doctor.problems()[0]),
        "set `MaxAuthTries 4`; users can also set `PasswordAuthentication no` in ~/.ssh/config"
    );
}

#[test]
fn match_block_setting_is_a_warning() {
    variant(
        Distro::Debian,
        |layout| {
            let text = fs::read_to_string(layout.path("etc/ssh/sshd_config")).expect("read");
            layout.write(
                "etc/ssh/sshd_config",
                &format!("{text}Match User backup\n    AuthenticationMethods publickey\n"),
            );
        },
        |layout| {
            vec![format!(
                "WARN  {}: a Match block sets authenticationmethods for some connections, and \
                 doctor judged the settings outside Match blocks",
                layout.place("etc/ssh/sshd_config", "    AuthenticationMethods publickey")
            )]
        },
        0,
    );
}

// ----------------------------------------------------------- broken variants: pam.d

const PAM: &str = "etc/pam.d/sshd";
const TICKET_LINE: &str = "auth       required     pam_ticket.so";

#[test]
fn debian_common_auth_kept_above_the_ticket() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                PAM,
                TICKET_LINE,
                &format!("@include common-auth\n{TICKET_LINE}"),
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: `@include common-auth` brings pam_unix.so ({}) into the auth stack: \
                 people are asked `Password:` before the ticket, and without the right \
                 password the stack ends there: they never see the ticket prompt",
                layout.place(PAM, "@include common-auth"),
                layout.place("etc/pam.d/common-auth", "pam_unix.so"),
            )]
        },
        1,
    );
}

#[test]
fn rhel_password_auth_substack_kept_above_the_ticket() {
    variant(
        Distro::Rhel,
        |layout| {
            layout.edit(
                PAM,
                TICKET_LINE,
                &format!("auth       substack     password-auth\n{TICKET_LINE}"),
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: `auth       substack     password-auth` brings pam_unix.so ({}) into \
                 the auth stack: people are asked `Password:` before the ticket, and without \
                 the right password the login fails whatever ticket they give",
                layout.place(PAM, "substack     password-auth"),
                layout.place("etc/pam.d/password-auth", "pam_unix.so nullok"),
            )]
        },
        1,
    );
}

#[test]
fn password_module_after_the_ticket() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                PAM,
                TICKET_LINE,
                &format!("{TICKET_LINE}\nauth       required     pam_sss.so"),
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: `auth       required     pam_sss.so` asks for a password: people are \
                 asked `Password:` after the ticket",
                layout.place(PAM, "pam_sss.so"),
            )]
        },
        1,
    );
}

#[test]
fn module_missing_from_the_auth_stack() {
    variant(
        Distro::Debian,
        |layout| layout.edit(PAM, TICKET_LINE, "session    optional     pam_ticket.so"),
        |layout| {
            vec![format!(
                "ERROR {}: pam_ticket.so is not in the auth stack (it is on `session    \
                 optional     pam_ticket.so` at {}, where it does nothing): sshd lets people \
                 in without asking for a ticket",
                layout.path(PAM).display(),
                layout.place(PAM, "session    optional     pam_ticket.so"),
            )]
        },
        1,
    );
}

#[test]
fn sufficient_line_before_the_ticket() {
    variant(
        Distro::Rhel,
        |layout| {
            layout.edit(
                PAM,
                TICKET_LINE,
                &format!("auth       sufficient   pam_rootok.so\n{TICKET_LINE}"),
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: `auth       sufficient   pam_rootok.so` comes before pam_ticket and \
                 ends the stack on success: when it succeeds the stack ends there, and the \
                 ticket is never asked",
                layout.place(PAM, "pam_rootok.so"),
            )]
        },
        1,
    );
}

#[test]
fn jump_over_the_ticket() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                PAM,
                TICKET_LINE,
                &format!(
                    "auth [success=1 default=ignore] pam_exec.so quiet /usr/local/bin/ok\n\
                     {TICKET_LINE}\nauth required pam_permit.so"
                ),
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: `auth [success=1 default=ignore] pam_exec.so quiet \
                 /usr/local/bin/ok` jumps 1 line(s) on `success`, over pam_ticket: then the \
                 ticket is not asked",
                layout.place(PAM, "pam_exec.so"),
            )]
        },
        1,
    );
}

/// An exemption the admin may mean (the README's pam_succeed_if example): a warning.
#[test]
fn pam_succeed_if_exemption_is_a_warning() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                PAM,
                TICKET_LINE,
                &format!(
                    "auth [success=done default=ignore] pam_succeed_if.so quiet user ingroup \
                     ticket-exempt\n{TICKET_LINE}"
                ),
            )
        },
        |layout| {
            vec![format!(
                "WARN  {}: `auth [success=done default=ignore] pam_succeed_if.so quiet user \
                 ingroup ticket-exempt` comes before pam_ticket and ends the stack on success: \
                 everyone it matches logs in without a ticket; make sure that is meant",
                layout.place(PAM, "pam_succeed_if.so"),
            )]
        },
        0,
    );
}

#[test]
fn ticket_line_optional() {
    variant(
        Distro::Debian,
        |layout| layout.edit(PAM, TICKET_LINE, "auth       optional     pam_ticket.so"),
        |layout| {
            vec![format!(
                "ERROR {}: `auth       optional     pam_ticket.so` is `optional`: a refused \
                 ticket is ignored",
                layout.place(PAM, "pam_ticket.so"),
            )]
        },
        1,
    );
}

#[test]
fn ticket_line_with_a_misspelt_control() {
    variant(
        Distro::Rhel,
        |layout| layout.edit(PAM, TICKET_LINE, "auth       requried     pam_ticket.so"),
        |layout| {
            vec![format!(
                "ERROR {}: `auth       requried     pam_ticket.so` has a control libpam does not \
                 know: it fails this line, and so every login",
                layout.place(PAM, "pam_ticket.so"),
            )]
        },
        1,
    );
}

#[test]
fn ticket_line_skipped_when_the_module_is_missing() {
    variant(
        Distro::Debian,
        |layout| layout.edit(PAM, TICKET_LINE, &format!("-{TICKET_LINE}")),
        |layout| {
            vec![format!(
                "ERROR {}: `-{TICKET_LINE}` starts with `-`: when pam_ticket.so cannot be \
                 loaded, libpam skips the line silently and nobody is asked for a ticket",
                layout.place(PAM, "pam_ticket.so"),
            )]
        },
        1,
    );
}

#[test]
fn module_argument_the_module_refuses() {
    variant(
        Distro::Debian,
        |layout| {
            layout.edit(
                PAM,
                TICKET_LINE,
                &format!("{TICKET_LINE} ValidateRequestngUser=Yes"),
            )
        },
        |layout| {
            vec![format!(
                "ERROR {}: the module would refuse its configuration and fail every login \
                 (PAM_SERVICE_ERR): pam.d/sshd argument 2: unknown key ValidateRequestngUser \
                 (did you mean ValidateRequestingUser?)",
                layout.place(PAM, "pam_ticket.so"),
            )]
        },
        1,
    );
}

#[test]
fn module_argument_that_is_not_key_value() {
    variant(
        Distro::Rhel,
        |layout| layout.edit(PAM, TICKET_LINE, &format!("{TICKET_LINE} degub")),
        |layout| {
            vec![format!(
                "ERROR {}: the module would refuse its configuration and fail every login \
                 (PAM_SERVICE_ERR): pam.d/sshd argument 2: unknown module argument \"degub\" \
                 (did you mean debug?)",
                layout.place(PAM, "pam_ticket.so"),
            )]
        },
        1,
    );
}

// -------------------------------------------------- broken variants: the module's side

#[test]
fn configuration_the_module_refuses() {
    variant(
        Distro::Debian,
        |layout| layout.write_config("MaxAttempts=\"many\"\n"),
        |layout| {
            vec![format!(
                "ERROR {}: the module would refuse its configuration and fail every login \
                 (PAM_SERVICE_ERR): {}:6: MaxAttempts must be a whole number from 1 to 10, not \
                 \"many\"",
                layout.place(PAM, "pam_ticket.so"),
                layout.path("pam_ticket.conf").display(),
            )]
        },
        1,
    );
}

#[test]
fn ca_that_does_not_vouch_for_the_server() {
    let (_, doctor) = variant(
        Distro::Rhel,
        |layout| {
            let untrusted = layout.pki.untrusted_ca_pem_path();
            layout.write_root_only(
                "pam_ticket.conf",
                &fs::read_to_string(layout.path("pam_ticket.conf"))
                    .expect("read")
                    .replace(
                        &layout.pki.ca_pem_path().display().to_string(),
                        &untrusted.display().to_string(),
                    ),
            );
        },
        |layout| {
            vec![format!(
                "ERROR {}: the certificate of localhost:{} does not verify against {} \
                 (UnknownIssuer): the module denies every login, in both fail modes",
                layout.path("pam_ticket.conf").display(),
                layout.server.port(),
                layout.pki.untrusted_ca_pem_path().display(),
            )]
        },
        1,
    );
    assert_eq!(
        doctor.fix_for(doctor.problems()[0]),
        format!(
            "`pam-ticket ca check https://localhost:{}` names the missing issuer; add it with \
             `pam-ticket ca add`",
            doctor.problems()[0]
                .split("localhost:")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("")
        )
    );
}

#[test]
fn ca_bundle_that_does_not_load() {
    variant(
        Distro::Debian,
        |layout| {
            layout.write("empty-bundle.pem", "no certificate here\n");
            layout.write_config("");
            let text = fs::read_to_string(layout.path("pam_ticket.conf")).expect("read");
            layout.write_root_only(
                "pam_ticket.conf",
                &text.replace(
                    &layout.pki.ca_pem_path().display().to_string(),
                    &layout.path("empty-bundle.pem").display().to_string(),
                ),
            );
        },
        |layout| {
            vec![format!(
                "ERROR {}: the module would refuse its configuration and fail every login \
                 (PAM_SERVICE_ERR): {}:4: CA bundle {} holds no PEM certificate",
                layout.place(PAM, "pam_ticket.so"),
                layout.path("pam_ticket.conf").display(),
                layout.path("empty-bundle.pem").display(),
            )]
        },
        1,
    );
}

#[test]
fn remedy_token_cache_directory_others_may_enter() {
    variant(
        Distro::Debian,
        |layout| {
            let cache = layout.path("cache");
            fs::create_dir_all(&cache).expect("mkdir");
            fs::set_permissions(&cache, fs::Permissions::from_mode(0o755)).expect("chmod");
            let text = fs::read_to_string(layout.path("pam_ticket.conf"))
                .expect("read")
                .replace("ServiceNow", "BMCRemedy");
            layout.write_root_only(
                "pam_ticket.conf",
                &format!("{text}CacheDirectory=\"{}\"\n", cache.display()),
            );
        },
        |layout| {
            vec![format!(
                "WARN  {}: the cache directory {} is unusable (mode 0755; group and \
                 others must have no access): every login logs on to Remedy anew",
                layout.path("pam_ticket.conf").display(),
                layout.path("cache").display(),
            )]
        },
        0,
    );
}

/// With PortalAuthMethod=PlatformToken the platform token is cached in CacheDirectory, so
/// doctor checks that directory as it does Remedy's (and still gives the portal reminder).
#[test]
fn platform_token_cache_directory_others_may_enter() {
    variant(
        Distro::Debian,
        |layout| {
            let cache = layout.path("cache");
            fs::create_dir_all(&cache).expect("mkdir");
            fs::set_permissions(&cache, fs::Permissions::from_mode(0o755)).expect("chmod");
            layout.write_root_only(
                "pam_ticket.conf",
                &format!(
                    "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}/PasswordVault\"\n\
                     PortalAuthMethod=\"PlatformToken\"\nIdentityURL=\"{}\"\n\
                     PortalAccountFile=\"{}\"\nCAFile=\"{}\"\nCacheDirectory=\"{}\"\n\
                     Timeout=\"5\"\n",
                    layout.server.base_url(),
                    layout.server.ip_url(),
                    layout.path("account.conf").display(),
                    layout.pki.ca_pem_path().display(),
                    cache.display(),
                ),
            );
        },
        |layout| {
            vec![
                format!(
                    "WARN  {}: the cache directory {} is unusable (mode 0755; group and \
                     others must have no access): every login asks the Identity tenant for a \
                     new platform token",
                    layout.path("pam_ticket.conf").display(),
                    layout.path("cache").display(),
                ),
                format!(
                    "WARN  {}: portal mode: the portal at {}/PasswordVault decides whether \
                     tickets are checked at all; for a target whose platform does not require \
                     ticketing validation, every well-formed ticket ID is let in",
                    layout.path("pam_ticket.conf").display(),
                    layout.server.base_url(),
                ),
            ]
        },
        0,
    );
}

/// In portal mode the vault decides whether a ticket is checked at all (a platform without
/// ticketing validation lets every well-formed ID in), which doctor cannot see: it warns,
/// and says what to check in the vault. Exit 0: a warning alone.
#[test]
fn portal_mode_reminds_to_check_the_platforms_ticketing_validation() {
    let (_, doctor) = variant(
        Distro::Debian,
        |layout| {
            layout.write_root_only(
                "pam_ticket.conf",
                &format!(
                    "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}/PasswordVault\"\n\
                     PortalAccountFile=\"{}\"\nCAFile=\"{}\"\nTimeout=\"5\"\n",
                    layout.server.base_url(),
                    layout.path("account.conf").display(),
                    layout.pki.ca_pem_path().display(),
                ),
            );
        },
        |layout| {
            vec![format!(
                "WARN  {}: portal mode: the portal at {}/PasswordVault decides whether tickets \
                 are checked at all; for a target whose platform does not require ticketing \
                 validation, every well-formed ticket ID is let in",
                layout.path("pam_ticket.conf").display(),
                layout.server.base_url(),
            )]
        },
        0,
    );
    let problem = doctor.problems()[0].to_string();
    let fix = doctor.fix_for(&problem);
    assert!(
        fix.contains("EnterTicketingInfo and ValidateTicketNumber on")
            && fix.contains("\"ServiceNow\""),
        "{fix}"
    );
}

#[test]
fn pam_file_config_argument_wins_over_the_option() {
    let layout = Layout::ticket(Distro::Debian);
    layout.write_config("");
    fs::copy(layout.path("pam_ticket.conf"), layout.path("named.conf")).expect("copy");
    fs::set_permissions(layout.path("named.conf"), fs::Permissions::from_mode(0o600))
        .expect("chmod");
    layout.write_config("Bogus=\"1\"\n");
    layout.edit(
        PAM,
        TICKET_LINE,
        &format!(
            "{TICKET_LINE} config={}",
            layout.path("named.conf").display()
        ),
    );
    let doctor = layout.doctor();
    assert_eq!(doctor.code, 0, "{}", doctor.context());
    assert!(
        doctor.out.contains(&format!(
            "note: {} names config={}, which is what the module reads; --config {} is not used",
            layout.place(PAM, "pam_ticket.so"),
            layout.path("named.conf").display(),
            layout.path("pam_ticket.conf").display()
        )),
        "{}",
        doctor.out
    );
}

// ------------------------------------------------------------------------- usage

#[test]
fn usage_errors_exit_two() {
    let layout = Layout::ticket(Distro::Debian);
    for (arguments, message) in [
        (
            vec!["--pam-service", "sshd", "--pam-file", "/etc/pam.d/sshd"],
            "give --pam-service or --pam-file, not both",
        ),
        (vec!["--bogus"], "unknown option --bogus"),
        (vec!["extra"], "unexpected argument \"extra\""),
        (
            vec!["--pam-service", "../x"],
            "--pam-service \"../x\" is not a service name",
        ),
    ] {
        let output = Command::new(TOOL)
            .arg("doctor")
            .args(&arguments)
            .output()
            .expect("run doctor");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("pam-ticket doctor: {message}\n")),
            "{arguments:?}: {stderr}"
        );
    }
    let missing = layout.doctor_with(&["--pam-file", "/nonexistent/sshd"]);
    assert_eq!(missing.code, 2, "{}", missing.context());
    let help = Command::new(TOOL)
        .args(["doctor", "--help"])
        .output()
        .expect("run doctor --help");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: pam-ticket doctor"));
    let top = Command::new(TOOL)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(String::from_utf8_lossy(&top.stdout).contains("  doctor [--sshd-config FILE]"));
}

#[test]
fn a_service_without_a_pam_file_is_reported() {
    let layout = Layout::ticket(Distro::Debian);
    let output = Command::new(TOOL)
        .arg("doctor")
        .arg("--sshd-config")
        .arg(layout.path("etc/ssh/sshd_config"))
        .args(["--pam-service", "pamticket-doctor-absent"])
        .output()
        .expect("run doctor");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.lines().any(|line| line
            == "ERROR /etc/pam.d/pamticket-doctor-absent: there is no pam.d file for the \
                service pamticket-doctor-absent: libpam uses /etc/pam.d/other, so nobody is \
                asked for a ticket"),
        "{out}"
    );
}

// ------------------------------------------------- reading sshd_config like sshd -T

/// The file reader agrees with `sshd -T` on every setting doctor judges, for both stock
/// layouts and both README layouts. Needs root and sshd (the host keys).
#[test]
fn reading_the_file_agrees_with_sshd_t() {
    if let Some(reason) = support::sshd::unavailable_reason() {
        support::sshd::report(&format!("doctor vs sshd -T: SKIPPED: {reason}"));
        return;
    }
    support::sshd::ensure_privsep_dir();
    for distro in [Distro::Debian, Distro::Rhel] {
        for layout in [Layout::stock(distro), Layout::ticket(distro)] {
            let file = layout.path("etc/ssh/sshd_config");
            let read =
                pam_ticket::admin::doctor::SshdSettings::from_file(&file).expect("read the file");
            let asked = pam_ticket::admin::doctor::SshdSettings::from_sshd_test(Some(&file))
                .expect("sshd -T");
            for keyword in pam_ticket::admin::doctor::checked_keywords() {
                assert_eq!(
                    read.value(keyword),
                    asked.value(keyword),
                    "{distro:?} {}: {keyword}",
                    file.display()
                );
            }
        }
    }
}
