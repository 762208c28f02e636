//! Where configured accounts come from: `CLERK_COOKIE`, `CLERK_COOKIES`, `CTO_REFRESH_TOKEN`,
//! `CTO_CREDENTIALS_FILE` and `ACCOUNTS_FILE`.
//!
//! The parsers are deliberately small (no TOML dependency): an accounts file holds one account
//! per line, as `label = cookie` (whitespace around `=` is required, because a cookie header
//! itself contains `=`) or as a bare cookie, or `[[account]]` blocks with `label = "..."` and
//! `cookie = "..."` (a browser session) or `refresh_token = "..."` (a `cto login`) lines. `#`
//! starts a comment line.

use std::fmt;

use crate::pool::login::Kind;
use crate::pool::seed_hash;
use crate::upstream::cli::Secret;

/// One configured account: a label for people and its secret as pasted.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountSource {
    pub label: String,
    /// The cookie (`Web`), or the refresh token or `~/.cto/credentials` JSON (`Cli`); a
    /// [`Secret`] so that no `{:?}` of a setting can print it.
    pub secret: Secret,
    pub kind: Kind,
}

impl AccountSource {
    /// A browser session cookie.
    pub fn new(label: &str, cookie: &str) -> Self {
        AccountSource {
            label: label.trim().to_string(),
            secret: Secret::new(cookie.trim()),
            kind: Kind::Web,
        }
    }

    /// A `cto login`: a refresh token, or the JSON the CLI writes to `~/.cto/credentials`.
    pub fn cli(label: &str, credentials: &str) -> Self {
        AccountSource {
            kind: Kind::Cli,
            ..AccountSource::new(label, credentials)
        }
    }
}

impl fmt::Debug for AccountSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AccountSource({}, {:?}, <redacted>)",
            self.label, self.kind
        )
    }
}

/// `CTO_REFRESH_TOKEN`: one refresh token, or several separated by newlines, commas or `|||`;
/// labels `cli-1`, `cli-2`...
pub fn parse_refresh_tokens(raw: &str) -> Vec<AccountSource> {
    raw.split(['\n', '\r', ','])
        .flat_map(|line| line.split("|||"))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .enumerate()
        .map(|(i, t)| AccountSource::cli(&format!("cli-{}", i + 1), t))
        .collect()
}

/// `CLERK_COOKIES`: one cookie per line, or separated by `|||`; labels `cookie-1`, `cookie-2`...
pub fn parse_cookie_list(raw: &str) -> Vec<AccountSource> {
    raw.split(['\n', '\r'])
        .flat_map(|line| line.split("|||"))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .enumerate()
        .map(|(i, c)| AccountSource::new(&format!("cookie-{}", i + 1), c))
        .collect()
}

/// The content of `ACCOUNTS_FILE`. Errors name the line.
pub fn parse_accounts_file(text: &str) -> Result<Vec<AccountSource>, String> {
    let mut out = Vec::new();
    // An open `[[account]]` block: (line number, label, secret with its kind).
    let mut block: Option<Block> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = n + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "[[account]]" || line == "[[accounts]]" {
            if let Some(b) = block.take() {
                out.push(close_block(b, out.len())?);
            }
            block = Some((n, None, None));
            continue;
        }
        if let Some((_, label, secret)) = block.as_mut() {
            let (key, value) = line.split_once('=').ok_or_else(|| {
                format!("line {n}: expected `label = \"...\"`, `cookie = \"...\"` or `refresh_token = \"...\"`")
            })?;
            let value = unquote(value.trim()).to_string();
            match key.trim() {
                "label" | "name" => *label = Some(value),
                "cookie" => *secret = Some((value, Kind::Web)),
                "refresh_token" => *secret = Some((value, Kind::Cli)),
                other => {
                    return Err(format!(
                        "line {n}: unknown key `{other}` (label, cookie, refresh_token)"
                    ));
                }
            }
            continue;
        }
        let (label, cookie) = match split_label(line) {
            Some((l, c)) => (l.to_string(), c),
            None => (format!("file-{}", out.len() + 1), line),
        };
        let cookie = unquote(cookie.trim());
        if cookie.is_empty() {
            return Err(format!("line {n}: the cookie is empty"));
        }
        out.push(AccountSource::new(&label, cookie));
    }
    if let Some(b) = block.take() {
        out.push(close_block(b, out.len())?);
    }
    Ok(out)
}

