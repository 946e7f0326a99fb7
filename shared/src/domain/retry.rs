//! The one retry rule for optimistic writes that lost a race: try again after a random wait of
//! below `base · 2^attempt` milliseconds (at least 2), capped ("full jitter"), a bounded number of times.
//! The journal (a contended chain head) and the one-time-code failure counter both use it.
//!
//! Hand-written rather than a crate such as `backoff` or `tokio-retry`: the wait must come from
//! the injected [`Random`] (a test can make it predictable) and the loop is a dozen lines.
use crate::ports::Random;
use crate::ports::random::RandomExt as _;
use std::time::Duration;

/// How often and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The longest wait before the second try, in milliseconds.
    pub base_ms: u64,
    /// The longest wait ever, in milliseconds.
    pub cap_ms: u64,
}

impl Backoff {
    /// The wait after try `attempt` (0 for the first) failed is below this many milliseconds.
    pub fn ceiling(&self, attempt: u32) -> u64 {
        self.base_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.cap_ms)
            .max(2)
    }
}

/// Runs `op` until it returns `Ok(Some(_))` or an error, waiting as `policy` says after each
/// `Ok(None)` (the race was lost). `Ok(None)` when every try lost.
///
/// `op` returns a future rather than being an async closure: the futures of async closures
/// are not yet provably `Send`, which axum's handlers need.
pub async fn contended<T, E, F, Fut>(
    policy: &Backoff,
    random: &dyn Random,
    mut op: F,
) -> Result<Option<T>, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    for attempt in 0..policy.attempts {
        if let Some(done) = op(attempt).await? {
            return Ok(Some(done));
        }
        if attempt + 1 < policy.attempts {
            let wait = random.below(policy.ceiling(attempt));
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ports::random::OsRandom;

    #[test]
    fn waits_double_up_to_the_cap() {
        let b = Backoff {
            attempts: 10,
            base_ms: 1,
            cap_ms: 64,
        };
        let ceilings: Vec<u64> = (0..9).map(|a| b.ceiling(a)).collect();
        assert_eq!(ceilings, [2, 2, 4, 8, 16, 32, 64, 64, 64]);
    }

    #[tokio::test]
    async fn stops_at_the_first_success_or_error_and_gives_up_after_the_last_try() {
        let quick = Backoff {
            attempts: 4,
            base_ms: 1,
            cap_ms: 1,
        };
        let mut tries = 0;
        let won: Result<Option<u32>, ()> = contended(&quick, &OsRandom, |a| {
            tries += 1;
            async move { Ok((a == 2).then_some(a)) }
        })
        .await;
        assert_eq!((won, tries), (Ok(Some(2)), 3));
        let mut tries = 0;
        let lost: Result<Option<u32>, ()> = contended(&quick, &OsRandom, |_| {
            tries += 1;
            async { Ok(None) }
        })
        .await;
        assert_eq!((lost, tries), (Ok(None), 4));
        let failed: Result<Option<u32>, &str> =
            contended(&quick, &OsRandom, |_| async { Err("store down") }).await;
        assert_eq!(failed, Err("store down"));
    }
}
