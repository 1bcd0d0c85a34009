//! The SSRF guard: which URLs and addresses Errand may send requests to when
//! someone else chose the URL (webhook deliveries, OAuth client metadata
//! documents).
//!
//! A webhook URL is chosen by a user, and the service then sends requests to
//! it from inside our network. Without a guard that is a server-side request
//! forgery primitive: a user could point a webhook at the cloud metadata
//! service (and read instance credentials from the delivery log), at the
//! database, or at anything else listening on a private network.
//!
//! The guard works at two moments, and both are needed:
//!
//! * [`check_url`] when a URL is registered and again right before each
//!   delivery: scheme, credentials, length, and the host when it is an IP
//!   literal or a `localhost` name.
//! * [`GuardedResolver`], installed in the delivery [`client`], when a
//!   connection is made: every address a host name resolves to is checked,
//!   and the connection goes to exactly those checked addresses. Checking a
//!   name at registration only would be defeated by DNS rebinding (the name
//!   resolves to a public address when checked, to 127.0.0.1 when used).
//!
//! reqwest does not call the resolver for IP-literal hosts, which is why the
//! pre-delivery [`check_url`] is not optional.
//!
//! Addresses are classified by pure functions ([`classify`], [`permits`]) so
//! the tables can be tested without sending a packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

use crate::config::WebhookSettings;

/// What the operator allows beyond the safe default (https to public
/// addresses only). Read from `ERRAND_WEBHOOK_ALLOW_HTTP` and
/// `ERRAND_WEBHOOK_ALLOW_PRIVATE` by the configuration; both exist for
/// development, tests and self-hosted set-ups whose receivers live on the
/// same network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardPolicy {
    /// Permit plain `http` URLs.
    pub allow_http: bool,
    /// Permit loopback, private-network and link-local addresses.
    pub allow_private: bool,
}

impl From<&WebhookSettings> for GuardPolicy {
    fn from(settings: &WebhookSettings) -> Self {
        Self {
            allow_http: settings.allow_http,
            allow_private: settings.allow_private,
        }
    }
}

/// What kind of address an IP is, as far as reaching it from the service
/// is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable: an ordinary webhook receiver.
    Public,
    /// 127.0.0.0/8, ::1: this machine.
    Loopback,
    /// RFC 1918, CGNAT shared space 100.64.0.0/10, IPv6 unique local
    /// fc00::/7 (and the deprecated site-local fec0::/10).
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// A cloud provider's instance metadata or host agent endpoint, which
    /// hands out credentials to whoever asks from the instance.
    Metadata,
    /// 0.0.0.0, ::: "any address", which many stacks route to this machine.
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// Special-purpose space that no receiver legitimately lives in:
    /// documentation, benchmarking, protocol assignments, "this network",
    /// the former class E, broadcast, IPv6 discard, Teredo, unassigned
    /// IPv6 space.
    Reserved,
}

impl AddressClass {
    pub fn is_public(&self) -> bool {
        matches!(self, Self::Public)
    }

    /// How the class reads in an error message: "`x` resolves to {this}".
    pub fn description(&self) -> &'static str {
        match self {
            Self::Public => "a public address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private-network address",
            Self::LinkLocal => "a link-local address",
            Self::Metadata => "a cloud metadata address",
            Self::Unspecified => "the unspecified address",
            Self::Multicast => "a multicast address",
            Self::Reserved => "a reserved special-purpose address",
        }
    }

    /// Whether `allow_private` opens this class.
    fn private_use(&self) -> bool {
        matches!(self, Self::Loopback | Self::Private | Self::LinkLocal)
    }
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// URLs longer than this are refused: no receiver needs one, and the URL is
/// stored, logged and shown back to the user.
pub const MAX_URL_LEN: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("webhook URLs may be at most {MAX_URL_LEN} characters long; this one has {0}")]
    TooLong(usize),
    #[error("the webhook URL is not a valid URL: {0}")]
    Invalid(#[from] url::ParseError),
    #[error(
        "webhook URLs must use https (http is allowed only when the operator sets \
         ERRAND_WEBHOOK_ALLOW_HTTP=1)"
    )]
    HttpNotAllowed,
    #[error("webhook URLs must use https, not `{0}`")]
    UnsupportedScheme(String),
    #[error("webhook URLs must name a host")]
    MissingHost,
    #[error(
        "webhook URLs may not carry credentials (a user name or password before the host); \
         put any secret in the path or query, or rely on the webhook signature"
    )]
    Credentials,
    #[error(
        "`{host}` is a loopback name, which webhooks may not reach (allowed only when the \
         operator sets ERRAND_WEBHOOK_ALLOW_PRIVATE=1)"
    )]
    LoopbackName { host: String },
    #[error("{}", forbidden_message(.host, *.ip, *.class))]
    Forbidden {
        host: String,
        ip: IpAddr,
        class: AddressClass,
    },
    #[error("could not resolve host `{host}`")]
    Unresolvable {
        host: String,
        #[source]
        source: Option<std::io::Error>,
    },
}

