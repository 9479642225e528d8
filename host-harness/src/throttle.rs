//! Proactive pacing: Klaviyo limits each endpoint per account in fixed windows of one second
//! (burst) and one minute (steady), some also per day. The host keeps, per (account, operation),
//! the send times of the last requests and schedules each new one so that no window of either
//! length ever holds more than the limit — which also respects any fixed window — plus a
//! small margin. Requests are scheduled in arrival order; daily caps are counted per UTC day.

use klaviyo_catalog::Operation;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Extra spacing against clock and latency differences between us and the server.
const MARGIN: Duration = Duration::from_millis(30);

#[derive(Default)]
struct Windows {
    burst: VecDeque<Instant>,
    steady: VecDeque<Instant>,
    day: u64,
    today: u32,
}

/// What the limiter says about one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Send at this time (now or later).
    At(Instant),
    /// The daily cap is used up; it resets after this long.
    DailyCapReached { resets_in: Duration, cap: u32 },
}

#[derive(Default)]
pub struct RateLimiter {
    state: Mutex<HashMap<(String, &'static str), Windows>>,
}

impl RateLimiter {
    /// Reserves a send slot for `op` on `account` (a fingerprint, never the key itself).
    pub fn reserve(&self, account: &str, op: &'static Operation, now: Instant) -> Admission {
        let mut state = self.state.lock().unwrap();
        let w = state.entry((account.to_string(), op.id)).or_default();
        let (day, secs_left) = utc_day();
        if w.day != day {
            w.day = day;
            w.today = 0;
        }
        if let Some(cap) = op.rate_limit.daily {
            if w.today >= cap {
                return Admission::DailyCapReached {
                    resets_in: Duration::from_secs(secs_left),
                    cap,
                };
            }
        }
        let limits = [
            (
                op.rate_limit.burst_per_second as usize,
                Duration::from_secs(1),
            ),
            (
                op.rate_limit.steady_per_minute as usize,
                Duration::from_secs(60),
            ),
        ];
        // FIFO: never before the last reservation.
        let mut t = w.burst.back().copied().map_or(now, |last| last.max(now));
        for ((limit, window), q) in limits.iter().zip([&w.burst, &w.steady]) {
            if *limit > 0 && q.len() >= *limit {
                t = t.max(q[q.len() - limit] + *window + MARGIN);
            }
        }
        for ((limit, _), q) in limits.iter().zip([&mut w.burst, &mut w.steady]) {
            q.push_back(t);
            while q.len() > (*limit).max(1) {
                q.pop_front();
            }
        }
        w.today += 1;
        Admission::At(t)
    }
}

/// Days since 1970 (UTC) and seconds until the next UTC midnight.
fn utc_day() -> (u64, u64) {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    (s / 86_400, 86_400 - s % 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaviyo_catalog::tools::operation;

    /// Every window of one second holds at most `burst` sends, every minute at most `steady`.
    #[test]
    fn schedules_respect_both_windows() {
        let op = operation("get_lists").unwrap(); // 75/s, 750/min
        let l = RateLimiter::default();
        let now = Instant::now();
        let times: Vec<Instant> = (0..1000)
            .map(|_| match l.reserve("acct", op, now) {
                Admission::At(t) => t,
                other => panic!("{other:?}"),
            })
            .collect();
        for (i, t) in times.iter().enumerate() {
            let in_second = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(
                in_second <= 75,
                "{in_second} sends within a second from #{i}"
            );
            let in_minute = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(60))
                .count();
            assert!(
                in_minute <= 750,
                "{in_minute} sends within a minute from #{i}"
            );
        }
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "first come, first served"
        );
        // 750 fit in the first minute (10 s at 75/s); the 751st waits for the minute to pass.
        assert!(times[749] - now < Duration::from_secs(11));
        assert!(times[750] - now >= Duration::from_secs(60));
    }

    #[test]
    fn accounts_and_operations_have_their_own_windows() {
        let op = operation("get_accounts").unwrap(); // 1/s
        let l = RateLimiter::default();
        let now = Instant::now();
        assert_eq!(l.reserve("a", op, now), Admission::At(now));
        assert_eq!(l.reserve("b", op, now), Admission::At(now));
        assert_eq!(
            l.reserve("a", operation("get_lists").unwrap(), now),
            Admission::At(now)
        );
        assert!(
            matches!(l.reserve("a", op, now), Admission::At(t) if t >= now + Duration::from_secs(1))
        );
    }

    #[test]
    fn daily_caps_are_counted() {
        let op = klaviyo_catalog::generated::OPERATIONS
            .iter()
            .find(|o| o.rate_limit.daily.is_some())
            .unwrap();
        let cap = op.rate_limit.daily.unwrap();
        let l = RateLimiter::default();
        let now = Instant::now();
        for _ in 0..cap {
            assert!(matches!(l.reserve("a", op, now), Admission::At(_)));
        }
        assert!(
            matches!(l.reserve("a", op, now), Admission::DailyCapReached { cap: c, .. } if c == cap)
        );
    }
}
