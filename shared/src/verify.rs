//! Proof that a delivery comes from Sendblue.
//!
//! Sendblue sends the configured secret verbatim in `sb-signing-secret` (no HMAC, no timestamp),
//! so the only defence is comparing it with every accepted secret without leaking, through
//! timing, how much of it matched. Both sides are hashed first: SHA-256 digests have one length,
//! so neither the length of a secret nor the position of the first differing byte shows.
//! Status callbacks carry no header at all; an unguessable token in their URL, compared the same
//! way, stands in for the secret.

use std::fmt;

use lambda_http::http::HeaderMap;
use lambda_http::{Request, RequestExt};
use sendblue_events::WebhookType;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The header Sendblue puts the secret in. `HeaderMap` lookups ignore case.
pub const SECRET_HEADER: &str = "sb-signing-secret";

/// The path parameter of the status-callback route (`/sendblue/status-callback/{token}`).
pub const TOKEN_PATH_PARAMETER: &str = "token";

/// The path segment the status-callback token follows.
pub const CALLBACK_PATH_SEGMENT: &str = "status-callback";

/// The token of a status-callback URL: the `{token}` path parameter of the HTTP API's route, or,
/// behind a Lambda Function URL (which has no routes, so no path parameters), the path's last
/// segment when it follows `status-callback` (`/status-callback/<token>`). Anywhere else in the
/// path it is no token.
fn url_token(request: &Request) -> Option<&str> {
    if let Some(token) =
        request.path_parameters_ref().and_then(|parameters| parameters.first(TOKEN_PATH_PARAMETER))
    {
        return Some(token);
    }
    let mut segments = request.raw_http_path().split('/');
    segments.by_ref().find(|segment| *segment == CALLBACK_PATH_SEGMENT)?;
    let token = segments.next()?;
    segments.next().is_none().then_some(token)
}

/// Where a type's proof travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The `sb-signing-secret` header, checked against `SENDBLUE_WEBHOOK_SECRETS`.
    SigningSecretHeader,
    /// The last segment of the URL, checked against `SENDBLUE_CALLBACK_TOKENS`.
    UrlToken,
}