fn forbidden_message(host: &str, ip: IpAddr, class: AddressClass) -> String {
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|parsed| parsed == ip);
    // The resolved address itself is left out: the message reaches API
    // callers, who could otherwise map internal names to internal addresses.
    let what = if literal {
        format!("`{host}` is {class}")
    } else {
        format!("`{host}` resolves to {class}")
    };
    let hint = if class.private_use() {
        " (allowed only when the operator sets ERRAND_WEBHOOK_ALLOW_PRIVATE=1)"
    } else {
        ""
    };
    format!("{what}, which webhooks may not reach{hint}")
}

/// Addresses that get a class of their own however their enclosing range
/// is classified. Checked first.
const V4_METADATA: [Ipv4Addr; 6] = [
    // AWS, GCP, Azure IMDS, OpenStack, DigitalOcean, ...
    Ipv4Addr::new(169, 254, 169, 254),
    // AWS ECS task metadata and credentials.
    Ipv4Addr::new(169, 254, 170, 2),
    // AWS EKS Pod Identity agent.
    Ipv4Addr::new(169, 254, 170, 23),
    // Azure WireServer.
    Ipv4Addr::new(168, 63, 129, 16),
    // Alibaba Cloud.
    Ipv4Addr::new(100, 100, 100, 200),
    // Oracle Cloud (also inside 192.0.0.0/24).
    Ipv4Addr::new(192, 0, 0, 192),
];

/// IPv4 ranges, first match wins.
const V4_RANGES: [([u8; 4], u32, AddressClass); 17] = [
    ([0, 0, 0, 0], 32, AddressClass::Unspecified),
    // "This network".
    ([0, 0, 0, 0], 8, AddressClass::Reserved),
    ([127, 0, 0, 0], 8, AddressClass::Loopback),
    ([10, 0, 0, 0], 8, AddressClass::Private),
    ([172, 16, 0, 0], 12, AddressClass::Private),
    ([192, 168, 0, 0], 16, AddressClass::Private),
    // Carrier-grade NAT shared space: not globally routable, and inside a
    // cloud it can be the provider's own infrastructure.
    ([100, 64, 0, 0], 10, AddressClass::Private),
    ([169, 254, 0, 0], 16, AddressClass::LinkLocal),
    // IETF protocol assignments.
    ([192, 0, 0, 0], 24, AddressClass::Reserved),
    // Documentation: TEST-NET-1, -2, -3.
    ([192, 0, 2, 0], 24, AddressClass::Reserved),
    ([198, 51, 100, 0], 24, AddressClass::Reserved),
    ([203, 0, 113, 0], 24, AddressClass::Reserved),
    // Benchmarking.
    ([198, 18, 0, 0], 15, AddressClass::Reserved),
    // Deprecated 6to4 relay anycast.
    ([192, 88, 99, 0], 24, AddressClass::Reserved),
    ([224, 0, 0, 0], 4, AddressClass::Multicast),
    // Limited broadcast, then the rest of the former class E.
    ([255, 255, 255, 255], 32, AddressClass::Reserved),
    ([240, 0, 0, 0], 4, AddressClass::Reserved),
];

const V6_METADATA: [Ipv6Addr; 3] = [
    // AWS IMDS over IPv6.
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    // AWS EKS Pod Identity agent over IPv6.
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
    // Google Cloud metadata server over IPv6.
    Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254),
];

