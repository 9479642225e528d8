//! Proactive pacing: Klaviyo limits each endpoint per account in fixed windows of one second
//! (burst) and one minute (steady), some also per day. The host keeps, per (account, operation),
//! the send times of the last requests and schedules each new one so that no window of either
//! length ever holds more than the limit — which also respects any fixed window — plus a
//! small margin. Requests are scheduled in arrival order; daily caps are counted per UTC day.
//!
//! The budget is the account's, not the process's: agents often run the CLI once per action,
//! next to an MCP server. So with a state directory (`Settings::state_dir`; by default
//! `KLAVIYO_STATE_DIR`, else `$XDG_STATE_HOME/klaviyo-harness`, else
//! `~/.local/state/klaviyo-harness`) each (account, operation) has one small file,
//! `<state_dir>/pacing/<account>.<operation>.json`, that every harness process of this user
//! reads, schedules from and writes back under an exclusive `flock`. Times in it are wall-clock
//! milliseconds since the UNIX epoch, comparable across processes; callers still deal in
//! [`Instant`]s. Without a state directory the schedule lives in this process only.
//!
//! The file is one line:
//! `{"sum":"<hex>","v":1,"written":<ms>,"day":<UTC day>,"today":<n>,"sends":[<ms>,<gap>,…]}`.
//! `sends` holds only the send times that can still constrain a new one (the last N, N the
//! larger limit, none older than a minute): the first in milliseconds since the epoch, each
//! next as the gap after the one before. `today` counts the sends of UTC day `day`. `written`
//! is the writer's clock: a reader whose clock is well behind it takes it that the clock
//! stepped back and moves the stored times back with it. `sum` is a checksum ([`checksum`]) of
//! the line after it.
//!
//! Crash safety: the state is rewritten in place (one write at offset 0, then a truncation)
//! while locked, and a reader takes the first line only and checks its sum. A process killed
//! between the write and the truncation leaves a good first line; a torn or otherwise damaged
//! file fails the check and is started afresh with a one-line warning — never a schedule that
//! waits forever. Closing the file releases the lock, so a crashed process holds none.

use klaviyo_catalog::{Operation, RateLimit};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Extra spacing against clock and latency differences between us and the server, in ms.
const MARGIN_MS: u64 = 30;
const SECOND_MS: u64 = 1_000;
const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;
/// How far a stored `written` may be ahead of our clock before we take it that the wall clock
/// stepped back (more than a reservation can take between reading the clock and the lock).
const CLOCK_SLACK_MS: u64 = 10_000;
/// Longest wait for another process to release a state file.
#[cfg(unix)]
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Version of the file format.
const FORMAT: u32 = 1;
/// More send times than any limit allows (the largest is 3500/min): a damaged file.
const MAX_SENDS: usize = 100_000;
/// A time past any real one (about the year 33,000), in ms: a damaged file.
const MAX_TIME_MS: u64 = 1_000_000_000_000_000;

/// The schedule of one (account, operation): recent send times in ms since the UNIX epoch, in
/// order, and the count of the current UTC day.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
struct Windows {
    sends: VecDeque<u64>,
    day: u64,
    today: u32,
    /// The latest clock reading that touched this schedule.
    written: u64,
}

impl Windows {
    /// Brings the schedule to `now`: follows a clock that stepped back, restarts the count on a
    /// new UTC day, drops send times that can no longer constrain a new one.
    fn refresh(&mut self, rl: &RateLimit, now: u64) {
        if self.written > now + CLOCK_SLACK_MS {
            let back = self.written - now;
            for s in &mut self.sends {
                *s = s.saturating_sub(back);
            }
            self.written = now;
        }
        self.written = self.written.max(now);
        let day = now / DAY_MS;
        if self.day != day {
            self.day = day;
            self.today = 0;
        }
        while self
            .sends
            .front()
            .is_some_and(|&s| s + MINUTE_MS + MARGIN_MS <= now)
        {
            self.sends.pop_front();
        }
        while self.sends.len() > keep(rl) {
            self.sends.pop_front();
        }
    }

