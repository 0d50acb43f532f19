//! The checks `release` runs before its first side effect, and `plan`
//! shows: the token for the pull request, the services and the engine and
//! every registry with its credentials (`build --check`), the git tag (a
//! version not released from another commit; origin answering), and the
//! deploy repository (cloned, the edits applying). Each is a [`Check`],
//! passed or failed, so that one failure does not hide another.

use crate::build::run::{self as build, BuildRequest, Selection, TagChoice};
use crate::checks::Check;
use crate::deploy::gitops::{self, Checkout};
use crate::deploy::plan::EditOptions;
use crate::error::BadInput;
use crate::output::text;
use crate::release::ReleaseRequest;
use crate::tag::apply::TagReport;
use crate::tag::stage::Stage;
use crate::workspace::Workspace;

pub struct Preflight<'a> {
    pub ws: &'a Workspace,
    pub req: &'a ReleaseRequest,
    pub stage_cfg: &'a crate::config::StageConfig,
    pub build_enabled: bool,
    pub deploy_enabled: bool,
    pub pull_request: bool,
    pub runtime: &'a tokio::runtime::Runtime,
}

impl Preflight<'_> {
    /// Every check, each passed or failed; `tag` is the tag step's result
    /// when it ran already (not for the rc reservation). The deploy
    /// repository's clone is kept in `kept` for the deploy step.
    pub fn run(&self, tag: Option<&TagReport>, kept: &mut Option<Checkout>) -> Vec<Check> {
        self.ws.step("checking what the release needs");
        let req = self.req;
        let mut checks = Vec::new();
        if self.pull_request {
            checks.push(match crate::secret::github_token_from_env() {
                Some(_) => Check::passed("token", "GITHUB_TOKEN (or GH_TOKEN) is set"),
                None => Check::failed(
                    "token",
                    &BadInput(
                        "GITHUB_TOKEN (or GH_TOKEN) is needed to open the deploy pull \
                         request; set it, or run with --skip-gitops"
                            .into(),
                    )
                    .into(),
                ),
            });
        }
        if self.build_enabled {
            let check = BuildRequest {
                tags: TagChoice {
                    tags: vec!["preflight".into()],
                    ..TagChoice::default()
                },
                select: Selection {
                    services: req.services.clone(),
                    ..Selection::default()
                },
                ..BuildRequest::default()
            };
            match self.runtime.block_on(build::check(self.ws, &check)) {
                Ok(report) => checks.extend(report.checks),
                Err(e) => checks.push(Check::failed("services", &e)),
            }
            // The registries images.mirrors copies the images to.
            checks.extend(
                self.runtime
                    .block_on(crate::promote::mirror::check_targets(self.ws)),
            );
        }
        if let Some(c) = self.git_tag_check(tag) {
            checks.push(c);
        }
        if self.deploy_enabled {
            // The deploy edits in a fresh clone (kept for the deploy step),
            // as the deploy step will make them, without API calls or pushes.
            let mut plan = crate::release::deploy_request(
                req,
                self.stage_cfg,
                "preflight".into(),
                tag.and_then(|t| t.version.clone())
                    .or_else(|| req.version.clone()),
                Default::default(),
            );
            plan.edit = EditOptions {
                no_verify: true,
                dry_run: true,
                strict: false,
            };
            let name = "deploy repository";
            checks.push(match gitops::run_with(self.ws, &plan, kept) {
                // Even with a tag no file holds, nothing would change, and
                // the files said why: the release would deploy nothing.
                Ok(r) if r.files.is_empty() && !r.warnings.is_empty() => Check::failed_with(
                    name,
                    format!(
                        "the deploy would change no file: {}; point deploy at the files that \
                         deploy the services' images, or set deploy: false for this stage",
                        r.warnings
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    crate::error::USAGE,
                ),
                Ok(r) => Check::passed(
                    name,
                    format!(
                        "{} ({}) cloned; the edits apply ({} would change)",
                        crate::secret::scrub(&r.url, &[]),
                        r.base,
                        text::count(r.files.len(), "file"),
                    ),
                ),
                Err(e) => Check::failed(name, &e),
            });
        }
        if let Some(c) = crate::notes::publish::check(self.ws, req.stage, req.no_git_tag) {
            checks.push(c);
        }
        // `release` lists what passed as it goes (failures end in the
        // error); `plan` shows every check in its own output.
        if !self.ws.quiet && !req.dry_run {
            for c in checks.iter().filter(|c| c.ok) {
                crate::say!("    {}", c.line());
            }
        }
        checks
    }

    /// The git tag: a release version not released from another commit
    /// (locally or on origin), and origin answering where the git tag will
    /// be pushed.
    fn git_tag_check(&self, tag: Option<&TagReport>) -> Option<Check> {
        let stage = self.req.stage;
        let pushes = stage != Stage::Dev && !self.req.no_git_tag;
        if !pushes && stage != Stage::Release {
            return None;
        }
        let name = "git tag";
        let git_tag = tag.and_then(|t| t.git_tag.as_deref());
        let repo = match self.ws.repo() {
            Ok(r) => r,
            Err(e) => return Some(Check::failed(name, &e)),
        };
        let head = match repo.head() {
            Ok(h) => h.sha,
            Err(e) => return Some(Check::failed(name, &e)),
        };
        let short = |s: &str| s.chars().take(7).collect::<String>();
        let elsewhere = |g: &str, at: &str, place: &str| {
            let version = tag
                .and_then(|t| t.version.as_deref())
                .unwrap_or("this version");
            Check::failed(
                name,
                &BadInput(format!(
                    "{g} already exists {place}at {} (not HEAD {}): {version} was released from \
                     another commit; pick another --version, or check out {}",
                    short(at),
                    short(&head),
                    short(at)
                ))
                .into(),
            )
        };
        if stage == Stage::Release {
            if let Some(g) = git_tag {
                match repo.tag_commit(g) {
                    Ok(Some(at)) if at != head => return Some(elsewhere(g, &at, "")),
                    Ok(_) => {}
                    // A tag of a blob or a tree: refused before anything is built.
                    Err(e) => return Some(Check::failed(name, &e)),
                }
            }
        }
        if !pushes {
            return Some(Check::passed(
                name,
                format!("{} is not on another commit", git_tag.unwrap_or("?")),
            ));
        }
        let remote = "origin";
        let listed = match repo.remote_tags(remote) {
            Ok(l) => l,
            Err(e) => {
                return Some(Check::failed(
                    name,
                    &e.context(format!(
                        "the git tag is pushed to remote `{remote}`, which must answer"
                    )),
                ))
            }
        };
        let at = repo.remote_display(remote);
        if let Some(g) = git_tag {
            if let Some(t) = listed.iter().find(|t| t.name == g) {
                return Some(if t.commit == head {
                    Check::passed(name, format!("{g} is on {at} at HEAD already"))
                } else if stage == Stage::Release {
                    elsewhere(g, &t.commit, &format!("on {at} "))
                } else {
                    // A concurrent rc took this number: release takes the next.
                    Check::passed(
                        name,
                        format!("{g} is taken on {at}; release takes the next number"),
                    )
                });
            }
            return Some(Check::passed(name, format!("{g} is new; {at} answers")));
        }
        Some(Check::passed(
            name,
            format!("{at} answers (the rc number is reserved there first)"),
        ))
    }
}
