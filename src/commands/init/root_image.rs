//! The image a repository's own workflows build from its root `Dockerfile`
//! (OpenIM's all-in-one `openim-server` and `openim-chat`, which
//! openim-docker deploys), besides the per-service images of its compose
//! build file. Read from the workflow as GitHub runs it: a job with a
//! docker/metadata-action `images:` list and a build of the root context
//! (docker/build-push-action with `context: .`, or `docker build` /
//! `docker buildx build` of the checkout). `${{ env.X }}` is resolved from
//! the workflow's and the job's `env:`.

use serde_yaml_ng::Value;
use std::collections::BTreeMap;

/// The image name the workflow `text` builds from the root Dockerfile,
/// when every entry of its image list names the same one.
pub fn built_from_root(text: &str) -> Option<String> {
    let doc: Value = serde_yaml_ng::from_str(text).ok()?;
    let top = env_of(doc.get("env"));
    let jobs = doc.get("jobs")?.as_mapping()?;
    jobs.values().find_map(|job| {
        let mut env = top.clone();
        env.extend(env_of(job.get("env")));
        let steps = job.get("steps")?.as_sequence()?;
        let checkout = steps.iter().find_map(|s| {
            let uses = s.get("uses")?.as_str()?;
            let with = s.get("with");
            let own = with.and_then(|w| w.get("repository")).is_none();
            (uses.starts_with("actions/checkout") && own)
                .then(|| with.and_then(|w| w.get("path")).and_then(Value::as_str))
                .map(|p| {
                    p.unwrap_or("")
                        .trim_start_matches("./")
                        .trim_end_matches('/')
                        .to_string()
                })
        });
        let checkout = checkout.unwrap_or_default();
        let images: Vec<String> = steps
            .iter()
            .filter(|s| uses(s, "docker/metadata-action"))
            .filter_map(|s| s.get("with")?.get("images")?.as_str().map(str::to_string))
            .flat_map(|list| entries(&list))
            .collect();
        if images.is_empty() || !steps.iter().any(|s| builds_root(s, &checkout)) {
            return None;
        }
        let mut names: Vec<String> = Vec::new();
        for image in images {
            let name = image_name(&image, &env)?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        match names.as_slice() {
            [one] if crate::oci::reference::is_valid_component(one) => Some(one.clone()),
            _ => None,
        }
    })
}

fn uses(step: &Value, action: &str) -> bool {
    step.get("uses")
        .and_then(Value::as_str)
        .is_some_and(|u| u.starts_with(action))
}

fn env_of(v: Option<&Value>) -> BTreeMap<String, String> {
    let Some(m) = v.and_then(Value::as_mapping) else {
        return BTreeMap::new();
    };
    m.iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((k.as_str()?.to_string(), v))
        })
        .collect()
}

/// The entries of a metadata-action `images:` list: one per line or
/// comma, `name=<image>,enable=…` reduced to the image.
fn entries(list: &str) -> Vec<String> {
    list.lines()
        .map(|l| l.split(" #").next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let first = l.split(',').next()?.trim();
            let image = first.strip_prefix("name=").unwrap_or(first);
            let enabled = !l.contains("enable=false");
            (enabled && !image.is_empty()).then(|| image.to_string())
        })
        .collect()
}

/// The image name (last path component, no tag) of a list entry, its
/// `${{ env.X }}` replaced from `env`; `None` when another expression (a
/// secret, an input) makes the name. The registry part may be anything.
fn image_name(image: &str, env: &BTreeMap<String, String>) -> Option<String> {
    // The last `/` outside an expression.
    let mut depth = 0usize;
    let mut cut = 0;
    let bytes = image.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'{' => depth += 1,
            b'}' if i > 0 && bytes[i - 1] == b'}' => depth = depth.saturating_sub(1),
            b'/' if depth == 0 => cut = i + 1,
            _ => {}
        }
    }
    let mut name = image[cut..].to_string();
    while let Some(start) = name.find("${{") {
        let end = start + name[start..].find("}}")? + 2;
        let expr = name[start + 3..end - 2].trim();
        let value = expr.strip_prefix("env.").and_then(|k| env.get(k.trim()))?;
        name.replace_range(start..end, value);
    }
    let name = name.split(['@', ':']).next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// A build of the repository's root: docker/build-push-action with
