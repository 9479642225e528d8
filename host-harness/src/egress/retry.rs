//! The one retry rule, as a pure function: what to do after an attempt, given the access
//! class and what is left of the budget.
//!
//! - A 429 is retried after `Retry-After` (or the reset/detail time; else a backoff), for
//!   every access class: Klaviyo did not act on it.
//! - Reads also retry 502/503/504, connections that failed before sending, and connections
//!   dropped after sending, with jittered exponential backoff.
//! - **A write is never retried after an ambiguous failure** (dropped after sending, timeout):
//!   it ends `outcome-unknown`. A write that failed before sending is retried (nothing left).
//! - Every retry fits the budget: a count, a total wait, and the call's deadline.

use klaviyo_catalog::response::HostVerdict;
use klaviyo_catalog::Access;
use std::time::{Duration, Instant};

/// What an attempt came to, reduced to what the rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// An answer with this status; for 429, the wait it asked for (when it said).
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Nothing reached the server (connect, TLS).
    NotSent(String),
    /// The request was (or may have been) sent and the connection failed.
    Dropped(String),
    /// Sent, and no complete answer in time.
    Timeout(String),
    /// Answered with a body over the size cap.
    TooLarge(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Hand the answer to the component.
    Deliver,
    /// Wait this long, then send again.
    Retry { after: Duration, why: String },
    /// Answer the component with this host verdict.
    Fail(HostVerdict, String),
}

/// The retry budget of one request.
#[derive(Debug, Clone)]
pub struct Budget {
    pub attempt: u32,
    pub waited: Duration,
    pub max: u32,
    pub max_wait: Duration,
    pub deadline: Instant,
    /// Jitter factor in [0.5, 1.5), drawn once per request.
    pub jitter: f64,
}

impl Budget {
    fn fits(&self, wait: Duration, now: Instant) -> bool {
        self.attempt < self.max && self.waited + wait <= self.max_wait && now + wait < self.deadline
    }

    /// Exponential backoff: 250 ms, 500 ms, 1 s, … × jitter.
    pub fn backoff(&self) -> Duration {
        Duration::from_millis(250u64 << self.attempt.min(6)).mul_f64(self.jitter)
    }

    /// Records a retry taken.
    pub fn spend(&mut self, wait: Duration) {
        self.attempt += 1;
        self.waited += wait;
    }
}

/// What to do after `attempt` of a request of class `access`, with `budget` left at `now`.
/// `what` names the request in messages (`GET /api/lists`); `check` says how to check a write
/// whose outcome is unknown.
pub fn next_step(
    access: Access,
    attempt: &Attempt,
    budget: &Budget,
    now: Instant,
    what: &str,
    check: &str,
) -> Step {
    let is_read = access == Access::Read;
    let retry = |wait: Duration, why: String, otherwise: Step| {
        if budget.fits(wait, now) {
            Step::Retry { after: wait, why }
        } else {
            otherwise
        }
    };
    match attempt {
        Attempt::Answered { status: 429, retry_after } => {
            retry(retry_after.unwrap_or_else(|| budget.backoff()), "HTTP 429".into(), Step::Deliver)
        }
        Attempt::Answered { status: s @ 502..=504, .. } if is_read => {
            retry(budget.backoff(), format!("HTTP {s}"), Step::Deliver)
        }
        Attempt::Answered { .. } => Step::Deliver,
        Attempt::NotSent(e) => retry(
            budget.backoff(),
            e.clone(),
            Step::Fail(HostVerdict::Transport, format!("{what}: could not reach the server ({e}); nothing was sent")),
        ),
        Attempt::Dropped(e) if is_read => {
            retry(budget.backoff(), e.clone(), Step::Fail(HostVerdict::Transport, format!("{what}: {e}")))
        }
        Attempt::Dropped(e) | Attempt::Timeout(e) if !is_read => Step::Fail(
            HostVerdict::OutcomeUnknown,
            format!("{what} was sent but {e}: the write may or may not have happened, and it was not retried; {check}"),
        ),
        Attempt::Timeout(e) | Attempt::Dropped(e) => Step::Fail(HostVerdict::Timeout, format!("{what}: {e}")),
        Attempt::TooLarge(e) => Step::Fail(
            HostVerdict::Transport,
            format!(
                "{what}: {e}{}; raise max_response_bytes to accept it",
                if is_read { "" } else { " (the write itself was answered)" }
            ),
        ),
    }
}

