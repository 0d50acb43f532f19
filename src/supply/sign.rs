//! Signatures as cosign makes them with a key: ECDSA P-256 over SHA-256,
//! ASN.1 DER, base64. The key is a PEM private key (PKCS#8 `PRIVATE KEY`
//! or SEC1 `EC PRIVATE KEY`) from a file or `OPENIM_RELEASE_SIGN_KEY`; it
//! never prints (a [`Secret`] holds its text), and in GitHub Actions every
//! line of it is masked. Also: the simple-signing payload of an image, and
//! DSSE envelopes of in-toto statements.

use crate::error::BadInput;
use crate::secret::Secret;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use serde_json::json;
use std::path::Path;

/// The variable holding the PEM private key.
pub const KEY_ENV: &str = "OPENIM_RELEASE_SIGN_KEY";
/// cosign's media type of the simple-signing payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation carrying the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// DSSE's payload type for in-toto statements.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";

/// A private key that signs. `Debug` never shows it.
pub struct Key {
    signing: SigningKey,
    /// Where it came from: a file name or the variable's name.
    pub source: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(from {})", self.source)
    }
}

impl Key {
    /// The key of `--sign-key FILE`, else of [`KEY_ENV`]; `None` when
    /// neither is given. Errors never quote the key.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Option<Key>> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| BadInput(format!("--sign-key {}: {e}", path.display())))?;
            let secret = remember(&text);
            return Ok(Some(Key::from_pem(
                &secret,
                &format!("--sign-key {}", path.display()),
            )?));
        }
        match std::env::var(KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => {
                let secret = remember(&text);
                Ok(Some(Key::from_pem(&secret, KEY_ENV)?))
            }
            _ => Ok(None),
        }
    }

    /// Parse a PEM private key (PKCS#8 or SEC1); `source` names it in errors.
    pub fn from_pem(pem: &Secret, source: &str) -> anyhow::Result<Key> {
        let text = pem.expose();
        let refuse = |why: &str| -> anyhow::Error {
            BadInput(format!(
                "{source}: {why}; give an unencrypted ECDSA P-256 private key in PEM (PKCS#8 \
                 `BEGIN PRIVATE KEY` or SEC1 `BEGIN EC PRIVATE KEY`), e.g. made with \
                 `openssl ecparam -genkey -name prime256v1 -noout -out cosign.key` \
                 (see docs/supply-chain.md)"
            ))
            .into()
        };
        if text.contains("ENCRYPTED SIGSTORE PRIVATE KEY")
            || text.contains("ENCRYPTED COSIGN PRIVATE KEY")
        {
            return Err(refuse(
                "this is a key of `cosign generate-key-pair`, encrypted with its password",
            ));
        }
        if text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
            return Err(refuse("the key is encrypted"));
        }
        let signing = if let Some(block) = pem_block(text, "PRIVATE KEY") {
            SigningKey::from_pkcs8_pem(&block)
                .map_err(|_| refuse("the PKCS#8 key is not an ECDSA P-256 key"))?
        } else if let Some(block) = pem_block(text, "EC PRIVATE KEY") {
            let secret = p256::SecretKey::from_sec1_pem(&block)
                .map_err(|_| refuse("the SEC1 key is not a P-256 key"))?;
            SigningKey::from(secret)
        } else {
            return Err(refuse("no PEM private key found"));
        };
        Ok(Key {
            signing,
            source: source.to_string(),
        })
    }

    /// ASN.1 DER ECDSA P-256 signature of SHA-256(`message`), base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let sig: DerSignature = self.signing.sign(message);
        base64::engine::general_purpose::STANDARD.encode(sig.as_bytes())
    }

    /// The public key in PEM (`BEGIN PUBLIC KEY`), what verifiers are given.
    pub fn public_pem(&self) -> String {
        self.signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(*self.signing.verifying_key())
    }
}

/// Make a secret of the key's text and of each of its lines, so that no
/// part of it reaches a log, and mask each line in GitHub Actions (a mask
/// is one line).
fn remember(text: &str) -> Secret {
    for line in text.lines() {
        let line = line.trim();
        if line.len() >= 16 && !line.starts_with("-----") {
            if let Some(part) = Secret::new(line) {
                crate::output::actions::mask(&part);
            }
        }
    }
    Secret::new(text).unwrap_or_else(|| Secret::new("(empty)").expect("not blank"))
}

/// The `-----BEGIN <label>-----` … block of `text`, itself.
fn pem_block(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(format!("{}\n", &text[start..stop]))
}

/// A public key that verifies.
#[derive(Debug, Clone)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// A PEM public key (`BEGIN PUBLIC KEY`, as `cosign.pub` and `openssl ec
    /// -pubout` write it).
    pub fn from_pem(text: &str, source: &str) -> anyhow::Result<PublicKey> {
        let block = pem_block(text, "PUBLIC KEY").ok_or_else(|| {
            BadInput(format!(
                "{source}: no PEM public key (`BEGIN PUBLIC KEY`) found"
            ))
        })?;
        VerifyingKey::from_public_key_pem(&block)
            .map(PublicKey)
            .map_err(|_| BadInput(format!("{source}: not an ECDSA P-256 public key")).into())
    }

    /// Whether `signature` (base64 DER, as in the annotation) signs `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        let Ok(sig) = p256::ecdsa::Signature::from_der(&raw) else {
            return false;
        };
        self.0.verify(message, &sig).is_ok()
    }
}

/// cosign's simple-signing payload for an image: the repository it names
/// and the manifest digest it vouches for.
pub fn payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    // Field order as cosign writes it (serde_json keeps insertion order only
    // with preserve_order; these keys are sorted anyway).
    let v = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&v).expect("JSON values serialize")
}

