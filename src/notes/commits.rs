//! From commits to the entries of the notes: conventional-commit messages
//! (parsed with `git-conventional`), pull requests (`(#123)` in a subject,
//! GitHub's merge commits), reverts (a revert of a commit of the same range
//! cancels both), exclusions, and the services each entry touched. Pure.

use crate::clients::git::HistoryCommit;
use crate::config::notes::ChangelogConfig;
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// Someone who wrote a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub name: String,
    pub email: String,
    /// The GitHub login, when the email is GitHub's noreply address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

impl Person {
    fn new(name: &str, email: &str) -> Person {
        Person {
            name: name.trim().to_string(),
            email: email.trim().to_string(),
            login: login_of(email),
        }
    }

    /// Who this is, for telling people apart: the login, else the email.
    fn key(&self) -> String {
        match &self.login {
            Some(l) => format!("@{}", l.to_ascii_lowercase()),
            None if !self.email.is_empty() => self.email.to_ascii_lowercase(),
            None => self.name.to_ascii_lowercase(),
        }
    }

    /// `@login`, else the name.
    pub fn shown(&self) -> String {
        match &self.login {
            Some(l) => format!("@{l}"),
            None => self.name.clone(),
        }
    }
}

/// One line of the notes: a commit, or a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The commit (for a pull request, its merge commit).
    pub sha: String,
    /// The conventional-commit type (`feat`), lowercase; `None` for a
    /// message that is no conventional commit.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub scope: Option<String>,
    /// The description (conventional), else the subject; without the
    /// `(#123)` of a squash merge.
    pub description: String,
    /// The subject as written (without the `(#123)`).
    pub subject: String,
    pub breaking: bool,
    /// What breaks, from a `BREAKING CHANGE:` footer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaking_note: Option<String>,
    pub pull_requests: Vec<u64>,
    pub authors: Vec<Person>,
    /// The paths it changed.
    #[serde(skip)]
    pub files: Vec<String>,
    /// The services whose images these paths go into.
    pub services: Vec<String>,
    /// A revert of a commit before this range: the commit reverted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverts: Option<String>,
}

/// What became of the commits of the range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Commits in the range (merges' commits included).
    pub commits: usize,
    /// Commits and their reverts that cancel out within the range.
    pub reverted: usize,
    /// Entries left out by `changelog.exclude`.
    pub excluded: usize,
}

/// The entries of `history` (newest first, as [`crate::clients::git::Repo::history`]
/// gives it), oldest first; `services` says which services a path goes into.
pub fn entries(
    history: &[HistoryCommit],
    cfg: &ChangelogConfig,
    services: &dyn Fn(&[String]) -> Vec<String>,
) -> (Vec<Entry>, Counts) {
    let mut counts = Counts::default();
    let mut out: Vec<Entry> = Vec::new();
    for c in history.iter().rev() {
        counts.commits += 1 + c.merged.len();
        if c.parents > 1 {
            if let Some(pr) = pull_request_merge(&c.message) {
                let title = merge_title(&c.message).unwrap_or_else(|| {
                    // No title in the merge message: the branch's newest commit.
                    c.merged
                        .iter()
                        .find(|m| m.parents < 2)
                        .map(|m| subject_of(&m.message).to_string())
                        .unwrap_or_else(|| subject_of(&c.message).to_string())
                });
                let mut e = entry(&c.sha, &title, &c.message, &c.files);
                if !e.pull_requests.contains(&pr) {
                    e.pull_requests.insert(0, pr);
                }
                let mut authors: Vec<Person> = c
                    .merged
                    .iter()
                    .filter(|m| m.parents < 2)
                    .rev()
                    .flat_map(people_of)
                    .collect();
                if authors.is_empty() {
                    authors = people_of(c);
                }
                e.authors = unique(authors);
                out.push(e);
            } else {
                // Another merge (a branch into another): its commits, each.
                for m in c.merged.iter().rev().filter(|m| m.parents < 2) {
                    let mut e = entry(&m.sha, subject_of(&m.message), &m.message, &m.files);
                    e.authors = people_of(m);
                    out.push(e);
                }
            }
            continue;
        }
        let mut e = entry(&c.sha, subject_of(&c.message), &c.message, &c.files);
        e.authors = people_of(c);
        out.push(e);
    }
    // Reverts within the range cancel out, newest first (a revert of a
    // revert leaves the original in).
    let mut i = out.len();
    while i > 0 {
        i -= 1;
        let Some(target) = out[i].reverts.clone() else {
            continue;
        };
        if let Some(j) = out[..i].iter().position(|e| same_commit(&e.sha, &target)) {
            out.remove(i);
            out.remove(j);
            counts.reverted += 2;
            // Those between j and i moved down by one; go on below i.
            i -= 1;
        }
    }
    let messages: Vec<Regex> = cfg
        .exclude
        .messages
        .iter()
        .filter_map(|m| Regex::new(m).ok())
        .collect();
    let before = out.len();
    out.retain(|e| !excluded(e, cfg, &messages));
    counts.excluded = before - out.len();
    for e in &mut out {
        e.services = services(&e.files);
    }
    (out, counts)
}

