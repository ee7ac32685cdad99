//! Serves the ServiceNow simulator over HTTPS on 127.0.0.1, so clients other than the
//! module (ServiceNow's own pysnc, curl) can be pointed at it and prove it faithful.
//!
//! ```text
//! cargo run --example servicenow_sim -- [USER [PASSWORD [CLIENT_ID [CLIENT_SECRET]]]]
//! ```
//!
//! Prints `CA=<path of the trusted CA PEM>`, `PORT=<port>`, `URL=`, `USER=` and
//! `PASSWORD=` lines (and `CLIENT_ID=`, `CLIENT_SECRET=` of the OAuth client registered
//! for `POST /oauth_token.do`), then serves the default fixture until killed or until standard
//! input closes (so a parent script that dies takes the simulator with it).

use pam_ticket_testkit as support;

use std::io::{Read, Write};
use std::sync::Arc;

use support::https::TestServer;
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;

fn main() {
    let mut args = std::env::args().skip(1);
    let user = args.next().unwrap_or_else(|| "svc_pam".to_string());
    let password = args.next().unwrap_or_else(|| "s3cret".to_string());
    let client_id = args
        .next()
        .unwrap_or_else(|| "pam-ticket-client".to_string());
    let client_secret = args.next().unwrap_or_else(|| "client-s3cret".to_string());

    let dir =
        std::env::temp_dir().join(format!("pam_ticket_servicenow_sim_{}", std::process::id()));
    let pki = TestPki::generate(&dir);
    let sim = Arc::new(ServiceNowSim::new(&user, &password));
    sim.set_oauth_client(Some((&client_id, &client_secret)));
    sim.set_client_credentials_enabled(true);
    let server = TestServer::start(pki.server_config(ServerCert::Good), sim);

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "CA={}", pki.ca_pem_path().display()).expect("write to stdout");
    writeln!(stdout, "PORT={}", server.port()).expect("write to stdout");
    writeln!(stdout, "URL={}", server.base_url()).expect("write to stdout");
    writeln!(stdout, "USER={user}").expect("write to stdout");
    writeln!(stdout, "CLIENT_ID={client_id}").expect("write to stdout");
    writeln!(stdout, "CLIENT_SECRET={client_secret}").expect("write to stdout");
    writeln!(stdout, "PASSWORD={password}").expect("write to stdout");
    stdout.flush().expect("flush stdout");
    drop(stdout);

    // Serve until standard input reaches its end; the server runs on its own threads.
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}

    drop(server);
    // The certificates are throw-away; leaving them behind would only litter /tmp.
    let _ = std::fs::remove_dir_all(&dir);
}
