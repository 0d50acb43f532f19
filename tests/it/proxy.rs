//! A small fault-injecting HTTP/1.1 proxy in front of a real registry: it
//! forwards each request on a fresh upstream connection and can answer some
//! of them with an error instead, or cut the connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with request number `n` (0-based) of method and path.
pub type Rule = dyn Fn(usize, &str, &str) -> Fault + Send + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Answer with this status and a registry-style error body.
    Status(u16),
    /// Close the connection without answering.
    Reset,
}

/// The artifact manifests put through the proxy that name a subject:
/// (repository, subject digest, descriptor), for its referrers API.
type Referrers = Arc<std::sync::Mutex<Vec<(String, String, serde_json::Value)>>>;

pub struct Proxy {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    pub faults: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(upstream: &str, rule: Box<Rule>) -> Proxy {
        Proxy::run(upstream, rule, None)
    }

    /// A proxy that adds the OCI 1.1 referrers API to a registry without
    /// it (docker-registry stores manifests with a `subject`, but does not
    /// list them): `GET /v2/<name>/referrers/<digest>` answers an index of
    /// the manifests naming that subject put through this proxy.
    pub fn with_referrers(upstream: &str, rule: Box<Rule>) -> Proxy {
        Proxy::run(upstream, rule, Some(Referrers::default()))
    }

    fn run(upstream: &str, rule: Box<Rule>, referrers: Option<Referrers>) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let faults = Arc::new(AtomicUsize::new(0));
        let rule: Arc<Rule> = Arc::from(rule);
        let upstream = upstream.to_string();
        let (req_c, fault_c) = (requests.clone(), faults.clone());
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (rule, upstream, req_c, fault_c, referrers) = (
                    rule.clone(),
                    upstream.clone(),
                    req_c.clone(),
                    fault_c.clone(),
                    referrers.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &*rule, &req_c, &fault_c, referrers).await;
                });
            }
        });
        Proxy {
            addr,
            requests,
            faults,
            _runtime: runtime,
        }
    }
}

/// Read one request head (up to the blank line).
async fn read_head(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if s.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
        if head.ends_with(b"\r\n\r\n") {
            return Ok(Some(head));
        }
        if head.len() > 64 * 1024 {
            return Ok(None);
        }
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    rule: &Rule,
    requests: &AtomicUsize,
    faults: &AtomicUsize,
    referrers: Option<Referrers>,
) -> std::io::Result<()> {
    // One request per connection: every answer says Connection: close.
    let Some(head) = read_head(&mut client).await? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&head).to_string();
    let mut first = text.lines().next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let length: usize = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).await?;
    let n = requests.fetch_add(1, Ordering::SeqCst);
    match rule(n, &method, &path) {
        Fault::Reset => {
            faults.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        Fault::Status(code) => {
            faults.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}"#;
            let resp = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(resp.as_bytes()).await?;
            return client.shutdown().await;
        }
        Fault::Pass => {}
    }
    if let Some(list) = &referrers {
        if let Some((name, digest)) = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/referrers/"))
            .filter(|_| method == "GET")
        {
            let manifests: Vec<serde_json::Value> = list
                .lock()
                .unwrap()
                .iter()
                .filter(|(n, d, _)| n == name && d == digest)
                .map(|(_, _, m)| m.clone())
                .collect();
            let body = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": manifests,
            })
            .to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(resp.as_bytes()).await?;
            return client.shutdown().await;
        }
        if method == "PUT" && path.contains("/manifests/") {
            if let Ok(m) = serde_json::from_slice::<serde_json::Value>(&body) {
                if let (Some(subject), Some(name)) = (
                    m["subject"]["digest"].as_str(),
                    path.strip_prefix("/v2/")
                        .and_then(|p| p.split_once("/manifests/"))
                        .map(|(n, _)| n.to_string()),
                ) {
                    use sha2::Digest;
                    let digest = format!(
                        "sha256:{}",
                        sha2::Sha256::digest(&body)
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>()
                    );
                    let mut d = serde_json::json!({
                        "mediaType": m["mediaType"],
                        "digest": digest,
                        "size": body.len(),
                        "artifactType": m["artifactType"],
                    });
                    if let Some(a) = m["annotations"].as_object() {
                        d["annotations"] = serde_json::Value::Object(a.clone());
                    }
                    list.lock().unwrap().push((name, subject.to_string(), d));
                }
            }
        }
    }
    let mut up = TcpStream::connect(upstream).await?;
    let mut new_head = String::new();
    for (i, line) in text.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        new_head.push_str(line);
        new_head.push_str("\r\n");
    }
    new_head.push_str("Connection: close\r\n\r\n");
    up.write_all(new_head.as_bytes()).await?;
    up.write_all(&body).await?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await?;
    // Make sure the client does not reuse this connection.
    let resp_text = String::from_utf8_lossy(&response);
    if let Some(end) = resp_text.find("\r\n\r\n") {
        let (h, rest) = response.split_at(end);
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(h).split("\r\n") {
            if line.to_ascii_lowercase().starts_with("connection:") {
                continue;
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n");
        // `rest` is the blank line ending the head (`\r\n\r\n`, the first
        // `\r\n` ending the last header line, written above), then the body.
        out.extend_from_slice(&rest[2..]);
        client.write_all(&out).await?;
    } else {
        client.write_all(&response).await?;
    }
    client.shutdown().await
}
