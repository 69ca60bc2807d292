//! Bearer tokens: a personal access token as is, or OAuth machine-to-machine
//! tokens fetched with the client-credentials grant, cached per token
//! endpoint and refreshed before they expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::DatabricksError;
use super::settings::{AuthKind, Secret};

struct CachedToken {
    token: Secret,
    expires_at: Instant,
    lifetime: Duration,
}

impl CachedToken {
    /// Fresh enough to send: refresh once less than a quarter of its life
    /// (at most a minute) is left, so a call never carries a token that
    /// expires on the way.
    fn fresh(&self, now: Instant) -> bool {
        let margin = (self.lifetime / 4).min(Duration::from_secs(60));
        now + margin < self.expires_at
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthErrorAnswer {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

pub(crate) struct Authenticator {
    kind: AuthKind,
    cache: tokio::sync::Mutex<HashMap<String, CachedToken>>,
}

/// A failure to get a token: the error, and whether trying again may help.
pub(crate) struct AuthFailure {
    pub error: DatabricksError,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

impl Authenticator {
    pub fn new(kind: AuthKind) -> Self {
        Authenticator {
            kind,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn describe(&self) -> String {
        self.kind.describe()
    }

    pub fn is_oauth(&self) -> bool {
        matches!(self.kind, AuthKind::OAuthM2m { .. })
    }

    /// Forgets cached tokens (after a 401).
    pub async fn invalidate(&self) {
        self.cache.lock().await.clear();
    }

    /// The bearer token for a call; `token_url` is the OAuth endpoint of the
    /// host being called (ignored for a personal access token).
    pub async fn bearer(
        &self,
        http: &reqwest::Client,
        token_url: &str,
    ) -> Result<Secret, AuthFailure> {
        let (client_id, client_secret) = match &self.kind {
            AuthKind::Pat { token, .. } => return Ok(token.clone()),
            AuthKind::OAuthM2m {
                client_id,
                client_secret,
                ..
            } => (client_id, client_secret),
        };
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(token_url) {
            if c.fresh(Instant::now()) {
                return Ok(c.token.clone());
            }
            tracing::debug!(client_id = %client_id, "OAuth token near expiry; refreshing");
        }
        tracing::debug!(client_id = %client_id, token_url, "requesting OAuth token (client credentials)");
        let sent_at = Instant::now();
        let resp = http
            .post(token_url)
            .basic_auth(client_id, Some(client_secret.expose()))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            .send()
            .await
            .map_err(|e| AuthFailure {
                retryable: e.is_connect() || e.is_timeout(),
                retry_after: None,
                error: DatabricksError::Transport {
                    url: token_url.to_string(),
                    message: format!("OAuth token request for client {client_id}: {e}"),
                },
            })?;
        let status = resp.status();
        let retry_after = super::client::retry_after(resp.headers());
        let body = resp.bytes().await.map_err(|e| AuthFailure {
            retryable: true,
            retry_after: None,
            error: DatabricksError::Transport {
                url: token_url.to_string(),
                message: format!("reading OAuth token answer: {e}"),
            },
        })?;
        if !status.is_success() {
            let message = match serde_json::from_slice::<OAuthErrorAnswer>(&body) {
                Ok(OAuthErrorAnswer {
                    error: Some(e),
                    error_description,
                }) => match error_description {
                    Some(d) => format!("{e}: {d}"),
                    None => e,
                },
                _ => super::client::error_text(&body),
            };
            return Err(AuthFailure {
                retryable: matches!(status.as_u16(), 429 | 502 | 503 | 504),
                retry_after,
                error: DatabricksError::OAuth {
                    client_id: client_id.clone(),
                    status: status.as_u16(),
                    message,
                },
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| AuthFailure {
            retryable: false,
            retry_after: None,
            error: DatabricksError::Decode {
                url: token_url.to_string(),
                message: format!("OAuth token answer is not a token: {e}"),
            },
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let token = Secret::new(answer.access_token);
        tracing::debug!(client_id = %client_id, lifetime_secs = lifetime.as_secs(), "got OAuth token");
        cache.insert(
            token_url.to_string(),
            CachedToken {
                token: token.clone(),
                expires_at: sent_at + lifetime,
                lifetime,
            },
        );
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_before_expiry() {
        let now = Instant::now();
        let c = CachedToken {
            token: Secret::new("x"),
            expires_at: now + Duration::from_secs(4),
            lifetime: Duration::from_secs(4),
        };
        assert!(c.fresh(now));
        assert!(!c.fresh(now + Duration::from_millis(3100)));
        let long = CachedToken {
            token: Secret::new("x"),
            expires_at: now + Duration::from_secs(3600),
            lifetime: Duration::from_secs(3600),
        };
        assert!(long.fresh(now + Duration::from_secs(3500)));
        assert!(!long.fresh(now + Duration::from_secs(3541)));
    }
}
