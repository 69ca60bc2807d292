//! Typed errors of the Databricks client.

/// Whose time ran out when a call stopped retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The call's own retry budget.
    Call,
    /// The time of the whole Terraform operation (a refresh, a plan) the
    /// call was part of: earlier calls had used the rest.
    Operation,
    /// The resource's own `timeouts` duration (the setting, `timeouts.create`),
    /// which replaces the provider-level budgets for that operation.
    Resource(&'static str),
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Call => f.write_str("the time allowed for one call and its retries (the provider's retry_timeout_seconds)"),
            Budget::Operation => f.write_str("when the time of the whole refresh or plan ran out (the provider's retry_timeout_seconds covers every call of one refresh or plan together)"),
            Budget::Resource(setting) => write!(f, "the time the resource's {setting} allows for the whole operation"),
        }
    }
}

/// Everything a Databricks call can fail with. Messages never hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum DatabricksError {
    /// The configuration is missing or contradictory; the message names what to set.
    #[error("Databricks configuration: {0}")]
    Config(String),
    /// A request could not be built from its values (an identifier that is
    /// not one); nothing was sent.
    #[error("request not sent: {0}")]
    InvalidRequest(String),
    /// 404: the object is gone (deleted outside Terraform: drift).
    #[error("{what} does not exist ({error_code}: {message})")]
    NotFound {
        what: String,
        error_code: String,
        message: String,
    },
    /// 401: the credentials were not accepted.
    #[error("Databricks refused {credential} as unauthenticated (401 {error_code}): {message}")]
    Unauthenticated {
        credential: String,
        error_code: String,
        message: String,
    },
    /// 403: the credentials are valid but not allowed here.
    #[error("Databricks denied {credential} (403 {error_code}): {message}")]
    PermissionDenied {
        credential: String,
        error_code: String,
        message: String,
    },
    /// Any other API error answer.
    #[error("Databricks API error {status} {error_code}: {message}")]
    Api {
        status: u16,
        error_code: String,
        message: String,
    },
    /// The OAuth token endpoint refused the client.
    #[error("OAuth token request for client {client_id} failed ({status}): {message}")]
    OAuth {
        client_id: String,
        status: u16,
        message: String,
    },
    /// Throttled or unavailable for longer than the retry budget.
    #[error("gave up after {attempts} attempt(s) in {elapsed_secs:.1}s, {budget}: {last}")]
    RetriesExhausted {
        attempts: u32,
        elapsed_secs: f64,
        budget: Budget,
        last: Box<DatabricksError>,
    },
    /// The network failed (connection refused, reset, timeout).
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from {url}: {message}")]
    Decode { url: String, message: String },
    /// The answer was bigger than the most read of its kind; reading
    /// stopped at the cap.
    #[error("answer from {url} refused: {message}")]
    TooLarge { url: String, message: String },
    /// A paginated list did not end within its bounds (pages, bytes, or a
    /// page token seen before): what was read is not the whole list.
    #[error("the list of {what} from {url} is incomplete: {reason}")]
    ListIncomplete {
        what: String,
        url: String,
        reason: String,
    },
    /// A 3xx answer: not followed.
    #[error("answer from {url} refused: {message}")]
    Redirected { url: String, message: String },
    /// The host could not be reached at all (name not resolved, connection
    /// refused): not retried for long.
    #[error("cannot reach {host}: {reason}{hint}")]
    Unreachable {
        host: String,
        reason: String,
        /// Where the host came from, when that helps (", built from ...").
        hint: String,
    },
    /// The host accepted the connection, then sent nothing (or stopped
    /// sending) for longer than a request waits: not retried, so a silent
    /// host costs one read timeout, not the operation's whole time.
    #[error("no answer from {host} after {waited_secs:.1}s: {call}; {reason}{hint}")]
    NoAnswer {
        host: String,
        /// The request that waited (`POST .../oidc/v1/token (a token for ...)`).
        call: String,
        waited_secs: f64,
        reason: String,
        /// Where the host came from, when that helps.
        hint: String,
    },
    /// The answer is about another object than the one asked for; nothing
    /// of it is used.
    #[error("the answer for {what} is about another {field}: asked for {asked}, answered {answered}; the answer was not used")]
    Mismatch {
        what: String,
        field: String,
        asked: String,
        answered: String,
    },
    /// The operation's overall deadline (retries and slow bodies included)
    /// passed.
    #[error("{what}: stopped after {elapsed_secs:.1}s without a complete answer, {budget}, after {attempts} attempt(s); last: {last}")]
    Deadline {
        /// The call that ran out: the token request when the time ran out
        /// while getting a token, else the API call.
        what: String,
        /// Real time this call ran.
        elapsed_secs: f64,
        budget: Budget,
        attempts: u32,
        last: String,
    },
    /// The caller cancelled the operation.
    #[error("cancelled while {during}")]
    Cancelled { during: String },
    /// A wait ran out of time.
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    /// The workspace went to a failure state during an update.
    #[error("workspace {workspace_id} is {status} after the update: {message}")]
    WorkspaceFailed {
        workspace_id: i64,
        status: String,
        message: String,
    },
    /// The workspace stayed RUNNING with another key id than the one asked
    /// for, past the whole wait: Databricks did not apply the change (it can
    /// revert a key update silently).
    #[error("workspace {workspace_id} is RUNNING but its {field} is still {}, not {expected}, {waited_secs}s after the update: Databricks did not apply the change (it reverts a failed key update silently). Workspace status message: {}. Check the key policy and the workspace's status message, then apply again", shown_id(.actual), shown_message(.status_message))]
    ChangeReverted {
        workspace_id: i64,
        field: String,
        expected: String,
        actual: Option<String>,
        waited_secs: u64,
        status_message: Option<String>,
    },
}

/// A key id for a message: the id, or "unset".
fn shown_id(v: &Option<String>) -> String {
    match v.as_deref() {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => "unset".to_string(),
    }
}

/// A status message for a message: quoted, or "(none)".
fn shown_message(v: &Option<String>) -> String {
    match v.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() => format!("\"{m}\""),
        _ => "(none)".to_string(),
    }
}

impl DatabricksError {
    /// True when the object is gone (404): the provider drops it from state.
    pub fn is_gone(&self) -> bool {
        matches!(self, DatabricksError::NotFound { .. })
    }

    /// True when a list was cut short by its bounds: a rule that needed the
    /// whole list cannot tell, and must not pass.
    pub fn is_incomplete_list(&self) -> bool {
        match self {
            DatabricksError::ListIncomplete { .. } | DatabricksError::TooLarge { .. } => true,
            DatabricksError::RetriesExhausted { last, .. } => last.is_incomplete_list(),
            _ => false,
        }
    }

    /// True when the host could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        match self {
            DatabricksError::Unreachable { .. } | DatabricksError::NoAnswer { .. } => true,
            DatabricksError::RetriesExhausted { last, .. } => last.is_unreachable(),
            _ => false,
        }
    }

    /// The API error code, when the answer had one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            DatabricksError::NotFound { error_code, .. }
            | DatabricksError::Unauthenticated { error_code, .. }
            | DatabricksError::PermissionDenied { error_code, .. }
            | DatabricksError::Api { error_code, .. } => Some(error_code),
            DatabricksError::RetriesExhausted { last, .. } => last.error_code(),
            _ => None,
        }
    }
}
