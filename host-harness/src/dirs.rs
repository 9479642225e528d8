//! The one rule for the harness's per-user directories (the precompiled cache, the pacing
//! state): private to this user.

use std::path::{Path, PathBuf};

/// `dir`, created `0700` when missing, if it is private: a real directory owned by this user
/// that group and others cannot write to. `what` names it in messages ("cache directory").
pub fn private_dir(dir: &Path, what: &str) -> Result<PathBuf, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create the {what} {}: {e}", dir.display()))?;
        }
        // A symbolic link is followed (systemd's `DynamicUser=` makes the state and cache
        // directories links to `private/…`); the directory it leads to is what must be
        // private, and is what is used from here on.
        let real =
            std::fs::canonicalize(dir).map_err(|e| format!("{what} {}: {e}", dir.display()))?;
        let m = std::fs::metadata(&real).map_err(|e| format!("{what} {}: {e}", real.display()))?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if !m.is_dir() || m.uid() != me || m.permissions().mode() & 0o022 != 0 {
            return Err(format!(
                "the {what} {} is not private (it must be a directory owned by you that group and others cannot write to: `chmod 700 {}`)",
                dir.display(),
                real.display()
            ));
        }
        return Ok(real);
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the {what} {}: {e}", dir.display()))?;
        Ok(dir.to_path_buf())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_directory_is_created_private_and_a_shared_one_refused() {
        let base = std::env::temp_dir().join(format!("kc-dirs-{}", std::process::id()));
        let dir = base.join("a/b");
        assert_eq!(private_dir(&dir, "test directory"), Ok(dir.clone()));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_dir(&dir, "test directory").unwrap_err();
        assert!(
            err.contains("the test directory") && err.contains("is not private"),
            "{err}"
        );
        // A link to a private directory is that directory; a link to a shared one is refused.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert_eq!(
            private_dir(&link, "test directory"),
            Ok(std::fs::canonicalize(&dir).unwrap())
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_dir(&link, "test directory").is_err());
        let _ = std::fs::remove_dir_all(&base);
    }
}