    /// The earliest time at or after `now`, and not before the last reservation (first come,
    /// first served), at which one more send keeps every one-second window within the burst
    /// limit and every minute within the steady limit; or the daily cap, when it is used up.
    fn next_slot(&self, rl: &RateLimit, now: u64) -> Result<u64, u32> {
        if let Some(cap) = rl.daily {
            if self.today >= cap {
                return Err(cap);
            }
        }
        let mut t = self.sends.back().map_or(now, |&last| last.max(now));
        for (limit, window) in [
            (rl.burst_per_second, SECOND_MS),
            (rl.steady_per_minute, MINUTE_MS),
        ] {
            let limit = limit as usize;
            if limit > 0 && self.sends.len() >= limit {
                t = t.max(self.sends[self.sends.len() - limit] + window + MARGIN_MS);
            }
        }
        Ok(t)
    }

    fn commit(&mut self, rl: &RateLimit, t: u64) {
        self.sends.push_back(t);
        while self.sends.len() > keep(rl) {
            self.sends.pop_front();
        }
        self.today = self.today.saturating_add(1);
    }
}

/// How many send times can matter: the larger limit (both windows end at the newest send).
fn keep(rl: &RateLimit) -> usize {
    (rl.burst_per_second.max(rl.steady_per_minute) as usize).max(1)
}

/// What the limiter says about one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Send at this time (now or later).
    At(Instant),
    /// The daily cap is used up; it resets after this long.
    DailyCapReached { resets_in: Duration, cap: u32 },
}

/// Schedules one request on `w`; says whether a slot was taken. A slot at or after `deadline`
/// is reported but not taken, so a call that gives up does not delay the ones after it.
fn admit(
    w: &mut Windows,
    rl: &RateLimit,
    now: Instant,
    now_ms: u64,
    deadline: Option<Instant>,
) -> (Admission, bool) {
    w.refresh(rl, now_ms);
    match w.next_slot(rl, now_ms) {
        Err(cap) => (
            Admission::DailyCapReached {
                resets_in: Duration::from_secs((DAY_MS - now_ms % DAY_MS).div_ceil(1000)),
                cap,
            },
            false,
        ),
        Ok(t) => {
            let at = now + Duration::from_millis(t - now_ms);
            if deadline.is_some_and(|d| at >= d) {
                return (Admission::At(at), false);
            }
            w.commit(rl, t);
            (Admission::At(at), true)
        }
    }
}

/// The pacer. [`RateLimiter::default`] keeps the schedule in this process;
/// [`RateLimiter::shared`] keeps it in a state directory, shared with every other process
/// using that directory.
#[derive(Default)]
pub struct RateLimiter {
    /// `<state_dir>/pacing`, when shared.
    dir: Option<PathBuf>,
    /// The in-process schedule (also the fallback when a state file cannot be used).
    memory: Mutex<HashMap<(String, &'static str), Windows>>,
    /// Whether we already said that a state file could not be used.
    warned: AtomicBool,
    clock: Clock,
}

impl RateLimiter {
    /// A limiter whose schedule lives in this process only.
    pub fn in_process() -> RateLimiter {
        RateLimiter::default()
    }

    /// A limiter sharing its schedule through `state_dir` (created `0700` if missing), or why
    /// not: the directory is not private to this user, or cannot be created.
    pub fn shared(state_dir: &Path) -> Result<RateLimiter, String> {
        if !cfg!(unix) {
            return Err("sharing the pacing budget between processes needs Unix file locks".into());
        }
        let dir = crate::dirs::private_dir(state_dir, "state directory")?;
        let dir = crate::dirs::private_dir(&dir.join("pacing"), "pacing state directory")?;
        Ok(RateLimiter {
            dir: Some(dir),
            ..RateLimiter::default()
        })
    }

