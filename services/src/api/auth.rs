//! Bearer-token authentication. The API's tokens are the tenancy's [`TokenStore`]: each request's token
//! becomes a [`Principal`] (team, role, name) that the handlers ask before they act. [`ApiTokens`] is a
//! plain set of digests for senders without a team (Argo CD notifications). Tokens are compared as
//! SHA-256 digests in constant time, and every configured token is compared, so neither the length nor
//! the position of a match leaks.

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AppState, error::ApiError};
use crate::tenancy::Principal;

#[derive(Clone)]
pub struct ApiTokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiTokens({} configured)", self.digests.len())
    }
}

impl ApiTokens {
    pub fn new<S: AsRef<str>>(tokens: &[S]) -> Self {
        Self {
            digests: tokens.iter().map(|t| digest(t.as_ref())).collect(),
        }
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let presented = digest(presented);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, d| {
                found | d.ct_eq(&presented)
            })
            .into()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Lets through requests with an API token (not an engine's), with its [`Principal`] in the request's
/// extensions.
pub async fn require_bearer_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = bearer(request.headers()).and_then(|t| state.tokens.authenticate(t));
    let Some((principal, _)) = principal else {
        state.metrics.refused("unauthenticated");
        return Err(ApiError::Unauthorized);
    };
    super::access::allow(&state, principal.may_read())?;
    request.extensions_mut().insert::<Principal>(principal);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_configured_tokens() {
        let tokens = ApiTokens::new(&["first-token-0123456789", "second-token-0123456789"]);
        assert!(tokens.accepts("first-token-0123456789"));
        assert!(tokens.accepts("second-token-0123456789"));
        assert!(!tokens.accepts("first-token-012345678"));
        assert!(!tokens.accepts(""));
        assert!(!ApiTokens::new::<&str>(&[]).accepts("anything"));
    }
}
