//! The sandbox account's state and where it is kept: resources by type and id, each with its
//! attributes, relationships, and hidden fields some filters read (`messages.channel` of a
//! campaign). Kept in `<state dir>/sandbox/seed-<N>.json`, written whole (temporary file, then
//! rename) after every change, under an exclusive `flock` on a lock file beside it, so separate
//! CLI processes and a server share one account; a process reloads when the file changed.

use crate::seed::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `(type, id)` of a resource.
pub type Key = (String, String);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Resource {
    pub attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rels: BTreeMap<String, Vec<Key>>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub hidden: Map<String, Value>,
}

/// Bumped when the layout changes: an older file is reseeded, not misread.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    pub seed: u64,
    /// When it was seeded (seconds since the epoch).
    pub seeded: i64,
    /// Ids made so far (ids derive from it, so they never repeat).
    pub counter: u64,
    pub data: BTreeMap<String, BTreeMap<String, Resource>>,
}

const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const B32: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl State {
    pub fn new(seed: u64, seeded: i64) -> State {
        State {
            format: FORMAT,
            seed,
            seeded,
            counter: 0,
            data: BTreeMap::new(),
        }
    }

    fn mix(&mut self, rng: &mut Rng) -> u64 {
        self.counter += 1;
        rng.next() ^ self.counter.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A six-character id like Klaviyo's lists, segments, metrics and flows (`Y6nRLr`).
    pub fn short_id(&mut self, rng: &mut Rng) -> String {
        loop {
            let mut x = self.mix(rng);
            let id: String = (0..6)
                .map(|_| {
                    let c = B62[(x % 62) as usize] as char;
                    x /= 62;
                    c
                })
                .collect();
            if !self.data.values().any(|m| m.contains_key(&id)) {
                return id;
            }
        }
    }

    /// A ULID-like id (time first, 26 characters) like Klaviyo's profiles, events, campaigns.
    pub fn ulid(&mut self, rng: &mut Rng, secs: i64) -> String {
        let ms = (secs.max(0) as u64) * 1000;
        let mut out = String::with_capacity(26);
        for i in (0..10).rev() {
            out.push(B32[((ms >> (i * 5)) & 31) as usize] as char);
        }
        let mut x = self.mix(rng);
        let mut y = rng.next();
        for i in 0..16 {
            let v = if i < 12 { &mut x } else { &mut y };
            out.push(B32[(*v & 31) as usize] as char);
            *v >>= 5;
        }
        out
    }

    /// A UUID-shaped id (tags, jobs).
    pub fn uuid(&mut self, rng: &mut Rng) -> String {
        let a = self.mix(rng);
        let b = rng.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }

    /// Stores a new resource with `attributes` (no links yet) and returns its key.
    pub fn insert(&mut self, ty: &str, id: &str, attributes: Map<String, Value>) -> Key {
        self.data.entry(ty.to_string()).or_default().insert(
            id.to_string(),
            Resource {
                attributes,
                ..Resource::default()
            },
        );
        (ty.to_string(), id.to_string())
    }

    pub fn get(&self, k: &Key) -> Option<&Resource> {
        self.data.get(&k.0)?.get(&k.1)
    }

    pub fn get_mut(&mut self, k: &Key) -> Option<&mut Resource> {
        self.data.get_mut(&k.0)?.get_mut(&k.1)
    }

    pub fn exists(&self, k: &Key) -> bool {
        self.get(k).is_some()
    }

    /// Resources related to `from` through `rel` (of type `target`): the ones `from` links to,
    /// and the ones of that type that link to `from` (a membership is stored on one side).
    /// Deleted resources are left out; the order is stable (stored order, then by id).
    pub fn related(&self, from: &Key, rel: &str, target: &str) -> Vec<Key> {
        let mut out: Vec<Key> = self
            .get(from)
            .and_then(|r| r.rels.get(rel))
            .into_iter()
            .flatten()
            .filter(|k| k.0 == target && self.exists(k))
            .cloned()
            .collect();
        if let Some(m) = self.data.get(target) {
            for (id, r) in m {
                if r.rels.values().any(|v| v.contains(from)) {
                    let k = (target.to_string(), id.clone());
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
            }
        }
        out
    }

    /// Removes the link between `from` and `to` wherever it is stored.
    pub fn unlink(&mut self, from: &Key, rel: &str, to: &Key) {
        if let Some(r) = self.get_mut(from) {
            if let Some(v) = r.rels.get_mut(rel) {
                v.retain(|k| k != to);
            }
        }
        if let Some(r) = self.get_mut(to) {
            for v in r.rels.values_mut() {
                v.retain(|k| k != from);
            }
        }
    }

    /// Links `from` to `to` through `rel` unless they are related already, from either side
    /// (a membership stored on the profile is not stored again on the list).
    pub fn relate(&mut self, from: &Key, rel: &str, to: &Key) {
        if !self.related(from, rel, &to.0).contains(to) {
            self.link(from, rel, to);
        }
    }

    pub fn link(&mut self, from: &Key, rel: &str, to: &Key) {
        if let Some(r) = self.get_mut(from) {
            let v = r.rels.entry(rel.to_string()).or_default();
            if !v.contains(to) {
                v.push(to.clone());
            }
        }
    }
}

/// Where a seed's account is kept.
pub fn state_file(dir: &Path, seed: u64) -> PathBuf {
    dir.join("sandbox").join(format!("seed-{seed}.json"))
}

/// An exclusive lock on the account's lock file, released when dropped.
pub struct Lock(#[allow(dead_code)] std::fs::File);

pub fn lock(file: &Path) -> Result<Lock, String> {
    let dir = file.parent().expect("the state file has a directory");
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("sandbox state directory {}: {e}", dir.display()))?;
    let path = file.with_extension("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("sandbox lock {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a file descriptor this function owns; no memory is shared.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "sandbox lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(Lock(f))
}

/// The file's identity as last seen (modified time and length): a change means reload.
pub fn stamp(file: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(file).ok()?;
    Some((m.modified().ok()?, m.len()))
}

pub fn load(file: &Path) -> Result<Option<State>, String> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("sandbox state {}: {e}", file.display())),
    };
    match serde_json::from_slice::<State>(&bytes) {
        Ok(s) if s.format == FORMAT => Ok(Some(s)),
        // An older layout: start again rather than misread it.
        Ok(_) => Ok(None),
        Err(e) => Err(format!(
            "sandbox state {} is damaged ({e}); `klaviyo-harness sandbox reset` starts the account again",
            file.display()
        )),
    }
}

pub fn save(file: &Path, s: &State) -> Result<(), String> {
    let tmp = file.with_extension("json.tmp");
    let text = serde_json::to_vec(s).expect("state serializes");
    std::fs::write(&tmp, text).map_err(|e| format!("sandbox state {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, file).map_err(|e| format!("sandbox state {}: {e}", file.display()))
}