/// IPv6 ranges, first match wins. Addresses that embed an IPv4 address are
/// handled before this table; what matches nothing here is public inside
/// global unicast 2000::/3 and reserved outside it.
const V6_RANGES: [(u128, u32, AddressClass); 8] = [
    (0, 128, AddressClass::Unspecified),
    (1, 128, AddressClass::Loopback),
    (0xfc00 << 112, 7, AddressClass::Private),
    // Deprecated site-local, still routed as private by some stacks.
    (0xfec0 << 112, 10, AddressClass::Private),
    (0xfe80 << 112, 10, AddressClass::LinkLocal),
    (0xff00 << 112, 8, AddressClass::Multicast),
    // IETF protocol assignments, including Teredo 2001::/32 (tunnels
    // whose far end we cannot judge), benchmarking 2001:2::/48, ORCHID.
    (0x2001 << 112, 23, AddressClass::Reserved),
    // Documentation.
    (0x2001_0db8 << 96, 32, AddressClass::Reserved),
];

/// Documentation 3fff::/20 (RFC 9637), also inside 2000::/3.
const V6_DOC_2: (u128, u32) = (0x3fff << 112, 20);

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: u128, net: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    ip & mask == net & mask
}

/// The IPv4 address inside an IPv6 address that is only a way of writing
/// or reaching an IPv4 one, so that it cannot smuggle a forbidden IPv4
/// address past the IPv6 table: IPv4-mapped ::ffff:0:0/96,
/// IPv4-translated ::ffff:0:0:0/96, IPv4-compatible ::/96, NAT64
/// 64:ff9b::/96 and 6to4 2002::/16.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let s = ip.segments();
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0, 0, 0, 0, 0, 0, _, _] => Some(low32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        _ => None,
    }
}

/// The class of an address. Pure: no lookup, no I/O.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    if V4_METADATA.contains(&ip) {
        return AddressClass::Metadata;
    }
    V4_RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map_or(AddressClass::Public, |(_, _, class)| *class)
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if V6_METADATA.contains(&ip) {
        return AddressClass::Metadata;
    }
    let bits = u128::from(ip);
    // :: and ::1 would otherwise read as IPv4-compatible 0.0.0.0 and
    // 0.0.0.1; they are IPv6's own unspecified and loopback addresses.
    if bits > 1
        && let Some(v4) = embedded_v4(ip)
    {
        return classify_v4(v4);
    }
    if let Some((_, _, class)) = V6_RANGES
        .iter()
        .find(|(net, prefix, _)| in_v6(bits, *net, *prefix))
    {
        return *class;
    }
    if in_v6(bits, V6_DOC_2.0, V6_DOC_2.1) || !in_v6(bits, 0x2000 << 112, 3) {
        // Outside global unicast: discard 100::/64, local-use NAT64
        // 64:ff9b:1::/48, SRv6 5f00::/16, and space IANA has not assigned.
        return AddressClass::Reserved;
    }
    AddressClass::Public
}

/// Whether the policy lets a delivery reach `ip`.
///
/// Public addresses always; loopback, private and link-local ones only with
/// `allow_private`. Metadata, unspecified, multicast and reserved addresses
/// never, not even with `allow_private`: instance metadata hands out the
/// service's cloud credentials and is never a legitimate webhook target, and
/// the others have no receivers (tests and local set-ups use loopback).
pub fn permits(policy: &GuardPolicy, ip: IpAddr) -> Result<(), GuardError> {
    permits_for(policy, &ip.to_string(), ip)
}

/// [`permits`], naming the host the address came from in the error.
fn permits_for(policy: &GuardPolicy, host: &str, ip: IpAddr) -> Result<(), GuardError> {
    let class = classify(ip);
    let allowed = match class {
        AddressClass::Public => true,
        AddressClass::Loopback | AddressClass::Private | AddressClass::LinkLocal => {
            policy.allow_private
        }
        AddressClass::Metadata
        | AddressClass::Unspecified
        | AddressClass::Multicast
        | AddressClass::Reserved => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(GuardError::Forbidden {
            host: host.to_owned(),
            ip,
            class,
        })
    }
}

