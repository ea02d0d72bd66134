//! Bearer-token authentication for the API. Tokens are compared as SHA-256 digests in constant time, and
//! every configured token is compared, so neither the length nor the position of a match leaks.

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AppState, error::ApiError};

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

    /// The digest of the configured token `presented` is, compared in constant time; the status page
    /// keys its session cookies with it.
    pub fn matching_digest(&self, presented: &str) -> Option<[u8; 32]> {
        let presented = digest(presented);
        let mut found = None;
        for d in &self.digests {
            if bool::from(d.ct_eq(&presented)) {
                found = Some(*d);
            }
        }
        found
    }

    /// Every configured token's digest.
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.digests
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

pub async fn require_bearer_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(token) if state.tokens.accepts(token) => Ok(next.run(request).await),
        _ => Err(ApiError::Unauthorized),
    }
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