/// The digest and reference of a simple-signing payload, when it is one.
pub fn read_payload(bytes: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let c = &v["critical"];
    if c["type"] != "cosign container image signature" {
        return None;
    }
    // cosign reads the key case-insensitively (`Docker-manifest-digest`).
    let image = c["image"].as_object()?;
    let digest = image
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("docker-manifest-digest"))?
        .1
        .as_str()?
        .to_string();
    let reference = c["identity"]["docker-reference"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Some((digest, reference))
}

/// DSSE's pre-authentication encoding: what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope of an in-toto statement, signed with `key` (no
/// signatures without one).
pub fn envelope(statement: &[u8], key: Option<&Key>) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let signatures: Vec<serde_json::Value> = key
        .map(|k| json!({"keyid": "", "sig": k.sign(&pae(IN_TOTO, statement))}))
        .into_iter()
        .collect();
    serde_json::to_vec(&json!({
        "payloadType": IN_TOTO,
        "payload": b64.encode(statement),
        "signatures": signatures,
    }))
    .expect("JSON values serialize")
}

/// An envelope opened: the statement, and whether `key` verified a
/// signature of it (`None` without a key, or without signatures).
pub fn open_envelope(bytes: &[u8], key: Option<&PublicKey>) -> Option<(Vec<u8>, Option<bool>)> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if v["payloadType"] != IN_TOTO {
        return None;
    }
    let statement = base64::engine::general_purpose::STANDARD
        .decode(v["payload"].as_str()?)
        .ok()?;
    let sigs: Vec<&str> = v["signatures"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["sig"].as_str()).collect())
        .unwrap_or_default();
    let verified = match key {
        Some(k) if !sigs.is_empty() => {
            let message = pae(IN_TOTO, &statement);
            Some(sigs.iter().any(|s| k.verify(&message, s)))
        }
        Some(_) => Some(false),
        None => None,
    };
    Some((statement, verified))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed test key (SEC1), made with `openssl ecparam -genkey -name
    /// prime256v1 -noout`: for tests only.
    pub const TEST_KEY: &str = "-----BEGIN EC PRIVATE KEY-----\n\
MHcCAQEEIHGS83IHEPrpNmkoEhxRm41qtxOUzGS4U6cfbQxj1RmRoAoGCCqGSM49\n\
AwEHoUQDQgAE922wUkEJVIvXXX1vIog9u39GFOwGpUUAbSnmcY6KdUf4A0VcrO3j\n\
SX6FvmdjJN99bPFTeql0itIQ1IzTwEmnUg==\n\
-----END EC PRIVATE KEY-----\n";

    pub fn test_key() -> Key {
        Key::from_pem(&Secret::new(TEST_KEY).unwrap(), "test").unwrap()
    }

    #[test]
    fn signs_and_verifies_and_never_shows_the_key() {
        let key = test_key();
        assert_eq!(format!("{key:?}"), "Key(from test)");
        let p = payload(
            "ghcr.io/openimsdk/openim-api",
            &format!("sha256:{}", "a".repeat(64)),
        );
        let sig = key.sign(&p);
        let public = PublicKey::from_pem(&key.public_pem(), "pub").unwrap();
        assert!(public.verify(&p, &sig));
        assert!(!public.verify(b"other", &sig));
        assert!(!public.verify(&p, "not base64!"));
        // Deterministic (RFC 6979): the same payload, the same signature.
        assert_eq!(sig, key.sign(&p));
        let (digest, reference) = read_payload(&p).unwrap();
        assert_eq!(digest, format!("sha256:{}", "a".repeat(64)));
        assert_eq!(reference, "ghcr.io/openimsdk/openim-api");
        assert_eq!(
            String::from_utf8(p).unwrap(),
            format!("{{\"critical\":{{\"identity\":{{\"docker-reference\":\"ghcr.io/openimsdk/openim-api\"}},\"image\":{{\"docker-manifest-digest\":\"sha256:{}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}", "a".repeat(64))
        );
    }

    #[test]
    fn pkcs8_keys_and_refusals() {
        // The same key as PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`).
        let sec1 = test_key();
        let der =
            p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&sec1.signing, LineEnding::LF).unwrap();
        let pkcs8 = Key::from_pem(&Secret::new(der.as_str()).unwrap(), "p8").unwrap();
        assert_eq!(pkcs8.public_pem(), sec1.public_pem());
        for (text, why) in [
            ("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "cosign generate-key-pair"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"),
            ("hello", "no PEM private key"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not an ECDSA P-256"),
        ] {
            let e = Key::from_pem(&Secret::new(text).unwrap(), "K").unwrap_err().to_string();
            assert!(e.contains(why) && e.starts_with("K: "), "{e}");
            assert!(!e.contains("abc") && !e.contains("AAAA"), "{e}");
        }
    }

    #[test]
    fn dsse_envelopes() {
        let key = test_key();
        let statement = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
        let env = envelope(statement, Some(&key));
        let public = key.public();
        let (s, ok) = open_envelope(&env, Some(&public)).unwrap();
        assert_eq!(s, statement);
        assert_eq!(ok, Some(true));
        let unsigned = envelope(statement, None);
        assert_eq!(
            open_envelope(&unsigned, Some(&public)).unwrap().1,
            Some(false)
        );
        assert_eq!(open_envelope(&unsigned, None).unwrap().1, None);
        assert_eq!(pae("a/b", b"xyz"), b"DSSEv1 3 a/b 3 xyz".to_vec());
    }
}
