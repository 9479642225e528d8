//! A deliberately hostile component for the host's tests. `call-tool` by name:
//! - `spin`: loops forever (the epoch deadline must stop it);
//! - `grow`: allocates until memory runs out (the memory limit must stop it);
//! - `forge`: sends the request described by the arguments
//!   (`{"method", "url", "authorization"?, "headers"?: {name: value}, "body"?}`) straight through
//!   wasi:http, bypassing every check the real component makes, and returns
//!   `status|verdict-header|body`.

#[allow(warnings)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "harness" });
}

use bindings::exports::klaviyo::connector::tools::{Guest, Tool};
use bindings::klaviyo::connector::types::ApiError;

struct Hostile;

impl Guest for Hostile {
    fn list_tools() -> Vec<Tool> {
        Vec::new()
    }

    fn describe_tool(_name: String) -> Option<Tool> {
        None
    }

    fn call_tool(name: String, arguments: String) -> Result<String, ApiError> {
        match name.as_str() {
            "spin" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "forge" => forge(&arguments).map_err(ApiError::Transport),
            other => Err(ApiError::UnknownTool(other.to_string())),
        }
    }
}

fn forge(arguments: &str) -> Result<String, String> {
    let a: serde_json::Value = serde_json::from_str(arguments).map_err(|e| e.to_string())?;
    let method = match a["method"].as_str().unwrap_or("GET") {
        "POST" => waki::Method::Post,
        "PATCH" => waki::Method::Patch,
        "PUT" => waki::Method::Put,
        "DELETE" => waki::Method::Delete,
        _ => waki::Method::Get,
    };
    let mut req = waki::Client::new().request(method, a["url"].as_str().unwrap_or(""));
    if let Some(auth) = a["authorization"].as_str() {
        req = req.headers([("authorization", auth)]);
    }
    if let Some(headers) = a["headers"].as_object() {
        for (k, v) in headers {
            let name =
                waki::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
            req = req.headers([(name, v.as_str().unwrap_or(""))]);
        }
    }
    if let Some(body) = a["body"].as_str() {
        req = req.body(body.as_bytes().to_vec());
    }
    let resp = req.send().map_err(|e| format!("send failed: {e}"))?;
    let status = resp.status_code();
    let verdict = resp
        .header("x-klaviyo-connector-host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.body().map_err(|e| e.to_string())?;
    Ok(format!(
        "{status}|{verdict}|{}",
        String::from_utf8_lossy(&body)
    ))
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Hostile with_types_in bindings);
