//! `openim-release release` (and `plan`): the whole pipeline in one command,
//! by running this same binary's commands in order and passing each one's
//! JSON result to the next:
//!
//! 1. tags (`tag`); rc: the git tag is created and pushed first, which
//!    reserves the rc number race-free;
//! 2. images (`build`), pushed and tagged only when complete;
//! 3. release/nightly: the git tag, once every image exists;
//! 4. deploy (`gitops`), which verifies the images again before editing.
//!
//! A failure never leaves the deploy repository pointing at images that do
//! not exist: gitops runs last and only after every image is pushed. A
//! re-run finishes what is missing: unchanged images are only re-tagged, the
//! pull request is updated, not duplicated.

use crate::checks::{Check, ChecksFailed};
use crate::cli::{GlobalArgs, OutputFormat, ReleaseCmdArgs};
use crate::clients::git::Repo;
use crate::config;
use crate::error::{self, BadInput};
use crate::output::actions;
use crate::tag::stage::Stage;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

/// Options that would be silently ignored: refused.
fn refuse_inapplicable(args: &ReleaseCmdArgs) -> Result<()> {
    let refuse = |m: String| Err(BadInput(m).into());
    if args.force && args.stage != Stage::Nightly {
        return refuse(format!(
            "--force applies to the nightly stage (run although nothing changed); the {} \
             stage always runs",
            args.stage
        ));
    }
    if args.no_git_tag && args.stage == Stage::Dev {
        return refuse("--no-git-tag: the dev stage creates no git tag anyway".into());
    }
    if args.jobs.is_some() && args.skip_build {
        return refuse(
            "--jobs sets how many images build at once; with --skip-build none do".into(),
        );
    }
    if args.no_verify && args.skip_gitops {
        return refuse(
            "--no-verify skips the image check before the deploy edits; with --skip-gitops \
             there are none"
                .into(),
        );
    }
    Ok(())
}

