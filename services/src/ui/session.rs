//! The status page's login session: after a token is presented once, an HTTP-only cookie that holds an
//! expiry and a MAC keyed by that token's digest. Nothing is stored server-side, so every replica of the
//! API accepts it, and removing a token (from AUTOSCALER_API_TOKENS or the token file) ends the sessions
//! opened with it. The session is the token's: same team, same role.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::tenancy::{Principal, TokenStore};

pub const COOKIE: &str = "autoscaler_session";
/// How long a login lasts.
pub const LIFETIME_SECONDS: i64 = 12 * 3600;
const CONTEXT: &[u8] = b"autoscaler status page session v1";

fn mac(key: &[u8; 32], expires: i64, nonce: &str) -> [u8; 32] {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(CONTEXT);
    mac.update(&expires.to_be_bytes());
    mac.update(nonce.as_bytes());
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A cookie value for a login with `token`, valid until `now` plus the lifetime; `None` when the token
/// is not one of the configured ones.
pub fn issue(tokens: &TokenStore, token: &str, now: DateTime<Utc>) -> Option<String> {
    let (principal, key) = tokens.authenticate(token)?;
    principal.may_read().ok()?;
    let expires = now.timestamp() + LIFETIME_SECONDS;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    Some(format!(
        "{expires}.{nonce}.{}",
        hex(&mac(&key, expires, &nonce))
    ))
}

/// The principal of a cookie value that is a live session of one of the configured tokens.
pub fn verify(tokens: &TokenStore, value: &str, now: DateTime<Utc>) -> Option<Principal> {
    let mut parts = value.split('.');
    let (Some(expires), Some(nonce), Some(presented), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let (Ok(expires), Some(presented)) = (expires.parse::<i64>(), unhex(presented)) else {
        return None;
    };
    if expires <= now.timestamp() || nonce.len() > 64 {
        return None;
    }
    // Every configured token is tried, so the time taken does not tell which one matched.
    let mut found = None;
    for (principal, key) in tokens.keys() {
        if bool::from(mac(&key, expires, nonce).ct_eq(&presented)) {
            found = Some(principal);
        }
    }
    found.filter(|p| p.may_read().is_ok())
}

/// The session cookie's value from a `Cookie` header.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session: HTTP-only, same-site strict, for the status page's paths only,
/// `Secure` when the service is reached over HTTPS.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/ui; Max-Age={LIFETIME_SECONDS}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that ends the session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "status-page-token-0123456789";

    fn store(tokens: &[&str]) -> TokenStore {
        let tokens: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
        TokenStore::new(&tokens, &[], None).expect("a store")
    }

    #[test]
    fn a_session_of_a_configured_token_is_accepted_until_it_expires() {
        let tokens = store(&["another-token-0123456789", TOKEN]);
        let now = Utc::now();
        let cookie = issue(&tokens, TOKEN, now).expect("a configured token");
        assert!(verify(&tokens, &cookie, now).is_some());
        assert!(
            verify(
                &tokens,
                &cookie,
                now + chrono::Duration::seconds(LIFETIME_SECONDS - 1)
            )
            .is_some()
        );
        assert!(
            verify(
                &tokens,
                &cookie,
                now + chrono::Duration::seconds(LIFETIME_SECONDS)
            )
            .is_none()
        );
    }

    #[test]
    fn an_unknown_token_gets_no_session_and_a_removed_token_ends_its_sessions() {
        let tokens = store(&[TOKEN]);
        assert!(issue(&tokens, "not-a-token-0123456789", Utc::now()).is_none());
        let cookie = issue(&tokens, TOKEN, Utc::now()).expect("issued");
        let rotated = store(&["the-new-token-0123456789"]);
        assert!(verify(&rotated, &cookie, Utc::now()).is_none());
    }

    #[test]
    fn a_forged_or_altered_cookie_is_refused() {
        let tokens = store(&[TOKEN]);
        let now = Utc::now();
        let cookie = issue(&tokens, TOKEN, now).expect("issued");
        let (expires, rest) = cookie.split_once('.').expect("three parts");
        // A later expiry with the same MAC.
        let extended = format!("{}.{rest}", expires.parse::<i64>().expect("a value") + 3600);
        assert!(verify(&tokens, &extended, now).is_none());
        for forged in [
            "",
            "1.2.3",
            "9999999999.n.zz",
            &format!("{cookie}.x"),
            &cookie[..cookie.len() - 1],
        ] {
            assert!(verify(&tokens, forged, now).is_none(), "{forged:?}");
        }
    }

    #[test]
    fn the_cookie_is_read_among_others_and_set_http_only() {
        assert_eq!(
            from_cookie_header("theme=dark; autoscaler_session=abc.def.123; other=1"),
            Some("abc.def.123")
        );
        assert_eq!(from_cookie_header("xautoscaler_session=1"), None);
        let set = set_cookie("v", true);
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Strict")
                && set.ends_with("; Secure")
        );
        assert!(!set_cookie("v", false).contains("Secure"));
    }
}
