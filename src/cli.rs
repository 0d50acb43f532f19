//! Every clap type of the command line, and nothing else.

use crate::tag::stage::Stage;
use crate::tag::version::Bump;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "openim-release",
    version,
    about = "Release toolkit for multi-service container projects such as OpenIM",
    long_about = "Release toolkit for multi-service container projects such as OpenIM.\n\n\
        Computes image tags from git, builds and pushes service images, updates Helm \
        charts and opens the GitOps pull request.",
    after_help = "Exit codes: 0 success, 1 failure (git, network, registry), \
        2 usage, configuration or repository-state error, 3 nothing to change (--exit-code).\n\
        Docs: docs/README.md in the openim-release repository."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Run as if started in DIR (like `git -C`).
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Configuration file [default: openim-release.yaml at the repository root, if any].
    #[arg(
        long,
        value_name = "FILE",
        env = "OPENIM_RELEASE_CONFIG",
        global = true
    )]
    pub config: Option<PathBuf>,

    /// Print nothing on stderr but errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log what each step sends and receives on stderr: -v debug, -vv trace
    /// (build steps, transfer progress). Never secrets. RUST_LOG overrides;
    /// not with --quiet.
    #[arg(
        short,
        long,
        action = clap::ArgAction::Count,
        global = true,
        conflicts_with = "quiet"
    )]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute the image tags (and git tag) of a stage from git alone.
    #[command(
        long_about = "Compute the image tags (and the git tag) of a stage from git alone.\n\n\
            Prints the tags one per line, primary first (or one JSON object with \
            --output json). Needs no token and no network, except with --push, or in a \
            shallow clone, where the remote's tags are listed.",
        after_help = "Stages:\n  \
            dev       <branch>, sha-<sha7>\n  \
            rc        vX.Y.Z-rc.N, rcN          (alias: test)\n  \
            release   release-vX.Y.Z, vX.Y.Z, X.Y.Z [, X.Y, X, latest]  (alias: prod)\n  \
            patch     vX.Y.Z-patch.N, X.Y.Z-patch.N [, X.Y, X, latest]  (alias: hotfix)\n  \
            nightly   nightly-YYYYMMDD-<sha7>, nightly\n\n\
            Examples:\n  \
            openim-release tag --stage dev\n  \
            openim-release tag --stage rc --bump minor --output json\n  \
            openim-release tag --stage rc --create --push\n  \
            openim-release tag --stage release --version 3.8.1\n\n\
            In GitHub Actions the outputs tags, version, git_tag, json (and changed for \
            nightly) are written to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY."
    )]
    Tag(TagArgs),

    /// Build and push every service image (BuildKit through the Docker Engine API).
    #[command(
        long_about = "Build and push every service image through the Docker Engine API.\n\n\
            Services come from `images.services` (or `images.compose`) in openim-release.yaml. \
            Each is built with BuildKit for every platform, pushed by digest to every registry \
            and tagged only once everything it points to is present. Services build \
            concurrently; unchanged services (same inputs as an image already pushed) are \
            not rebuilt, only tagged.",
        after_help = "Examples:\n  \
            openim-release build --stage rc --dry-run\n  \
            openim-release build --stage rc\n  \
            openim-release build --tag v3.8.1 --service openim-api --platform linux/amd64\n  \
            openim-release build matrix --output json\n  \
            openim-release build --service openim-api --platform linux/arm64 --push-by-digest --output json > leg.json\n  \
            openim-release build merge --stage rc leg-*.json\n\n\
            Credentials: ~/.docker/config.json (auths, credHelpers, credsStore) or \
            OPENIM_RELEASE_REGISTRY_<HOST>_USERNAME/_PASSWORD (host uppercased, other \
            characters as _). The engine: DOCKER_HOST or the default socket."
    )]
    Build(BuildCmd),

    /// Copy a release by digest to other registries: every image, platform, signature and attestation; nothing rebuilt.
    #[command(
        visible_alias = "promote",
        long_about = "Copy a release by digest from the registry it was built to into other \
            registries (Docker Hub, a mirror in China, a private registry), nothing rebuilt.\n\n\
            For each service: the index or manifest its tags name, every platform manifest, \
            config and layer, and the artifacts attached to each (OCI referrers and cosign's \
            sha256-<hex>.sig/.att/.sbom tags); the tags are written once every service is \
            copied everywhere. Blobs a registry has are not sent (HEAD first); a blob another \
            repository of the same registry has is mounted; the others are streamed from \
            registry to registry. Digests stay the same; a re-run sends nothing.",
        after_help = "Examples:\n  \
            openim-release mirror --tag v3.8.1 --tag latest           # the routes of images.mirrors\n  \
            openim-release mirror --tag v3.8.1 --to docker.io/openim  # from the first of images.registries\n  \
            openim-release mirror --tag v3.7.0 --from ghcr.io/openimsdk --to registry.lan:5000/openim\n  \
            openim-release mirror --stage release --version 3.8.1 --dry-run\n\n\
            Prints each reference written as <registry>/<repository>:<tag>@<digest>, and on \
            stderr what each registry received (blobs sent and their bytes, mounted, there \
            already). Exit 0 when every image is in every registry with its tags; 1 when one \
            could not be copied (then no tag is written: a re-run copies what is missing); 2 on \
            a usage or configuration error.\n\n\
            Credentials as for build: ~/.docker/config.json or \
            OPENIM_RELEASE_REGISTRY_<HOST>_USERNAME/_PASSWORD. See docs/promote.md."
    )]
    Mirror(MirrorArgs),

    /// Write a release into one file (OCI image layout tar), or push such a file into a registry: for air-gapped sites.
    #[command(subcommand)]
    Bundle(BundleCmd),

    /// Update Helm charts, values, manifests and .env files in a deploy checkout.
    #[command(subcommand)]
    Chart(ChartCmd),

    /// Commit the deploy edits to the deploy repository and open or update the pull request.
    #[command(
        long_about = "Clone the deploy repository (deploy.url), apply the deploy edits for a \
            stage, commit them on a stable branch (openim-release/<stage>) and open or update \
            the pull request; or, with deploy.mode: push, commit on the base branch.\n\n\
            Token: GITHUB_TOKEN or GH_TOKEN (used as user x-access-token for git over HTTPS, \
            and for the API). API base: GITHUB_API_URL.",
        after_help = "Examples:\n  \
            openim-release gitops --stage rc --dry-run\n  \
            openim-release gitops --stage release\n  \
            openim-release gitops --stage rc --version 3.8.1 --image-tag v3.8.1-rc.2 --digests build.json"
    )]
    Gitops(GitopsArgs),

    /// The whole pipeline: tags, images, git tag, deploy pull request, GitHub Release, notifications.
    #[command(
        long_about = "The whole pipeline in one command: compute the tags; rc: create and push \
            the rc git tag first (reserves the number); build and push every image; release and \
            nightly: push the git tag once every image exists; then open or update the deploy \
            pull request (or push), which verifies the images again; release and patch (rc \
            where github_release.stages says so): create or update the GitHub Release of the \
            git tag with its notes (see `notes`). Nightly stops early when nothing changed \
            since the previous nightly. When the run finishes or fails, the `notify:` \
            destinations are told; a notification that fails is a warning, never a failed \
            release.",
        after_help = "Examples:\n  \
            openim-release release --stage rc --dry-run     # = openim-release plan --stage rc\n  \
            openim-release release --stage rc\n  \
            openim-release release --stage nightly\n  \
            openim-release release --stage release --version 3.8.1"
    )]
    Release(ReleaseCmdArgs),

    /// The plan of `release`: its checks, tags, image references, deploy diff, PR. Changes nothing.
    #[command(
        long_about = "The plan of `release` (= release --dry-run): the checks release runs \
            before its first side effect (the engine, each registry with its credentials, the \
            token, origin and a version not released from another commit, the deploy \
            repository), each shown as passed or failed; the tags and git tag; every image \
            reference; the deploy diff and the pull request. Changes nothing. Exits 0 only when \
            release would get past its checks, else with the code release would stop with."
    )]
    Plan(ReleaseCmdArgs),

    /// Check that the registries and the deploy repository agree with the git tags: every release's images, platforms, digests, aliases, revision labels.
    #[command(
        long_about = "Check that the registries and the deploy repository agree with the git \
            tags. For every release (vX.Y.Z and vX.Y.Z-patch.N git tags): every service has \
            every tag the configured templates give in every registry; a tag names the same \
            image in every registry; the image has every configured platform; each platform's \
            org.opencontainers.image.revision label is the release's commit (or a commit where \
            nothing the service's build reads differs: an image reused because its inputs did \
            not change); the aliases (X.Y, X, latest) \
            point at the release that moved them last, as tags.release.alias_policy says. With \
            --deploy, every image the deploy repository references (values, override files, \
            manifests, .env, on each environment branch of stages:) exists with every platform.\n\n\
            Prints one table of what disagrees (or one JSON object with --output json) and, in \
            GitHub Actions, the step summary. Changes nothing, except with --fix.",
        after_help = "Examples:\n  \
            openim-release audit\n  \
            openim-release audit --last 3 --deploy\n  \
            openim-release audit --tag v3.8.3 --output json\n  \
            openim-release audit --fix\n\n\
            --fix re-points aliases and writes missing tags again, only within a registry that has \
            the image; an image only another registry has needs copying (mirror), one that no \
            registry has right needs a rebuild: both are reported, never done.\n\n\
            Exit codes: 0 everything agrees (or --fix repaired all of it), 1 something disagrees \
            or a registry did not answer, 2 bad input."
    )]
    Audit(AuditArgs),
    /// Release notes of a version's git tag: the changes since the previous release, by type, service and contributor. Publishes nothing.
    #[command(
        long_about = "Release notes of a version's git tag (vX.Y.Z, vX.Y.Z-rc.N, vX.Y.Z-patch.N), \
            printed as Markdown: the same notes `release` publishes as the GitHub Release of the \
            tag, for a release pull request or a changelog file. Nothing is published unless \
            --publish.\n\n\
            Range: the commits after the previous release of the same line (the highest vX.Y.Z \
            or vX.Y.Z-patch.N below the tag whose commit is an ancestor of it; --from names \
            another) up to the tag; a tag not made yet ends at HEAD (or --to), and the notes \
            say so.\n\n\
            Entries: one per commit, or per pull request (GitHub's merge commit; a `(#12)` \
            subject), read as conventional commits: `feat(api): …` is a feature, `feat!:` or a \
            `BREAKING CHANGE:` footer a breaking change (listed first). A commit and its revert \
            within the range leave nothing. The groups and what is left out (types, scopes, \
            authors such as dependabot[bot], messages) come from `changelog:` in \
            openim-release.yaml.\n\n\
            Services: a row per service of `images:` with the entries that touched what its \
            build reads (its Dockerfile, and what that copies from its context, less \
            .dockerignore), or `no changes`. --digests adds the images table (every image's \
            tags and digest per registry).\n\n\
            Links go to github_release.repository, else GITHUB_REPOSITORY, else `origin` on \
            GitHub. --publish needs GITHUB_TOKEN (or GH_TOKEN) with contents: write; API base: \
            GITHUB_API_URL. Exit codes: 0 printed (and published), 1 a failure (git, the API), \
            2 bad input (not a version's tag, --publish of a tag that does not exist, no token).",
        after_help = "Examples:\n  \
            openim-release notes --tag v3.8.1                      # Markdown on stdout\n  \
            openim-release notes --tag v3.9.0 --from v3.8.0        # before v3.9.0 exists: up to HEAD\n  \
            openim-release notes --tag v3.8.1 --output json        # entries, services, contributors\n  \
            openim-release notes --tag v3.8.1 --digests build.json > notes.md\n  \
            openim-release notes --tag v3.8.1 --publish            # create or update its GitHub Release\n\n\
            Docs: docs/notes.md; the changelog: section: docs/config/changelog.md"
    )]
    Notes(NotesArgs),
    /// Attach SBOMs, provenance and a signature to images already pushed.
    #[command(
        long_about = "Attach what images already pushed lack, in every registry: an SPDX SBOM \
            per platform (read from the layers), the SLSA provenance and, with a key, a \
            cosign-compatible signature. Beside the image (OCI referrers, or cosign's \
            sha256-<hex>.sig/.att/.sbom tags), never inside it: digests do not change. What \
            is there already is kept; a registry that refuses is reported and the others \
            still get theirs.",
        after_help = "Examples:\n  \
            openim-release attest --tag v3.8.1\n  \
            openim-release attest --tag v3.8.1 --sign-key cosign.key --registry ghcr.io/openimsdk"
    )]
    Attest(AttestArgs),

    /// Check the signature, provenance and SBOMs of released images in every registry.
    #[command(
        long_about = "Check, for every service image under a tag in every registry: a \
            signature by the key (--key; without it, only that one is there), the SLSA \
            provenance naming the image and the commit (the git tag's, --commit, or the \
            image's revision label), and an SPDX SBOM for every platform. Prints a table; \
            exits 1 when anything is missing or does not verify.",
        after_help = "Examples:\n  \
            openim-release verify --tag v3.8.1 --key cosign.pub\n  \
            openim-release verify --tag v3.8.1 --key cosign.pub --registry docker.io/openim --output json"
    )]
    Verify(VerifyArgs),

    /// Write openim-release.yaml (or --config FILE) from what the repository has: compose build file, Dockerfiles, charts, .env files, the registries its workflows push to.
    Init(InitArgs),

    /// Print the JSON Schema of openim-release.yaml (for editors and CI checks).
    Schema,

    /// Print shell completions: `openim-release completions bash > /etc/bash_completion.d/openim-release`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ReleaseCmdArgs {
    /// The stage to release.
    #[arg(long, value_enum, env = "OPENIM_RELEASE_STAGE")]
    pub stage: Stage,
    /// The version (X.Y.Z) for rc, release and patch.
    #[arg(long = "version", value_name = "X.Y.Z")]
    pub version: Option<String>,
    /// Only these services (repeatable).
    #[arg(long = "service", value_name = "NAME")]
    pub service: Vec<String>,
    /// Services built at the same time [default: 4 per core, 4 to 16].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the plan only (same as `openim-release plan`).
    #[arg(long)]
    pub dry_run: bool,
    /// Do not build (deploy tags that were built before).
    #[arg(long)]
    pub skip_build: bool,
    /// Do not touch the deploy repository.
    #[arg(long)]
    pub skip_gitops: bool,
    /// Create and push no git tag.
    #[arg(long)]
    pub no_git_tag: bool,
    /// Do not check the images in their registries before deploying.
    #[arg(long)]
    pub no_verify: bool,
    /// Nightly: run even when nothing changed since the previous nightly.
    #[arg(long)]
    pub force: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub sign: SignArgs,
}

