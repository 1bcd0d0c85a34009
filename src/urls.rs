//! Which URLs Errand sends people and requests to: https, or plain http only
//! to this machine (for development). Used for redirect URIs and for the
//! external identity provider's addresses alike, so the rule is written once.

use url::Url;

/// Whether the host is this machine: plain http is acceptable only there.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    }
}

/// The host a URL names, for showing people where something goes.
pub fn host_of(raw: &str) -> Option<String> {
    Url::parse(raw).ok()?.host_str().map(str::to_owned)
}

/// https, or plain http to this machine.
pub fn is_https_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback_host(url),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(raw: &str) -> bool {
        is_https_or_loopback(&Url::parse(raw).unwrap())
    }

    #[test]
    fn https_anywhere_http_only_to_this_machine() {
        assert!(allowed("https://login.example.com"));
        assert!(allowed("http://127.0.0.1:9000/cb"));
        assert!(allowed("http://[::1]/cb"));
        assert!(allowed("http://localhost/cb"));
        assert!(!allowed("http://login.example.com"));
        assert!(!allowed("http://10.0.0.1/cb"));
        assert!(!allowed("ftp://localhost/x"));
    }
}
