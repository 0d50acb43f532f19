//! CA certificates for libgit2's HTTPS, loaded only when a transfer needs
//! them.
//!
//! libgit2 initialises OpenSSL on its first call, whatever that call is, and
//! OpenSSL then reads the CA bundle that `SSL_CERT_FILE` (or, through git2's
//! `openssl-probe`, the system) names: 20–50 ms on every run, more than the
//! whole of `tag` in a large repository, though most commands never leave
//! the machine. [`defer`] runs that initialisation at start-up with nothing
//! to load and puts the environment back as it was; [`before_transfer`]
//! hands OpenSSL the locations it would have read, once, before the first
//! transfer that may speak TLS. Same trust, paid only by network commands.
//!
//! Only where libgit2 uses OpenSSL (Unix but Apple); elsewhere both are
//! no-ops.

/// Whether a transfer to `url` may need TLS: anything but a local path,
/// `file://`, SSH (`ssh://`, `user@host:path`) or `git://`. Plain `http://`
/// counts, since a server may redirect it to HTTPS.
fn may_use_tls(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    match lower.split_once("://") {
        Some((scheme, _)) => !matches!(scheme, "file" | "ssh" | "git" | "ssh+git" | "git+ssh"),
        None => false,
    }
}

#[cfg(all(unix, not(target_os = "macos"), not(target_os = "ios")))]
mod imp {
    use std::ffi::OsString;
    use std::sync::{Once, OnceLock};

    /// `SSL_CERT_FILE` and `SSL_CERT_DIR` as the user set them, recorded by
    /// `defer`; unset when `defer` did not run (OpenSSL then loaded the
    /// certificates at initialisation, as libgit2 does by default).
    static DEFERRED: OnceLock<(Option<OsString>, Option<OsString>)> = OnceLock::new();

    pub fn defer() {
        let user = (
            std::env::var_os("SSL_CERT_FILE"),
            std::env::var_os("SSL_CERT_DIR"),
        );
        if !std::path::Path::new("/dev/null").exists() || DEFERRED.set(user.clone()).is_err() {
            return;
        }
        // An empty file and no directory: OpenSSL's default verify paths,
        // set when libgit2 initialises, load nothing. Set both, so that
        // git2's openssl-probe does not fill them in either.
        std::env::set_var("SSL_CERT_FILE", "/dev/null");
        std::env::set_var("SSL_CERT_DIR", "/dev/null");
        // Initialises libgit2, and with it OpenSSL (only reads a setting).
        // SAFETY: called from main before any other thread exists.
        let _ = unsafe { git2::opts::get_mwindow_size() };
        // Child processes (credential helpers) and the rustls clients see
        // what the user set.
        for (name, value) in [("SSL_CERT_FILE", user.0), ("SSL_CERT_DIR", user.1)] {
            match value {
                Some(v) => std::env::set_var(name, v),
                None => std::env::remove_var(name),
            }
        }
    }

    pub fn load() {
        static LOADED: Once = Once::new();
        if DEFERRED.get().is_none() {
            return;
        }
        LOADED.call_once(|| {
            // What libgit2's initialisation would have loaded: the user's
            // file and directory where they exist, the system's otherwise
            // (git2 fills the variables in from the same probe).
            let found = openssl_probe::probe();
            // SAFETY: changes libgit2's global TLS context; `Once` keeps
            // two callers apart, and no transfer has used it yet. A location
            // that cannot be read is skipped, as OpenSSL's defaults are.
            unsafe {
                if let Some(file) = found.cert_file {
                    let _ = git2::opts::set_ssl_cert_file(file);
                }
                if let Some(dir) = found.cert_dir {
                    let _ = git2::opts::set_ssl_cert_dir(dir);
                }
            }
        });
    }
}

#[cfg(not(all(unix, not(target_os = "macos"), not(target_os = "ios"))))]
mod imp {
    pub fn defer() {}
    pub fn load() {}
}

/// Initialise libgit2 without loading CA certificates. Call at start-up,
/// before any thread exists.
pub fn defer() {
    imp::defer();
}

/// Load the CA certificates before a transfer to `url` that may need them.
pub(super) fn before_transfer(url: &str) {
    if may_use_tls(url) {
        imp::load();
    }
}

#[cfg(test)]
mod tests {
    use super::may_use_tls;

    #[test]
    fn which_urls_may_use_tls() {
        for url in [
            "https://github.com/o/r.git",
            "HTTP://127.0.0.1:8080/r.git",
            "https://x-access-token:t@h/r",
        ] {
            assert!(may_use_tls(url), "{url}");
        }
        for url in [
            "/srv/git/r.git",
            "../r.git",
            "file:///srv/git/r.git",
            "git@github.com:o/r.git",
            "ssh://git@h/r.git",
            "git://h/r.git",
        ] {
            assert!(!may_use_tls(url), "{url}");
        }
    }
}