#[derive(Debug, Args)]
pub struct NotesArgs {
    /// The version's git tag the notes are of.
    #[arg(long, value_name = "TAG")]
    pub tag: String,
    /// Start after this tag instead of the previous release of the same line.
    #[arg(long, value_name = "TAG")]
    pub from: Option<String>,
    /// End at this commit instead of the tag's [default: the tag, else HEAD].
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    /// `build --output json` output: adds the images with their tags and digests.
    #[arg(long, value_name = "FILE")]
    pub digests: Option<PathBuf>,
    /// Also create or update the tag's GitHub Release with these notes, as
    /// `release` does (to finish one whose GitHub Release step failed).
    #[arg(long)]
    pub publish: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum ChartCmd {
    /// One chart: bump its version, set appVersion and the image tag (umbrella subcharts too).
    #[command(
        after_help = "Example:\n  openim-release chart bump charts/openim-server --app-version 3.8.1 --image-tag v3.8.1-rc.2"
    )]
    Bump(ChartBumpArgs),
    /// Apply the `deploy:` edits of openim-release.yaml to a local deploy checkout.
    Apply(ChartApplyArgs),
}

/// Options shared by everything that edits deploy files.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Editing")]
pub struct EditArgs {
    /// Do not check that every referenced image exists in its registry first.
    #[arg(long)]
    pub no_verify: bool,
    /// Print the unified diff; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Exit with code 3 when there is nothing to change.
    #[arg(long)]
    pub exit_code: bool,
    /// Treat warnings as errors (exit 2, nothing written): a configured file or chart where no image of a configured service was found, an image in a registry that is not configured.
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ChartBumpArgs {
    /// The chart directory (with Chart.yaml).
    pub chart_dir: PathBuf,
    /// appVersion to set (X.Y.Z).
    #[arg(long, value_name = "VERSION")]
    pub app_version: String,
    /// Image tag to set.
    #[arg(long, value_name = "TAG")]
    pub image_tag: String,
    /// Values file [default: <CHART_DIR>/values.yaml].
    #[arg(long, value_name = "FILE")]
    pub values: Option<PathBuf>,
    /// Key path of the image tag in the values file.
    #[arg(long, default_value = "image.tag", value_name = "PATH")]
    pub key: String,
    /// How the chart version moves.
    #[arg(long, value_enum, default_value_t = crate::deploy::chart::ChartBump::Patch)]
    pub chart_bump: crate::deploy::chart::ChartBump,
    /// Pin this digest (sha256:…) too.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
    /// How a digest is recorded: `key` (image.digest) or `tag` (tag@sha256:…).
    #[arg(long, value_enum, default_value_t = crate::deploy::chart::DigestPin::Key)]
    pub pin: crate::deploy::chart::DigestPin,
    /// Registry and namespace of the services' images (repeatable): a subchart is bumped when it deploys `<registry>/<name>` [default: images.registries of openim-release.yaml, else the registry of the chart's own image].
    #[arg(long, value_name = "REGISTRY")]
    pub registry: Vec<String>,
    #[command(flatten)]
    pub edit: EditArgs,
}

/// The release being deployed.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Release")]
pub struct ReleaseArgs {
    /// Take version and tags from a stage: rc and patch mean the candidate
    /// HEAD already carries (`tag --stage rc --push` makes it), the others
    /// as `tag --stage STAGE` computes them.
    #[arg(long, value_enum, env = "OPENIM_RELEASE_STAGE")]
    pub stage: Option<Stage>,
    /// The version (X.Y.Z) for appVersion.
    #[arg(long = "version", value_name = "X.Y.Z")]
    pub version: Option<String>,
    /// The image tag to deploy [default: with --stage, the tag naming the commit (sha-<sha7>) for dev, the first tag for the other stages; see stages.<stage>.deploy_tag].
    #[arg(long, value_name = "TAG")]
    pub image_tag: Option<String>,
    /// `build --output json` output: pins the digests it lists.
    #[arg(long, value_name = "FILE")]
    pub digests: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ChartApplyArgs {
    /// The deploy checkout to edit.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[command(flatten)]
    pub edit: EditArgs,
}

#[derive(Debug, Args)]
pub struct GitopsArgs {
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// `pr` or `push` instead of deploy.mode.
    #[arg(long, value_enum)]
    pub mode: Option<crate::config::DeployMode>,
    /// The deploy branch to change instead of deploy.base.
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// Deploy only these services (repeatable): only their image tags are
    /// set, and no appVersion moves (it would move the others' images too).
    #[arg(long = "service", value_name = "NAME")]
    pub service: Vec<String>,
    /// Name of the stage in branch names and messages when no --stage is given.
    #[arg(long, hide = true, value_name = "NAME")]
    pub stage_name: Option<String>,
    #[command(flatten)]
    pub edit: EditArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BuildCmd {
    #[command(subcommand)]
    pub action: Option<BuildAction>,
    #[command(flatten)]
    pub run: BuildArgs,
}

#[derive(Debug, Subcommand)]
pub enum BuildAction {
    /// Print the GitHub Actions matrix (one entry per service and platform).
    Matrix(MatrixArgs),
    /// Assemble multi-platform indexes from per-platform digests and tag them.
    Merge(MergeArgs),
}

/// Which tags the images get.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Tags")]
pub struct TagSource {
    /// Use the tags of a stage: rc and patch mean the candidate HEAD already
    /// carries (`tag --stage rc --push` makes it), the others as `tag
    /// --stage STAGE` computes them.
    #[arg(long, value_enum, env = "OPENIM_RELEASE_STAGE", conflicts_with = "tag")]
    pub stage: Option<Stage>,
    /// Tag by hand (repeatable) instead of --stage.
    #[arg(long = "tag", value_name = "TAG")]
    pub tag: Vec<String>,
    /// With --stage: the version (X.Y.Z) for rc, release and patch.
    #[arg(long = "version", value_name = "X.Y.Z", requires = "stage")]
    pub version: Option<String>,
    /// With --stage: compute as if on branch NAME.
    #[arg(long, value_name = "NAME", requires = "stage")]
    pub branch: Option<String>,
}

/// Which images.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Selection")]
pub struct ImageSelect {
    /// Only these services (repeatable) [default: all].
    #[arg(long = "service", value_name = "NAME")]
    pub service: Vec<String>,
    /// Only these platforms (repeatable), e.g. linux/arm64 [default: images.platforms].
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platform: Vec<String>,
    /// Push to these registries (repeatable) instead of images.registries.
    #[arg(long = "registry", value_name = "REGISTRY")]
    pub registry: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub tags: TagSource,
    #[command(flatten)]
    pub select: ImageSelect,
    /// Services built at the same time [default: 4 per core, 4 to 16].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Print every image reference that would be built and pushed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Check what the build needs (services, Dockerfiles, contexts, the
    /// engine, every registry with its credentials) and stop before building.
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,
    /// Write the tags only when every service built: one failed service
    /// leaves the others untagged too (what `release` does, so `latest`
    /// never mixes versions); a re-run only tags them.
    #[arg(long)]
    pub all_or_none: bool,
    /// Build only; push nothing.
    #[arg(long, conflicts_with = "push_by_digest")]
    pub no_push: bool,
    /// Build for the engine's own platform into its image store, named as
    /// a push would name them (`<registry>/<service>:<tag>` for each
    /// registry, or `<service>:<tag>` without registries), with the
    /// release's labels; push nothing. For `docker compose up` on what a
    /// release would ship.
    #[arg(long, conflicts_with_all = ["push_by_digest", "all_or_none"])]
    pub load: bool,
    /// Rebuild even when an image with the same inputs was pushed before.
    #[arg(long)]
    pub rebuild: bool,
    /// Build without the engine's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Push the platform manifests by digest only, no tags (one leg of a
    /// matrix; `build merge` tags them). No --stage or --tag needed.
    #[arg(long)]
    pub push_by_digest: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub sign: SignArgs,
}

/// The signing key of the supply-chain attachments.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Supply chain")]
pub struct SignArgs {
    /// Sign each image and its provenance with this ECDSA P-256 private key
    /// (PEM, unencrypted), cosign-compatible. Without it, the key in
    /// OPENIM_RELEASE_SIGN_KEY (the PEM text itself); without either, the
    /// SBOMs and provenance are attached unsigned. See docs/supply-chain.md.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The image tag (repeatable).
    #[arg(long = "tag", value_name = "TAG", required = true)]
    pub tag: Vec<String>,
    #[command(flatten)]
    pub select: ServiceRegistrySelect,
    #[command(flatten)]
    pub sign: SignArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image tag (repeatable), or a digest (sha256:…).
    #[arg(long = "tag", value_name = "TAG", required = true)]
    pub tag: Vec<String>,
    /// The public key (PEM, `BEGIN PUBLIC KEY`: cosign.pub, or `openssl ec
    /// -pubout`). Without it, signatures are only looked for.
    #[arg(long, value_name = "PUB.pem")]
    pub key: Option<PathBuf>,
    /// The commit the provenance must name [default: the commit of the git
    /// tag TAG when the repository has it, else the image's revision label].
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    #[command(flatten)]
    pub select: ServiceRegistrySelect,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Which services, in which registries.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Selection")]
pub struct ServiceRegistrySelect {
    /// Only these services (repeatable) [default: all].
    #[arg(long = "service", value_name = "NAME")]
    pub service: Vec<String>,
    /// These registries (repeatable) instead of images.registries.
    #[arg(long = "registry", value_name = "REGISTRY")]
    pub registry: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    #[command(flatten)]
    pub select: ImageSelect,
    /// `json`: the matrix for `strategy.matrix`; `text`: one "service platform" line each.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Leg outputs of `build --push-by-digest --output json`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub tags: TagSource,
    /// The services the matrix was made for (as `build matrix --service`);
    /// default: every configured service.
    #[arg(long, value_name = "NAME")]
    pub service: Vec<String>,
    /// Merge the legs given even when some configured service or platform
    /// has none (otherwise refused: a lost leg would ship a single-platform
    /// image or leave a service untagged).
    #[arg(long)]
    pub partial: bool,
    /// Print what would be tagged; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub sign: SignArgs,
}

#[derive(Debug, Args)]
pub struct MirrorArgs {
    #[command(flatten)]
    pub tags: TagSource,
    /// The registry to copy from [default: the first of images.registries].
    #[arg(long, value_name = "REGISTRY")]
    pub from: Option<String>,
    /// A registry to copy to (repeatable) [default: images.mirrors of --from; with neither, every entry of images.mirrors].
    #[arg(long = "to", value_name = "REGISTRY")]
    pub to: Vec<String>,
    /// Only these services (repeatable) [default: all].
    #[arg(long = "service", value_name = "NAME")]
    pub service: Vec<String>,
    /// Blobs and manifests copied at once [default: 8].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the references that would be written; copy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum BundleCmd {
    /// Write every service image of a release (all platforms, signatures, attestations, SBOMs) and the deploy charts into one OCI image layout tar.
    #[command(after_help = "Examples:\n  \
            openim-release bundle export --tag v3.8.1 openim-v3.8.1.tar\n  \
            openim-release bundle export --stage release --version 3.8.1 --chart ../helm-charts/charts/openim-server openim-3.8.1.tar\n\n\
            The charts: --chart DIR, else the chart directories of deploy.charts in the deploy \
            repository (deploy.url cloned, or --deploy-dir), packaged as `helm package` does.")]
    Export(BundleExportArgs),
    /// Push a bundle into a registry (images, artifacts, charts as Helm OCI charts) and print the references.
    #[command(after_help = "Examples:\n  \
            openim-release bundle import openim-v3.8.1.tar --registry registry.lan:5000/openim --insecure\n  \
            openim-release bundle import openim-v3.8.1.tar --registry harbor.example.com/openim --dry-run\n\n\
            Prints each reference pushed as <registry>/<repository>:<tag>@<digest> (the digests \
            of the registry the bundle was exported from) and, for each chart, the helm install \
            command. Blobs the registry has are not sent again; tags are written last. Exit 1 \
            when the registry refuses, 2 when the file is not a bundle. Credentials as for build. \
            See docs/promote.md.")]
    Import(BundleImportArgs),
}

#[derive(Debug, Args)]
pub struct BundleExportArgs {
    /// The bundle to write (a tar; written as FILE.partial until complete).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub tags: TagSource,
    /// The registry to read the images from [default: the first of images.registries].
    #[arg(long, value_name = "REGISTRY")]
    pub from: Option<String>,
    /// Only these services (repeatable) [default: all].
    #[arg(long = "service", value_name = "NAME")]
    pub service: Vec<String>,
    /// A chart directory to bundle (repeatable) [default: those of deploy.charts].
    #[arg(long = "chart", value_name = "DIR", conflicts_with = "no_charts")]
    pub chart: Vec<PathBuf>,
    /// A checkout of the deploy repository to take deploy.charts from, instead of cloning deploy.url.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["chart", "no_charts"])]
    pub deploy_dir: Option<PathBuf>,
    /// Bundle no chart.
    #[arg(long)]
    pub no_charts: bool,
    /// Blobs and manifests read at once [default: 8].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Print what the bundle would hold; read and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct BundleImportArgs {
    /// The bundle (made by `bundle export`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The registry (and namespace) to push into: images go to <REGISTRY>/<repository>, charts to <REGISTRY>/charts/<name>.
    #[arg(long, value_name = "REGISTRY", required = true)]
    pub registry: String,
    /// Reach the registry over plain HTTP (loopback registries and images.insecure_registries always are).
    #[arg(long)]
    pub insecure: bool,
    /// Blobs and manifests pushed at once [default: 8].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the references the bundle would be pushed as; push nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub use crate::output::OutputFormat;

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The stage to compute tags for.
    #[arg(long, value_enum, env = "OPENIM_RELEASE_STAGE")]
    pub stage: Stage,

