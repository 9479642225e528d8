//! Confirmation of `ask` actions: asked per request by the egress hook.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::pin::Pin;

/// An answer to come: `Ok(true)` approved, `Ok(false)` declined, `Err` no one could be asked.
pub type Answer = Pin<Box<dyn Future<Output = Result<bool, String>> + Send>>;

/// Asks the user to approve one request, shown as `prompt` (the exact request, key redacted).
pub trait Confirm: Send + Sync {
    fn confirm(&self, prompt: String) -> Answer;
}

/// Asks on the controlling terminal (`/dev/tty`), so it works even when stdin/stdout carry a
/// protocol. With no terminal, refuses.
pub struct TtyConfirm;

impl Confirm for TtyConfirm {
    fn confirm(&self, prompt: String) -> Answer {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ask_tty(&prompt))
                .await
                .map_err(|e| e.to_string())?
        })
    }
}

fn ask_tty(prompt: &str) -> Result<bool, String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| "there is no terminal to ask on".to_string())?;
    let mut out = tty.try_clone().map_err(|e| e.to_string())?;
    write!(out, "\n{prompt}\nRun this request? [y/N] ").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(tty)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Never asks (non-interactive embedding): every `ask` is refused.
pub struct NoTty;

impl Confirm for NoTty {
    fn confirm(&self, _prompt: String) -> Answer {
        Box::pin(async { Err("this host has no way to ask (non-interactive)".to_string()) })
    }
}
