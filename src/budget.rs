//! One deadline for everything an operation does.
//!
//! A refresh or a plan makes several calls in a row (a workspace, its key
//! configurations, a list of dashboards, KMS reads), and each call retries
//! within its own budget. Without a shared deadline a throttled service
//! makes the operation last the sum of those budgets. The protocol layer
//! runs a read-only operation inside [`scope`]; clients shorten their own
//! deadlines to [`clamp`] it, so the call that runs out is the one the
//! error names. Knows nothing of Terraform or Databricks.

use std::future::Future;
use std::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
    static OVERRIDE: Override;
}

/// A deadline set by the user for one operation (a resource's `timeouts`
/// block): it replaces the clients' own budgets (the provider-level
/// settings) instead of only cutting them, and `setting` names it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    pub at: Instant,
    pub setting: &'static str,
}

/// Runs `f` with `o` replacing the budgets of everything it calls (on this
/// task); it is also the operation's deadline ([`current`]).
pub async fn override_scope<F: Future>(o: Override, f: F) -> F::Output {
    OVERRIDE.scope(o, DEADLINE.scope(o.at, f)).await
}

/// The user's deadline for the operation running on this task, if any.
pub fn overridden() -> Option<Override> {
    OVERRIDE.try_with(|o| *o).ok()
}

/// Runs `f` with `deadline` as the deadline of everything it calls (on
/// this task).
pub async fn scope<F: Future>(deadline: Instant, f: F) -> F::Output {
    DEADLINE.scope(deadline, f).await
}

/// The deadline of the operation running on this task, if there is one.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// `own`, or the operation's deadline when that comes first.
pub fn clamp(own: Instant) -> Instant {
    current().map_or(own, |d| d.min(own))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_earlier_deadline_wins_inside_a_scope_only() {
        let now = Instant::now();
        let far = now + Duration::from_secs(300);
        let near = now + Duration::from_secs(3);
        assert_eq!(current(), None);
        assert_eq!(clamp(far), far);
        scope(near, async {
            assert_eq!(current(), Some(near));
            assert_eq!(clamp(far), near);
            let earlier = now + Duration::from_secs(1);
            assert_eq!(clamp(earlier), earlier);
        })
        .await;
        assert_eq!(clamp(far), far);
    }

    #[tokio::test]
    async fn an_override_is_also_the_operations_deadline() {
        let now = Instant::now();
        let at = now + Duration::from_secs(3);
        assert_eq!(overridden(), None);
        let o = Override {
            at,
            setting: "timeouts.create",
        };
        override_scope(o, async {
            assert_eq!(overridden(), Some(o));
            assert_eq!(current(), Some(at));
            assert_eq!(clamp(now + Duration::from_secs(300)), at);
        })
        .await;
        assert_eq!(overridden(), None);
    }
}