pub fn run(global: &GlobalArgs, args: &ReleaseCmdArgs, dry_run: bool) -> Result<i32> {
    refuse_inapplicable(args)?;
    let dir = match &global.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let repo = Repo::discover(&dir)?;
    let loaded = config::load(global.config.as_deref(), repo.root())?;
    let cfg = loaded.config;
    let stage_cfg = cfg
        .stages
        .get(args.stage.as_str())
        .cloned()
        .unwrap_or_default();
    let deploy_enabled =
        cfg.deploy.is_some() && stage_cfg.deploy.unwrap_or(true) && !args.skip_gitops;
    let build_enabled = cfg.images.is_some() && !args.skip_build;
    if !build_enabled && !deploy_enabled && !dry_run {
        return Err(BadInput(
            "nothing to release: openim-release.yaml has neither `images:` nor `deploy:`".into(),
        )
        .into());
    }
    if args.no_verify && !deploy_enabled {
        return Err(BadInput(format!(
            "--no-verify skips the image check before the deploy edits; the {} stage \
             deploys nothing here",
            args.stage
        ))
        .into());
    }
    let runner = Runner {
        dir: repo.root().to_path_buf(),
        global,
        quiet: global.quiet,
    };
    let stage = args.stage.as_str();
    let mut report = json!({"schema_version": 1, "stage": stage, "dry_run": dry_run});

    // 0. Before anything is reserved or pushed: what the later steps need
    // (services, Dockerfiles, the engine, registry credentials; the token,
    // the git remote and a version not released from another commit; the
    // deploy repository and its files), so that bad input changes nothing
    // and burns no rc number. They run before the first side effect: the rc
    // reservation in step 1, else step 2 (so that a nightly with nothing new
    // stays cheap). `plan` runs the same checks and shows each.
    let pull_request = deploy_enabled
        && stage_cfg
            .mode
            .or(cfg.deploy.as_ref().and_then(|d| d.mode))
            .unwrap_or(config::DeployMode::Pr)
            == config::DeployMode::Pr;
    let preflight = Preflight {
        runner: &runner,
        repo: &repo,
        args,
        stage,
        build_enabled,
        deploy_enabled,
        pull_request,
        deploy_url: cfg.deploy.as_ref().and_then(|d| d.url.clone()),
        dry_run,
    };

    // 1. Tags.
    let mut tag_args = vec!["tag", "--stage", stage];
    if let Some(v) = &args.version {
        tag_args.extend(["--version", v]);
    }
    let reserve = args.stage.is_numbered() && !dry_run && !args.no_git_tag;
    let mut checks = Vec::new();
    if reserve {
        checks = preflight.run(None);
        preflight.stop_on_failure(&checks)?;
        tag_args.push("--push");
        runner.step(&format!("reserving the {stage} number (git tag)"));
    }
    let tag = runner.json(&tag_args)?;
    let tags: Vec<String> = tag["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    tags.first().context("the tag step returned no tags")?;
    let version = tag["version"].as_str().map(str::to_string);
    report["tag"] = tag.clone();
    if args.stage == Stage::Nightly && tag["changed"] == json!(false) && !args.force {
        runner.step(
            "nothing changed since the previous nightly; skipping (use --force to run anyway)",
        );
        report["changed"] = json!(false);
        return emit(&report, args.output, &tags, global.quiet);
    }
    report["changed"] = json!(true);
    if !reserve {
        checks = preflight.run(Some(&tag));
        if !dry_run {
            preflight.stop_on_failure(&checks)?;
        }
    }
    report["checks"] = serde_json::to_value(&checks).context("serializing the checks")?;
    let failed = |name: &str| checks.iter().any(|c| !c.ok && c.name == name);
    let show = dry_run && args.output == OutputFormat::Text;
    if show {
        println!("# {stage}: tags");
        for t in &tags {
            println!("{t}");
        }
        if let Some(g) = tag["git_tag"].as_str() {
            println!("git tag: {g}");
        }
        println!("\n# checks (what `release` needs before it changes anything)");
        for c in &checks {
            println!("{}", c.line());
        }
    }

    // 2. Images.
    let digests_file = tempfile::NamedTempFile::new().context("creating a temp file")?;
    if build_enabled && dry_run && failed("services") {
        if show {
            println!("\n# images\n(not planned: the services check failed)");
        }
    } else if build_enabled {
        runner.step(&format!(
            "{} images as {}",
            if dry_run {
                "planning the"
            } else {
                "building and pushing"
            },
            tags.join(", ")
        ));
        // Tags all or none: a failed service must not leave `latest` (or
        // any tag of this run) on a mix of new and old images.
        let mut build_args: Vec<String> = vec!["build".into(), "--all-or-none".into()];
        for t in &tags {
            build_args.extend(["--tag".into(), t.clone()]);
        }
        for s in &args.service {
            build_args.extend(["--service".into(), s.clone()]);
        }
        if dry_run {
            build_args.push("--dry-run".into());
        } else if let Some(j) = args.jobs {
            build_args.extend(["--jobs".into(), j.to_string()]);
        }
        let build = runner.json(&build_args.iter().map(String::as_str).collect::<Vec<_>>())?;
        std::fs::write(digests_file.path(), build.to_string())
            .context("saving the build result")?;
        if show {
            println!("\n# images");
            for image in build["images"].as_array().into_iter().flatten() {
                for r in image["references"].as_array().into_iter().flatten() {
                    println!(
                        "{}  ({})",
                        r.as_str().unwrap_or_default(),
                        image["platforms"]
                            .as_array()
                            .map(|p| p
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", "))
                            .unwrap_or_default()
                    );
                }
            }
        }
        report["build"] = build;
    }

    // 3. The git tag of release and nightly, once every image exists.
    let tag_after =
        matches!(args.stage, Stage::Release | Stage::Nightly) && !dry_run && !args.no_git_tag;
    if tag_after {
        runner.step(&format!(
            "pushing git tag {}",
            tag["git_tag"].as_str().unwrap_or("?")
        ));
        let mut push_args = vec!["tag", "--stage", stage, "--push"];
        if args.stage == Stage::Nightly {
            push_args.push("--prune");
        }
        if let Some(v) = &version {
            if args.stage == Stage::Release {
                push_args.extend(["--version", v]);
            }
        }
        report["git_tag_pushed"] = runner.json(&push_args)?;
    }

    // 4. Deploy: only what this run built (with --service, the others are
    // left as they are).
    if deploy_enabled && dry_run && failed("deploy repository") {
        if show {
            println!("\n# deploy\n(not planned: the deploy repository check failed)");
        }
    } else if deploy_enabled {
        runner.step(if dry_run {
            "planning the deploy change"
        } else {
            "updating the deploy repository"
        });
        // dev deploys `sha-<sha7>`, not the moving branch tag (stages.<stage>.deploy_tag).
        let sha = tag["sha"].as_str().unwrap_or_default();
        let deploy_tag = super::chart::deploy_tag(&cfg, args.stage, &tags, sha)?;
        let mut g: Vec<String> = vec!["gitops".into(), "--image-tag".into(), deploy_tag];
        if let Some(v) = &version {
            g.extend(["--version".into(), v.clone()]);
        }
        if build_enabled && !dry_run {
            g.extend([
                "--digests".into(),
                digests_file.path().display().to_string(),
            ]);
        }
        if let Some(m) = stage_cfg.mode {
            g.extend([
                "--mode".into(),
                if m == config::DeployMode::Pr {
                    "pr"
                } else {
                    "push"
                }
                .into(),
            ]);
        }
        if let Some(b) = &stage_cfg.base {
            g.extend(["--base".into(), b.clone()]);
        }
        g.extend(["--stage-name".into(), stage.into()]);
        for s in &args.service {
            g.extend(["--service".into(), s.clone()]);
        }
        if dry_run {
            g.push("--dry-run".into());
        }
        // A plan runs before the images exist; the release verifies them.
        if args.no_verify || dry_run {
            g.push("--no-verify".into());
        }
        report["gitops"] = runner.json(&g.iter().map(String::as_str).collect::<Vec<_>>())?;
        if show {
            println!("\n# deploy");
            // The diff and the PR, as gitops prints them.
            let mut text_args: Vec<&str> = g.iter().map(String::as_str).collect();
            text_args.retain(|a| *a != "--output");
            runner.passthrough(&text_args)?;
        }
    }
    let code = emit(&report, args.output, &tags, global.quiet)?;
    if checks.iter().any(|c| !c.ok) {
        // The plan is shown; `release` would stop at its checks.
        return Err(ChecksFailed {
            consequence: "so `release` would stop there, before changing anything".into(),
            checks,
        }
        .into());
    }
    Ok(code)
}

