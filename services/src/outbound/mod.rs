//! Where the service may connect on a spec's behalf. A spec names URLs (Prometheus, a Git remote, Argo CD,
//! GitHub's API, an engine's control endpoint, Flink's REST API) and the worker then sends credentials
//! there, so each URL is a way into the service's own network. The operator's allow-list decides; without
//! one, any destination is allowed except loopback, link-local (the cloud metadata services), unspecified,
//! multicast and reserved addresses, and local (`file://`) Git remotes.
//!
//! Entries of the allow-list (`AUTOSCALER_OUTBOUND_ALLOW`, comma-separated):
//! - `*`: any destination that is not refused by default;
//! - an address or a network (`10.0.0.0/8`, `127.0.0.1`, `::1`): allowed, even where refused by default;
//! - a host name (`git.example.com`) or a domain's hosts (`*.svc.cluster.local`): allowed, whatever
//!   address it resolves to (the operator vouches for the name);
//! - `file`: local Git remotes (`file://` URLs and plain paths).
//!
//! Names are checked when a spec is stored and again, with the addresses they resolve to, when a
//! connection is made ([`guard`]), so a name that later resolves to the metadata address is refused too.

pub mod guard;

use std::{net::IpAddr, str::FromStr};

use ipnet::IpNet;
use url::{Host, Url};

/// Names that reach the machine itself or a cloud's metadata service whatever DNS says.
const REFUSED_NAMES: &[&str] = &[
    "localhost",
    "metadata",
    "metadata.google.internal",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Addresses refused unless an entry names them, and why.
const REFUSED_NETWORKS: &[(&str, &str)] = &[
    ("127.0.0.0/8", "a loopback address"),
    ("::1/128", "a loopback address"),
    (
        "169.254.0.0/16",
        "a link-local address (cloud metadata services live there)",
    ),
    ("fe80::/10", "a link-local address"),
    ("fd00:ec2::254/128", "a cloud metadata address"),
    ("100.100.100.200/32", "a cloud metadata address"),
    ("0.0.0.0/8", "an unspecified address"),
    ("::/128", "an unspecified address"),
    ("224.0.0.0/4", "a multicast address"),
    ("ff00::/8", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
];

/// Why a destination was refused; the text says what to allow, if the operator wants it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AUTOSCALER_OUTBOUND_ALLOW entry {entry:?}: {reason}")]
pub struct EntryError {
    entry: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Domain(String),
}

impl HostPattern {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(exact) => name == exact,
            Self::Domain(suffix) => name.ends_with(suffix.as_str()),
        }
    }
}

/// The allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPolicy {
    any: bool,
    file: bool,
    networks: Vec<IpNet>,
    hosts: Vec<HostPattern>,
}

impl Default for OutboundPolicy {
    /// Any destination not refused by default; no local Git remotes.
    fn default() -> Self {
        Self {
            any: true,
            file: false,
            networks: Vec::new(),
            hosts: Vec::new(),
        }
    }
}

impl FromStr for OutboundPolicy {
    type Err = EntryError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut policy = Self {
            any: false,
            ..Self::default()
        };
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let refuse = |reason: &str| EntryError {
                entry: entry.to_owned(),
                reason: reason.to_owned(),
            };
            if entry == "*" {
                policy.any = true;
            } else if entry == "file" {
                policy.file = true;
            } else if let Ok(network) = entry.parse::<IpNet>() {
                policy.networks.push(network);
            } else if let Ok(address) = entry.parse::<IpAddr>() {
                policy.networks.push(IpNet::from(address));
            } else if let Some(domain) = entry.strip_prefix("*.") {
                check_name(domain).map_err(|reason| refuse(&reason))?;
                policy
                    .hosts
                    .push(HostPattern::Domain(format!(".{}", normalise(domain))));
            } else {
                check_name(entry).map_err(|reason| {
                    refuse(&format!(
                        "{reason}; an entry is `*`, `file`, an address, a network, a host name or \
                         `*.domain`"
                    ))
                })?;
                policy.hosts.push(HostPattern::Exact(normalise(entry)));
            }
        }
        Ok(policy)
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err("is not a host name".to_owned())
    }
}

