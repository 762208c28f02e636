//! `bench --scenario many-messages`: the memory a burst of many-small-message requests costs.
//!
//! The attack of the hardening issue: N concurrent requests (default 16), each a 3.4 MB body
//! of 100,000 one-letter user messages (as Python's `json.dumps` writes them), sent with a client key to a
//! proxy with its default settings (account concurrency, body limit, message limit). It
//! reports the proxy's RSS before, its peak during the burst, and its RSS a few seconds after
//! every answer arrived: what the requests cost while they ran, and what the process kept.
//! Extra settings for the proxy (e.g. `MAX_MESSAGES`) are passed with `--proxy-env`; `MALLOC_*`
//! variables of this process are passed on, to compare glibc tunings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::procs::{BENCH_KEY, Children, rss_bytes};
use super::{BenchArgs, Pinning, Result};

/// The body of one attack request: `messages` one-letter user messages, spaced as Python's
/// `json.dumps` writes them (34 bytes a message).
pub fn attack_body(messages: usize) -> String {
    let one = r#"{"role": "user", "content": "a"}"#;
    let mut body = String::with_capacity(messages * (one.len() + 2) + 64);
    body.push_str(r#"{"model": "GPT5", "messages": ["#);
    for i in 0..messages {
        if i > 0 {
            body.push_str(", ");
        }
        body.push_str(one);
    }
    body.push_str("]}");
    body
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub async fn run(args: &BenchArgs) -> Result<()> {
    let procs = Children::start(args, Pinning::Free).await?;
    let pid = procs.proxy_pid();
    let messages = args.messages;
    let body = attack_body(messages);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())?;
    // One small request first: the process as it is after its first answer.
    let url = format!("{}/v1/chat/completions", procs.proxy_url);
    http.post(&url)
        .bearer_auth(BENCH_KEY)
        .header("content-type", "application/json")
        .body(r#"{"model":"GPT5","messages":[{"role":"user","content":"warm up"}]}"#)
        .send()
        .await
        .map_err(|e| format!("warm-up: {e}"))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes(pid).unwrap_or(0);
    let sampler = procs.rss_sampler();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.requests {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            match http
                .post(&url)
                .bearer_auth(BENCH_KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16().to_string();
                    let _ = r.bytes().await;
                    status
                }
                Err(e) => format!("failed ({e})"),
            }
        }));
    }
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let status = t.await.unwrap_or_else(|e| format!("panicked ({e})"));
        *statuses.entry(status).or_default() += 1;
    }
    let burst = started.elapsed();
    let peak = sampler.stop().await;
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let after = rss_bytes(pid).unwrap_or(0);
    let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{n}x {s}")).collect();
    println!(
        "{} concurrent requests of {} one-letter messages ({:.1} MB each); proxy env: {}\n",
        args.requests,
        messages,
        body.len() as f64 / 1e6,
        if args.proxy_env.is_empty() {
            "defaults".to_string()
        } else {
            args.proxy_env.join(" ")
        }
    );
    println!(
        "| answers | burst (s) | RSS before (MB) | peak RSS (MB) | RSS {} s after (MB) |",
        args.settle_secs
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        statuses.join(", "),
        burst.as_secs_f64(),
        mb(before),
        mb(peak),
        mb(after)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attack_body_is_the_issue_s_size() {
        let body = attack_body(100_000);
        assert_eq!(body.len() / 100_000, 34, "3.4 MB: {}", body.len());
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let m = v["messages"].as_array().expect("messages");
        assert_eq!(m.len(), 100_000);
        assert_eq!(
            m[99_999],
            serde_json::json!({"role": "user", "content": "a"})
        );
    }
}