    /// [`RateLimiter::shared`] when a state directory is given; without one (or an empty
    /// path: turned off on purpose), or with a warning when it cannot be used, in this process
    /// only.
    pub fn new(state_dir: Option<&Path>) -> RateLimiter {
        let state_dir = state_dir.filter(|d| !d.as_os_str().is_empty());
        match state_dir.map(RateLimiter::shared) {
            None => RateLimiter::default(),
            Some(Ok(l)) => l,
            Some(Err(why)) => {
                eprintln!("warning: {why}; pacing requests within this process only (other runs and the MCP server do not share its budget)");
                RateLimiter::default()
            }
        }
    }

    /// The directory holding the shared schedule, if it is shared.
    pub fn shared_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Reserves a send slot for `op` on `account` (a fingerprint, never the key itself).
    pub fn reserve(&self, account: &str, op: &'static Operation, now: Instant) -> Admission {
        self.schedule(account, op, now, None)
    }

    /// [`RateLimiter::reserve`] for a request that must leave before `deadline`: a slot at or
    /// after it is returned (`At(t)` with `t >= deadline`) but not reserved.
    pub fn reserve_before(
        &self,
        account: &str,
        op: &'static Operation,
        now: Instant,
        deadline: Instant,
    ) -> Admission {
        self.schedule(account, op, now, Some(deadline))
    }

    fn schedule(
        &self,
        account: &str,
        op: &'static Operation,
        now: Instant,
        deadline: Option<Instant>,
    ) -> Admission {
        let now_ms = self.clock.ms(now);
        #[cfg(unix)]
        if let Some(dir) = &self.dir {
            let path = state_file(dir, account, op.id);
            match file::reserve(&path, op, now, now_ms, deadline) {
                Ok(a) => return a,
                Err(e) => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        eprintln!("warning: the pacing state {} cannot be used ({e}); pacing within this process only for now", path.display());
                    }
                }
            }
        }
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let w = memory.entry((account.to_string(), op.id)).or_default();
        admit(w, &op.rate_limit, now, now_ms, deadline).0
    }
}

/// Instants as wall-clock milliseconds since the UNIX epoch. The two clocks are tied at one
/// moment and then move together (the kernel slews both alike), so one `Instant` always gives
/// the same milliseconds; when the wall clock is set (they part by more than a few
/// milliseconds), they are tied again.
struct Clock {
    /// An instant and its wall-clock time since the epoch.
    tie: Mutex<(Instant, Duration)>,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            tie: Mutex::new((Instant::now(), since_epoch())),
        }
    }
}

/// Wall-clock time since the UNIX epoch.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Clock {
    fn ms(&self, at: Instant) -> u64 {
        let (i, w) = (Instant::now(), since_epoch());
        let mut tie = self.tie.lock().unwrap_or_else(|e| e.into_inner());
        let wall = |t: Instant, (i0, w0): (Instant, Duration)| {
            if t >= i0 {
                w0 + (t - i0)
            } else {
                w0.saturating_sub(i0 - t)
            }
        };
        let expected = wall(i, *tie);
        if w.max(expected) - w.min(expected) > Duration::from_millis(5) {
            *tie = (i, w);
        }
        wall(at, *tie).as_millis() as u64
    }
}

/// The state file of (`account`, `op`): names that are not plain are hashed.
fn state_file(dir: &Path, account: &str, op: &str) -> PathBuf {
    fn plain(s: &str) -> String {
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return s.to_string();
        }
        use sha2::{Digest, Sha256};
        Sha256::digest(s.as_bytes())[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
    dir.join(format!("{}.{}.json", plain(account), plain(op)))
}

/// A checksum against torn writes (not against tampering: the directory is private): FNV-1a's
/// step over 8-byte words, then over the length, so that a file of thousands of send times
/// costs a few microseconds.
fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut words = bytes.chunks_exact(8);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(PRIME);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(PRIME);
    (h ^ bytes.len() as u64).wrapping_mul(PRIME)
}

