//! The CLI's client of the admin HTTP API (`fjord-admin`): JSON in, JSON out, the API's
//! `{"error": ...}` turned into the command's error.

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Options of commands that use the admin API.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AdminConnection {
    /// The broker's admin API.
    #[arg(
        long,
        env = "FJORD_ADMIN",
        default_value = "http://127.0.0.1:9644",
        global = true
    )]
    pub(crate) admin: String,
    /// Output format (`-o json` as in every command; the long name is `--format` here,
    /// since `deploy --output` names an output topic).
    #[arg(long = "format", short = 'o', value_enum, default_value_t = super::Output::Human, global = true)]
    pub(crate) output: super::Output,
}

impl AdminConnection {
    /// Sends a request and returns the answer's JSON (`Null` for an empty answer).
    pub(crate) fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<serde_json::Value> {
        let uri = format!("{}{path}", self.admin.trim_end_matches('/'));
        let request = Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .with_context(|| format!("the admin URL {uri:?}"))?;
        super::block_on(async {
            let client = Client::builder(TokioExecutor::new()).build_http();
            let response = client.request(request).await.with_context(|| {
                format!("cannot reach the admin API at {} (is the broker running? set --admin or FJORD_ADMIN)", self.admin)
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .context("reading the admin API's answer")?
                .to_bytes();
            let value: serde_json::Value = if body.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&body)?
            };
            if !status.is_success() {
                let message = value
                    .get("error")
                    .and_then(|error| error.as_str())
                    .unwrap_or("no reason given");
                anyhow::bail!("{message} (HTTP {status})");
            }
            Ok(value)
        })?
    }
}
