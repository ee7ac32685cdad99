//! The URLs the module talks to: the https base URL of a ticketing system or portal, and
//! the http CONNECT proxy in front of them. A leaf module: the configuration parses them
//! and the HTTP client takes them, so neither has to import the other.

use std::fmt;

/// An https base URL, split so that requests can be built from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// `https://host[:port]` plus any path prefix, without a trailing slash.
    pub base: String,
    pub host: String,
    pub port: u16,
}

impl BaseUrl {
    /// `base` joined with an absolute `path` (which starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

/// An HTTP proxy that the module tunnels through with CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyUrl {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

/// Parses `https://host[:port][/prefix]`.
///
/// The URL is first parsed by the URI parser the HTTP client itself uses (`http::Uri`,
/// through ureq), so that a URL the client would refuse at request time (a space, a tab,
/// `<`, `>`, a backtick, e.g. a leftover `<instance>` placeholder) is a configuration
/// error here, never a request failure that could pass for an outage; characters RFC 3986
/// does not allow unencoded (`{`, `}`, `|`, `\`, `^`, `"`, non-ASCII) are refused too.
/// Beyond that, anything but https, user info, a query or a fragment is refused: the
/// module only ever sends credentials over verified TLS.
pub fn parse_https_url(raw: &str) -> Result<BaseUrl, String> {
    let raw = raw.trim();
    check_uri_syntax(raw)?;
    // The scheme is case-insensitive (RFC 3986 3.1): `HTTPS://` is the same URL.
    let Some(rest) = strip_scheme(raw, "https") else {
        return Err(format!("{raw:?} is not an https:// URL"));
    };
    if rest.contains(['?', '#', '@']) {
        return Err(format!(
            "{raw:?} must not contain a query, fragment or user info"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(authority, 443)?;
    let port_text = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    Ok(BaseUrl {
        base: format!("https://{host}{port_text}{path}"),
        host,
        port,
    })
}

/// Refuses a URL that the HTTP client's URI parser would refuse (`invalid uri
/// character`), naming the reason, and then, stricter than that parser, any character
/// RFC 3986 does not allow unencoded: the parser lets `"`, `{`, `}`, `|`, `\`, `^` and
/// non-ASCII text through in a path, which a server may read differently or refuse. The
/// scheme, host and port are checked by the callers' own rules.
fn check_uri_syntax(raw: &str) -> Result<(), String> {
    raw.parse::<ureq::http::Uri>().map_err(|uri_error| {
        format!(
            "{raw:?} is not a URL the HTTP client accepts ({uri_error}); is a placeholder \
             such as <instance> left over?"
        )
    })?;
    let bytes = raw.as_bytes();
    for (index, character) in raw.char_indices() {
        let allowed = character.is_ascii_alphanumeric()
            || "-._~:/?#[]@!$&'()*+,;=".contains(character)
            || (character == '%'
                && bytes.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(index + 2).is_some_and(u8::is_ascii_hexdigit));
        if !allowed {
            return Err(format!(
                "{raw:?} holds {character:?}, which a URL must not hold unencoded \
                 (percent-encode it; a % must start a %XX escape)"
            ));
        }
    }
    Ok(())
}

/// Parses `http://host:port`, the only form of proxy the module tunnels through.
pub fn parse_proxy_url(raw: &str) -> Result<ProxyUrl, String> {
    check_uri_syntax(raw)?;
    let Some(authority) = strip_scheme(raw, "http") else {
        return Err(format!("{raw:?} must look like http://host:port"));
    };
    let authority = authority.trim_end_matches('/');
    if authority.contains(['/', '?', '#', '@']) || !authority.contains(':') {
        return Err(format!("{raw:?} must look like http://host:port"));
    }
    // Port 0 stands for "no port given": `http://[::1]` has a colon, but no port.
    let (host, port) = split_host_port(authority, 0)?;
    if port == 0 {
        return Err(format!("{raw:?} must look like http://host:port"));
    }
    let proxy = ProxyUrl { host, port };
    // What ureq would refuse when the client is built (`http://[a[::1]:3128`) is refused
    // here, at its line (found by fuzz/config).
    ureq::Proxy::new(&proxy.to_string())
        .map_err(|problem| format!("{raw:?} is not a valid proxy URL: {problem}"))?;
    Ok(proxy)
}

/// What follows `scheme://` in `raw`, whatever the case of the scheme.
fn strip_scheme<'a>(raw: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = raw.split_once("://")?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The kind of server a base URL points at, which decides what its path may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiBase {
    /// A ServiceNow instance: `https://<instance>.service-now.com`, never with a path.
    ServiceNow,
    /// The AR System REST API: the server's root, or a reverse proxy's path prefix in
    /// front of it; the module adds `/api/jwt/…` and `/api/arsys/…`.
    Remedy,
    /// The portal's REST API: `https://<host>/PasswordVault` (or a reverse proxy's prefix
    /// in front of PVWA's `/API/…` routes); the module adds `/API/…`.
    Portal,
    /// A Privilege Cloud Identity tenant, `https://<tenant>.id.cyberark.cloud` (or a
    /// reverse proxy's prefix in front of it); the module adds `/oauth2/platformtoken`.
    IdentityTenant,
}

impl BaseUrl {
    /// `https://host[:port]`, without the path.
    pub fn origin(&self) -> &str {
        let after_scheme = self.base.find("://").map_or(0, |at| at + 3);
        match self.base[after_scheme..].find('/') {
            Some(slash) => &self.base[..after_scheme + slash],
            None => &self.base,
        }
    }

    /// The path prefix (`/PasswordVault`), empty when there is none.
    pub fn path(&self) -> &str {
        &self.base[self.origin().len()..]
    }

    /// Refuses a path that the module's own routes would be added to a second time, and
    /// says which base URL to use instead. A path that ends in an API route
    /// (`…/api/now/table/incident`, `…/api/jwt/login`, `…/PasswordVault/API/Accounts`)
    /// would make every request go to a URL that does not exist, which the server answers
    /// with a 400 or 404: a configuration mistake, never an outage.
    pub fn check_path(&self, kind: ApiBase) -> Result<(), String> {
        let path = self.path();
        let segments: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
        let base_before = |index: usize| -> String {
            let mut base = self.origin().to_string();
            for segment in &segments[..index] {
                base.push('/');
                base.push_str(segment);
            }
            base
        };
        match kind {
            ApiBase::ServiceNow if !segments.is_empty() => Err(format!(
                "{:?} has a path ({path}), but a ServiceNow instance has none: use {:?} \
                 (the module adds /api/now/table/… itself)",
                self.base,
                self.origin()
            )),
            ApiBase::ServiceNow => Ok(()),
            ApiBase::Remedy => {
                let route = segments.windows(2).position(|pair| {
                    pair[0].eq_ignore_ascii_case("api")
                        && ["arsys", "jwt"]
                            .iter()
                            .any(|name| pair[1].eq_ignore_ascii_case(name))
                });
                match route {
                    Some(index) => Err(format!(
                        "{:?} ends in the AR REST API's route /{}: use the base in front of it, \
                         {:?} (the module adds /api/jwt/… and /api/arsys/… itself)",
                        self.base,
                        segments[index..].join("/"),
                        base_before(index)
                    )),
                    None => Ok(()),
                }
            }
            ApiBase::IdentityTenant => {
                let route = segments
                    .iter()
                    .position(|segment| segment.eq_ignore_ascii_case("oauth2"));
                match route {
                    Some(index) => Err(format!(
                        "{:?} ends in the Identity tenant's route /{}: use the base in front of \
                         it, {:?} (the module adds /oauth2/platformtoken itself)",
                        self.base,
                        segments[index..].join("/"),
                        base_before(index)
                    )),
                    None => Ok(()),
                }
            }
            ApiBase::Portal => {
                // PVWA's routes ignore case. `API` right after `PasswordVault`, last, or
                // before a route the module uses is the API itself; elsewhere a segment
                // called `api` may be a reverse proxy's own prefix.
                let route = segments.iter().enumerate().position(|(index, segment)| {
                    segment.eq_ignore_ascii_case("API")
                        && (index + 1 == segments.len()
                            || (index > 0
                                && segments[index - 1].eq_ignore_ascii_case("PasswordVault"))
                            || ["auth", "Accounts"]
                                .iter()
                                .any(|name| segments[index + 1].eq_ignore_ascii_case(name)))
                });
                match route {
                    Some(index) => Err(format!(
                        "{:?} ends in the portal's API route /{}: use the base in front of it, \
                         {:?} (the module adds /API/… itself)",
                        self.base,
                        segments[index..].join("/"),
                        base_before(index)
                    )),
                    None => Ok(()),
                }
            }
        }
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(format!("bad IPv6 address in {authority:?}"));
        };
        (format!("[{host}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    if let Err(problem) = check_host(&host) {
        return Err(format!("bad host name in {authority:?}: {problem}"));
    }
    let port = match port {
        None => default_port,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("bad port in {authority:?}")),
        },
    };
    Ok((host, port))
}

/// Whether `host` is a name DNS could resolve or an IP literal, so that a mistyped host
/// is a configuration error here and not a name lookup that fails at every login (an
/// outage, which FailMode=safe would let in without a request ever being sent). A name is
/// at most 253 characters of dot-separated labels, each 1 to 63 letters, digits and `-`,
/// not starting or ending with `-` (RFC 1123); a name whose last label is all digits must
/// be an IPv4 address; `[…]` must hold an IPv6 address.
fn check_host(host: &str) -> Result<(), String> {
    if let Some(bracketed) = host.strip_prefix('[') {
        let inner = bracketed.strip_suffix(']').unwrap_or(bracketed);
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("[{inner}] is not an IPv6 address")),
        };
    }
    if host.is_empty() {
        return Err("there is none".to_string());
    }
    if host.len() > 253 {
        return Err(format!(
            "it is {} characters long, more than the 253 a host name may have",
            host.len()
        ));
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(
                "it has an empty label (two dots in a row, or a dot at the start or end)"
                    .to_string(),
            );
        }
        if label.len() > 63 {
            return Err(format!(
                "the label {label:?} is {} characters long, more than 63",
                label.len()
            ));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "the label {label:?} holds a character other than letters, digits and '-'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    let last_label_is_numeric = host
        .rsplit('.')
        .next()
        .is_some_and(|label| label.chars().all(|c| c.is_ascii_digit()));
    if last_label_is_numeric && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!("{host} is neither a host name nor an IPv4 address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_keep_port_and_prefix() {
        let url = parse_https_url("https://sn.example.com:8443/proxy/sn/").expect("valid");
        assert_eq!(url.base, "https://sn.example.com:8443/proxy/sn");
        assert_eq!(url.port, 8443);
        assert_eq!(
            url.join("/api/now/table/incident"),
            "https://sn.example.com:8443/proxy/sn/api/now/table/incident"
        );
        assert_eq!(
            parse_https_url("https://sn.example.com/")
                .expect("valid")
                .base,
            "https://sn.example.com"
        );
        assert!(parse_https_url("https://user:pw@sn.example.com").is_err());
        assert!(parse_https_url("https://sn.example.com:99999").is_err());
    }

    #[test]
    fn the_scheme_is_read_in_any_case() {
        for raw in ["HTTPS://sn.example.com", "Https://sn.example.com/"] {
            assert_eq!(
                parse_https_url(raw).expect(raw).base,
                "https://sn.example.com"
            );
        }
        assert!(parse_https_url("HTTP://sn.example.com").is_err());
        assert_eq!(
            parse_proxy_url("HTTP://proxy:3128").expect("proxy"),
            ProxyUrl {
                host: "proxy".to_string(),
                port: 3128
            }
        );
    }

    #[test]
    fn a_path_that_the_module_would_add_again_names_the_base_to_use() {
        let check = |raw: &str, kind: ApiBase| {
            parse_https_url(raw)
                .expect(raw)
                .check_path(kind)
                .map_err(|problem| {
                    problem
                        .split("use ")
                        .nth(1)
                        .and_then(|rest| rest.split('"').nth(1))
                        .unwrap_or_default()
                        .to_string()
                })
        };
        // ServiceNow instances have no path at all.
        assert_eq!(
            check("https://acme.service-now.com/", ApiBase::ServiceNow),
            Ok(())
        );
        for raw in [
            "https://acme.service-now.com/api/now/table/incident",
            "https://acme.service-now.com/now/nav/ui/home",
        ] {
            assert_eq!(
                check(raw, ApiBase::ServiceNow),
                Err("https://acme.service-now.com".to_string()),
                "{raw}"
            );
        }
        // Remedy: a reverse proxy's prefix stays; the API's own routes do not.
        for raw in [
            "https://itsm.example.com:8443",
            "https://gw.example.com/remedy",
        ] {
            assert_eq!(check(raw, ApiBase::Remedy), Ok(()), "{raw}");
        }
        for (raw, base) in [
            (
                "https://itsm.example.com:8443/api/arsys/v1/entry",
                "https://itsm.example.com:8443",
            ),
            (
                "https://gw.example.com/remedy/api/jwt/login",
                "https://gw.example.com/remedy",
            ),
            (
                "https://gw.example.com/remedy/API/ARSYS",
                "https://gw.example.com/remedy",
            ),
        ] {
            assert_eq!(check(raw, ApiBase::Remedy), Err(base.to_string()), "{raw}");
        }
        // The portal: /PasswordVault (or a proxy's prefix, which may even be called api)
        // stays; PVWA's /API/ routes do not.
        for raw in [
            "https://pvwa.example.com/PasswordVault",
            "https://pvwa.example.com",
            "https://gw.example.com/api/pvwa/PasswordVault",
        ] {
            assert_eq!(check(raw, ApiBase::Portal), Ok(()), "{raw}");
        }
        for (raw, base) in [
            (
                "https://pvwa.example.com/PasswordVault/API/auth/CyberArk/Logon",
                "https://pvwa.example.com/PasswordVault",
            ),
            (
                "https://pvwa.example.com/PasswordVault/api",
                "https://pvwa.example.com/PasswordVault",
            ),
            (
                "https://pvwa.example.com/API/Accounts",
                "https://pvwa.example.com",
            ),
            (
                "https://gw.example.com/cyberark/API",
                "https://gw.example.com/cyberark",
            ),
        ] {
            assert_eq!(check(raw, ApiBase::Portal), Err(base.to_string()), "{raw}");
        }
        // The Identity tenant: its root; the platform-token route itself is refused.
        assert_eq!(
            check(
                "https://abc1234.id.cyberark.cloud/",
                ApiBase::IdentityTenant
            ),
            Ok(())
        );
        for raw in [
            "https://abc1234.id.cyberark.cloud/oauth2/platformtoken",
            "https://abc1234.id.cyberark.cloud/OAuth2",
        ] {
            assert_eq!(
                check(raw, ApiBase::IdentityTenant),
                Err("https://abc1234.id.cyberark.cloud".to_string()),
                "{raw}"
            );
        }
    }

    #[test]
    fn host_names_must_be_resolvable_names_or_ip_literals() {
        let long_label = "a".repeat(64);
        let long_name = format!("{}.example.com", vec!["a".repeat(60); 4].join("."));
        for bad in [
            "https://sn..example.com".to_string(),
            "https://.sn.example.com".to_string(),
            "https://sn.example.com.".to_string(),
            format!("https://{long_label}.example.com"),
            "https://-sn.example.com".to_string(),
            "https://sn-.example.com".to_string(),
            "https://sn.-example.com:8443".to_string(),
            "https://sn_1.example.com".to_string(),
            format!("https://{long_name}"),
            "https://999.1.1.1".to_string(),
            "https://10.0.0".to_string(),
            "https://[::g]".to_string(),
            "https://[10.0.0.1]".to_string(),
        ] {
            let refused = parse_https_url(&bad);
            assert!(
                matches!(&refused, Err(problem) if problem.contains("bad host name")),
                "{bad}: {refused:?}"
            );
        }
        assert!(
            parse_proxy_url("http://proxy..example.com:3128").is_err(),
            "the proxy's host too"
        );
        let longest_label = "a".repeat(63);
        let longest_name = format!("{}.example.com", vec!["a".repeat(59); 4].join("."));
        assert_eq!(longest_name.len(), 251);
        for good in [
            "https://sn.example.com".to_string(),
            "https://localhost:8443".to_string(),
            "https://x1-y2.Example.COM".to_string(),
            format!("https://{longest_label}.example.com"),
            format!("https://{longest_name}"),
            "https://127.0.0.1:8443".to_string(),
            "https://[::1]:8443".to_string(),
            "https://[2001:db8::10]/PasswordVault".to_string(),
            "https://123.example.com".to_string(),
        ] {
            assert!(parse_https_url(&good).is_ok(), "{good}");
        }
    }
}