impl OutboundPolicy {
    /// Whether `name` is allowed by an entry that names it (so any address it resolves to is fine).
    fn vouched(&self, name: &str) -> bool {
        let name = normalise(name);
        self.hosts.iter().any(|pattern| pattern.matches(&name))
    }

    /// A destination given by name, before it is resolved. A name the list does not vouch for is
    /// allowed when some address could be: its addresses are checked at connection time.
    pub fn check_name(&self, name: &str) -> Result<(), Refusal> {
        if self.vouched(name) {
            return Ok(());
        }
        let name = normalise(name);
        if REFUSED_NAMES.contains(&name.as_str()) || name.ends_with(".localhost") {
            return Err(Refusal(format!(
                "{name} reaches this machine or a cloud metadata service; allow it by name in \
                 AUTOSCALER_OUTBOUND_ALLOW if that is meant"
            )));
        }
        if self.any || !self.networks.is_empty() {
            Ok(())
        } else {
            Err(Refusal(format!(
                "{name} is not in the outbound allow-list (AUTOSCALER_OUTBOUND_ALLOW)"
            )))
        }
    }

    /// A destination address.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.networks.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        if let Some((_, what)) = REFUSED_NETWORKS.iter().find(|(network, _)| {
            network
                .parse::<IpNet>()
                .is_ok_and(|network| network.contains(&ip))
        }) {
            return Err(Refusal(format!(
                "{ip} is {what}; allow it in AUTOSCALER_OUTBOUND_ALLOW if that is meant"
            )));
        }
        if self.any {
            Ok(())
        } else {
            Err(Refusal(format!(
                "{ip} is not in the outbound allow-list (AUTOSCALER_OUTBOUND_ALLOW)"
            )))
        }
    }

    /// An address `name` resolved to, at connection time.
    pub fn check_resolved(&self, name: &str, ip: IpAddr) -> Result<(), Refusal> {
        if self.vouched(name) {
            return Ok(());
        }
        self.check_name(name)?;
        self.check_ip(ip)
            .map_err(|Refusal(reason)| Refusal(format!("{name} resolves to {reason}")))
    }

    fn check_host(&self, host: Option<Host<&str>>) -> Result<(), Refusal> {
        match host {
            Some(Host::Domain(name)) => self.check_name(name),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            None => Err(Refusal("names no host".to_owned())),
        }
    }

    /// An HTTP(S) URL a spec names.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        match url.scheme() {
            "http" | "https" => self.check_host(url.host()),
            other => Err(Refusal(format!("scheme {other:?} is not allowed here"))),
        }
    }

    /// A Git remote: a URL, scp-like `user@host:path`, or a local path.
    pub fn check_git_remote(&self, remote: &str) -> Result<(), Refusal> {
        match git_remote_host(remote)? {
            Some(Host::Domain(name)) => self.check_name(&name),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            None if self.file => Ok(()),
            None => Err(Refusal(
                "local Git remotes are refused; allow them with `file` in AUTOSCALER_OUTBOUND_ALLOW"
                    .to_owned(),
            )),
        }
    }
}

/// The host a Git remote connects to; `None` for a local remote (`file://` or a path). One reading of a
/// remote for the check at subscription and the resolution before use.
fn git_remote_host(remote: &str) -> Result<Option<Host<String>>, Refusal> {
    if remote.contains("://") {
        let url = Url::parse(remote).map_err(|e| Refusal(format!("is not a URL: {e}")))?;
        return match url.scheme() {
            "file" => Ok(None),
            "http" | "https" | "ssh" | "git" => url
                .host()
                .map(|host| Some(host.to_owned()))
                .ok_or_else(|| Refusal("names no host".to_owned())),
            other => Err(Refusal(format!("scheme {other:?} is not allowed"))),
        };
    }
    match remote.split_once(':') {
        Some((user_host, _)) if !user_host.contains('/') => {
            let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok(Some(match host.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => Host::Ipv4(ip),
                Ok(IpAddr::V6(ip)) => Host::Ipv6(ip),
                Err(_) => Host::Domain(host.to_owned()),
            }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests;