/// The checks of step 0 (see above).
struct Preflight<'a> {
    runner: &'a Runner<'a>,
    repo: &'a Repo,
    args: &'a ReleaseCmdArgs,
    stage: &'a str,
    build_enabled: bool,
    deploy_enabled: bool,
    pull_request: bool,
    deploy_url: Option<String>,
    dry_run: bool,
}

impl Preflight<'_> {
    /// Every check, each passed or failed; `tag` is the tag step's result
    /// when it ran already (not for the rc reservation).
    fn run(&self, tag: Option<&Value>) -> Vec<Check> {
        self.runner.step("checking what the release needs");
        let args = self.args;
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
            let mut check = vec!["build", "--check", "--tag", "preflight"];
            for s in &args.service {
                check.extend(["--service", s.as_str()]);
            }
            match self.runner.check_json(&check) {
                Ok(v) | Err((Some(v), _)) if v["checks"].is_array() => {
                    let list: Vec<Check> =
                        serde_json::from_value(v["checks"].clone()).unwrap_or_default();
                    checks.extend(list);
                }
                Ok(_) => {}
                Err((_, failure)) => checks.push(failure.named("services")),
            }
        }
        if let Some(c) = self.git_tag_check(tag) {
            checks.push(c);
        }
        if self.deploy_enabled {
            // The deploy edits on a fresh clone, without API calls or pushes.
            let mut plan = vec!["gitops", "--stage", self.stage, "--dry-run", "--no-verify"];
            plan.extend(["--image-tag", "preflight"]);
            if let Some(v) = &args.version {
                plan.extend(["--version", v.as_str()]);
            }
            for s in &args.service {
                plan.extend(["--service", s.as_str()]);
            }
            let name = "deploy repository";
            checks.push(match self.runner.check_json(&plan) {
                Ok(v) => {
                    let files = v["files"].as_array().map_or(0, Vec::len);
                    Check::passed(
                        name,
                        format!(
                            "{} ({}) cloned; the edits apply ({} would change)",
                            crate::secret::scrub(self.deploy_url.as_deref().unwrap_or("?"), &[]),
                            v["base"].as_str().unwrap_or("?"),
                            crate::output::text::count(files, "file"),
                        ),
                    )
                }
                Err((_, failure)) => failure.named(name),
            });
        }
        // `release` lists what passed as it goes (failures end in the
        // error); `plan` shows every check in its own output.
        if !self.runner.quiet && !self.dry_run {
            for c in checks.iter().filter(|c| c.ok) {
                eprintln!("    {}", c.line());
            }
        }
        checks
    }

    /// The git tag: a release version not released from another commit
    /// (locally or on origin), and origin answering where the git tag will
    /// be pushed.
    fn git_tag_check(&self, tag: Option<&Value>) -> Option<Check> {
        let stage = self.args.stage;
        let pushes = stage != Stage::Dev && !self.args.no_git_tag;
        if !pushes && stage != Stage::Release {
            return None;
        }
        let name = "git tag";
        let git_tag = tag.and_then(|t| t["git_tag"].as_str());
        let head = match self.repo.head() {
            Ok(h) => h.sha,
            Err(e) => return Some(Check::failed(name, &e)),
        };
        let short = |s: &str| s.chars().take(7).collect::<String>();
        let elsewhere = |g: &str, at: &str, place: &str| {
            let version = tag
                .and_then(|t| t["version"].as_str())
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
                if let Ok(Some(at)) = self.repo.tag_commit(g) {
                    if at != head {
                        return Some(elsewhere(g, &at, ""));
                    }
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
        let listed = match self.repo.remote_tags(remote) {
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
        let at = self.repo.remote_display(remote);
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

    /// `release`: stop when any check failed (each is named in the error).
    fn stop_on_failure(&self, checks: &[Check]) -> Result<()> {
        if checks.iter().all(|c| c.ok) {
            return Ok(());
        }
        Err(ChecksFailed {
            consequence: "so the release stopped before changing anything".into(),
            checks: checks.to_vec(),
        }
        .into())
    }
}

struct Runner<'a> {
    dir: std::path::PathBuf,
    global: &'a GlobalArgs,
    quiet: bool,
}

impl Runner<'_> {
    fn step(&self, msg: &str) {
        if !self.quiet {
            eprintln!("==> {msg}");
        }
    }

    fn command(&self, args: &[&str]) -> Result<Command> {
        let exe = std::env::current_exe().context("locating this program")?;
        let mut cmd = Command::new(exe);
        cmd.current_dir(&self.dir);
        if let Some(c) = &self.global.config {
            cmd.arg("--config").arg(c);
        }
        if self.quiet {
            cmd.arg("-q");
        }
        cmd.args(args);
        // The steps' outputs are combined by this command, not written twice;
        // the stage is given on each step's command line, never inherited
        // (OPENIM_RELEASE_STAGE would clash with `build --tag`).
        cmd.env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("OPENIM_RELEASE_STAGE");
        Ok(cmd)
    }

    /// Run a step with `--output json`; its progress goes to our stderr.
    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut cmd = self.command(args)?;
        cmd.args(["--output", "json"])
            .stderr(Stdio::inherit())
            .stdout(Stdio::piped());
        let out = cmd
            .output()
            .with_context(|| format!("running `{}`", args.join(" ")))?;
        let code = out.status.code().unwrap_or(1);
        // Workflow commands (`::add-mask::` of a step's secrets) go on to the
        // runner through our stdout; the rest is the step's JSON.
        let text = String::from_utf8_lossy(&out.stdout);
        let (commands, body): (Vec<&str>, Vec<&str>) =
            text.lines().partition(|l| l.starts_with("::"));
        for c in commands {
            println!("{c}");
        }
        let value: Value = serde_json::from_str(&body.join("\n")).unwrap_or(Value::Null);
        if !out.status.success() {
            let err = StepFailed {
                step: args.first().copied().unwrap_or("step").to_string(),
                code,
            };
            return Err(err.into());
        }
        Ok(value)
    }

    /// Run a check with `-q --output json`, its stderr captured: the JSON,
    /// or (on failure) the JSON if any and the failure as a check whose
    /// detail is the step's error message.
    fn check_json(&self, args: &[&str]) -> Result<Value, (Option<Value>, Check)> {
        let failed = |detail: String, code: i32| Check::failed_with("", detail, code);
        let mut cmd = self
            .command(args)
            .map_err(|e| (None, Check::failed("", &e)))?;
        if !self.quiet {
            cmd.arg("-q");
        }
        cmd.args(["--output", "json"])
            .stderr(Stdio::piped())
            .stdout(Stdio::piped());
        let out = cmd.output().map_err(|e| {
            (
                None,
                failed(format!("running `{}`: {e}", args.join(" ")), error::FAILURE),
            )
        })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (commands, body): (Vec<&str>, Vec<&str>) =
            text.lines().partition(|l| l.starts_with("::"));
        for c in commands {
            println!("{c}");
        }
        let value: Option<Value> = serde_json::from_str(&body.join("\n")).ok();
        if out.status.success() {
            return Ok(value.unwrap_or(Value::Null));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("error: "))
            .collect();
        let detail = if errors.is_empty() {
            stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("failed")
                .trim()
                .to_string()
        } else {
            errors.join("; ")
        };
        Err((
            value,
            failed(detail, out.status.code().unwrap_or(error::FAILURE)),
        ))
    }

    /// Run a step with its output going straight to ours.
    fn passthrough(&self, args: &[&str]) -> Result<()> {
        let status = self
            .command(args)?
            .stdout(Stdio::inherit())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running `{}`", args.join(" ")))?;
        if !status.success() {
            return Err(StepFailed {
                step: args.first().copied().unwrap_or("step").to_string(),
                code: status.code().unwrap_or(1),
            }
            .into());
        }
        Ok(())
    }
}