/// A jitter factor in [0.5, 1.5) (xorshift over a counter and the clock: no dependency).
pub fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    0.5 + (x % 1000) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(attempt: u32) -> Budget {
        Budget {
            attempt,
            waited: Duration::ZERO,
            max: 3,
            max_wait: Duration::from_secs(30),
            deadline: Instant::now() + Duration::from_secs(120),
            jitter: 1.0,
        }
    }

    fn step(access: Access, a: Attempt, attempt: u32) -> Step {
        next_step(
            access,
            &a,
            &budget(attempt),
            Instant::now(),
            "POST /api/lists",
            "check with get_lists",
        )
    }

    #[test]
    fn the_retry_rule() {
        use Access::*;
        use Attempt::*;
        let ra = Some(Duration::from_secs(2));
        let rows: Vec<(Access, Attempt, u32, Step)> = vec![
            (
                Read,
                Answered {
                    status: 200,
                    retry_after: None,
                },
                0,
                Step::Deliver,
            ),
            (
                Write,
                Answered {
                    status: 201,
                    retry_after: None,
                },
                0,
                Step::Deliver,
            ),
            (
                Read,
                Answered {
                    status: 429,
                    retry_after: ra,
                },
                0,
                Step::Retry {
                    after: Duration::from_secs(2),
                    why: "HTTP 429".into(),
                },
            ),
            (
                Write,
                Answered {
                    status: 429,
                    retry_after: ra,
                },
                0,
                Step::Retry {
                    after: Duration::from_secs(2),
                    why: "HTTP 429".into(),
                },
            ),
            (
                Write,
                Answered {
                    status: 429,
                    retry_after: ra,
                },
                3,
                Step::Deliver,
            ),
            (
                Read,
                Answered {
                    status: 429,
                    retry_after: Some(Duration::from_secs(60)),
                },
                0,
                Step::Deliver,
            ),
            (
                Read,
                Answered {
                    status: 503,
                    retry_after: None,
                },
                0,
                Step::Retry {
                    after: Duration::from_millis(250),
                    why: "HTTP 503".into(),
                },
            ),
            (
                Write,
                Answered {
                    status: 503,
                    retry_after: None,
                },
                0,
                Step::Deliver,
            ),
            (
                Destructive,
                Answered {
                    status: 504,
                    retry_after: None,
                },
                0,
                Step::Deliver,
            ),
            (
                Read,
                Answered {
                    status: 500,
                    retry_after: None,
                },
                0,
                Step::Deliver,
            ),
            (
                Write,
                NotSent("refused".into()),
                1,
                Step::Retry {
                    after: Duration::from_millis(500),
                    why: "refused".into(),
                },
            ),
            (
                Read,
                Dropped("reset".into()),
                0,
                Step::Retry {
                    after: Duration::from_millis(250),
                    why: "reset".into(),
                },
            ),
        ];
        for (access, attempt, n, want) in rows {
            assert_eq!(
                step(access, attempt.clone(), n),
                want,
                "{access:?} {attempt:?} after {n}"
            );
        }
    }

    #[test]
    fn a_write_is_never_retried_after_an_ambiguous_failure() {
        for access in [Access::Write, Access::Destructive] {
            for a in [
                Attempt::Dropped("reset after sending".into()),
                Attempt::Timeout("no first byte within 60.0 s".into()),
            ] {
                match step(access, a, 0) {
                    Step::Fail(HostVerdict::OutcomeUnknown, text) => {
                        assert!(
                            text.contains("may or may not")
                                && text.contains("check with get_lists"),
                            "{text}"
                        )
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(matches!(
            step(Access::Read, Attempt::Timeout("t".into()), 0),
            Step::Fail(HostVerdict::Timeout, _)
        ));
        assert!(
            matches!(step(Access::Read, Attempt::NotSent("x".into()), 3), Step::Fail(HostVerdict::Transport, t) if t.contains("nothing was sent"))
        );
    }
}