/// `label = cookie`: the label is a plain word and the `=` has whitespace on both sides.
fn split_label(line: &str) -> Option<(&str, &str)> {
    let i = line.find(" = ").or_else(|| line.find("\t=\t"))?;
    let label = unquote(line[..i].trim());
    let plain = !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@ ".contains(c));
    plain.then(|| (label, &line[i + 3..]))
}

/// An open `[[account]]` block: its line, label, and secret with its kind.
type Block = (usize, Option<String>, Option<(String, Kind)>);

fn close_block((line, label, secret): Block, index: usize) -> Result<AccountSource, String> {
    let (secret, kind) = secret
        .filter(|(c, _)| !c.trim().is_empty())
        .ok_or_else(|| {
            format!("the [[account]] block at line {line} has no cookie or refresh_token")
        })?;
    let label = label.unwrap_or_else(|| format!("file-{}", index + 1));
    Ok(match kind {
        Kind::Web => AccountSource::new(&label, &secret),
        Kind::Cli => AccountSource::cli(&label, &secret),
    })
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// Drops repeated cookies (the first label wins) and makes labels unique.
pub fn dedup(sources: Vec<AccountSource>) -> Vec<AccountSource> {
    let mut out: Vec<AccountSource> = Vec::new();
    let mut seeds = Vec::new();
    for mut s in sources {
        let seed = seed_hash(s.secret.expose());
        if seeds.contains(&seed) {
            continue;
        }
        seeds.push(seed);
        if out.iter().any(|o| o.label == s.label) {
            s.label = format!("{}-{}", s.label, out.len() + 1);
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_list_lines_and_separator() {
        let v = parse_cookie_list("__client=a\n\n__client=b ||| __client=c\r\n");
        let cookies: Vec<_> = v.iter().map(|s| s.secret.expose()).collect();
        assert_eq!(cookies, ["__client=a", "__client=b", "__client=c"]);
        assert_eq!(v[2].label, "cookie-3");
    }

    #[test]
    fn flat_file() {
        let text = "# accounts\nmain = __client=aaa; __session=x\n__client=bbb\n\"work\" = 'ccc'\n";
        let v = parse_accounts_file(text).expect("parses");
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].label, "main");
        assert_eq!(v[0].secret.expose(), "__client=aaa; __session=x");
        assert_eq!(v[1].label, "file-2");
        assert_eq!(v[1].secret.expose(), "__client=bbb");
        assert_eq!((v[2].label.as_str(), v[2].secret.expose()), ("work", "ccc"));
    }

    #[test]
    fn block_file() {
        let text = "[[account]]\nlabel = \"a\"\ncookie = \"__client=1\"\n\n[[account]]\ncookie = '__client=2'\n";
        let v = parse_accounts_file(text).expect("parses");
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].label.as_str(), v[0].secret.expose()),
            ("a", "__client=1")
        );
        assert_eq!(v[1].label, "file-2");
        let e = parse_accounts_file("[[account]]\nlabel = \"x\"\n").expect_err("no cookie");
        assert!(e.contains("line 1"), "{e}");
        let e = parse_accounts_file("[[account]]\ncolor = \"x\"\n").expect_err("bad key");
        assert!(e.contains("line 2") && e.contains("color"), "{e}");
    }

    #[test]
    fn refresh_tokens_from_the_variable_and_the_file() {
        let v = parse_refresh_tokens("rt_a, rt_b\nrt_c ||| ");
        let t: Vec<_> = v
            .iter()
            .map(|s| (s.label.as_str(), s.secret.expose(), s.kind))
            .collect();
        assert_eq!(
            t,
            [
                ("cli-1", "rt_a", Kind::Cli),
                ("cli-2", "rt_b", Kind::Cli),
                ("cli-3", "rt_c", Kind::Cli)
            ]
        );
        let text = "[[account]]\nlabel = \"laptop\"\nrefresh_token = \"rt_x\"\n[[account]]\ncookie = \"__client=1\"\n";
        let v = parse_accounts_file(text).expect("parses");
        assert_eq!((v[0].label.as_str(), v[0].kind), ("laptop", Kind::Cli));
        assert_eq!(v[1].kind, Kind::Web);
        assert!(!format!("{v:?}").contains("rt_x"));
    }

    #[test]
    fn dedup_keeps_first_and_renames_labels() {
        let v = dedup(vec![
            AccountSource::new("a", "__client=1"),
            AccountSource::new("b", " __client=1 "),
            AccountSource::new("a", "__client=2"),
        ]);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].label, "a-2");
        assert!(!format!("{v:?}").contains("__client"));
    }
}
