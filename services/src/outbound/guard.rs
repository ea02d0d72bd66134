//! The allow-list where connections are made: a DNS resolver for reqwest that drops refused addresses, a
//! redirect policy that never leaves the first host (a credential must not follow a redirect elsewhere)
//! and re-checks every hop, and a check of a spec's destinations before the worker uses them.

use std::{net::SocketAddr, sync::Arc};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};
use url::Host;

use super::{OutboundPolicy, Refusal, git_remote_host};
use crate::cluster::Destination;

/// A redirect chain longer than this is refused.
const MAX_REDIRECTS: usize = 5;

/// Resolves names with the system resolver and keeps only the addresses the policy allows.
struct GuardedResolver(Arc<OutboundPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            policy.check_name(&host)?;
            let allowed = resolve_allowed(&policy, &host, 0).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The addresses `host` resolves to that the policy allows; a refusal when there are none.
pub async fn resolve_allowed(
    policy: &OutboundPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Refusal> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Refusal(format!("{host} does not resolve: {e}")))?
        .collect();
    let mut refusals = Vec::new();
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|address| match policy.check_resolved(host, address.ip()) {
            Ok(()) => true,
            Err(refusal) => {
                refusals.push(refusal);
                false
            }
        })
        .collect();
    match (allowed.is_empty(), refusals.into_iter().next()) {
        (true, Some(refusal)) => Err(refusal),
        (true, None) => Err(Refusal(format!("{host} resolves to no address"))),
        (false, _) => Ok(allowed),
    }
}

/// A client builder whose connections and redirects obey `policy`.
pub fn client_builder(policy: &Arc<OutboundPolicy>) -> reqwest::ClientBuilder {
    let redirects = Arc::clone(policy);
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver(Arc::clone(policy))) as Arc<dyn Resolve>)
        .redirect(redirect::Policy::custom(move |attempt| {
            let Some(first) = attempt.previous().first() else {
                return attempt.follow();
            };
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if attempt.url().host_str() != first.host_str()
                || attempt.url().port_or_known_default() != first.port_or_known_default()
            {
                let refusal = format!(
                    "refused a redirect from {} to {}: a redirect never leaves the host it started on",
                    first.host_str().unwrap_or("?"),
                    attempt.url().host_str().unwrap_or("?")
                );
                return attempt.error(refusal);
            }
            match redirects.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        }))
}

/// Checks the destinations of a spec before the worker uses them: the spec may have been stored under
/// another policy. Addresses in URLs are checked here (they never reach the resolver); a Git remote's name
/// is also resolved now, since Git connects on its own. A name that does not resolve passes: the
/// connection then fails on its own, as a transient error.
pub async fn check_before_use(
    policy: &OutboundPolicy,
    destination: Destination<'_>,
) -> Result<(), Refusal> {
    match destination {
        Destination::Http(url) => policy.check_url(url),
        Destination::Git(remote) => {
            policy.check_git_remote(remote)?;
            match git_remote_host(remote)? {
                Some(Host::Domain(name)) => all_addresses_allowed(policy, &name).await,
                _ => Ok(()),
            }
        }
    }
}

/// Git picks among the addresses itself, so every one must be allowed.
async fn all_addresses_allowed(policy: &OutboundPolicy, name: &str) -> Result<(), Refusal> {
    let Ok(addresses) = tokio::net::lookup_host((name, 0)).await else {
        return Ok(());
    };
    for address in addresses {
        policy.check_resolved(name, address.ip())?;
    }
    Ok(())
}
