//! The SLSA v1 provenance of one service image, as an in-toto statement:
//! what was built (the image's repositories and digest), from what (the
//! source repository and commit, the Dockerfile's digest, the inputs
//! digest, build args, target and platforms), by what (openim-release, in
//! which GitHub Actions workflow run). Pure: the environment is passed in.

use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `externalParameters` and `internalParameters` mean (docs/supply-chain.md).
pub const BUILD_TYPE: &str =
    "https://github.com/openimsdk/openim-release/blob/main/docs/supply-chain.md#provenance";
/// The builder outside GitHub Actions.
pub const BUILDER: &str = "https://github.com/openimsdk/openim-release";

/// What the provenance says about one build.
#[derive(Debug, Clone, Default)]
pub struct BuildFacts {
    pub service: String,
    /// Repositories the image is in (`ghcr.io/openimsdk/openim-api`).
    pub repositories: Vec<String>,
    /// The image's digest (the index with several platforms).
    pub digest: String,
    /// The source repository's URL, when known.
    pub source: Option<String>,
    /// The commit built.
    pub revision: String,
    /// The Dockerfile's path in the repository and the digest of its content.
    pub dockerfile: String,
    pub dockerfile_digest: Option<String>,
    /// The inputs digest (docs/build.md).
    pub inputs: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platforms: Vec<String>,
    /// The SBOMs made with it: (platform, descriptor digest, size).
    pub sboms: Vec<(String, String, u64)>,
}

/// The GitHub Actions run, from its `GITHUB_*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workflow {
    pub server: String,
    pub repository: String,
    /// `owner/repo/.github/workflows/release.yml@refs/heads/main`.
    pub workflow_ref: Option<String>,
    pub workflow_sha: Option<String>,
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub event: Option<String>,
    pub run_id: String,
    pub run_attempt: String,
    pub runner_environment: Option<String>,
}

impl Workflow {
    /// The run this process is part of, when in GitHub Actions.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Option<Workflow> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        if get("GITHUB_ACTIONS").as_deref() != Some("true") {
            return None;
        }
        Some(Workflow {
            server: get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
            repository: get("GITHUB_REPOSITORY")?,
            workflow_ref: get("GITHUB_WORKFLOW_REF"),
            workflow_sha: get("GITHUB_WORKFLOW_SHA"),
            git_ref: get("GITHUB_REF"),
            sha: get("GITHUB_SHA"),
            event: get("GITHUB_EVENT_NAME"),
            run_id: get("GITHUB_RUN_ID")?,
            run_attempt: get("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into()),
            runner_environment: get("RUNNER_ENVIRONMENT"),
        })
    }

    fn run_url(&self) -> String {
        format!(
            "{}/{}/actions/runs/{}/attempts/{}",
            self.server.trim_end_matches('/'),
            self.repository,
            self.run_id,
            self.run_attempt
        )
    }
}

fn sha256_map(digest: &str) -> Value {
    json!({"sha256": digest.strip_prefix("sha256:").unwrap_or(digest)})
}

/// The statement (JSON) for `facts`, built in `workflow` (or not in Actions).
pub fn statement(facts: &BuildFacts, workflow: Option<&Workflow>) -> Vec<u8> {
    let subject: Vec<Value> = facts
        .repositories
        .iter()
        .map(|r| json!({"name": r, "digest": sha256_map(&facts.digest)}))
        .collect();
    let mut external = json!({
        "service": facts.service,
        "source": facts.source,
        "revision": facts.revision,
        "dockerfile": facts.dockerfile,
        "target": facts.target,
        "args": facts.args,
        "platforms": facts.platforms,
    });
    if let Some(w) = workflow {
        let path = w
            .workflow_ref
            .as_deref()
            .and_then(|r| r.split_once('@').map(|(p, _)| p))
            .and_then(|p| p.strip_prefix(&format!("{}/", w.repository)))
            .map(str::to_string);
        external["workflow"] = json!({
            "repository": format!("{}/{}", w.server.trim_end_matches('/'), w.repository),
            "path": path,
            "ref": w.git_ref,
            "event": w.event,
        });
    }
    let mut deps = Vec::new();
    let mut source = json!({"digest": {"gitCommit": facts.revision}});
    match &facts.source {
        Some(s) => source["uri"] = json!(format!("git+{s}")),
        None => source["name"] = json!("source"),
    }
    deps.push(source);
    if let Some(d) = &facts.dockerfile_digest {
        deps.push(json!({"name": facts.dockerfile, "digest": sha256_map(d), "annotations": {"role": "dockerfile"}}));
    }
    if let Some(i) = &facts.inputs {
        deps.push(json!({"name": "inputs", "digest": sha256_map(i), "annotations": {"role": "the inputs digest of docs/build.md: context files, Dockerfile, ignore file, args, target, platforms, labels"}}));
    }
    let builder = match workflow.and_then(|w| w.workflow_ref.as_ref().map(|r| (w, r))) {
        Some((w, r)) => format!("{}/{r}", w.server.trim_end_matches('/')),
        None => BUILDER.to_string(),
    };
    let mut run = json!({
        "builder": {
            "id": builder,
            "version": {"openim-release": env!("CARGO_PKG_VERSION")},
        },
        "metadata": {},
    });
    if let Some(w) = workflow {
        run["metadata"]["invocationId"] = json!(w.run_url());
        if let Some(env) = &w.runner_environment {
            run["builder"]["version"]["runner_environment"] = json!(env);
        }
        if let Some(sha) = &w.workflow_sha {
            run["builder"]["version"]["workflow_sha"] = json!(sha);
        }
    }
    if !facts.sboms.is_empty() {
        run["byproducts"] = json!(facts
            .sboms
            .iter()
            .map(|(platform, digest, size)| json!({
                "name": format!("sbom {platform}"),
                "digest": sha256_map(digest),
                "mediaType": super::sbom::MEDIA_TYPE,
                "annotations": {"size": size.to_string()},
            }))
            .collect::<Vec<_>>());
    }
    let doc = json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"inputs": facts.inputs},
                "resolvedDependencies": deps,
            },
            "runDetails": run,
        },
    });
    serde_json::to_vec(&doc).expect("JSON values serialize")
}

