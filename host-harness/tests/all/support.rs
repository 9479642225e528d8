//! Test support: a local HTTP server on 127.0.0.1 that records every request and answers with
//! a programmable reply, and helpers to start the harness on the real component.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Every byte received (request line, headers, body).
    pub raw: Vec<u8>,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap()
    }
    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub behavior: Behavior,
    /// Bytes sent instead of `body` when set.
    pub raw_body: Option<Vec<u8>>,
}

/// How the server delivers (or fails to deliver) a reply: the faults it can inject.
#[derive(Clone, Debug, Default)]
pub enum Behavior {
    #[default]
    Normal,
    /// Read the request, then say nothing for this long (bounded), then close.
    Hang(Duration),
    /// Send the head, then the body one byte per interval.
    Trickle(Duration),
    /// Read the request, then close the connection without answering.
    Drop,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/vnd.api+json".into())],
            body: body.into(),
            behavior: Behavior::Normal,
            raw_body: None,
        }
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn with(mut self, b: Behavior) -> Reply {
        self.behavior = b;
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

pub struct Server {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// A reply given as raw status and body bytes (for bodies that are not text).
type RawHandler = dyn Fn(&Recorded) -> (u16, Vec<u8>) + Send + Sync;

impl Server {
    /// Answers every request with `handler`'s reply.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let reqs = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (reqs, handler) = (reqs.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &reqs, &*handler));
            }
        });
        Server { url, requests }
    }

    /// Answers 200 with a small JSON:API document echoing nothing.
    pub fn ok() -> Server {
        Server::start(|_| {
            Reply::json(
                200,
                r#"{"data":[{"type":"list","id":"L1","attributes":{"name":"VIP"}}],"links":{"next":null}}"#,
            )
        })
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// When each request arrived.
    pub fn times(&self) -> Vec<std::time::Instant> {
        self.requests.lock().unwrap().iter().map(|r| r.at).collect()
    }

    /// Answers with raw bytes (any status, any body, even invalid UTF-8).
    pub fn start_raw(
        handler: impl Fn(&Recorded) -> (u16, Vec<u8>) + Send + Sync + 'static,
    ) -> Server {
        let raw: Arc<RawHandler> = Arc::new(handler);
        Server::start(move |r| {
            let (status, body) = raw(r);
            let mut reply = Reply::json(status, "");
            reply.raw_body = Some(body);
            reply
        })
    }
}

fn serve(stream: TcpStream, reqs: &Mutex<Vec<Recorded>>, handler: &Handler) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut raw = Vec::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        raw.extend_from_slice(line.as_bytes());
        let mut parts = line.trim_end().splitn(3, ' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            raw.extend_from_slice(h.as_bytes());
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        raw.extend_from_slice(&body);
        let rec = Recorded {
            at: std::time::Instant::now(),
            method,
            target,
            headers,
            body,
            raw,
        };
        reqs.lock().unwrap().push(rec.clone());
        let reply = handler(&rec);
        let body: Vec<u8> = reply
            .raw_body
            .clone()
            .unwrap_or_else(|| reply.body.clone().into_bytes());
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            reply.status,
            body.len()
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        match reply.behavior {
            Behavior::Normal => {
                let sent = writer
                    .write_all(head.as_bytes())
                    .and_then(|_| writer.write_all(&body));
                if sent.is_err() {
                    return;
                }
            }
            Behavior::Hang(d) => {
                std::thread::sleep(d);
                return;
            }
            Behavior::Drop => return,
            Behavior::Trickle(every) => {
                if writer.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for b in &body {
                    std::thread::sleep(every);
                    if writer
                        .write_all(&[*b])
                        .and_then(|_| writer.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new, unique temp directory named after `prefix`.
pub fn temp_dir(prefix: &str) -> TempDir {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// A fake private key that is easy to search for in every output.
pub const FAKE_KEY: &str = "pk_test_SECRET_7f3a9c1e";
/// A fake public key.
pub const FAKE_PUBLIC_KEY: &str = "PubKeyAbC123";

/// The runtime the CLI and the MCP server run calls on (one thread), so a test sees what they
/// see: a host call that blocks the thread stalls everything here too.
pub fn rt() -> tokio::runtime::Runtime {
    klaviyo_harness::runtime::async_runtime().expect("the harness's async runtime starts")
}