fn same_commit(full: &str, abbrev: &str) -> bool {
    abbrev.len() >= 7 && full.starts_with(&abbrev.to_ascii_lowercase())
}

fn excluded(e: &Entry, cfg: &ChangelogConfig, messages: &[Regex]) -> bool {
    let ex = &cfg.exclude;
    let eq = |list: &[String], v: &str| list.iter().any(|x| x.eq_ignore_ascii_case(v));
    e.kind.as_deref().is_some_and(|k| eq(&ex.types, k))
        || e.scope.as_deref().is_some_and(|s| eq(&ex.scopes, s))
        || (!e.authors.is_empty()
            && e.authors
                .iter()
                .all(|a| eq(&ex.authors, &a.name) || eq(&ex.authors, &a.email)))
        || messages.iter().any(|r| r.is_match(&e.subject))
}

/// An entry from a title (the subject, or a pull request's title) and the
/// message (for the breaking-change footer and the revert).
fn entry(sha: &str, title: &str, message: &str, files: &[String]) -> Entry {
    let (title, prs) = strip_pull_requests(title);
    // The title, with the rest of the message for the footers.
    let body = message.split_once('\n').map(|(_, b)| b).unwrap_or("");
    let text = format!("{title}\n{body}");
    let parsed = git_conventional::Commit::parse(text.trim());
    let mut e = Entry {
        sha: sha.to_string(),
        kind: None,
        scope: None,
        description: title.clone(),
        subject: title.clone(),
        breaking: false,
        breaking_note: None,
        pull_requests: prs,
        authors: Vec::new(),
        files: files.to_vec(),
        services: Vec::new(),
        reverts: reverted_commit(message),
    };
    if let Ok(c) = parsed {
        e.kind = Some(c.type_().as_str().to_ascii_lowercase());
        e.scope = c.scope().map(|s| s.as_str().to_string());
        e.description = c.description().trim().to_string();
        e.breaking = c.breaking();
        e.breaking_note = c
            .breaking_description()
            .map(|d| d.trim().to_string())
            .filter(|d| *d != e.description);
    }
    if e.reverts.is_some() && e.kind.is_none() {
        e.kind = Some("revert".into());
    }
    e
}

/// The first line of a message.
fn subject_of(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}

/// `feat: x (#12)` → (`feat: x`, [12]); several at the end count
/// (`(#12) (#14)`, as cherry-picks write them).
fn strip_pull_requests(title: &str) -> (String, Vec<u64>) {
    static TAIL: OnceLock<Regex> = OnceLock::new();
    let re = TAIL.get_or_init(|| Regex::new(r"\s*\(#(\d+)\)\s*$").expect("static regex"));
    let mut rest = title.trim().to_string();
    let mut prs = Vec::new();
    while let Some(c) = re.captures(&rest) {
        if let Ok(n) = c[1].parse() {
            prs.insert(0, n);
        }
        let start = c.get(0).map_or(rest.len(), |m| m.start());
        rest.truncate(start);
    }
    (rest, prs)
}

/// GitHub's merge commit of a pull request: `Merge pull request #12 from owner/branch`.
fn pull_request_merge(message: &str) -> Option<u64> {
    static MERGE: OnceLock<Regex> = OnceLock::new();
    let re = MERGE
        .get_or_init(|| Regex::new(r"^Merge pull request #(\d+) from \S+").expect("static regex"));
    re.captures(subject_of(message))?[1].parse().ok()
}

