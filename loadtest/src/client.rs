//! The load generator's HTTP client for the measured requests: one HTTP/1.1 connection per
//! simulated client, on hyper directly, with each request's parts prepared once.
//!
//! The harness runs on the same machine as the server it measures (as pgbench does for the
//! baseline), so every microsecond it spends per request is taken from the server. Through
//! reqwest it cost ~57 µs of CPU per request (a shared connection pool behind a lock, a URL parsed
//! and a JSON body serialised per request, header maps built each time): about a quarter of all the
//! CPU used in a hot-event run. Here a client owns its connection outright, and a request is a few
//! reference-counted clones. Setting up a run (logins, the hot event) still uses reqwest.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use axum::http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Where the server is: `host:port` to connect to and the `Host` header to send.
pub struct Endpoint {
    addr: String,
    host: HeaderValue,
}

impl Endpoint {
    /// From a base URL such as `http://127.0.0.1:8080`. Plain HTTP only: a load generator belongs
    /// next to the server, not behind TLS.
    pub fn parse(base: &str) -> anyhow::Result<Arc<Self>> {
        let uri: Uri = base.parse().with_context(|| format!("--url {base}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("--url must be http:// (the measured requests use plain HTTP/1.1; got {base})");
        }
        let authority = uri.authority().context("--url needs a host")?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Arc::new(Self {
            addr: format!("{}:{port}", authority.host()),
            host: HeaderValue::from_str(authority.as_str())?,
        }))
    }
}

/// A request built once and sent many times.
#[derive(Clone)]
pub struct Prepared {
    method: Method,
    path: Uri,
    bearer: Option<HeaderValue>,
    body: Option<Bytes>,
}

impl Prepared {
    pub fn get(path: &str, token: Option<&str>) -> anyhow::Result<Self> {
        Self::new(Method::GET, path, token, None)
    }

    pub fn post(path: &str, token: Option<&str>, body: &serde_json::Value) -> anyhow::Result<Self> {
        Self::new(Method::POST, path, token, Some(Bytes::from(serde_json::to_vec(body)?)))
    }

    fn new(method: Method, path: &str, token: Option<&str>, body: Option<Bytes>) -> anyhow::Result<Self> {
        let bearer = token.map(|t| HeaderValue::from_str(&format!("Bearer {t}"))).transpose()?;
        Ok(Self { method, path: path.parse()?, bearer, body })
    }
}

/// One client's connection; reconnects after an error.
pub struct Conn {
    endpoint: Arc<Endpoint>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Conn {
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        Self { endpoint, sender: None }
    }

    /// Sends `p` and reads the whole response.
    pub async fn send(&mut self, p: &Prepared) -> anyhow::Result<(StatusCode, Bytes)> {
        let result = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(p)).await;
        let result = result.unwrap_or_else(|_| Err(anyhow::anyhow!("no response within {REQUEST_TIMEOUT:?}")));
        if result.is_err() {
            // The connection's state is unknown now: the next request gets a fresh one.
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, p: &Prepared) -> anyhow::Result<(StatusCode, Bytes)> {
        let sender = match &mut self.sender {
            Some(s) if !s.is_closed() => s,
            _ => self.sender.insert(self.connect().await?),
        };
        sender.ready().await?;
        let mut req = Request::builder().method(p.method.clone()).uri(p.path.clone());
        let headers = req.headers_mut().context("request builder")?;
        headers.insert(header::HOST, self.endpoint.host.clone());
        if let Some(b) = &p.bearer {
            headers.insert(header::AUTHORIZATION, b.clone());
        }
        if p.body.is_some() {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let res = sender.send_request(req.body(Full::new(p.body.clone().unwrap_or_default()))?).await?;
        let status = res.status();
        // HTTP/1.1: the body must be read before the connection carries the next request.
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.endpoint.addr)
            .await
            .with_context(|| format!("connecting to {}", self.endpoint.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the server closes or the sender is dropped; an error then is the
            // request's error, already counted.
            let _ = conn.await;
        });
        Ok(sender)
    }
}