    /// Compute as if on branch NAME [default: GITHUB_HEAD_REF, GITHUB_REF_NAME, or the checked-out branch; in a pull request the dev tag is pr-N unless this is given].
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,

    /// The version to tag (X.Y.Z) instead of deriving it from the tags (rc, release, patch).
    #[arg(long = "version", value_name = "X.Y.Z")]
    pub version: Option<String>,

    /// rc: start a new candidate series by bumping this part of the highest
    /// release [default: continue the open series on HEAD's history, else
    /// patch]. Refused where the version is fixed (release branches,
    /// --version) and in other stages.
    #[arg(long, value_enum)]
    pub bump: Option<Bump>,

    /// The UTC date of a nightly (YYYY-MM-DD) [default: today].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<String>,

    /// Release stage: leave out the moving aliases (X.Y, X, latest).
    #[arg(long)]
    pub no_aliases: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub git: TagGitArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Creating and pushing the git tag")]
pub struct TagGitArgs {
    /// Create the stage's annotated git tag at HEAD.
    #[arg(long)]
    pub create: bool,

    /// Push the git tag to the remote (implies --create). A taken rc number is
    /// recomputed and retried, so concurrent runs never claim the same rc.
    #[arg(long)]
    pub push: bool,

    /// Nightly: delete dated nightly git tags beyond `tags.nightly.keep`
    /// (newest kept), locally and, with --push, on the remote.
    #[arg(long)]
    pub prune: bool,