/// `localhost` and its subdomains are loopback by definition (RFC 6761
/// §6.3), whatever a resolver would say, so they are refused by name.
fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Parses and checks a webhook URL; returns it parsed.
///
/// Everything that can be judged without DNS is judged here. IP-literal
/// hosts are checked with [`permits`]; this includes the legacy IPv4 forms
/// (`0x7f.1`, `2130706433`, `017700000001`) that `url` normalises to dotted
/// quads for http(s), so they cannot slip past as "names". Host names are
/// checked by [`GuardedResolver`] when a delivery connects. Run this right
/// before every delivery too, not only at registration: the policy may have
/// changed, and reqwest never consults the resolver for IP literals.
pub fn check_url(policy: &GuardPolicy, raw: &str) -> Result<Url, GuardError> {
    // Checked before parsing so that an enormous input costs nothing.
    if raw.len() > MAX_URL_LEN {
        return Err(GuardError::TooLong(raw.len()));
    }
    let url = Url::parse(raw)?;
    // Percent-encoding can make the normalised form longer than the input.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(GuardError::TooLong(url.as_str().len()));
    }
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => return Err(GuardError::HttpNotAllowed),
        other => return Err(GuardError::UnsupportedScheme(other.to_owned())),
    }
    // Credentials in a URL end up in logs and in the user's own view of the
    // webhook; and `user@host` tricks are a classic way to disguise a host.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GuardError::Credentials);
    }
    let label = url.host_str().unwrap_or_default().to_owned();
    match url.host() {
        None => return Err(GuardError::MissingHost),
        Some(Host::Domain(name)) => {
            if is_localhost_name(name) && !policy.allow_private {
                return Err(GuardError::LoopbackName { host: label });
            }
        }
        Some(Host::Ipv4(v4)) => permits_for(policy, &label, IpAddr::V4(v4))?,
        Some(Host::Ipv6(v6)) => permits_for(policy, &label, IpAddr::V6(v6))?,
    }
    Ok(url)
}

/// Resolves `host` and returns its addresses, with `port`, if every one of
/// them is permitted.
///
/// One forbidden answer refuses the lot: a name under an attacker's control
/// can return a public and a private address together and let the client
/// pick, so "at least one public address" would prove nothing.
pub async fn resolve_checked(
    policy: &GuardPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, GuardError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if is_localhost_name(bare) && !policy.allow_private {
        return Err(GuardError::LoopbackName {
            host: host.to_owned(),
        });
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|source| GuardError::Unresolvable {
            host: host.to_owned(),
            source: Some(source),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(GuardError::Unresolvable {
            host: host.to_owned(),
            source: None,
        });
    }
    for addr in &addrs {
        permits_for(policy, host, addr.ip())?;
    }
    Ok(addrs)
}

/// A reqwest resolver that only ever returns checked addresses.
///
/// reqwest connects to the addresses the resolver returns, without looking
/// the name up again, so what is checked is exactly what is reached: there
/// is no window for DNS rebinding between the check and the connection. The
/// port is 0, which reqwest replaces with the URL's (or the scheme's).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: GuardPolicy,
}