/// A pipeline step failed; its own message is already on stderr.
#[derive(Debug, thiserror::Error)]
#[error("the {step} step failed (exit {code}); fix it and re-run: finished steps are not repeated")]
pub struct StepFailed {
    pub step: String,
    pub code: i32,
}

fn emit(report: &Value, format: OutputFormat, tags: &[String], quiet: bool) -> Result<i32> {
    let json = report.to_string();
    match format {
        OutputFormat::Json => println!("{json}"),
        OutputFormat::Text => {
            if report["dry_run"] == json!(true) {
                if !quiet {
                    eprintln!("plan only: nothing was built, tagged or pushed");
                }
            } else if let Some(url) = report["gitops"]["pr_url"].as_str() {
                println!("{url}");
            }
        }
    }
    let digests: Vec<String> = report["build"]["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some(format!(
                "{}={}",
                i["service"].as_str()?,
                i["digest"].as_str()?
            ))
        })
        .collect();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    actions::write_outputs(&[
        ("tags", tags.join("\n")),
        ("version", text(&report["tag"]["version"])),
        ("git_tag", text(&report["tag"]["git_tag"])),
        ("digests", digests.join("\n")),
        ("pr-url", text(&report["gitops"]["pr_url"])),
        ("changed", report["changed"].to_string()),
        ("json", json),
    ])?;
    Ok(error::OK)
}

/// Exit code of a failed step, for main.
pub fn step_code(err: &anyhow::Error) -> Option<i32> {
    err.chain()
        .find_map(|c| c.downcast_ref::<StepFailed>())
        .map(|s| s.code)
}