    /// The remote to push to and to list tags from.
    #[arg(long, default_value = "origin", value_name = "NAME")]
    pub remote: String,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this release (repeatable): a git tag such as v3.8.3 or v3.8.3-patch.2 [default: every release].
    #[arg(long = "tag", value_name = "TAG", conflicts_with = "last")]
    pub tag: Vec<String>,
    /// Only the N highest releases.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Only these services (repeatable) [default: all].
    #[arg(long = "service", value_name = "NAME")]
    pub service: Vec<String>,
    /// These registries (repeatable) instead of images.registries.
    #[arg(long = "registry", value_name = "REGISTRY")]
    pub registry: Vec<String>,
    /// Also check every image the deploy repository references, on each environment branch.
    #[arg(long)]
    pub deploy: bool,
    /// With --deploy: these branches (repeatable) instead of the stages' bases and deploy.base.
    #[arg(long = "deploy-branch", value_name = "BRANCH", requires = "deploy")]
    pub deploy_branch: Vec<String>,
    /// Make the safe repairs after printing them: re-point aliases, write missing tags again (only within a registry that has the image). Never copies between registries, never rebuilds.
    #[arg(long)]
    pub fix: bool,
    /// Registry requests at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = crate::audit::DEFAULT_JOBS)]
    pub jobs: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing openim-release.yaml.
    #[arg(long)]
    pub force: bool,
    /// Only print the proposal; write nothing (`--dry-run` is the same).
    #[arg(long, alias = "dry-run")]
    pub print: bool,
}