/// `{"sum":"` + 16 hex digits + `",`.
const HEAD: usize = 26;

fn encode(w: &Windows) -> Vec<u8> {
    let mut line = Vec::with_capacity(96 + 4 * w.sends.len());
    line.extend_from_slice(b"{\"sum\":\"0000000000000000\",\"v\":");
    push_u64(&mut line, FORMAT.into());
    for (name, n) in [
        (&b",\"written\":"[..], w.written),
        (b",\"day\":", w.day),
        (b",\"today\":", w.today.into()),
    ] {
        line.extend_from_slice(name);
        push_u64(&mut line, n);
    }
    line.extend_from_slice(b",\"sends\":[");
    let mut prev = None;
    for &s in &w.sends {
        match prev {
            None => push_u64(&mut line, s),
            Some(p) => {
                line.push(b',');
                push_u64(&mut line, s.saturating_sub(p));
            }
        }
        prev = Some(s.max(prev.unwrap_or(0)));
    }
    line.extend_from_slice(b"]}");
    let sum = format!("{:016x}", checksum(&line[HEAD..]));
    line[8..24].copy_from_slice(sum.as_bytes());
    line.push(b'\n');
    line
}

/// Appends `n` in decimal (the send times are most of the file: no formatting machinery).
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The schedule in a state file's bytes (empty: a new file), or what is wrong with them.
fn decode(bytes: &[u8]) -> Result<Windows, String> {
    if bytes.is_empty() {
        return Ok(Windows::default());
    }
    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
        return Err("its line is unfinished".into());
    };
    let line = &bytes[..end];
    let sum = (line.len() > HEAD && line.starts_with(b"{\"sum\":\"") && &line[24..HEAD] == b"\",")
        .then(|| std::str::from_utf8(&line[8..24]).ok())
        .flatten()
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or("it does not start with a checksum")?;
    if checksum(&line[HEAD..]) != sum {
        return Err("its checksum does not match".into());
    }
    let mut r = Reader(&line[HEAD..]);
    let bad = || "it is not a pacing state of this version".to_string();
    r.lit(b"\"v\":").ok_or_else(bad)?;
    if r.num() != Some(FORMAT.into()) {
        return Err(bad());
    }
    let mut field = |name: &[u8]| -> Option<u64> {
        r.lit(b",")?;
        r.lit(name)?;
        r.num()
    };
    let (Some(written), Some(day), Some(today)) = (
        field(b"\"written\":"),
        field(b"\"day\":"),
        field(b"\"today\":"),
    ) else {
        return Err(bad());
    };
    r.lit(b",\"sends\":[").ok_or_else(bad)?;
    let mut sends = VecDeque::new();
    if r.lit(b"]").is_none() {
        let mut t = r.num().ok_or_else(bad)?;
        sends.push_back(t);
        while r.lit(b",").is_some() {
            t = t.checked_add(r.num().ok_or_else(bad)?).ok_or_else(bad)?;
            sends.push_back(t);
        }
        r.lit(b"]").ok_or_else(bad)?;
    }
    if r.lit(b"}").is_none() || !r.0.is_empty() {
        return Err(bad());
    }
    if sends.len() > MAX_SENDS || sends.back().copied().unwrap_or(0).max(written) > MAX_TIME_MS {
        return Err("its times are past any real ones".into());
    }
    Ok(Windows {
        sends,
        day,
        today: u32::try_from(today).map_err(|_| bad())?,
        written,
    })
}

/// Reads the state line: literals and decimal numbers, nothing else.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(s)?;
        Some(())
    }

    fn num(&mut self) -> Option<u64> {
        let len = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 20 {
            return None;
        }
        let (digits, rest) = self.0.split_at(len);
        self.0 = rest;
        digits.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    }
}

