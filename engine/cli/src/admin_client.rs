//! A client of a running service's admin API, for the commands that work through it
//! (`dead-letters` while `serve` holds the embedded queue, `tap`): the base URL, the token, JSON
//! requests and the tap's line stream.

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the admin API is and the token it takes.
pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// The URL of a service listening on `listen` (an address that listens everywhere is reached
/// on loopback).
pub fn url_of_listen(listen: &str) -> String {
    let addr = listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    format!("http://{addr}")
}

impl AdminClient {
    pub fn new(url: &str, token: String) -> anyhow::Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("`{url}` is not a URL of the service (e.g. http://127.0.0.1:8080)");
        }
        // reqwest is built without a default TLS backend (the workspace picks ring): install it
        // once, for `https://` URLs (an error only says another is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .build()
            .context("cannot set up an HTTP client")?;
        Ok(Self { base, token, http })
    }

    /// Sends a request with the token; its JSON answer, or an error that says what the service
    /// answered.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        };
        let request = match body {
            Some(b) => request.json(b),
            None => request,
        };
        let answer = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = answer.status();
        let text = answer
            .text()
            .await
            .context("cannot read the admin API's answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let message = value
                .get("error")
                .and_then(Value::as_str)
                .map_or_else(|| value.to_string(), str::to_owned);
            bail!("the admin API answered {status}: {message}");
        }
        Ok(value)
    }

    /// Opens the stream of `path` (NDJSON) and calls `line` with each line as it comes, until the
    /// service ends it or `line` says to stop (returns false).
    pub async fn lines(
        &self,
        path: &str,
        opened: impl FnOnce(),
        mut line: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<()> {
        let url = format!("{}{path}", self.base);
        let mut answer = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = answer.status();
        if !status.is_success() {
            let text = answer
                .text()
                .await
                .unwrap_or_else(|e| format!("(its answer could not be read: {e})"));
            bail!("the admin API answered {status}: {text}");
        }
        opened();
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = answer.chunk().await.context("the stream broke off")? {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let rest = pending.split_off(end + 1);
                let text = String::from_utf8_lossy(&pending[..end]).into_owned();
                pending = rest;
                if !text.trim().is_empty() && !line(&text) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