/// What proves that a delivery of `webhook_type` comes from Sendblue: status callbacks arrive
/// without any `sb-*` header, so their URL carries the proof instead.
pub const fn guard(webhook_type: WebhookType) -> Guard {
    match webhook_type {
        WebhookType::StatusCallback => Guard::UrlToken,
        _ => Guard::SigningSecretHeader,
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing sb-signing-secret header")]
    MissingSecret,
    #[error("invalid sb-signing-secret")]
    InvalidSecret,
    #[error("missing callback token in the URL")]
    MissingToken,
    #[error("invalid callback token")]
    InvalidToken,
}

/// The configuration named no secret at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no secret in the list")]
pub struct NoSecrets;

/// Every secret currently accepted (more than one while a secret is being rotated).
/// Only digests are kept, and `Debug` prints none of them.
#[derive(Clone)]
pub struct AcceptedSecrets {
    digests: Vec<[u8; 32]>,
}

impl AcceptedSecrets {
    /// Parses a comma-separated list: entries are trimmed, empty entries ignored.
    pub fn from_list(list: &str) -> Result<Self, NoSecrets> {
        let digests: Vec<_> = list_entries(list).map(|s| digest(s.as_bytes())).collect();
        if digests.is_empty() {
            return Err(NoSecrets);
        }
        Ok(Self { digests })
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Compares `presented` with every accepted secret, always all of them, in constant time.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let presented = digest(presented);
        let matched = self
            .digests
            .iter()
            .fold(Choice::from(0), |matched, accepted| matched | accepted.ct_eq(&presented));
        matched.into()
    }

    /// Checks the proof `guard` names.
    pub fn verify(&self, guard: Guard, request: &Request) -> Result<(), AuthError> {
        match guard {
            Guard::SigningSecretHeader => self.verify_header(request.headers()),
            Guard::UrlToken => self.verify_token(url_token(request)),
        }
    }

    /// Checks the request's `sb-signing-secret` header.
    pub fn verify_header(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let presented = headers.get(SECRET_HEADER).ok_or(AuthError::MissingSecret)?;
        if self.accepts(presented.as_bytes()) {
            Ok(())
        } else {
            Err(AuthError::InvalidSecret)
        }
    }

    fn verify_token(&self, presented: Option<&str>) -> Result<(), AuthError> {
        match presented {
            None | Some("") => Err(AuthError::MissingToken),
            Some(token) if self.accepts(token.as_bytes()) => Ok(()),
            Some(_) => Err(AuthError::InvalidToken),
        }
    }
}

/// The entries of a comma-separated list of secrets or tokens: trimmed, empty ones dropped.
pub fn list_entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl fmt::Debug for AcceptedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AcceptedSecrets({} redacted)", self.digests.len())
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    fn headers(name: &'static str, value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            lambda_http::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
        headers
    }

    #[test]
    fn list_is_trimmed_and_empty_entries_dropped() {
        let secrets = AcceptedSecrets::from_list(" old , ,new,").unwrap();
        assert_eq!(secrets.len(), 2);
        assert!(secrets.accepts(b"old"));
        assert!(secrets.accepts(b"new"));
        assert!(!secrets.accepts(b" old "));
        assert_eq!(AcceptedSecrets::from_list(" , ,").unwrap_err(), NoSecrets);
        assert_eq!(AcceptedSecrets::from_list("").unwrap_err(), NoSecrets);
    }

    #[test]
    fn header_name_is_case_insensitive() {
        let secrets = AcceptedSecrets::from_list("s3cret").unwrap();
        for name in ["sb-signing-secret", "SB-Signing-Secret", "SB-SIGNING-SECRET"] {
            assert_eq!(secrets.verify_header(&headers(name, b"s3cret")), Ok(()), "{name}");
        }
    }

    #[test]
    fn wrong_empty_long_and_near_miss_secrets_are_refused() {
        let secrets = AcceptedSecrets::from_list("s3cret,other").unwrap();
        assert_eq!(secrets.verify_header(&HeaderMap::new()), Err(AuthError::MissingSecret));
        assert_eq!(
            secrets.verify_header(&headers("x-sendblue-secret", b"s3cret")),
            Err(AuthError::MissingSecret)
        );
        let long = "s3cret".repeat(10_000);
        for near_miss in
            ["", "s3cre", "s3crett", "S3cret", "s3cret ", " s3cret", "s3cret,other", &long]
        {
            assert_eq!(
                secrets.verify_header(&headers("sb-signing-secret", near_miss.as_bytes())),
                Err(AuthError::InvalidSecret),
                "{near_miss:?}"
            );
        }
    }

    fn with_token(token: Option<&str>) -> Request {
        let parameters: std::collections::HashMap<String, String> =
            token.map(|t| (TOKEN_PATH_PARAMETER.to_owned(), t.to_owned())).into_iter().collect();
        Request::default().with_path_parameters(parameters)
    }

    #[test]
    fn url_token_is_checked_and_the_header_is_not_enough() {
        let token = "a".repeat(40);
        let tokens = AcceptedSecrets::from_list(&format!("{token},{}", "b".repeat(40))).unwrap();
        let guard = Guard::UrlToken;
        assert_eq!(tokens.verify(guard, &with_token(Some(&token))), Ok(()));
        assert_eq!(tokens.verify(guard, &with_token(Some(&"b".repeat(40)))), Ok(()));
        assert_eq!(tokens.verify(guard, &with_token(None)), Err(AuthError::MissingToken));
        assert_eq!(tokens.verify(guard, &with_token(Some(""))), Err(AuthError::MissingToken));
        for near_miss in [&token[1..], &format!("{token}a"), &token.to_uppercase()] {
            assert_eq!(
                tokens.verify(guard, &with_token(Some(near_miss))),
                Err(AuthError::InvalidToken)
            );
        }
        let mut header_only = with_token(None);
        header_only.headers_mut().insert(SECRET_HEADER, HeaderValue::from_str(&token).unwrap());
        assert_eq!(tokens.verify(guard, &header_only), Err(AuthError::MissingToken));
        assert_eq!(tokens.verify(Guard::SigningSecretHeader, &header_only), Ok(()));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let secrets = AcceptedSecrets::from_list("s3cret").unwrap();
        let shown = format!("{secrets:?}");
        assert!(!shown.contains("s3cret"));
        assert!(!shown.contains(&hex::encode(digest(b"s3cret"))));
    }
}