/// context `.` (or the checkout path, or none) and the default Dockerfile,
/// or a `docker build` / `docker buildx build` whose context is the root.
fn builds_root(step: &Value, checkout: &str) -> bool {
    let roots: Vec<String> = if checkout.is_empty() {
        vec![".".into(), "./".into()]
    } else {
        vec![
            checkout.to_string(),
            format!("./{checkout}"),
            format!("./{checkout}/"),
        ]
    };
    let dockerfiles: Vec<String> = if checkout.is_empty() {
        vec!["Dockerfile".into(), "./Dockerfile".into()]
    } else {
        vec![
            format!("{checkout}/Dockerfile"),
            format!("./{checkout}/Dockerfile"),
        ]
    };
    if uses(step, "docker/build-push-action") {
        let with = step.get("with");
        let get = |k: &str| with.and_then(|w| w.get(k)).and_then(Value::as_str);
        let context_ok = get("context").is_none_or(|c| roots.iter().any(|r| r == c.trim()));
        let file_ok = get("file").is_none_or(|f| dockerfiles.iter().any(|d| d == f.trim()));
        return context_ok && file_ok;
    }
    let Some(run) = step.get("run").and_then(Value::as_str) else {
        return false;
    };
    // Continuation lines joined, as the shell reads them.
    let joined = run.replace("\\\n", " ");
    joined.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let build = words
            .windows(2)
            .any(|w| w == ["docker", "build"] || w == ["buildx", "build"]);
        let names_file = words
            .iter()
            .any(|w| *w == "-f" || *w == "--file" || w.starts_with("--file="));
        build && !names_file && words.last().is_some_and(|w| roots.iter().any(|r| r == w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// open-im-server's publish-docker-image.yml, in its shape: the name in
    /// the workflow's env, the build a `docker buildx build` of the
    /// checkout path.
    #[test]
    fn openim_servers_all_in_one_image() {
        let text = r#"
env:
  IMAGE_NAME: "openim-server"
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          path: main-repo
      - uses: actions/checkout@v4
        with:
          repository: openimsdk/openim-docker
          path: compose-repo
      - uses: docker/metadata-action@v5
        with:
          images: |
            ${{ secrets.DOCKER_USERNAME }}/${{ env.IMAGE_NAME }}
            ghcr.io/${{ github.repository_owner }}/${{ env.IMAGE_NAME }}
      - run: |
          docker buildx build \
            --platform linux/amd64,linux/arm64 \
            --output type=oci,dest=/tmp/x.tar \
            ./main-repo
"#;
        assert_eq!(built_from_root(text).as_deref(), Some("openim-server"));
    }

    /// chat's build-docker-image.yml: literal names, build-push-action.
    #[test]
    fn chats_all_in_one_image() {
        let text = "jobs:\n  b:\n    steps:\n      - uses: actions/checkout@v4\n      - uses: docker/metadata-action@v6\n        with:\n          images: |\n            openim/openim-chat\n            ghcr.io/openimsdk/openim-chat\n      - uses: docker/build-push-action@v7\n        with:\n          context: .\n          platforms: linux/amd64,linux/arm64\n";
        assert_eq!(built_from_root(text).as_deref(), Some("openim-chat"));
    }

    #[test]
    fn other_builds_name_no_root_image() {
        // Another Dockerfile, another context, a name from a secret, two
        // names, no image list.
        for text in [
            "jobs:\n  b:\n    steps:\n      - uses: docker/metadata-action@v6\n        with:\n          images: ghcr.io/o/a\n      - uses: docker/build-push-action@v7\n        with:\n          file: build/images/api/Dockerfile\n",
            "jobs:\n  b:\n    steps:\n      - uses: docker/metadata-action@v6\n        with:\n          images: ghcr.io/o/a\n      - uses: docker/build-push-action@v7\n        with:\n          context: web\n",
            "jobs:\n  b:\n    steps:\n      - uses: docker/metadata-action@v6\n        with:\n          images: ghcr.io/o/${{ secrets.NAME }}\n      - uses: docker/build-push-action@v7\n",
            "jobs:\n  b:\n    steps:\n      - uses: docker/metadata-action@v6\n        with:\n          images: |\n            ghcr.io/o/a\n            ghcr.io/o/b\n      - uses: docker/build-push-action@v7\n",
            "jobs:\n  b:\n    steps:\n      - run: docker build .\n",
            "jobs:\n  b:\n    steps:\n      - uses: docker/metadata-action@v6\n        with:\n          images: ghcr.io/o/a\n      - run: docker build -f other/Dockerfile .\n",
        ] {
            assert_eq!(built_from_root(text), None, "{text}");
        }
    }
}
