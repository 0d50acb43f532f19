//! Which CA certificates the network clients trust: those `SSL_CERT_FILE` or
//! `SSL_CERT_DIR` name (a corporate CA), else the system's. Servers on
//! loopback with a certificate from a CA made for the test (openssl CLI):
//! tests/tls_proxy.py in front of the test git server (libgit2 over OpenSSL,
//! CA certificates loaded before the first transfer), and
//! tests/act/https_files.py for the registry client (reqwest over rustls).

use crate::common::{base_env, json_ok, tag_list, TestRepo};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tempfile::TempDir;

/// A CA, a certificate for 127.0.0.1 that it signed, and an unrelated CA.
struct Pki {
    dir: TempDir,
}

impl Pki {
    /// `None` (after saying so) without the openssl CLI or python3, unless
    /// the services are required (then they are, as scripts/services needs
    /// both).
    fn new() -> Option<Pki> {
        let have = |tool: &str| {
            Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        };
        if !have("openssl") || !have("python3") {
            assert!(
                std::env::var_os("OPENIM_RELEASE_REQUIRE_SERVICES").is_none(),
                "the TLS tests need openssl and python3"
            );
            eprintln!("skipped: no openssl CLI or python3");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // One openssl command line (no argument has a space).
        let run = |line: &str| {
            let out = Command::new("openssl")
                .current_dir(dir.path())
                .args(line.split_whitespace())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {line}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        for ca in ["ca", "other-ca"] {
            run(&format!(
                "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=openim-release-test-{ca} \
                 -keyout {ca}.key -out {ca}.pem"
            ));
        }
        run("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr");
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
             -extfile server.ext -out server.pem",
        );
        // The CA alone in a hashed directory, as `openssl rehash` makes them.
        let hash = run("x509 -hash -noout -in ca.pem");
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::copy(
            dir.path().join("ca.pem"),
            dir.path().join(format!("certs/{}.0", hash.trim())),
        )
        .unwrap();
        Some(Pki { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A python3 server from tests/ that prints `READY URL`, killed on drop.
struct Server {
    url: String,
    child: Child,
}

impl Server {
    fn start(script: &str, args: &[&Path]) -> Server {
        let (child, url) = crate::common::start_ready_server(script, args);
        Server { url, child }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A trust setting a test runs under: at most one variable, and whether it
/// makes the test's CA trusted.
struct Case {
    what: &'static str,
    var: Option<(&'static str, PathBuf)>,
    trusted: bool,
}

impl Case {
    fn all(pki: &Pki) -> [Case; 4] {
        let case = |what, var: Option<(&'static str, &str)>, trusted| Case {
            what,
            var: var.map(|(k, v)| (k, pki.path(v))),
            trusted,
        };
        [
            case("SSL_CERT_FILE", Some(("SSL_CERT_FILE", "ca.pem")), true),
            case("SSL_CERT_DIR", Some(("SSL_CERT_DIR", "certs")), true),
            case("another CA", Some(("SSL_CERT_FILE", "other-ca.pem")), false),
            case("the system's CAs", None, false),
        ]
    }
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn git_over_https_trusts_the_ca_that_ssl_cert_file_or_dir_names() {
    let s = crate::services::services();
    let Some(pki) = Pki::new() else { return };
    let upstream = s.git_url.trim_start_matches("http://").to_string();
    let proxy = Server::start(
        "tests/tls_proxy.py",
        &[
            &pki.path("server.pem"),
            &pki.path("server.key"),
            Path::new(&upstream),
        ],
    );
    let (bare, url) = crate::services::git_server_repo(s, "tls");
    let url = url.replacen(&s.git_url, &proxy.url, 1);
    let repo = TestRepo::new();
    repo.atag(&["v1.0.0"]);
    repo.git(&["remote", "add", "origin", &url]);
    for (n, Case { what, var, trusted }) in Case::all(&pki).iter().enumerate() {
        // Lists the remote's tags, then pushes the new one.
        let mut cmd = repo.bin();
        cmd.args(["tag", "--stage", "rc", "--push"])
            .env("GITHUB_TOKEN", &s.git_token);
        if let Some((k, v)) = var {
            cmd.env(k, v);
        }
        if *trusted {
            let json = json_ok(&mut cmd);
            assert_eq!(json["git_tag"], format!("v1.0.1-rc.{n}"), "{what}");
            assert!(
                tag_list(&bare).contains(&format!("v1.0.1-rc.{n}")),
                "{what}"
            );
        } else {
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
            assert!(stderr.contains("certificate"), "{what}: {stderr}");
        }
    }
    assert_eq!(
        tag_list(&bare),
        ["v1.0.1-rc.0", "v1.0.1-rc.1"],
        "nothing pushed where the certificate was refused"
    );
}

#[test]
fn the_registry_client_trusts_the_ca_that_ssl_cert_file_or_dir_names() {
    let Some(pki) = Pki::new() else { return };
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("v2")).unwrap();
    let server = Server::start(
        "tests/act/https_files.py",
        &[
            root.path(),
            &pki.path("server.pem"),
            &pki.path("server.key"),
        ],
    );
    // The client reads the variables in-process: each case runs
    // `registry_child` in a child process of this test binary.
    for Case { what, var, trusted } in Case::all(&pki) {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        base_env(&mut cmd);
        cmd.args(["--exact", "tls::registry_child", "--ignored", "--nocapture"])
            .env(
                "OPENIM_RELEASE_TLS_CHILD_URL",
                format!("{}/v2/", server.url),
            );
        if let Some((k, v)) = &var {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let answer = stdout
            .lines()
            .find_map(|l| l.strip_prefix("TLS-CHILD "))
            .unwrap_or_else(|| panic!("{what}: no answer from the child: {stdout}"));
        if trusted {
            assert_eq!(answer, "200 OK", "{what}");
        } else {
            assert!(
                answer.contains("invalid peer certificate: UnknownIssuer"),
                "{what}: {answer}"
            );
        }
    }
}

/// One GET through the registry client; run by the test above.
#[test]
#[ignore = "run in a child process by the registry trust test"]
fn registry_child() {
    let Ok(url) = std::env::var("OPENIM_RELEASE_TLS_CHILD_URL") else {
        return;
    };
    use openim_release::clients::registry::Registry;
    use openim_release::oci::reference::RegistryPrefix;
    let prefix = RegistryPrefix::parse("registry.test/team").unwrap();
    let registry = Registry::new(prefix, None, false);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer =
        runtime.block_on(async { registry.request(reqwest::Method::GET, &url).send().await });
    match answer {
        Ok(r) => println!("TLS-CHILD {}", r.status()),
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            println!("TLS-CHILD {text}");
        }
    }
}