/// The pull request's title GitHub writes below the merge subject.
fn merge_title(message: &str) -> Option<String> {
    message
        .lines()
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// `This reverts commit <sha>.` of `git revert`.
fn reverted_commit(message: &str) -> Option<String> {
    static REVERT: OnceLock<Regex> = OnceLock::new();
    let re = REVERT.get_or_init(|| {
        Regex::new(r"(?m)^This reverts commit ([0-9a-fA-F]{7,40})\b").expect("static regex")
    });
    Some(re.captures(message)?[1].to_ascii_lowercase())
}

/// The author and the `Co-authored-by:` trailers of a commit.
fn people_of(c: &HistoryCommit) -> Vec<Person> {
    static CO: OnceLock<Regex> = OnceLock::new();
    let re = CO.get_or_init(|| {
        Regex::new(r"(?mi)^co-authored-by:\s*(.+?)\s*<([^>]*)>\s*$").expect("static regex")
    });
    let mut out = vec![Person::new(&c.author_name, &c.author_email)];
    for cap in re.captures_iter(&c.message) {
        out.push(Person::new(&cap[1], &cap[2]));
    }
    out
}

/// `12345+login@users.noreply.github.com` or `login@users.noreply.github.com` → `login`.
fn login_of(email: &str) -> Option<String> {
    static NOREPLY: OnceLock<Regex> = OnceLock::new();
    let re = NOREPLY.get_or_init(|| {
        Regex::new(r"(?i)^(?:\d+\+)?([a-z0-9][a-z0-9-]*(?:\[bot\])?)@users\.noreply\.github\.com$")
            .expect("static regex")
    });
    Some(re.captures(email.trim())?[1].to_string())
}

/// People once each, in order of appearance.
pub fn unique(people: impl IntoIterator<Item = Person>) -> Vec<Person> {
    let mut seen = BTreeSet::new();
    people
        .into_iter()
        .filter(|p| seen.insert(p.key()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(sha: &str, message: &str, files: &[&str]) -> HistoryCommit {
        HistoryCommit {
            sha: sha.repeat(40 / sha.len()),
            message: message.into(),
            author_name: "Alice".into(),
            author_email: "1234+alice@users.noreply.github.com".into(),
            time: 0,
            parents: 1,
            files: files.iter().map(|f| f.to_string()).collect(),
            merged: Vec::new(),
        }
    }

    fn by_path(files: &[String]) -> Vec<String> {
        let mut s: Vec<String> = files
            .iter()
            .filter_map(|f| {
                f.strip_prefix("cmd/")?
                    .split('/')
                    .next()
                    .map(str::to_string)
            })
            .collect();
        s.dedup();
        s
    }

    #[test]
    fn conventional_subjects_pull_requests_and_breaking_footers() {
        let history = vec![
            commit(
                "b",
                "feat(api)!: drop the v1 login route (#31)\n\nBREAKING CHANGE: clients must use /v2/login\n",
                &["cmd/openim-api/main.go"],
            ),
            commit("a", "fix: retry pushes (#12) (#14)", &["cmd/openim-push/main.go"]),
        ];
        let (e, counts) = entries(&history, &ChangelogConfig::default(), &by_path);
        assert_eq!(counts.commits, 2);
        assert_eq!(e[0].kind.as_deref(), Some("fix"));
        assert_eq!(e[0].description, "retry pushes");
        assert_eq!(e[0].pull_requests, [12, 14]);
        assert_eq!(e[0].services, ["openim-push"]);
        assert!(e[1].breaking);
        assert_eq!(e[1].scope.as_deref(), Some("api"));
        assert_eq!(
            e[1].breaking_note.as_deref(),
            Some("clients must use /v2/login")
        );
        assert_eq!(e[1].authors[0].shown(), "@alice");
    }

    #[test]
    fn a_pull_request_merge_is_one_entry_with_its_branch_authors() {
        let mut merge = commit(
            "m",
            "Merge pull request #7 from bob/login\n\nfeat(api): login with SSO\n",
            &["cmd/openim-api/sso.go"],
        );
        merge.parents = 2;
        let mut side = commit("s", "wip", &["cmd/openim-api/sso.go"]);
        side.author_name = "Bob".into();
        side.author_email = "bob@example.com".into();
        merge.merged = vec![side];
        let (e, _) = entries(&[merge], &ChangelogConfig::default(), &by_path);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].pull_requests, [7]);
        assert_eq!(e[0].description, "login with SSO");
        assert_eq!(e[0].authors[0].shown(), "Bob");
    }

    #[test]
    fn reverts_within_the_range_cancel_and_others_stay() {
        let a = commit("a", "feat: one", &[]);
        let b = commit(
            "b",
            &format!(
                "Revert \"feat: one\"\n\nThis reverts commit {}.\n",
                "a".repeat(40)
            ),
            &[],
        );
        let c = commit(
            "c",
            "Revert \"fix: older\"\n\nThis reverts commit 0123456789abcdef.\n",
            &[],
        );
        let (e, counts) = entries(&[c, b, a], &ChangelogConfig::default(), &by_path);
        assert_eq!(counts.reverted, 2);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind.as_deref(), Some("revert"));
        assert_eq!(e[0].reverts.as_deref(), Some("0123456789abcdef"));
    }

    #[test]
    fn exclusions() {
        let cfg: ChangelogConfig = serde_yaml_ng::from_str(
            "exclude:\n  types: [chore]\n  scopes: [deps]\n  authors: ['dependabot[bot]']\n  messages: ['^wip']\n",
        )
        .unwrap();
        let mut bot = commit("d", "fix: bump x", &[]);
        bot.author_name = "dependabot[bot]".into();
        let history = vec![
            commit("a", "chore: tidy", &[]),
            commit("b", "fix(deps): bump y", &[]),
            commit("c", "wip things", &[]),
            bot,
            commit("e", "feat: kept", &[]),
        ];
        let (e, counts) = entries(&history, &cfg, &by_path);
        assert_eq!(counts.excluded, 4);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].description, "kept");
    }
}