#[cfg(unix)]
mod file {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::io::Read as _;
    use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
    use std::os::unix::io::AsRawFd as _;

    /// One reservation on the state file at `path`: open, lock, read, schedule, write, close.
    pub(super) fn reserve(
        path: &Path,
        op: &'static Operation,
        now: Instant,
        now_ms: u64,
        deadline: Option<Instant>,
    ) -> std::io::Result<Admission> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        lock(&file)?;
        let mut bytes = Vec::with_capacity(512);
        (&file).read_to_end(&mut bytes)?;
        let (mut w, damaged) = match decode(&bytes) {
            Ok(w) => (w, false),
            Err(why) => {
                eprintln!(
                    "warning: the pacing state {} is damaged ({why}); starting it afresh",
                    path.display()
                );
                (Windows::default(), true)
            }
        };
        let (admission, taken) = admit(&mut w, &op.rate_limit, now, now_ms, deadline);
        if taken || damaged {
            let new = encode(&w);
            file.write_all_at(&new, 0)?;
            if new.len() < bytes.len() {
                file.set_len(new.len() as u64)?;
            }
        }
        Ok(admission)
    }

    /// Takes the exclusive lock, waiting at most [`LOCK_WAIT`] (a process holds it for
    /// microseconds; one that is stopped must not stop us).
    fn lock(file: &File) -> std::io::Result<()> {
        let started = Instant::now();
        loop {
            // SAFETY: flock on a descriptor we own; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_micros(200))
                }
                Some(libc::EWOULDBLOCK) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "another process has held its lock for over 2 s",
                    ))
                }
                _ => return Err(e),
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use klaviyo_catalog::tools::operation;

    /// A private temp directory, removed when dropped.
    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn temp_dir() -> TempDir {
        use std::sync::atomic::AtomicU32;
        static N: AtomicU32 = AtomicU32::new(0);
        TempDir(std::env::temp_dir().join(format!(
            "kc-pacing-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }

    /// One limiter of each kind: in this process, and shared through a fresh state directory.
    fn limiters() -> Vec<(&'static str, RateLimiter, Option<TempDir>)> {
        let d = temp_dir();
        vec![
            ("in-process", RateLimiter::default(), None),
            ("shared", RateLimiter::shared(&d.0).unwrap(), Some(d)),
        ]
    }

    fn slot(a: Admission) -> Instant {
        match a {
            Admission::At(t) => t,
            other => panic!("{other:?}"),
        }
    }

    /// Asserts that no window of one second holds more than `burst` of `times`.
    fn assert_burst(times: &[Instant], burst: usize, what: &str) {
        let mut sorted = times.to_vec();
        sorted.sort();
        for w in sorted.windows(burst + 1) {
            assert!(
                w[burst] - w[0] >= Duration::from_secs(1),
                "{what}: {} sends within {:?}",
                burst + 1,
                w[burst] - w[0]
            );
        }
    }

    fn state_path(l: &RateLimiter, account: &str, op: &str) -> PathBuf {
        state_file(l.shared_dir().unwrap(), account, op)
    }

    /// Every window of one second holds at most `burst` sends, every minute at most `steady`.
    #[test]
    fn schedules_respect_both_windows() {
        let op = operation("get_lists").unwrap(); // 75/s, 750/min
        for (mode, l, _dir) in limiters() {
            let now = Instant::now();
            let times: Vec<Instant> = (0..1000)
                .map(|_| slot(l.reserve("acct", op, now)))
                .collect();
            for (i, t) in times.iter().enumerate() {
                let in_second = times[i..]
                    .iter()
                    .take_while(|u| **u < *t + Duration::from_secs(1))
                    .count();
                assert!(
                    in_second <= 75,
                    "{mode}: {in_second} sends within a second from #{i}"
                );
                let in_minute = times[i..]
                    .iter()
                    .take_while(|u| **u < *t + Duration::from_secs(60))
                    .count();
                assert!(
                    in_minute <= 750,
                    "{mode}: {in_minute} sends within a minute from #{i}"
                );
            }
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "{mode}: first come, first served"
            );
            // 750 fit in the first minute (10 s at 75/s); the 751st waits for the minute to pass.
            assert!(times[749] - now < Duration::from_secs(11), "{mode}");
            assert!(times[750] - now >= Duration::from_secs(60), "{mode}");
        }
    }

    #[test]
    fn accounts_and_operations_have_their_own_windows() {
        let op = operation("get_accounts").unwrap(); // 1/s
        for (mode, l, _dir) in limiters() {
            let now = Instant::now();
            assert_eq!(l.reserve("a", op, now), Admission::At(now), "{mode}");
            assert_eq!(l.reserve("b", op, now), Admission::At(now), "{mode}");
            assert_eq!(
                l.reserve("a", operation("get_lists").unwrap(), now),
                Admission::At(now),
                "{mode}"
            );
            assert!(
                matches!(l.reserve("a", op, now), Admission::At(t) if t >= now + Duration::from_secs(1)),
                "{mode}"
            );
        }
    }

    #[test]
    fn daily_caps_are_counted() {
        let op = klaviyo_catalog::generated::OPERATIONS
            .iter()
            .find(|o| o.rate_limit.daily.is_some())
            .unwrap();
        let cap = op.rate_limit.daily.unwrap();
        for (mode, l, _dir) in limiters() {
            let now = Instant::now();
            for _ in 0..cap {
                assert!(
                    matches!(l.reserve("a", op, now), Admission::At(_)),
                    "{mode}"
                );
            }
            assert!(
                matches!(l.reserve("a", op, now), Admission::DailyCapReached { cap: c, resets_in } if c == cap && resets_in <= Duration::from_secs(86_400)),
                "{mode}"
            );
        }
    }

    /// Two limiters on one state directory are two processes: eight threads, four on each,
    /// take slots at once, and all of them together still keep to the burst limit (no slot
    /// given twice, no update lost) and the steady one.
    #[test]
    fn two_limiters_on_one_state_dir_share_one_budget() {
        let op = operation("get_tags_for_campaign").unwrap();
        assert_eq!(
            (
                op.rate_limit.burst_per_second,
                op.rate_limit.steady_per_minute
            ),
            (3, 60)
        );
        let d = temp_dir();
        let (a, b) = (
            RateLimiter::shared(&d.0).unwrap(),
            RateLimiter::shared(&d.0).unwrap(),
        );
        let now = Instant::now();
        // (Each limiter ties its clocks on its own: they may differ by a millisecond.)
        for l in [&a, &b, &a] {
            assert!(slot(l.reserve("acct", op, now)) - now <= Duration::from_millis(1));
        }
        let fourth = slot(b.reserve("acct", op, now));
        assert!(
            fourth >= now + Duration::from_secs(1),
            "the second limiter saw the first one's sends: {:?}",
            fourth - now
        );
        let start = std::sync::Barrier::new(8);
        let times = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let l = if i % 2 == 0 { &a } else { &b };
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        (0..25)
                            .map(|_| slot(l.reserve("acct", op, Instant::now())))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        let mut all = vec![now, now, now, fourth];
        all.extend(times);
        assert_eq!(all.len(), 204);
        assert_burst(&all, 3, "two limiters");
        // 204 sends at 3/s and 60/min: 60 a minute, so the last waits three minutes.
        assert!(all.iter().max().unwrap().duration_since(now) >= Duration::from_secs(180));
        // The control: two limiters each on its own would have given the fourth slot at once.
        let (c, e) = (RateLimiter::default(), RateLimiter::default());
        for l in [&c, &e, &c] {
            l.reserve("acct", op, now);
        }
        assert_eq!(e.reserve("acct", op, now), Admission::At(now));
    }

    #[test]
    fn daily_caps_survive_a_new_limiter() {
        let op = operation("create_custom_metric").unwrap();
        let cap = op.rate_limit.daily.unwrap(); // 15 a day, 1/s
        let d = temp_dir();
        let now = Instant::now();
        {
            let first = RateLimiter::shared(&d.0).unwrap();
            for _ in 0..cap - 1 {
                slot(first.reserve("acct", op, now));
            }
        }
        // A later run: one send left today, then the cap.
        let second = RateLimiter::shared(&d.0).unwrap();
        slot(second.reserve("acct", op, now));
        assert!(matches!(
            second.reserve("acct", op, now),
            Admission::DailyCapReached { cap: c, .. } if c == cap
        ));
        // Another account, or another state directory, has its own count.
        slot(second.reserve("other", op, now));
        let elsewhere = temp_dir();
        slot(
            RateLimiter::shared(&elsewhere.0)
                .unwrap()
                .reserve("acct", op, now),
        );
    }

    #[test]
    fn a_damaged_state_file_is_started_afresh() {
        let op = operation("get_accounts").unwrap(); // 1/s
        let d = temp_dir();
        let l = RateLimiter::shared(&d.0).unwrap();
        let path = state_path(&l, "acct", op.id);
        let now = Instant::now();
        let now_ms = l.clock.ms(now);
        // A schedule that would wait a day, with a wrong checksum (as a torn write leaves).
        let wedged = String::from_utf8(encode(&Windows {
            sends: [now_ms + DAY_MS].into(),
            day: now_ms / DAY_MS,
            today: 1,
            written: now_ms,
        }))
        .unwrap()
        .replace("\"today\":1,", "\"today\":2,")
        .into_bytes();
        let good = encode(&Windows {
            sends: [now_ms].into(),
            day: now_ms / DAY_MS,
            today: 1,
            written: now_ms,
        });
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("garbage", b"\x00\x00\x7fELF garbage\n".to_vec()),
            ("an unfinished line", good[..good.len() / 2].to_vec()),
            ("a wrong checksum", wedged),
            ("plain JSON", b"{\"v\":1,\"sends\":[]}\n".to_vec()),
        ];
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(
                l.reserve("acct", op, now),
                Admission::At(now),
                "{what}: started afresh, not wedged"
            );
            let w = decode(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{what}: rewritten, but {e}"));
            assert_eq!((w.sends.len(), w.today), (1, 1), "{what}");
        }
    }

    /// A writer killed after writing a shorter state but before truncating leaves the old
    /// state's tail behind the new line: the new line still counts.
    #[test]
    fn a_state_with_a_stale_tail_is_read() {
        let op = operation("get_accounts").unwrap(); // 1/s
        let d = temp_dir();
        let l = RateLimiter::shared(&d.0).unwrap();
        let now = Instant::now();
        let now_ms = l.clock.ms(now);
        let mut bytes = encode(&Windows {
            sends: [now_ms].into(),
            day: now_ms / DAY_MS,
            today: 1,
            written: now_ms,
        });
        bytes.extend_from_slice(b"0,0,0,0,1030,0]}\n");
        std::fs::write(state_path(&l, "acct", op.id), bytes).unwrap();
        let t = slot(l.reserve("acct", op, now));
        assert!(t >= now + Duration::from_secs(1), "{:?}", t - now);
    }

    #[test]
    fn a_slot_beyond_the_deadline_is_not_reserved() {
        let op = operation("get_accounts").unwrap(); // 1/s
        for (mode, l, _dir) in limiters() {
            let now = Instant::now();
            slot(l.reserve("a", op, now));
            let deadline = now + Duration::from_millis(500);
            let late = slot(l.reserve_before("a", op, now, deadline));
            assert!(late >= deadline, "{mode}");
            // The refused slot is still free: the next request gets it, not the one after.
            assert_eq!(l.reserve("a", op, now), Admission::At(late), "{mode}");
        }
    }

    /// When the wall clock steps back an hour, the stored schedule (an hour "ahead") moves back
    /// with it instead of making every request wait an hour.
    #[test]
    fn a_clock_stepping_back_does_not_wedge_pacing() {
        let op = operation("get_accounts").unwrap(); // 1/s
        let d = temp_dir();
        let l = RateLimiter::shared(&d.0).unwrap();
        let now = Instant::now();
        let now_ms = l.clock.ms(now);
        let hour = 3_600_000;
        std::fs::write(
            state_path(&l, "acct", op.id),
            encode(&Windows {
                sends: [now_ms + hour].into(),
                day: now_ms / DAY_MS,
                today: 1,
                written: now_ms + hour,
            }),
        )
        .unwrap();
        let t = slot(l.reserve("acct", op, now)) - now;
        assert!(
            t >= Duration::from_secs(1) && t < Duration::from_secs(2),
            "paced after the last send, moved back: {t:?}"
        );
    }

    #[test]
    fn state_files_are_private_and_hold_only_what_can_matter() {
        use std::os::unix::fs::PermissionsExt;
        let op = operation("get_lists").unwrap(); // 75/s, 750/min
        let d = temp_dir();
        let l = RateLimiter::shared(&d.0).unwrap();
        let key_like = "pk_live_not/a fingerprint";
        let now = Instant::now();
        for _ in 0..1000 {
            slot(l.reserve(key_like, op, now));
        }
        let path = state_path(&l, key_like, op.id);
        assert!(
            !path.to_string_lossy().contains("pk_live"),
            "{}",
            path.display()
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(l.shared_dir().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let w = decode(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(w.sends.len(), 750, "the steady limit's worth");
        // Two minutes later, the old sends can no longer matter.
        slot(l.reserve(key_like, op, now + Duration::from_secs(130)));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(decode(&bytes).unwrap().sends.len(), 1);
        assert!(bytes.len() < 120, "{}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn a_state_dir_others_can_write_to_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let d = temp_dir();
        std::fs::create_dir_all(&d.0).unwrap();
        std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = RateLimiter::shared(&d.0).err().unwrap();
        assert!(err.contains("is not private"), "{err}");
        assert!(RateLimiter::new(Some(&d.0)).shared_dir().is_none());
        assert!(RateLimiter::new(None).shared_dir().is_none());
        assert!(RateLimiter::new(Some(Path::new(""))).shared_dir().is_none());
        assert!(!d.0.join("pacing").exists());
    }

    /// What a reservation costs on a state file (printed; run with `--release --nocapture`).
    #[test]
    fn reservation_cost() {
        let d = temp_dir();
        let l = RateLimiter::shared(&d.0).unwrap();
        let start = Instant::now();
        let measure = |what: &str, op: &'static Operation, step: Duration, n: u32| {
            let began = Instant::now();
            for i in 0..n {
                slot(l.reserve(what, op, start + step * i));
            }
            let bytes = std::fs::metadata(state_path(&l, what, op.id))
                .unwrap()
                .len();
            eprintln!(
                "reservation on a state file, {what}: {:.1} µs each (file {bytes} bytes)",
                began.elapsed().as_secs_f64() * 1e6 / f64::from(n)
            );
        };
        let get_accounts = operation("get_accounts").unwrap();
        measure("one-a-second", get_accounts, Duration::from_secs(1), 2000);
        let get_lists = operation("get_lists").unwrap();
        measure("full-750-per-minute", get_lists, Duration::ZERO, 2000);
        let xl = klaviyo_catalog::generated::OPERATIONS
            .iter()
            .find(|o| o.rate_limit.steady_per_minute == 3500)
            .unwrap();
        measure("full-3500-per-minute", xl, Duration::ZERO, 4000);
    }
}
