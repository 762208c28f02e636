//! Value parsers for the settings clap reads: each turns one flag or variable into its type, or
//! into a message that clap prints after the setting's name (`invalid value 'x' for
//! '--port <PORT>': ...`). Lenient where the seed project was (case, surrounding spaces, the
//! aliases of its enums, an empty boolean meaning false), strict everywhere else.

use std::time::Duration;

use crate::relay::LongPrompts;
use crate::upstream::ProtocolChoice;
use crate::upstream::cli::credentials::Secret;

/// Where thinking text goes in OpenAI answers (`REASONING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningMode {
    /// `reasoning_content` beside `content` (DeepSeek-style; what most clients render).
    Field,
    /// `<think>...</think>` at the start of `content`.
    ThinkTags,
    /// Dropped.
    Hide,
}

/// The log format (`LOG_FORMAT`); the level comes from `RUST_LOG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The store asked for (`STORE`); `Auto` is "redis when REDIS_URL is set, else embedded".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreArg {
    Auto,
    Memory,
    Embedded,
    Redis,
}

fn lower(value: &str) -> String {
    value.trim().to_ascii_lowercase()
}

/// `field`, `think-tags` (or `think_tags`, `think`), `hide` (or `none`).
pub fn reasoning(value: &str) -> Result<ReasoningMode, String> {
    match lower(value).as_str() {
        "field" => Ok(ReasoningMode::Field),
        "think-tags" | "think_tags" | "think" => Ok(ReasoningMode::ThinkTags),
        "hide" | "none" => Ok(ReasoningMode::Hide),
        other => Err(format!("`{other}` is not one of field, think-tags, hide")),
    }
}

/// `pretty` (or `text`), `json`.
pub fn log_format(value: &str) -> Result<LogFormat, String> {
    match lower(value).as_str() {
        "pretty" | "text" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("`{other}` is not one of pretty, json")),
    }
}

/// `embedded`, `redis`, `memory`; empty for the default.
pub fn store(value: &str) -> Result<StoreArg, String> {
    match lower(value).as_str() {
        "" => Ok(StoreArg::Auto),
        "memory" => Ok(StoreArg::Memory),
        "embedded" => Ok(StoreArg::Embedded),
        "redis" => Ok(StoreArg::Redis),
        other => Err(format!("`{other}` is not one of embedded, redis, memory")),
    }
}

/// `auto`, `gen1`, `gen2`.
pub fn protocol(value: &str) -> Result<ProtocolChoice, String> {
    match lower(value).as_str() {
        "auto" => Ok(ProtocolChoice::Auto),
        "gen1" => Ok(ProtocolChoice::Gen1),
        "gen2" => Ok(ProtocolChoice::Gen2),
        other => Err(format!("`{other}` is not one of auto, gen1, gen2")),
    }
}

/// `context-turns` (or `context_turns`, `split`), `reject`.
pub fn long_prompts(value: &str) -> Result<LongPrompts, String> {
    match lower(value).as_str() {
        "context-turns" | "context_turns" | "split" => Ok(LongPrompts::ContextTurns),
        "reject" => Ok(LongPrompts::Reject),
        other => Err(format!("`{other}` is not one of context-turns, reject")),
    }
}

/// `true`/`1`/`yes`/`on`, `false`/`0`/`no`/`off`, and empty for false.
pub fn boolean(value: &str) -> Result<bool, String> {
    match lower(value).as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(format!("`{other}` is not true or false")),
    }
}

/// A non-negative number.
pub fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a valid non-negative number"))
}

/// A number of at least `MIN` (a count or a size with a floor).
pub fn at_least<const MIN: usize>(value: &str) -> Result<usize, String> {
    let n: usize = number(value)?;
    if n < MIN {
        return Err(format!("must be at least {MIN}"));
    }
    Ok(n)
}

/// A count of attempts or failures, at least one.
pub fn at_least_one(value: &str) -> Result<u32, String> {
    let n: u32 = number(value)?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A TCP port (`0`: any free one).
pub fn port(value: &str) -> Result<u16, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a port (0 to 65535)"))
}

/// An IP address to listen on.
pub fn ip(value: &str) -> Result<std::net::IpAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)"))
}

/// A count of at least one, or empty for "not set" (`ACCOUNT_CONCURRENCY`, `CLI_CONCURRENCY`).
pub fn optional_count(value: &str) -> Result<Option<usize>, String> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    at_least::<1>(value).map(Some)
}

/// Whole seconds, at least one (`*_SECS`).
pub fn seconds(value: &str) -> Result<Duration, String> {
    let n: u64 = number(value)?;
    if n == 0 {
        return Err("must be at least 1 (seconds)".into());
    }
    Ok(Duration::from_secs(n))
}

/// Whole seconds, zero allowed (`QUEUE_TIMEOUT_SECS`).
pub fn any_seconds(value: &str) -> Result<Duration, String> {
    number(value).map(Duration::from_secs)
}

/// `SHUTDOWN_GRACE_SECS`: whole seconds, `0` to stop at once, empty for the default (30).
pub fn grace(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(Duration::from_secs(30));
    }
    v.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("`{v}` is not a whole number of seconds (e.g. 30; 0 stops at once)"))
}

/// `90`, `90s`, `30m`, `12h`, `7d`; more than zero.
pub fn duration(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    let (num, mult) = match v.char_indices().last() {
        Some((i, 's')) => (&v[..i], 1),
        Some((i, 'm')) => (&v[..i], 60),
        Some((i, 'h')) => (&v[..i], 3600),
        Some((i, 'd')) => (&v[..i], 86_400),
        _ => (v, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{v}` is not a duration (e.g. 3600, 90s, 30m, 12h, 7d)"))?;
    if n == 0 {
        return Err("must be more than zero".into());
    }
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

/// An `http://` or `https://` URL with a host, without its trailing `/`.
pub fn http_url(value: &str) -> Result<String, String> {
    let v = value.trim();
    let parsed = url::Url::parse(v).map_err(|e| format!("`{v}` is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "`{v}` must be an http:// or https:// URL with a host"
        ));
    }
    Ok(v.trim_end_matches('/').to_string())
}

/// A secret (cookie, key, token, URL with a password): kept out of `Debug` and every message.
pub fn secret(value: &str) -> Result<Secret, String> {
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("30m"), Ok(Duration::from_secs(1800)));
        assert!(duration("soon").is_err());
        assert!(duration("0s").is_err());
    }

    #[test]
    fn grace_values() {
        assert_eq!(grace("5"), Ok(Duration::from_secs(5)));
        assert_eq!(grace(" 0 "), Ok(Duration::ZERO));
        assert_eq!(grace(""), Ok(Duration::from_secs(30)));
        assert!(grace("10s").is_err(), "units are not accepted");
        assert!(grace("-1").is_err());
    }

    #[test]
    fn enums_take_the_seed_aliases() {
        assert_eq!(reasoning(" Think "), Ok(ReasoningMode::ThinkTags));
        assert_eq!(log_format("TEXT"), Ok(LogFormat::Pretty));
        assert_eq!(store(""), Ok(StoreArg::Auto));
        assert_eq!(long_prompts("split"), Ok(LongPrompts::ContextTurns));
        assert_eq!(boolean(""), Ok(false));
        assert!(boolean("maybe").is_err());
        assert_eq!(optional_count(" "), Ok(None));
        assert!(optional_count("0").is_err());
    }
}
