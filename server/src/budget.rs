//! What one client may cost, whichever transport it plays over: a token bucket for its
//! message rate and the chat rules (length, printable text, lines per window). The WebSocket
//! reader (`connection::reader`) and the datagram endpoint (`udp`) both charge against these.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use skirmish_shared::protocol::{CHAT_BURST, CHAT_WINDOW_S, MAX_CHAT_CHARS};

/// Tokens refilled continuously. Written here rather than taken from `governor`: it must
/// take the caller's `now` (sans-IO, testable without a clock) and costs two floats per
/// client.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A bucket holding `burst` tokens at `now`.
    #[must_use]
    pub fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    /// Takes `cost` tokens, refilling `rate_per_s` up to `burst`; false when the bucket is
    /// empty.
    pub fn take(&mut self, cost: f64, now: Instant, rate_per_s: f64, burst: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate_per_s).min(burst);
        self.at = now;
        self.tokens -= cost;
        self.tokens >= 0.0
    }
}

/// A token bucket per client IP (governor's keyed limiter), for what one address may ask
/// of the server: the HTTP API's costly requests, datagram handshakes. Loopback is spared
/// unless asked (local bot swarms and `--demo` come from there); idle addresses are forgotten
/// once many are remembered.
#[derive(Debug)]
pub struct PerIp {
    limiter: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    limit_loopback: bool,
}

/// Addresses remembered before idle ones are swept out.
const PER_IP_SWEEP_AT: usize = 10_000;

impl PerIp {
    /// `rate` a second with `burst`; `None` when `rate` is 0 (no limit).
    #[must_use]
    pub fn new(rate: u32, burst: u32, limit_loopback: bool) -> Option<Self> {
        let rate = std::num::NonZeroU32::new(rate)?;
        let burst = std::num::NonZeroU32::new(burst).unwrap_or(rate);
        Some(Self {
            limiter: governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ),
            limit_loopback,
        })
    }

    /// Takes one token from `ip`'s bucket; `Err` is how long until the next one.
    pub fn check(&self, ip: std::net::IpAddr) -> Result<(), Duration> {
        let ip = ip.to_canonical();
        if ip.is_loopback() && !self.limit_loopback {
            return Ok(());
        }
        if self.limiter.len() > PER_IP_SWEEP_AT {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            use governor::clock::{Clock, DefaultClock};
            not_until.wait_time_from(DefaultClock::default().now())
        })
    }
}

/// At most `CHAT_BURST` chat lines in any `CHAT_WINDOW_S` seconds, each non-empty and at
/// most `MAX_CHAT_CHARS` printable characters.
#[derive(Debug, Default)]
pub struct ChatLimit {
    sent: VecDeque<Instant>,
}

impl ChatLimit {
    /// The cleaned line to broadcast, or why it is refused (sent back to the player).
    pub fn check(&mut self, text: &str, now: Instant) -> Result<String, String> {
        let text = skirmish_shared::rules::clean_text(text);
        if text.chars().count() > MAX_CHAT_CHARS {
            return Err(format!(
                "chat message longer than {MAX_CHAT_CHARS} characters"
            ));
        }
        if text.trim().is_empty() {
            return Err("empty chat message".into());
        }
        if !self.allow(now) {
            return Err(format!(
                "chat rate limit: at most {CHAT_BURST} messages per {CHAT_WINDOW_S} s"
            ));
        }
        Ok(text)
    }

    fn allow(&mut self, now: Instant) -> bool {
        let window = Duration::from_secs(CHAT_WINDOW_S);
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= CHAT_BURST as usize {
            return false;
        }
        self.sent.push_back(now);
        true
    }
}
