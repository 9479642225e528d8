//! `klaviyo-harness sandbox serve`: the built-in sandbox account answering Klaviyo's API on
//! this machine (127.0.0.1 only), for tools that speak HTTP — Prism in proxy mode (which
//! checks every answer against the spec), curl, another client under test. Like Klaviyo, a
//! request needs an `Authorization: Klaviyo-API-Key …` header (any key: none is checked or
//! kept). The in-process `--sandbox` does not use this server.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use klaviyo_sandbox::{Outcome, Sandbox};
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest request body the sandbox server reads.
const MAX_BODY: usize = 16 << 20;

/// Serves until Ctrl-C or SIGTERM; `ready` gets the bound address.
pub async fn serve(
    sb: Arc<Sandbox>,
    port: u16,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| anyhow::anyhow!("sandbox serve: cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr()?;
    ready(addr);
    let base = format!("http://{addr}");
    // Stopped as `serve --http` is: SIGTERM or SIGINT; an accept that fails skips that client.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let io = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((io, _)) => io,
                Err(_) => continue,
            },
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        };
        let sb = sb.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let sb = sb.clone();
                    let base = base.clone();
                    async move { answer(&sb, &base, req).await }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
                .await;
        });
    }
}

fn plain(status: u16, body: serde_json::Value) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/vnd.api+json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

async fn answer(
    sb: &Sandbox,
    base: &str,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let authorized = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Klaviyo-API-Key "));
    if !authorized && !parts.uri.path().starts_with("/client/") {
        return Ok(plain(
            401,
            klaviyo_sandbox::engine::error(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Send `Authorization: Klaviyo-API-Key <any key>` (the sandbox checks none and keeps none).".into(),
                None,
            ),
        ));
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    let bytes = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(plain(
                413,
                klaviyo_sandbox::engine::error(
                    413,
                    "too_large",
                    "Request too large.",
                    format!("the body could not be read whole: {e}"),
                    None,
                ),
            ))
        }
    };
    let r = klaviyo_sandbox::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        body: &bytes,
    };
    match sb.handle(&r, base) {
        Outcome::Answer {
            status,
            headers,
            body,
        } => {
            let mut resp = http::Response::builder().status(status);
            for (k, v) in headers {
                resp = resp.header(k, v);
            }
            Ok(resp
                .body(Full::new(Bytes::from(body)))
                .expect("valid response"))
        }
        // An injected timeout: the connection closes without an answer.
        Outcome::Timeout => Err(std::io::Error::other("injected timeout")),
    }
}
