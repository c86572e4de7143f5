//! [`BackendError`]: why a shared store behind the primitives (the Redis backend) could not
//! answer. One small `Copy` enum that every operation's error carries as its `Backend` variant
//! and that every reading of the backend traits returns.
//!
//! Such a failure says nothing certain about the call: it may or may not have taken effect. Every
//! operation is safe to retry (a retried reserve returns the same hold, a retried confirm the
//! same booking, a retried join the same ticket or pass).

/// Why a store could not answer a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The connection was lost or refused.
    #[error(
        "the store could not be reached: the call may or may not have taken effect; retrying it is safe"
    )]
    Connection,
    /// No answer within the timeout.
    #[error(
        "the store did not answer in time: the call may or may not have taken effect; retrying it is safe"
    )]
    Timeout,
    /// The store refused or failed a script (a bug, or a store without scripting).
    #[error("the store failed a script: check the store's version (Redis 7 or later) and its logs")]
    Script,
    /// A reply of an unexpected shape (a store that is not what it claims, or keys written by
    /// something else under the same namespace).
    #[error(
        "the store's reply had an unexpected shape: check that nothing else writes under this namespace"
    )]
    Reply,
    /// The change is on the primary but fewer replicas than required acknowledged it in time: it
    /// may be lost if the primary fails now.
    #[error(
        "the change was not acknowledged by enough replicas in time: it may be lost in a failover; retrying it is safe"
    )]
    NotReplicated,
    /// This backend does not offer the call (a `BookBackend` of your own that leaves one out):
    /// nothing was changed. Use a backend that has it, or leave the call out on this one.
    #[error(
        "this backend does not support this call yet: nothing was changed; use the in-process SlotBook for it"
    )]
    Unsupported,
}

impl BackendError {
    /// Whether the same call may succeed if retried: a lost connection, a timeout or a missing
    /// acknowledgement may be passing; a script failure or a malformed reply is not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BackendError::Connection | BackendError::Timeout | BackendError::NotReplicated
        )
    }
}
