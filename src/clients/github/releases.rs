//! GitHub Releases: find the release of a git tag (published, or a draft),
//! create it, or update it — never a second one: a 422 "already exists"
//! (a concurrent creator) is resolved by updating that one.

use super::{Failure, GitHub};
use anyhow::Result;
use http::StatusCode;
use octocrab::models::repos::Release;
use octocrab::repos::releases::MakeLatest;
use tracing::debug;

/// What [`GitHub::ensure_release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseAction {
    Created,
    Updated,
    UpToDate,
}

/// The release wanted for a git tag.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub tag: String,
    /// The commit the tag is created at when it does not exist (GitHub
    /// creates it then).
    pub target: String,
    pub name: String,
    pub prerelease: bool,
    /// Whether a new release is a draft (an existing one keeps its state).
    pub draft: bool,
    /// Whether it becomes the repository's latest release.
    pub latest: bool,
}

impl GitHub {
    /// The release of `tag`, published or a draft.
    pub async fn find_release(&self, tag: &str) -> Result<Option<Release>> {
        let path = self.repo_path(&format!("releases/tags/{tag}"));
        match self
            .call("GET", &path, || async {
                self.client
                    .repos(&self.owner, &self.repo)
                    .releases()
                    .get_by_tag(tag)
                    .await
            })
            .await
        {
            Ok(r) => return Ok(Some(r)),
            Err(Failure::Answer(a)) if a.status_code == StatusCode::NOT_FOUND => {}
            Err(Failure::Answer(a)) => return Err(self.error("GET", &path, &a).into()),
            Err(Failure::Other(e)) => return Err(e),
        }
        // Drafts are not found by tag: they are in the list (newest first).
        let path = self.repo_path("releases?per_page=100");
        for page in 1u32..=3 {
            let list = self
                .expect("GET", &format!("{path}&page={page}"), || async {
                    self.client
                        .repos(&self.owner, &self.repo)
                        .releases()
                        .list()
                        .per_page(100u8)
                        .page(page)
                        .send()
                        .await
                })
                .await?;
            let last = list.next.is_none();
            if let Some(r) = list.items.into_iter().find(|r| r.tag_name == tag) {
                return Ok(Some(r));
            }
            if last {
                break;
            }
        }
        Ok(None)
    }

    /// Create the release of `spec.tag` with `body_for(None)`, or update
    /// the existing one with `body_for(Some(its body))`.
    pub async fn ensure_release(
        &self,
        spec: &ReleaseSpec,
        body_for: impl Fn(Option<&str>) -> String,
    ) -> Result<(Release, ReleaseAction)> {
        if let Some(existing) = self.find_release(&spec.tag).await? {
            let body = body_for(Some(existing.body.as_deref().unwrap_or("")));
            return self.update_release(existing, spec, &body).await;
        }
        let body = body_for(None);
        let path = self.repo_path("releases");
        let created = self
            .call("POST", &path, || async {
                self.client
                    .repos(&self.owner, &self.repo)
                    .releases()
                    .create(&spec.tag)
                    .target_commitish(&spec.target)
                    .name(&spec.name)
                    .body(&body)
                    .draft(spec.draft)
                    .prerelease(spec.prerelease)
                    .make_latest(make_latest(spec))
                    .send()
                    .await
            })
            .await;
        let answer = match created {
            Ok(r) => {
                debug!("created release {} ({})", r.tag_name, r.id);
                return Ok((r, ReleaseAction::Created));
            }
            Err(Failure::Other(e)) => return Err(e),
            Err(Failure::Answer(a)) => a,
        };
        let errors = serde_json::to_string(&answer.errors).unwrap_or_default();
        if answer.status_code == StatusCode::UNPROCESSABLE_ENTITY
            && errors.contains("already_exists")
        {
            // A concurrent run created it first: update that one.
            debug!(
                "the release of {} already exists (a concurrent run?): updating it",
                spec.tag
            );
            if let Some(existing) = self.find_release(&spec.tag).await? {
                let body = body_for(Some(existing.body.as_deref().unwrap_or("")));
                return self.update_release(existing, spec, &body).await;
            }
        }
        Err(self.error("POST", &path, &answer).into())
    }

    async fn update_release(
        &self,
        existing: Release,
        spec: &ReleaseSpec,
        body: &str,
    ) -> Result<(Release, ReleaseAction)> {
        let same = existing.body.as_deref().unwrap_or("") == body
            && existing.name.as_deref() == Some(spec.name.as_str())
            && existing.prerelease == spec.prerelease;
        if same {
            debug!("release {} is up to date", spec.tag);
            return Ok((existing, ReleaseAction::UpToDate));
        }
        let id = existing.id.into_inner();
        let path = self.repo_path(&format!("releases/{id}"));
        let updated = self
            .expect("PATCH", &path, || async {
                let repos = self.client.repos(&self.owner, &self.repo);
                let releases = repos.releases();
                let mut update = releases
                    .update(id)
                    .name(&spec.name)
                    .body(body)
                    .prerelease(spec.prerelease);
                if !existing.draft {
                    update = update.make_latest(make_latest(spec));
                }
                update.send().await
            })
            .await?;
        Ok((updated, ReleaseAction::Updated))
    }
}

fn make_latest(spec: &ReleaseSpec) -> MakeLatest {
    if spec.latest && !spec.prerelease {
        MakeLatest::True
    } else {
        MakeLatest::False
    }
}
