use super::*;

#[test]
fn tokens_follow_libpam() {
    let lines = parse(
        "# comment\n\
         auth  required  pam_ticket.so config=/a [AllowedIncidentTicketStates=New,In Progress] debug # trailing\n\
         -auth [success=1 default=ignore] pam_succeed_if.so user ingroup x\n\
         @include common-auth\n\
         auth required pam_x.so a\\\n  b [c\\]d]\n",
        Path::new("/p/sshd"),
    );
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0].place.line, 2);
    assert_eq!(
        lines[0].arguments,
        vec![
            "config=/a",
            "AllowedIncidentTicketStates=New,In Progress",
            "debug"
        ]
    );
    assert!(lines[0].is_pam_ticket());
    assert!(lines[1].silent_if_missing);
    assert_eq!(
        lines[1].control,
        Control::Actions(vec![
            ("success".into(), "1".into()),
            ("default".into(), "ignore".into())
        ])
    );
    assert_eq!(lines[1].module_name(), "pam_succeed_if");
    assert_eq!(lines[2].kind, "@include");
    assert_eq!(lines[2].module, "common-auth");
    assert_eq!(lines[3].place.line, 5);
    assert_eq!(lines[3].arguments, vec!["a", "b", "c]d"]);
    assert!(!lines[3].unterminated_bracket);
    let open = parse("auth required pam_ticket.so [A=b c", Path::new("/p"));
    assert!(matches!(
        parse("auth requried pam_x.so", Path::new("/p"))[0].control,
        Control::Unknown(_)
    ));
    assert!(open[0].unterminated_bracket);
    assert_eq!(open[0].arguments, vec!["A=b c"]);
}

/// A stack from service-file text, included files given by name.
fn stack(service: &str, included: &[(&str, &str)]) -> AuthStack {
    let dir = std::env::temp_dir().join(format!(
        "pam_ticket-pam-stack-{}-{}",
        std::process::id(),
        service.len()
    ));
    fs::create_dir_all(&dir).expect("mkdir");
    for (name, text) in included {
        fs::write(dir.join(name), text).expect("write");
    }
    fs::write(dir.join("sshd"), service).expect("write");
    let built = auth_stack(&dir.join("sshd"), std::slice::from_ref(&dir)).expect("stack");
    let _ = fs::remove_dir_all(&dir);
    built
}

fn ticket_index(stack: &AuthStack) -> usize {
    stack
        .entries
        .iter()
        .position(|entry| entry.line.is_pam_ticket())
        .expect("a ticket line")
}

#[test]
fn a_failed_password_is_followed_to_the_ticket_as_libpam_would() {
    let debian = stack(
        "@include common-auth\nauth required pam_ticket.so\n",
        &[(
            "common-auth",
            "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
             auth required pam_permit.so\n",
        )],
    );
    assert_eq!(
        run_to_ticket(&debian, ticket_index(&debian)),
        Run::EndsBefore { success: false }
    );
    let rhel = stack(
        "auth substack password-auth\nauth include postlogin\nauth required pam_ticket.so\n",
        &[
            (
                "password-auth",
                "auth required pam_env.so\nauth sufficient pam_unix.so nullok\n\
                 auth required pam_deny.so\n",
            ),
            ("postlogin", "session optional pam_umask.so\n"),
        ],
    );
    assert_eq!(
        run_to_ticket(&rhel, ticket_index(&rhel)),
        Run::ReachesTicket { failed: true }
    );
    let optional = stack(
        "auth optional pam_unix.so\nauth required pam_ticket.so\n",
        &[],
    );
    assert_eq!(
        run_to_ticket(&optional, ticket_index(&optional)),
        Run::ReachesTicket { failed: false }
    );
}