impl GuardedResolver {
    pub fn new(policy: GuardPolicy) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_checked(&policy, &host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// At most this long to establish a connection, within the overall timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Identifies our deliveries to receivers and their firewalls.
const USER_AGENT: &str = concat!("Errand-Webhooks/", env!("CARGO_PKG_VERSION"));

/// The HTTP client for webhook deliveries.
///
/// Every name goes through [`GuardedResolver`]. Redirects are not followed:
/// a receiver could otherwise redirect to an internal address (or to an IP
/// literal, which the resolver never sees); a redirect is returned as the
/// delivery's status instead. Proxies from the environment are ignored, as
/// a proxy would resolve names itself, unchecked. Callers must still run
/// [`check_url`] on the URL right before each delivery, since IP-literal
/// hosts bypass the resolver.
///
/// reqwest is built without a bundled TLS crypto provider: the process
/// must have installed one first (`errand::install_crypto_provider`, which
/// `main` calls at start).
pub fn client(policy: GuardPolicy, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(policy)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .https_only(!policy.allow_http)
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const STRICT: GuardPolicy = GuardPolicy {
        allow_http: false,
        allow_private: false,
    };
    const PRIVATE: GuardPolicy = GuardPolicy {
        allow_http: false,
        allow_private: true,
    };
    const LOCAL_DEV: GuardPolicy = GuardPolicy {
        allow_http: true,
        allow_private: true,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_classified() {
        use AddressClass::*;
        let table = [
            // IPv4 public, including the edges of the private ranges.
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("93.184.216.34", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("9.255.255.255", Public),
            ("11.0.0.0", Public),
            ("126.255.255.255", Public),
            ("128.0.0.0", Public),
            ("169.253.255.255", Public),
            ("169.255.0.0", Public),
            ("192.167.255.255", Public),
            ("192.169.0.0", Public),
            ("198.17.255.255", Public),
            ("198.20.0.0", Public),
            ("223.255.255.255", Public),
            ("168.63.129.15", Public),
            // Loopback.
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("127.1.2.3", Loopback),
            // Private, CGNAT included.
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.0", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.0", Private),
            ("100.127.255.255", Private),
            // Link-local and the metadata addresses inside it.
            ("169.254.0.1", LinkLocal),
            ("169.254.169.253", LinkLocal),
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("169.254.170.23", Metadata),
            ("168.63.129.16", Metadata),
            ("100.100.100.200", Metadata),
            ("192.0.0.192", Metadata),
            // The rest of IPv4's special space.
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Reserved),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("255.255.255.255", Reserved),
            ("192.0.2.1", Reserved),
            ("198.51.100.7", Reserved),
            ("203.0.113.9", Reserved),
            ("198.18.0.1", Reserved),
            ("198.19.255.255", Reserved),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
            // IPv6.
            ("2606:4700:4700::1111", Public),
            ("2a00:1450:4001:80b::200e", Public),
            ("2001:200::1", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            ("fd00:ec2::254", Metadata),
            ("fd00:ec2::23", Metadata),
            ("fd20:ce::254", Metadata),
            ("fd00:ec2::253", Private),
            ("2001:db8::1", Reserved),
            ("3fff::1", Reserved),
            ("2001::1", Reserved),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved),
            ("2001:2::1", Reserved),
            ("100::1", Reserved),
            ("64:ff9b:1::1", Reserved),
            ("5f00::1", Reserved),
            ("4000::1", Reserved),
            // IPv6 forms of IPv4 addresses: judged by the IPv4 address.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:8.8.8.8", Public),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:0:127.0.0.1", Loopback),
            ("::127.0.0.1", Loopback),
            ("::169.254.169.254", Metadata),
            ("::8.8.8.8", Public),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("64:ff9b::8.8.8.8", Public),
            ("2002:7f00:1::", Loopback),
            ("2002:a9fe:a9fe::1", Metadata),
            ("2002:c0a8:101::1", Private),
            ("2002:808:808::1", Public),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter(|(addr, class)| classify(ip(addr)) != *class)
            .map(|(addr, class)| {
                format!("{addr}: expected {class:?}, got {:?}", classify(ip(addr)))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn only_public_is_public() {
        assert!(AddressClass::Public.is_public());
        assert!(!AddressClass::Private.is_public());
        assert!(!AddressClass::Metadata.is_public());
        assert_eq!(
            AddressClass::Metadata.description(),
            "a cloud metadata address"
        );
    }

    #[test]
    fn private_addresses_need_allow_private() {
        for addr in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "192.168.0.10",
            "100.64.1.1",
            "fd00::1",
            "169.254.1.1",
            "fe80::1",
        ] {
            assert!(permits(&STRICT, ip(addr)).is_err(), "{addr}");
            assert!(permits(&PRIVATE, ip(addr)).is_ok(), "{addr}");
        }
        for addr in ["8.8.8.8", "2606:4700:4700::1111"] {
            assert!(permits(&STRICT, ip(addr)).is_ok(), "{addr}");
            assert!(permits(&PRIVATE, ip(addr)).is_ok(), "{addr}");
        }
    }

    #[test]
    fn metadata_and_special_addresses_are_never_permitted() {
        let everything = GuardPolicy {
            allow_http: true,
            allow_private: true,
        };
        for addr in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
            "168.63.129.16",
            "100.100.100.200",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "192.0.2.1",
            "2001:db8::1",
            "2001::1",
        ] {
            assert!(permits(&everything, ip(addr)).is_err(), "{addr}");
        }
    }

    #[test]
    fn refusals_say_what_and_why() {
        let err = permits(&STRICT, ip("127.0.0.1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`127.0.0.1` is a loopback address, which webhooks may not reach \
             (allowed only when the operator sets ERRAND_WEBHOOK_ALLOW_PRIVATE=1)"
        );
        let err = permits_for(&STRICT, "evil.example", ip("169.254.169.254")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`evil.example` resolves to a cloud metadata address, which webhooks may not reach"
        );
        assert!(
            !err.to_string().contains("169.254"),
            "what a name resolves to is not told"
        );
    }

    fn refused(policy: &GuardPolicy, url: &str) -> String {
        match check_url(policy, url) {
            Ok(parsed) => panic!("{url} was accepted as {parsed}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn schemes_https_always_http_on_request() {
        assert!(check_url(&STRICT, "https://hooks.example.com/errand").is_ok());
        assert_eq!(
            refused(&STRICT, "http://hooks.example.com/errand"),
            "webhook URLs must use https (http is allowed only when the operator sets \
             ERRAND_WEBHOOK_ALLOW_HTTP=1)"
        );
        let http = GuardPolicy {
            allow_http: true,
            allow_private: false,
        };
        assert!(check_url(&http, "http://hooks.example.com/errand").is_ok());
        for url in [
            "ftp://hooks.example.com/",
            "file:///etc/passwd",
            "gopher://hooks.example.com/",
            "ws://hooks.example.com/",
            "javascript:alert(1)",
        ] {
            assert!(
                refused(&LOCAL_DEV, url).starts_with("webhook URLs must use https, not"),
                "{url}"
            );
        }
    }

    #[test]
    fn urls_are_parsed_and_bounded() {
        let url = check_url(&STRICT, "https://Hooks.Example.com:8443/a?b=c").unwrap();
        assert_eq!(url.as_str(), "https://hooks.example.com:8443/a?b=c");
        assert!(refused(&STRICT, "not a url").starts_with("the webhook URL is not a valid URL"));
        assert!(refused(&STRICT, "https://").starts_with("the webhook URL is not a valid URL"));
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(refused(&STRICT, &long).starts_with("webhook URLs may be at most 2000"));
        let fits = format!("https://hooks.example.com/{}", "a".repeat(1900));
        assert!(check_url(&STRICT, &fits).is_ok());
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        for url in [
            "https://user:pass@hooks.example.com/",
            "https://user@hooks.example.com/",
            "https://:pass@hooks.example.com/",
            "https://8.8.8.8@127.0.0.1/",
        ] {
            assert!(
                refused(&LOCAL_DEV, url).starts_with("webhook URLs may not carry credentials"),
                "{url}"
            );
        }
    }

    #[test]
    fn ip_literal_hosts_are_checked_in_every_spelling() {
        for url in [
            "https://127.0.0.1/",
            "https://127.0.0.1:8080/hook",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://017700000001/",
            "https://127.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://10.0.0.1/",
            "https://0xa.0.0.1/",
            "https://[fd00::1]/",
        ] {
            let message = refused(&STRICT, url);
            assert!(
                message.contains("which webhooks may not reach"),
                "{url}: {message}"
            );
            assert!(check_url(&PRIVATE, url).is_ok(), "{url}");
        }
        // The normalised form is what the error names.
        assert_eq!(
            refused(&STRICT, "https://0x7f.1/"),
            "`127.0.0.1` is a loopback address, which webhooks may not reach \
             (allowed only when the operator sets ERRAND_WEBHOOK_ALLOW_PRIVATE=1)"
        );
        assert!(refused(&STRICT, "https://[::ffff:127.0.0.1]/").starts_with("`[::ffff:7f00:1]`"));
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://2852039166/",
            "https://[::ffff:169.254.169.254]/",
            "https://[fd00:ec2::254]/",
            "https://0.0.0.0/",
            "https://0/",
            "https://[::]/",
        ] {
            assert!(check_url(&LOCAL_DEV, url).is_err(), "{url}");
        }
        assert!(check_url(&STRICT, "https://8.8.8.8/").is_ok());
        assert!(check_url(&STRICT, "https://134744072/").is_ok());
        assert!(check_url(&STRICT, "https://[2606:4700:4700::1111]/").is_ok());
    }

    #[test]
    fn localhost_names_are_loopback() {
        for url in [
            "https://localhost/",
            "https://LOCALHOST:8080/",
            "https://localhost./",
            "https://foo.localhost/",
            "https://a.b.localhost./hook",
        ] {
            assert!(
                refused(&STRICT, url).contains("is a loopback name"),
                "{url}"
            );
            assert!(check_url(&PRIVATE, url).is_ok(), "{url}");
        }
        assert!(check_url(&STRICT, "https://localhost.example.com/").is_ok());
        assert!(check_url(&STRICT, "https://notlocalhost/").is_ok());
    }

    #[tokio::test]
    async fn resolving_localhost_needs_allow_private() {
        let err = resolve_checked(&STRICT, "localhost", 443)
            .await
            .unwrap_err();
        assert!(matches!(err, GuardError::LoopbackName { .. }), "{err}");
        let addrs = resolve_checked(&PRIVATE, "localhost", 443).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 443)
        );
    }

    #[tokio::test]
    async fn resolving_checks_ip_literals_too() {
        let err = resolve_checked(&STRICT, "127.0.0.1", 80).await.unwrap_err();
        assert!(matches!(
            err,
            GuardError::Forbidden {
                class: AddressClass::Loopback,
                ..
            }
        ));
        let err = resolve_checked(&PRIVATE, "[::ffff:169.254.169.254]", 80)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            GuardError::Forbidden {
                class: AddressClass::Metadata,
                ..
            }
        ));
        let addrs = resolve_checked(&PRIVATE, "[::1]", 80).await.unwrap();
        assert_eq!(addrs, vec![SocketAddr::from((Ipv6Addr::LOCALHOST, 80))]);
    }

    /// The `GuardError` somewhere in a reqwest error's chain of causes.
    fn guard_error(err: &reqwest::Error) -> Option<&GuardError> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(current) = cause {
            if let Some(guard) = current.downcast_ref::<GuardError>() {
                return Some(guard);
            }
            cause = current.source();
        }
        None
    }

    #[tokio::test]
    async fn the_client_refuses_loopback_names_before_connecting() {
        // A port nobody listens on: a connection attempt would fail with
        // "connection refused", not with the guard's error.
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = client(STRICT, Duration::from_secs(5)).unwrap();
        let err = client
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        let guard = guard_error(&err).unwrap_or_else(|| panic!("not a guard error: {err:?}"));
        assert!(matches!(guard, GuardError::LoopbackName { .. }), "{guard}");
    }

    /// A one-request-per-connection HTTP server on 127.0.0.1 that answers
    /// `/redirect` with a 302 to `/followed` and anything else with 204,
    /// and reports each request's head.
    async fn loopback_server() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let reply = if head.starts_with("GET /redirect ") {
                        format!(
                            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/followed\r\n\
                             Content-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                    } else {
                        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_owned()
                    };
                    let _ = tx.send(head);
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn with_allow_private_the_client_reaches_loopback_and_does_not_follow_redirects() {
        let (port, mut requests) = loopback_server().await;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = client(LOCAL_DEV, Duration::from_secs(10)).unwrap();

        // Through the resolver (a name, not a literal).
        let url = check_url(&LOCAL_DEV, &format!("http://localhost:{port}/hook")).unwrap();
        let response = client.post(url).body("{}").send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
        let head = requests.recv().await.unwrap();
        assert!(head.starts_with("POST /hook "), "{head}");
        let agent = format!("Errand-Webhooks/{}", env!("CARGO_PKG_VERSION"));
        let sent_agent = head.lines().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("user-agent") && value.trim() == agent
            })
        });
        assert!(sent_agent, "{head}");

        let url = check_url(&LOCAL_DEV, &format!("http://localhost:{port}/redirect")).unwrap();
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        let head = requests.recv().await.unwrap();
        assert!(head.starts_with("GET /redirect "), "{head}");
        // Give a (wrongly) followed redirect time to arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(requests.try_recv().is_err(), "the redirect was followed");
    }
}
