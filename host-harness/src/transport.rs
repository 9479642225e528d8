//! The host's HTTP client: pooled keep-alive connections (HTTP/1.1, and HTTP/2 over TLS via
//! rustls), with every timeout of a call and a cap on the response size. Responses are read
//! whole here, so a hung, trickling or oversized answer ends in a clear error in the host.

use crate::config::Timeouts;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

/// A response read whole.
#[derive(Debug)]
pub struct Buffered {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Why no complete response came back, and whether the request may have been received.
#[derive(Debug)]
pub enum SendError {
    /// Failed before the request was sent (connect, TLS): nothing reached the server.
    NotSent(String),
    /// The request was sent (or may have been) but no complete answer came back in time.
    Timeout {
        phase: &'static str,
        after: Duration,
    },
    /// The connection failed after the request may have been sent.
    Dropped(String),
    /// The answer's body exceeded the cap (the status is known).
    TooLarge {
        status: http::StatusCode,
        limit: usize,
    },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotSent(e) => write!(f, "could not connect: {e}"),
            SendError::Timeout { phase, after } => {
                write!(f, "no {phase} within {:.1} s", after.as_secs_f64())
            }
            SendError::Dropped(e) => write!(f, "the connection failed after sending: {e}"),
            SendError::TooLarge { status, limit } => {
                write!(
                    f,
                    "the answer (HTTP {}) is larger than the {limit}-byte limit",
                    status.as_u16()
                )
            }
        }
    }
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Two clients: reads reuse pooled keep-alive connections (a read that meets a connection the
/// server just closed is safely retried); writes always get a fresh connection, so a write is
/// never lost to a stale one — and any failure after sending is really ambiguous.
pub struct Transport {
    pooled: HttpClient,
    fresh: HttpClient,
    timeouts: Timeouts,
    max_response_bytes: usize,
}

impl Transport {
    pub fn new(timeouts: Timeouts, max_response_bytes: usize) -> Transport {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeouts.connect));
        http.set_nodelay(true);
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let pooled = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https.clone());
        let fresh = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https);
        Transport {
            pooled,
            fresh,
            timeouts,
            max_response_bytes,
        }
    }

    /// Sends one request and reads the whole answer, within `deadline` overall; `reuse` allows a
    /// pooled keep-alive connection (reads), otherwise a new connection is opened (writes).
    pub async fn send(
        &self,
        req: http::Request<Bytes>,
        deadline: Instant,
        reuse: bool,
    ) -> Result<Buffered, SendError> {
        let client = if reuse { &self.pooled } else { &self.fresh };
        let started = Instant::now();
        let remaining = |d: Duration| d.min(deadline.saturating_duration_since(Instant::now()));
        let req = req.map(Full::new);
        let head =
            tokio::time::timeout(remaining(self.timeouts.first_byte), client.request(req)).await;
        let resp = match head {
            Err(_) => {
                return Err(SendError::Timeout {
                    phase: "answer",
                    after: started.elapsed(),
                })
            }
            Ok(Err(e)) if e.is_connect() => return Err(SendError::NotSent(error_chain(&e))),
            Ok(Err(e)) => return Err(SendError::Dropped(error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        let (parts, mut body) = resp.into_parts();
        let mut out = Vec::new();
        loop {
            let frame =
                match tokio::time::timeout(remaining(self.timeouts.between_bytes), body.frame())
                    .await
                {
                    Err(_) => {
                        return Err(SendError::Timeout {
                            phase: "complete answer",
                            after: started.elapsed(),
                        })
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(SendError::Dropped(error_chain(&e))),
                    Ok(Some(Ok(f))) => f,
                };
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > self.max_response_bytes {
                    return Err(SendError::TooLarge {
                        status: parts.status,
                        limit: self.max_response_bytes,
                    });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Buffered {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(out),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