/// What a verifier reads back from a statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Read {
    pub digests: Vec<String>,
    pub revision: Option<String>,
    pub sboms: Vec<String>,
    pub builder: Option<String>,
}

/// Read a statement (`None` when it is not an SLSA v1 provenance statement).
pub fn read(bytes: &[u8]) -> Option<Read> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    if v["_type"] != STATEMENT_TYPE || v["predicateType"] != PREDICATE_TYPE {
        return None;
    }
    let digests = v["subject"]
        .as_array()?
        .iter()
        .filter_map(|s| {
            s["digest"]["sha256"]
                .as_str()
                .map(|h| format!("sha256:{h}"))
        })
        .collect();
    let p = &v["predicate"];
    let revision = p["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .and_then(|d| d.iter().find_map(|d| d["digest"]["gitCommit"].as_str()))
        .map(str::to_string);
    let sboms = p["runDetails"]["byproducts"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| {
                    b["digest"]["sha256"]
                        .as_str()
                        .map(|h| format!("sha256:{h}"))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Read {
        digests,
        revision,
        sboms,
        builder: p["runDetails"]["builder"]["id"]
            .as_str()
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BuildFacts {
        BuildFacts {
            service: "openim-api".into(),
            repositories: vec![
                "ghcr.io/openimsdk/openim-api".into(),
                "docker.io/openim/openim-api".into(),
            ],
            digest: format!("sha256:{}", "a".repeat(64)),
            source: Some("https://github.com/openimsdk/open-im-server".into()),
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            dockerfile: "build/images/openim-server/Dockerfile".into(),
            dockerfile_digest: Some(format!("sha256:{}", "d".repeat(64))),
            inputs: Some(format!("sha256:{}", "e".repeat(64))),
            args: [("BINARY_NAME".to_string(), "openim-api".to_string())].into(),
            target: None,
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            sboms: vec![(
                "linux/amd64".into(),
                format!("sha256:{}", "5".repeat(64)),
                10,
            )],
        }
    }

    #[test]
    fn a_statement_in_github_actions() {
        let env: BTreeMap<&str, &str> = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "openimsdk/open-im-server"),
            (
                "GITHUB_WORKFLOW_REF",
                "openimsdk/open-im-server/.github/workflows/release.yml@refs/tags/v3.8.1",
            ),
            ("GITHUB_REF", "refs/tags/v3.8.1"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_EVENT_NAME", "push"),
        ]
        .into();
        let w = Workflow::from_env(&|k| env.get(k).map(|v| v.to_string())).unwrap();
        let bytes = statement(&facts(), Some(&w));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["subject"][1]["name"], "docker.io/openim/openim-api");
        assert_eq!(v["subject"][0]["digest"]["sha256"], "a".repeat(64));
        let p = &v["predicate"];
        assert_eq!(
            p["runDetails"]["builder"]["id"],
            "https://github.com/openimsdk/open-im-server/.github/workflows/release.yml@refs/tags/v3.8.1"
        );
        assert_eq!(
            p["runDetails"]["metadata"]["invocationId"],
            "https://github.com/openimsdk/open-im-server/actions/runs/42/attempts/2"
        );
        assert_eq!(
            p["buildDefinition"]["externalParameters"]["workflow"]["path"],
            ".github/workflows/release.yml"
        );
        assert_eq!(
            p["buildDefinition"]["resolvedDependencies"][0]["uri"],
            "git+https://github.com/openimsdk/open-im-server"
        );
        let r = read(&bytes).unwrap();
        assert_eq!(
            r.revision.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(r.digests, vec![facts().digest; 2]);
        assert_eq!(r.sboms, vec![format!("sha256:{}", "5".repeat(64))]);
    }

    #[test]
    fn outside_actions_the_builder_is_openim_release_and_the_statement_is_stable() {
        assert_eq!(Workflow::from_env(&|_| None), None);
        let a = statement(&facts(), None);
        assert_eq!(a, statement(&facts(), None));
        assert_eq!(read(&a).unwrap().builder.as_deref(), Some(BUILDER));
        assert!(read(b"{\"_type\":\"x\"}").is_none());
    }
}
