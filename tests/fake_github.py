#!/usr/bin/env python3
"""Stateful fake of the GitHub REST API for the integration tests of openim-release.

Python 3.11 standard library only. It listens on 127.0.0.1 and never talks to
any other host. Response bodies are built from the GitHub-shaped documents in
the fixture directory (``tests/fixtures/github`` next to this file; its
README.md maps each file to its endpoint): every answer is a deep copy of a
fixture document with the fields that matter filled in from the fake's state,
and with every ``https://api.github.com``, ``https://github.com``,
``https://uploads.github.com``, ``https://svn.github.com`` and
``https://avatars.githubusercontent.com`` URL rewritten to the fake's own base
URL (``http://127.0.0.1:PORT``); ``git://`` and ``git@`` clone URLs point at
127.0.0.1 as well.

Usage
-----
    python3 tests/fake_github.py --port 0 --token TOKEN [--fixtures DIR]
                                 [--state-file FILE] [--verbose]
    python3 tests/fake_github.py --self-test

With ``--port 0`` a free port is picked. Once listening, exactly one line
``READY http://127.0.0.1:PORT`` is printed to stdout (flushed). The server runs
until SIGTERM/SIGINT, then exits 0. ``--fixtures`` defaults to
``$FAKE_GITHUB_FIXTURES`` or else ``fixtures/github`` in this file's directory
(``tests/fixtures/github``), so the fake needs nothing outside the repository.
``--state-file`` rewrites a JSON snapshot (the ``GET /_fake/state`` document)
after every request; it is never read back.

Authentication
--------------
Every API request needs ``Authorization: token TOKEN``, ``Authorization: Bearer
TOKEN`` or ``Authorization: Basic base64(USER:TOKEN)`` (e.g. ``x-access-token``
as USER). Otherwise: 401 with the ``bad_credentials`` answer of errors.json.
The authenticated user is the ``user_data.json`` login (``openim-robot``); it is
the author of every pull request and release created through the API.

API endpoints (an optional ``/api/v3`` path prefix is accepted)
---------------------------------------------------------------
    GET    /user
    GET    /repos/{o}/{r}/pulls ?state=open|closed|all &head=OWNER:BRANCH
                               &base=BRANCH &sort=created|updated
                               &direction=asc|desc &per_page &page
           (like GitHub, a ``head`` without ``OWNER:`` is silently ignored;
           pages carry a ``Link`` header)
    POST   /repos/{o}/{r}/pulls            -> 201 (title, head, base, body,
           draft, maintainer_can_modify); 422 ``pull_request_already_exists``
           if an OPEN pull request has the same head and base; 422
           "Validation Failed" / missing_field for a missing title/head/base
    GET    /repos/{o}/{r}/pulls/{n}
    PATCH  /repos/{o}/{r}/pulls/{n}        (title, body, state, base,
           maintainer_can_modify) -> 200
    POST   /repos/{o}/{r}/pulls/{n}/requested_reviewers  (reviewers,
           team_reviewers) -> 201 with the pull request; 422 when the author
           is asked to review
    DELETE /repos/{o}/{r}/pulls/{n}/requested_reviewers  -> 200 with the PR
    GET    /repos/{o}/{r}/issues/{n}       (issue view of the pull request)
    GET    /repos/{o}/{r}/issues/{n}/labels                 -> 200 list
    POST   /repos/{o}/{r}/issues/{n}/labels  (add)          -> 200 list
    PUT    /repos/{o}/{r}/issues/{n}/labels  (replace)      -> 200 list
           body ``{"labels": [...]}`` or a bare list; items are names or
           ``{"name": ...}``; names match case-insensitively
    DELETE /repos/{o}/{r}/issues/{n}/labels                 -> 204
    DELETE /repos/{o}/{r}/issues/{n}/labels/{name}          -> 200 list, or
           404 "Label does not exist"
    GET    /repos/{o}/{r}/releases  (newest first, drafts included, paginated)
    GET    /repos/{o}/{r}/releases/tags/{tag}  (published releases only: a
           draft is 404 here, as on GitHub)
    GET    /repos/{o}/{r}/releases/latest  (the release marked latest)
    GET    /repos/{o}/{r}/releases/{id}
    POST   /repos/{o}/{r}/releases  -> 201 (tag_name, target_commitish, name,
           body, draft, prerelease, make_latest); 422 "Validation Failed" with
           ``{"resource": "Release", "code": "already_exists", "field":
           "tag_name"}`` for a tag that has a release (drafts included): one
           release per tag
    PATCH  /repos/{o}/{r}/releases/{id}  (tag_name, target_commitish, name,
           body, draft, prerelease, make_latest) -> 200; a draft made
           public gets its published_at; a tag_name another release has
           -> 422 already_exists
    DELETE /repos/{o}/{r}/releases/{id}  -> 204
    GET    /repos/{o}/{r}/compare/{base}...{head}  (the fixture, URLs filled)

Repositories exist implicitly on first use (owner/repo names are
case-insensitive, as on GitHub) unless ``implicit_repos`` is switched off
through the control API; then unknown repositories answer errors.json's
``not_found``. Unknown routes and unknown numbers/tags answer 404 too.
Pull request and issue numbers are per repository and start at 1.

Control API (no authentication, never recorded in ``requests``)
---------------------------------------------------------------
    GET    /_fake/state    all state: ``repos`` -> {"owner/repo": {pulls: [...],
                           releases: [...], labels: [...]}}, ``requests``
                           (every API call in order: method, path, query,
                           status, injected, fault, body), ``counts``
                           (total, injected, by_status, by_endpoint),
                           ``faults`` (rules still armed) and ``config``
    POST   /_fake/reset    clear everything (state, requests, faults, config)
    GET    /_fake/faults   armed fault rules
    POST   /_fake/faults   arm more rules: ``{"rules": [RULE, ...]}``
    DELETE /_fake/faults   disarm all rules
    POST   /_fake/config   ``{"implicit_repos": false}``
    POST   /_fake/repos/{o}/{r}   create a repository explicitly
           (optional body ``{"default_branch": "main"}``)
    POST   /_fake/pulls/{o}/{r}/{n}/close | merge | reopen
           act as a human would on github.com (merge needs an open PR)

Fault rules
-----------
A rule intercepts the next matching authenticated API requests (up to
``times``, default 1; ``"times": null`` means forever) and answers instead of
the normal processing. Rules are tried in the order they were armed.

    method      optional HTTP method to match (any if absent)
    path_regex  optional ``re.search`` pattern on the path (no query string)
    times       how many requests to intercept (default 1, null = unlimited)
    delay       optional seconds to sleep before answering
    kind        one of:
      "status"               (implied by ``status``) answer ``status`` with the
                             body of the errors.json entry with that status
                             (first in file order: 401 bad_credentials,
                             403 secondary_rate_limit, 404 not_found,
                             422 pull_request_already_exists, 502 bad_gateway)
                             but without its headers; other statuses get
                             ``{"message": <reason>}``. ``message`` overrides
                             the message.
      "error"                (implied by ``error``) the errors.json entry named
                             by ``error`` verbatim, headers included
      "secondary_rate_limit" 403 (or ``status``: 429) + ``retry-after:
                             retry_after`` (default 1)
      "primary_rate_limit"   403 (or ``status``: 429) + ``x-ratelimit-remaining:
                             0`` and ``x-ratelimit-reset: now + reset_in``
                             (default 1)
      "already_exists"       422 ``pull_request_already_exists`` naming the
                             head of the request body, without creating
                             anything -- or, with ``"create_first": true``,
                             after creating the pull request from the request
                             body (a concurrent creator won the race). On
                             ``POST .../releases`` the release's 422
                             ``already_exists`` answer instead, and
                             ``create_first`` creates the release
    headers     optional extra response headers

Injected answers are recorded in ``requests`` with ``"injected": true``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import http.server
import itertools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

HOST = "127.0.0.1"
RATE_LIMIT = 5000
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
FIXTURE_FILES = {
    "errors": "errors.json",
    "labels": "issues_remove_label.json",
    "pull": "pull_request.json",
    "compare": "repo_compare_commits.json",
    "release": "repos_releases_get_by_tag.json",
    "releases": "repos_releases_list.json",
    "user": "user_data.json",
}
REAL_HOSTS = (
    "https://api.github.com",
    "https://uploads.github.com",
    "https://avatars.githubusercontent.com",
    "https://svn.github.com",
    "https://github.com",
)
DOCS = "https://docs.github.com/rest"


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stable_id(*parts: object) -> int:
    digest = hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:8], 16) % 90_000_000 + 10_000_000


def fake_sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


def map_strings(doc, fn):
    """Apply fn to every string inside a JSON document (returns a new one)."""
    if isinstance(doc, dict):
        return {k: map_strings(v, fn) for k, v in doc.items()}
    if isinstance(doc, list):
        return [map_strings(v, fn) for v in doc]
    if isinstance(doc, str):
        return fn(doc)
    return doc


def replace_in_strings(doc, old: str, new: str):
    return map_strings(doc, lambda s: s.replace(old, new))


def rewrite_hosts(doc, base_url: str):
    """Point every GitHub URL of a fixture at the fake (clone URLs included)."""
    netloc = urllib.parse.urlsplit(base_url).netloc
    pairs = [(host, base_url) for host in REAL_HOSTS] + [
        ("git://github.com/", f"git://{netloc}/"),
        ("git@github.com:", f"git@{HOST}:"),
    ]

    def fix(s: str) -> str:
        for old, new in pairs:
            s = s.replace(old, new)
        return s
    return map_strings(doc, fix)


def find_default_fixtures() -> Path:
    """``$FAKE_GITHUB_FIXTURES``, or else the repository's tests/fixtures/github."""
    env = os.environ.get("FAKE_GITHUB_FIXTURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "fixtures" / "github"


def load_fixtures(directory: Path) -> dict:
    fixtures = {}
    for key, name in FIXTURE_FILES.items():
        with open(directory / name, encoding="utf-8") as fh:
            fixtures[key] = json.load(fh)
    return fixtures


# --------------------------------------------------------------------------
# Replies and errors
# --------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    body: object = None          # JSON-able; None -> empty body
    headers: dict = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, reply: Reply):
        super().__init__(reply.status)
        self.reply = reply


def validation_failed(errors: list, doc: str) -> ApiError:
    return ApiError(Reply(422, {
        "message": "Validation Failed",
        "errors": errors,
        "documentation_url": f"{DOCS}/{doc}",
        "status": "422",
    }))


def missing_field(resource: str, fieldname: str, doc: str) -> ApiError:
    return validation_failed(
        [{"resource": resource, "field": fieldname, "code": "missing_field"}], doc)


def invalid_field(resource: str, fieldname: str, value, doc: str) -> ApiError:
    return validation_failed(
        [{"value": value, "resource": resource, "field": fieldname, "code": "invalid"}], doc)


def plain_error(status: int, message: str, doc: str = "") -> ApiError:
    return ApiError(Reply(status, {
        "message": message,
        "documentation_url": f"{DOCS}/{doc}" if doc else DOCS,
        "status": str(status),
    }))


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

@dataclass
class Pull:
    number: int
    title: str
    body: str | None
    head_owner: str
    head_ref: str
    base_ref: str
    author: str
    draft: bool = False
    maintainer_can_modify: bool = True
    state: str = "open"
    merged: bool = False
    labels: list = field(default_factory=list)            # label names
    reviewers: list = field(default_factory=list)         # logins
    team_reviewers: list = field(default_factory=list)    # team slugs
    head_sha: str = ""
    base_sha: str = ""
    merge_commit_sha: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None
    merged_at: str | None = None

    @property
    def head_label(self) -> str:
        return f"{self.head_owner}:{self.head_ref}"

    def touch(self) -> None:
        self.updated_at = now_iso()

    def close(self) -> None:
        self.state = "closed"
        self.closed_at = now_iso()
        self.touch()

    def reopen(self) -> None:
        self.state = "open"
        self.closed_at = None
        self.touch()

    def merge(self) -> None:
        self.merged = True
        self.merged_at = now_iso()
        self.merge_commit_sha = fake_sha("merge", self.head_sha, self.base_ref)
        self.close()


@dataclass
class Release:
    id: int
    tag_name: str
    target_commitish: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    author: str
    created_at: str = field(default_factory=now_iso)
    published_at: str | None = None
    updates: int = 0


@dataclass
class Repo:
    owner: str
    name: str
    default_branch: str = "main"
    next_number: int = 1
    pulls: dict = field(default_factory=dict)      # number -> Pull
    labels: dict = field(default_factory=dict)     # lower name -> label info
    releases: list = field(default_factory=list)   # Release, oldest first
    latest_release: int | None = None              # the id marked latest

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def allocate_number(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    def open_pull_for(self, head_owner: str, head_ref: str, base_ref: str,
                      exclude: int | None = None) -> Pull | None:
        for pr in self.pulls.values():
            if (pr.state == "open" and pr.number != exclude
                    and pr.head_owner.lower() == head_owner.lower()
                    and pr.head_ref == head_ref and pr.base_ref == base_ref):
                return pr
        return None

    def label(self, name: str, ids) -> dict:
        """The repository label called name (case-insensitive), created on demand."""
        key = name.lower()
        if key not in self.labels:
            self.labels[key] = {"id": next(ids), "name": name, "color": "ededed",
                                "description": None, "default": False}
        return self.labels[key]


@dataclass
class FaultRule:
    kind: str
    method: str | None = None
    path_regex: str | None = None
    times: int | None = 1
    status: int | None = None
    error: str | None = None
    message: str | None = None
    retry_after: int = 1
    reset_in: int = 1
    create_first: bool = False
    delay: float = 0.0
    headers: dict = field(default_factory=dict)
    hits: int = 0

    KINDS = ("status", "error", "secondary_rate_limit", "primary_rate_limit",
             "already_exists")

    @classmethod
    def from_json(cls, doc: dict, error_keys) -> "FaultRule":
        if not isinstance(doc, dict):
            raise ValueError("a rule must be an object")
        kind = doc.get("kind") or ("error" if "error" in doc else
                                   "status" if "status" in doc else None)
        if kind not in cls.KINDS:
            raise ValueError(f"rule needs kind in {cls.KINDS}, status or error: {doc}")
        if kind == "status" and not isinstance(doc.get("status"), int):
            raise ValueError(f"status rule needs an integer status: {doc}")
        if kind == "error" and doc.get("error") not in error_keys:
            raise ValueError(f"unknown errors.json key {doc.get('error')!r}; "
                             f"known: {sorted(error_keys)}")
        if doc.get("path_regex") is not None:
            re.compile(doc["path_regex"])
        times = doc.get("times", 1)
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be a positive integer or null: {doc}")
        return cls(
            kind=kind,
            method=(doc.get("method") or "").upper() or None,
            path_regex=doc.get("path_regex"),
            times=times,
            status=doc.get("status"),
            error=doc.get("error"),
            message=doc.get("message"),
            retry_after=int(doc.get("retry_after", 1)),
            reset_in=int(doc.get("reset_in", 1)),
            create_first=bool(doc.get("create_first", False)),
            delay=float(doc.get("delay", 0) or 0),
            headers={str(k).lower(): str(v) for k, v in (doc.get("headers") or {}).items()},
        )

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and self.method != method:
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def to_json(self) -> dict:
        doc = {k: v for k, v in self.__dict__.items() if v not in (None, {}, False)}
        if self.kind != "secondary_rate_limit":
            doc.pop("retry_after", None)
        if self.kind != "primary_rate_limit":
            doc.pop("reset_in", None)
        doc["times"] = self.times
        doc["hits"] = self.hits
        return doc


# --------------------------------------------------------------------------
# Rendering fixture documents from state
# --------------------------------------------------------------------------

class Renderer:
    """Builds GitHub-shaped JSON from fixture templates and fake state."""

    def __init__(self, fixtures: dict, base_url: str):
        self.fx = rewrite_hosts(copy.deepcopy(fixtures), base_url)
        self.base = base_url
        self.me = self.fx["user"]["login"]
        pull = self.fx["pull"]
        # Each template's own login or repository name is what gets replaced.
        self.user_template = pull["user"]
        self.reviewer_template = pull["requested_reviewers"][0]
        self.team_template = pull["requested_teams"][0]
        self.repo_template = pull["base"]["repo"]
        self.label_template = self.fx["labels"][0]
        self.compare_repo = re.search(r"/repos/([^/]+/[^/]+)/compare/",
                                      self.fx["compare"]["url"]).group(1)

    # -- small building blocks ------------------------------------------

    def api(self, repo: Repo) -> str:
        return f"{self.base}/repos/{repo.owner}/{repo.name}"

    def web(self, repo: Repo) -> str:
        return f"{self.base}/{repo.owner}/{repo.name}"

    def user(self, login: str) -> dict:
        doc = replace_in_strings(self.user_template, self.user_template["login"], login)
        uid = self.fx["user"]["id"] if login == self.me else stable_id("user", login)
        doc.update(login=login, id=uid, node_id=node_id("User", uid))
        return doc

    def reviewer(self, login: str) -> dict:
        doc = replace_in_strings(self.reviewer_template, self.reviewer_template["login"],
                                 login)
        uid = self.fx["user"]["id"] if login == self.me else stable_id("user", login)
        doc.update(login=login, id=uid, node_id=node_id("User", uid))
        return doc

    def team(self, org: str, slug: str) -> dict:
        doc = copy.deepcopy(self.team_template)
        tid = stable_id("team", org.lower(), slug)
        doc.update(id=tid, node_id=node_id("Team", tid), slug=slug, name=slug,
                   description=None,
                   url=f"{self.base}/teams/{tid}",
                   html_url=f"{self.base}/orgs/{org}/teams/{slug}",
                   members_url=f"{self.base}/teams/{tid}/members{{/member}}",
                   repositories_url=f"{self.base}/teams/{tid}/repos")
        return doc

    def repo(self, owner: str, repo: Repo, open_count: int) -> dict:
        doc = replace_in_strings(self.repo_template, self.repo_template["full_name"],
                                 f"{owner}/{repo.name}")
        rid = stable_id("repo", owner.lower(), repo.name.lower())
        doc.update(id=rid, node_id=node_id("Repository", rid), name=repo.name,
                   full_name=f"{owner}/{repo.name}", owner=self.user(owner),
                   default_branch=repo.default_branch, description=None,
                   homepage=None, topics=[], is_template=False,
                   open_issues_count=open_count, open_issues=open_count)
        return doc

    def label(self, repo: Repo, name: str) -> dict:
        info = repo.labels[name.lower()]
        doc = copy.deepcopy(self.label_template)
        doc.update(id=info["id"], node_id=node_id("Label", info["id"]),
                   url=f"{self.api(repo)}/labels/{urllib.parse.quote(info['name'])}",
                   name=info["name"], description=info["description"],
                   color=info["color"], default=info["default"])
        return doc

    # -- pull requests ----------------------------------------------------

    def pull(self, repo: Repo, pr: Pull, full: bool = True) -> dict:
        doc = copy.deepcopy(self.fx["pull"])
        url = f"{self.api(repo)}/pulls/{pr.number}"
        html = f"{self.web(repo)}/pull/{pr.number}"
        issue = f"{self.api(repo)}/issues/{pr.number}"
        pid = stable_id("pull", repo.full_name.lower(), pr.number)
        open_count = sum(1 for p in repo.pulls.values() if p.state == "open")
        doc.update(
            url=url, id=pid, node_id=node_id("PullRequest", pid), html_url=html,
            diff_url=f"{html}.diff", patch_url=f"{html}.patch", issue_url=issue,
            commits_url=f"{url}/commits", review_comments_url=f"{url}/comments",
            review_comment_url=f"{self.api(repo)}/pulls/comments{{/number}}",
            comments_url=f"{issue}/comments",
            statuses_url=f"{self.api(repo)}/statuses/{pr.head_sha}",
            number=pr.number, state=pr.state, locked=False, title=pr.title,
            user=self.user(pr.author), body=pr.body,
            labels=[self.label(repo, name) for name in pr.labels],
            milestone=None, active_lock_reason=None,
            created_at=pr.created_at, updated_at=pr.updated_at,
            closed_at=pr.closed_at, merged_at=pr.merged_at,
            merge_commit_sha=pr.merge_commit_sha, assignee=None, assignees=[],
            requested_reviewers=[self.reviewer(login) for login in pr.reviewers],
            requested_teams=[self.team(repo.owner, slug) for slug in pr.team_reviewers],
            author_association="OWNER" if pr.author.lower() == repo.owner.lower()
            else "CONTRIBUTOR",
            auto_merge=None, draft=pr.draft,
        )
        doc["head"] = self.branch(doc["head"], repo, pr.head_owner, pr.head_ref,
                                  pr.head_sha, open_count)
        doc["base"] = self.branch(doc["base"], repo, repo.owner, pr.base_ref,
                                  pr.base_sha, open_count)
        doc["_links"] = {
            "self": {"href": url}, "html": {"href": html},
            "issue": {"href": issue}, "comments": {"href": f"{issue}/comments"},
            "review_comments": {"href": f"{url}/comments"},
            "review_comment": {"href": doc["review_comment_url"]},
            "commits": {"href": f"{url}/commits"},
            "statuses": {"href": doc["statuses_url"]},
        }
        if full:
            doc.update(self.pull_details(pr))
        return doc

    def branch(self, template: dict, repo: Repo, owner: str, ref: str, sha: str,
               open_count: int) -> dict:
        doc = copy.deepcopy(template)
        doc.update(label=f"{owner}:{ref}", ref=ref, sha=sha, user=self.user(owner),
                   repo=self.repo(owner, repo, open_count))
        return doc

    def pull_details(self, pr: Pull) -> dict:
        """Fields GitHub adds to a single pull request (not in list answers)."""
        if pr.state == "open":
            mergeable, state = True, "draft" if pr.draft else "clean"
        else:
            mergeable, state = None, "unknown"
        return {
            "merged": pr.merged,
            "mergeable": mergeable,
            "rebaseable": mergeable,
            "mergeable_state": state,
            "merged_by": self.user(self.me) if pr.merged else None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": pr.maintainer_can_modify,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }

    def issue(self, repo: Repo, pr: Pull) -> dict:
        url = f"{self.api(repo)}/issues/{pr.number}"
        html = f"{self.web(repo)}/pull/{pr.number}"
        iid = stable_id("issue", repo.full_name.lower(), pr.number)
        return {
            "id": iid, "node_id": node_id("PullRequest", iid), "url": url,
            "repository_url": self.api(repo),
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments", "events_url": f"{url}/events",
            "html_url": html, "number": pr.number, "state": pr.state,
            "state_reason": None, "title": pr.title, "body": pr.body,
            "user": self.user(pr.author),
            "labels": [self.label(repo, name) for name in pr.labels],
            "assignee": None, "assignees": [], "milestone": None,
            "locked": False, "active_lock_reason": None, "comments": 0,
            "pull_request": {
                "url": f"{self.api(repo)}/pulls/{pr.number}", "html_url": html,
                "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
                "merged_at": pr.merged_at,
            },
            "closed_at": pr.closed_at, "closed_by": None,
            "created_at": pr.created_at, "updated_at": pr.updated_at,
            "author_association": "OWNER" if pr.author.lower() == repo.owner.lower()
            else "CONTRIBUTOR",
        }

    # -- releases, compare, user --------------------------------------------

    def release(self, repo: Repo, rel: Release, listing: bool = False) -> dict:
        template = self.fx["releases"][0] if listing else self.fx["release"]
        doc = copy.deepcopy(template)
        url = f"{self.api(repo)}/releases/{rel.id}"
        doc.update(
            url=url, assets_url=f"{url}/assets",
            upload_url=f"{url}/assets{{?name,label}}",
            html_url=f"{self.web(repo)}/releases/tag/{urllib.parse.quote(rel.tag_name)}",
            id=rel.id, author=self.user(rel.author),
            node_id=node_id("Release", rel.id), tag_name=rel.tag_name,
            target_commitish=rel.target_commitish, name=rel.name,
            draft=rel.draft, prerelease=rel.prerelease, immutable=False,
            created_at=rel.created_at, published_at=rel.published_at, assets=[],
            tarball_url=f"{self.api(repo)}/tarball/{rel.tag_name}",
            zipball_url=f"{self.api(repo)}/zipball/{rel.tag_name}",
            body=rel.body,
        )
        return doc

    def compare(self, repo: Repo, base: str, head: str) -> dict:
        doc = replace_in_strings(self.fx["compare"], self.compare_repo, repo.full_name)
        spec = f"{base}...{head}"
        doc.update(url=f"{self.api(repo)}/compare/{spec}",
                   html_url=f"{self.web(repo)}/compare/{spec}",
                   permalink_url=f"{self.web(repo)}/compare/{repo.owner}:{base}...{repo.owner}:{head}",
                   diff_url=f"{self.web(repo)}/compare/{spec}.diff",
                   patch_url=f"{self.web(repo)}/compare/{spec}.patch")
        return doc

    def me_doc(self) -> dict:
        return copy.deepcopy(self.fx["user"])


# --------------------------------------------------------------------------
# The fake itself: state, routing, faults, control API
# --------------------------------------------------------------------------

def parse_head(head: str, default_owner: str) -> tuple[str, str]:
    if ":" in head:
        owner, ref = head.split(":", 1)
        return owner, ref
    return default_owner, head


def label_names(body) -> list[str]:
    items = body.get("labels") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise invalid_field("Label", "labels", items,
                            "issues/labels#add-labels-to-an-issue")
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise invalid_field("Label", "labels", item,
                                "issues/labels#add-labels-to-an-issue")
        names.append(name)
    return names


def query_value(query: dict, name: str, default=None):
    values = query.get(name)
    return values[-1] if values else default


def int_param(query: dict, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(query_value(query, name, default))
    except (TypeError, ValueError):
        return default
    return max(low, min(high, value))


class FakeGitHub:
    def __init__(self, fixtures: dict, token: str, base_url: str,
                 state_file: str | None = None):
        self.fixtures = fixtures
        self.errors = fixtures["errors"]
        self.token = token
        self.base_url = base_url
        self.state_file = state_file
        self.render = Renderer(fixtures, base_url)
        self.lock = threading.RLock()
        self.routes = self.build_routes()
        self.reset()

    # -- state -------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.repos: dict[str, Repo] = {}
            self.requests: list[dict] = []
            self.faults: list[FaultRule] = []
            self.config = {"implicit_repos": True}
            self.ids = itertools.count(1)
            self.rate_used = 0
            self.rate_reset = int(time.time()) + 3600

    def repo(self, owner: str, name: str, create: bool | None = None) -> Repo:
        key = f"{owner}/{name}".lower()
        if key not in self.repos:
            if not (self.config["implicit_repos"] if create is None else create):
                raise ApiError(self.error_reply("not_found"))
            self.repos[key] = Repo(owner=owner, name=name)
        return self.repos[key]

    def pull(self, repo: Repo, number: str) -> Pull:
        pr = repo.pulls.get(int(number))
        if pr is None:
            raise ApiError(self.error_reply("not_found"))
        return pr

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "repos": {r.full_name: self.repo_snapshot(r) for r in self.repos.values()},
                "requests": copy.deepcopy(self.requests),
                "counts": self.counts(),
                "faults": [f.to_json() for f in self.faults],
                "config": dict(self.config),
            }

    def repo_snapshot(self, repo: Repo) -> dict:
        return {
            "owner": repo.owner, "name": repo.name,
            "default_branch": repo.default_branch,
            "pulls": [self.pull_snapshot(repo, pr) for _, pr in sorted(repo.pulls.items())],
            "releases": [{"id": r.id, "tag_name": r.tag_name, "name": r.name,
                          "body": r.body, "draft": r.draft, "prerelease": r.prerelease,
                          "target_commitish": r.target_commitish,
                          "created_at": r.created_at, "published_at": r.published_at,
                          "latest": repo.latest_release == r.id, "updates": r.updates,
                          "html_url": f"{self.render.web(repo)}/releases/tag/"
                                      f"{urllib.parse.quote(r.tag_name)}"}
                         for r in repo.releases],
            "labels": [info["name"] for info in repo.labels.values()],
        }

    def pull_snapshot(self, repo: Repo, pr: Pull) -> dict:
        return {
            "number": pr.number, "state": pr.state, "merged": pr.merged,
            "draft": pr.draft, "title": pr.title, "body": pr.body,
            "head": pr.head_ref, "head_label": pr.head_label,
            "head_sha": pr.head_sha, "base": pr.base_ref,
            "labels": list(pr.labels), "reviewers": list(pr.reviewers),
            "team_reviewers": list(pr.team_reviewers),
            "maintainer_can_modify": pr.maintainer_can_modify,
            "author": pr.author, "created_at": pr.created_at,
            "updated_at": pr.updated_at, "closed_at": pr.closed_at,
            "merged_at": pr.merged_at,
            "html_url": f"{self.render.web(repo)}/pull/{pr.number}",
        }

    def counts(self) -> dict:
        by_status: dict[str, int] = {}
        by_endpoint: dict[str, int] = {}
        for req in self.requests:
            by_status[str(req["status"])] = by_status.get(str(req["status"]), 0) + 1
            key = f"{req['method']} {req['path']}"
            by_endpoint[key] = by_endpoint.get(key, 0) + 1
        return {"total": len(self.requests),
                "injected": sum(1 for r in self.requests if r["injected"]),
                "by_status": by_status, "by_endpoint": by_endpoint}

    def persist(self) -> None:
        if not self.state_file:
            return
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.snapshot(), fh, indent=2)
        os.replace(tmp, self.state_file)

    # -- entry point -------------------------------------------------------

    def handle(self, method: str, target: str, headers, raw: bytes) -> Reply:
        """Answer one HTTP request (API or control)."""
        parsed = urllib.parse.urlsplit(target)
        path, query = parsed.path, urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        if path.startswith("/_fake/"):
            reply = self.handle_control(method, path, raw)
            with self.lock:
                self.persist()
            return reply
        api_path = path[len("/api/v3"):] if path.startswith("/api/v3/") else path
        delay = 0.0
        with self.lock:
            reply, fault, body = self.process(method, path, api_path, query,
                                              parsed.query, headers, raw)
            if fault is not None:
                delay = fault.delay
            self.record(method, api_path, parsed.query, reply, fault, body)
            reply.headers = {**self.standard_headers(reply), **reply.headers}
            self.persist()
        if delay:
            time.sleep(delay)
        return reply

    def process(self, method, path, api_path, query, raw_query, headers, raw):
        """Returns (reply, fault rule or None, parsed body)."""
        if not self.authorized(headers.get("Authorization")):
            return self.error_reply("bad_credentials"), None, None
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return plain_error(400, "Problems parsing JSON").reply, None, None
        fault = self.take_fault(method, api_path)
        if fault is not None:
            return self.injected_reply(fault, method, api_path, body), fault, body
        try:
            return self.route(method, api_path, query, body, path, raw_query), None, body
        except ApiError as err:
            return err.reply, None, body

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme in ("token", "bearer"):
            return secrets.compare_digest(value, self.token)
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            return secrets.compare_digest(decoded.partition(":")[2], self.token)
        return False

    def record(self, method, path, raw_query, reply, fault, body) -> None:
        entry = {"method": method, "path": path, "query": raw_query,
                 "status": reply.status, "injected": fault is not None,
                 "fault": fault.kind if fault else None}
        if body is not None:
            entry["body"] = body
        self.requests.append(entry)

    def standard_headers(self, reply: Reply) -> dict:
        self.rate_used += 1
        return {
            "x-github-request-id": ":".join(secrets.token_hex(n).upper() for n in (2, 2, 3, 3, 4)),
            "x-github-api-version-selected": "2022-11-28",
            "x-github-media-type": "github.v3; format=json",
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(0, RATE_LIMIT - self.rate_used)),
            "x-ratelimit-reset": str(self.rate_reset),
            "x-ratelimit-used": str(min(RATE_LIMIT, self.rate_used)),
            "x-ratelimit-resource": "core",
            "x-content-type-options": "nosniff",
        }

    def error_reply(self, key: str, with_headers: bool = True) -> Reply:
        entry = self.errors[key]
        headers = {k.lower(): str(v) for k, v in entry.get("headers", {}).items()}
        return Reply(entry["status"], copy.deepcopy(entry["body"]),
                     headers if with_headers else {})

    # -- faults --------------------------------------------------------------

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        for rule in self.faults:
            if rule.matches(method, path):
                rule.hits += 1
                if rule.exhausted:
                    self.faults.remove(rule)
                return rule
        return None

    def injected_reply(self, rule: FaultRule, method: str, path: str, body) -> Reply:
        reply = getattr(self, f"fault_{rule.kind}")(rule, method, path, body)
        reply.headers.update(rule.headers)
        return reply

    def fault_status(self, rule, method, path, body) -> Reply:
        key = next((k for k, e in self.errors.items() if e["status"] == rule.status), None)
        if key is not None:
            reply = self.error_reply(key, with_headers=False)
            reply.status = rule.status
        else:
            reason = HTTPStatus(rule.status).phrase if rule.status in HTTPStatus._value2member_map_ else "Error"
            reply = Reply(rule.status, {"message": reason, "documentation_url": DOCS,
                                        "status": str(rule.status)})
        if rule.message:
            reply.body["message"] = rule.message
        return reply

    def fault_error(self, rule, method, path, body) -> Reply:
        reply = self.error_reply(rule.error)
        if rule.message:
            reply.body["message"] = rule.message
        return reply

    def fault_secondary_rate_limit(self, rule, method, path, body) -> Reply:
        reply = self.error_reply("secondary_rate_limit")
        reply.headers["retry-after"] = str(rule.retry_after)
        reply.status = rule.status or reply.status
        return reply

    def fault_primary_rate_limit(self, rule, method, path, body) -> Reply:
        reply = self.error_reply("primary_rate_limit")
        reply.status = rule.status or reply.status
        reply.headers.update({
            "x-ratelimit-limit": str(RATE_LIMIT), "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(RATE_LIMIT), "x-ratelimit-resource": "core",
            "x-ratelimit-reset": str(int(time.time()) + rule.reset_in),
        })
        return reply

    def fault_already_exists(self, rule, method, path, body) -> Reply:
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)/releases", path)
        if match:
            repo = self.repo(*match.groups(), create=True)
            if rule.create_first:
                try:
                    self.create_release(repo, body)
                except ApiError:
                    pass   # invalid body or already there: nothing to create
            return self.release_exists_reply()
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)/pulls", path)
        head_label = None
        if match and isinstance(body, dict) and isinstance(body.get("head"), str):
            repo = self.repo(*match.groups(), create=True)
            head_label = "%s:%s" % parse_head(body["head"], repo.owner)
            if rule.create_first:
                try:
                    self.create_pull(repo, body)
                except ApiError:
                    pass   # invalid body or already there: nothing to create
        return self.already_exists_reply(head_label)

    def already_exists_reply(self, head_label: str | None) -> Reply:
        reply = self.error_reply("pull_request_already_exists")
        if head_label:
            for err in reply.body.get("errors", []):
                err["message"] = f"A pull request already exists for {head_label}."
        return reply

    # -- routing ---------------------------------------------------------------

    def build_routes(self):
        repo = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        table = [
            ("GET", r"/user", self.get_user),
            ("GET", repo + r"/pulls", self.list_pulls),
            ("POST", repo + r"/pulls", self.post_pull),
            ("GET", repo + r"/pulls/(?P<number>\d+)", self.get_pull),
            ("PATCH", repo + r"/pulls/(?P<number>\d+)", self.patch_pull),
            ("POST", repo + r"/pulls/(?P<number>\d+)/requested_reviewers", self.add_reviewers),
            ("DELETE", repo + r"/pulls/(?P<number>\d+)/requested_reviewers", self.remove_reviewers),
            ("GET", repo + r"/issues/(?P<number>\d+)", self.get_issue),
            ("GET", repo + r"/issues/(?P<number>\d+)/labels", self.get_labels),
            ("POST", repo + r"/issues/(?P<number>\d+)/labels", self.add_labels),
            ("PUT", repo + r"/issues/(?P<number>\d+)/labels", self.set_labels),
            ("DELETE", repo + r"/issues/(?P<number>\d+)/labels", self.clear_labels),
            ("DELETE", repo + r"/issues/(?P<number>\d+)/labels/(?P<label>.+)", self.remove_label),
            ("GET", repo + r"/releases", self.list_releases),
            ("POST", repo + r"/releases", self.post_release),
            ("GET", repo + r"/releases/tags/(?P<tag>.+)", self.get_release_by_tag),
            ("GET", repo + r"/releases/latest", self.get_latest_release),
            ("GET", repo + r"/releases/(?P<ident>\d+)", self.get_release),
            ("PATCH", repo + r"/releases/(?P<ident>\d+)", self.patch_release),
            ("DELETE", repo + r"/releases/(?P<ident>\d+)", self.delete_release),
            ("GET", repo + r"/compare/(?P<spec>.+)", self.get_compare),
        ]
        return [(m, re.compile(p), fn) for m, p, fn in table]

    def route(self, method, path, query, body, full_path, raw_query) -> Reply:
        for route_method, pattern, fn in self.routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                args = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                repo = None
                if "owner" in args:
                    repo = self.repo(args.pop("owner"), args.pop("name"))
                ctx = {"query": query, "body": body, "path": full_path,
                       "raw_query": raw_query}
                return fn(repo, ctx, **args) if repo is not None else fn(ctx, **args)
        raise ApiError(self.error_reply("not_found"))

    def paginate(self, items: list, ctx: dict) -> tuple[list, dict]:
        query = ctx["query"]
        per_page = int_param(query, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        page = int_param(query, "page", 1, 1, 1_000_000)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        if last == 1:
            return chunk, {}
        params = {k: v[-1] for k, v in query.items()}

        def link(n: int, rel: str) -> str:
            qs = urllib.parse.urlencode({**params, "per_page": per_page, "page": n})
            return f'<{self.base_url}{ctx["path"]}?{qs}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        return chunk, {"link": ", ".join(links)}

    # -- handlers: user --------------------------------------------------------

    def get_user(self, ctx) -> Reply:
        return Reply(200, self.render.me_doc())

    # -- handlers: pull requests ---------------------------------------------

    def list_pulls(self, repo: Repo, ctx) -> Reply:
        query = ctx["query"]
        state = query_value(query, "state", "open")
        if state not in ("open", "closed", "all"):
            raise invalid_field("Issue", "state", state, "pulls/pulls#list-pull-requests")
        pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
        head = query_value(query, "head")
        if head and ":" in head:          # GitHub ignores a head without OWNER:
            owner, ref = head.split(":", 1)
            pulls = [p for p in pulls if p.head_owner.lower() == owner.lower()
                     and p.head_ref == ref]
        base = query_value(query, "base")
        if base:
            pulls = [p for p in pulls if p.base_ref == base]
        sort = query_value(query, "sort", "created")
        direction = query_value(query, "direction",
                                "desc" if sort in ("created", None) else "asc")
        key = (lambda p: (p.updated_at, p.number)) if sort == "updated" else \
              (lambda p: (p.created_at, p.number))
        pulls.sort(key=key, reverse=direction != "asc")
        chunk, headers = self.paginate(pulls, ctx)
        return Reply(200, [self.render.pull(repo, p, full=False) for p in chunk], headers)

    def post_pull(self, repo: Repo, ctx) -> Reply:
        pr = self.create_pull(repo, ctx["body"])
        doc = self.render.pull(repo, pr)
        return Reply(201, doc, {"location": doc["url"]})

    def create_pull(self, repo: Repo, body) -> Pull:
        doc = "pulls/pulls#create-a-pull-request"
        if not isinstance(body, dict):
            raise plain_error(400, "Problems parsing JSON")
        for name in ("title", "head", "base"):
            if body.get(name) in (None, ""):
                raise missing_field("PullRequest", name, doc)
            if not isinstance(body[name], str):
                raise invalid_field("PullRequest", name, body[name], doc)
        if body.get("body") is not None and not isinstance(body["body"], str):
            raise invalid_field("PullRequest", "body", body["body"], doc)
        head_owner, head_ref = parse_head(body["head"], repo.owner)
        if head_owner.lower() == repo.owner.lower() and head_ref == body["base"]:
            raise validation_failed([{"resource": "PullRequest", "code": "custom",
                                      "message": f"No commits between {body['base']} and {head_ref}"}], doc)
        if repo.open_pull_for(head_owner, head_ref, body["base"]):
            raise ApiError(self.already_exists_reply(f"{head_owner}:{head_ref}"))
        number = repo.allocate_number()
        pr = Pull(number=number, title=body["title"], body=body.get("body"),
                  head_owner=head_owner, head_ref=head_ref, base_ref=body["base"],
                  author=self.render.me, draft=bool(body.get("draft", False)),
                  maintainer_can_modify=bool(body.get("maintainer_can_modify", True)),
                  head_sha=fake_sha("head", repo.full_name, head_owner, head_ref, number),
                  base_sha=fake_sha("base", repo.full_name, body["base"]))
        repo.pulls[number] = pr
        return pr

    def get_pull(self, repo: Repo, ctx, number) -> Reply:
        return Reply(200, self.render.pull(repo, self.pull(repo, number)))

    def patch_pull(self, repo: Repo, ctx, number) -> Reply:
        pr = self.pull(repo, number)
        body = ctx["body"] if isinstance(ctx["body"], dict) else {}
        doc = "pulls/pulls#update-a-pull-request"
        for name in ("title", "body", "base"):
            if name in body and body[name] is not None and not isinstance(body[name], str):
                raise invalid_field("PullRequest", name, body[name], doc)
        state = body.get("state")
        if state is not None and state not in ("open", "closed"):
            raise invalid_field("PullRequest", "state", state, doc)
        base = body.get("base") or pr.base_ref
        if state == "open" and pr.merged:
            raise validation_failed([{"resource": "PullRequest", "code": "custom",
                                      "message": "state cannot be changed. The pull request has been merged."}], doc)
        if (state or pr.state) == "open" and repo.open_pull_for(
                pr.head_owner, pr.head_ref, base, exclude=pr.number):
            raise ApiError(self.already_exists_reply(pr.head_label))
        if "title" in body and body["title"]:
            pr.title = body["title"]
        if "body" in body:
            pr.body = body["body"]
        if "maintainer_can_modify" in body:
            pr.maintainer_can_modify = bool(body["maintainer_can_modify"])
        pr.base_ref = base
        if state == "closed" and pr.state == "open":
            pr.close()
        elif state == "open" and pr.state == "closed":
            pr.reopen()
        pr.touch()
        return Reply(200, self.render.pull(repo, pr))

    def reviewer_lists(self, ctx) -> tuple[list, list]:
        body = ctx["body"] if isinstance(ctx["body"], dict) else {}
        doc = "pulls/review-requests#request-reviewers-for-a-pull-request"
        if "reviewers" not in body and "team_reviewers" not in body:
            raise missing_field("PullRequest", "reviewers", doc)
        lists = []
        for name in ("reviewers", "team_reviewers"):
            value = body.get(name) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise invalid_field("PullRequest", name, value, doc)
            lists.append(value)
        return lists[0], lists[1]

    def add_reviewers(self, repo: Repo, ctx, number) -> Reply:
        pr = self.pull(repo, number)
        reviewers, teams = self.reviewer_lists(ctx)
        if any(r.lower() == pr.author.lower() for r in reviewers):
            raise ApiError(Reply(422, {
                "message": "Review cannot be requested from pull request author.",
                "documentation_url": f"{DOCS}/pulls/review-requests#request-reviewers-for-a-pull-request",
                "status": "422"}))
        for login in reviewers:
            if login.lower() not in (r.lower() for r in pr.reviewers):
                pr.reviewers.append(login)
        for slug in teams:
            if slug not in pr.team_reviewers:
                pr.team_reviewers.append(slug)
        pr.touch()
        return Reply(201, self.render.pull(repo, pr))

    def remove_reviewers(self, repo: Repo, ctx, number) -> Reply:
        pr = self.pull(repo, number)
        reviewers, teams = self.reviewer_lists(ctx)
        gone = {r.lower() for r in reviewers}
        pr.reviewers = [r for r in pr.reviewers if r.lower() not in gone]
        pr.team_reviewers = [t for t in pr.team_reviewers if t not in teams]
        pr.touch()
        return Reply(200, self.render.pull(repo, pr))

    # -- handlers: issues and labels --------------------------------------------

    def get_issue(self, repo: Repo, ctx, number) -> Reply:
        return Reply(200, self.render.issue(repo, self.pull(repo, number)))

    def labels_reply(self, repo: Repo, pr: Pull) -> Reply:
        return Reply(200, [self.render.label(repo, name) for name in pr.labels])

    def attach_labels(self, repo: Repo, pr: Pull, names: list[str]) -> None:
        for name in names:
            info = repo.label(name, self.ids)
            if info["name"].lower() not in (n.lower() for n in pr.labels):
                pr.labels.append(info["name"])
        pr.touch()

    def get_labels(self, repo: Repo, ctx, number) -> Reply:
        pr = self.pull(repo, number)
        chunk, headers = self.paginate(pr.labels, ctx)
        return Reply(200, [self.render.label(repo, n) for n in chunk], headers)

    def add_labels(self, repo: Repo, ctx, number) -> Reply:
        pr = self.pull(repo, number)
        self.attach_labels(repo, pr, label_names(ctx["body"]))
        return self.labels_reply(repo, pr)

    def set_labels(self, repo: Repo, ctx, number) -> Reply:
        pr = self.pull(repo, number)
        names = label_names(ctx["body"] if ctx["body"] is not None else [])
        pr.labels = []
        self.attach_labels(repo, pr, names)
        return self.labels_reply(repo, pr)

    def clear_labels(self, repo: Repo, ctx, number) -> Reply:
        pr = self.pull(repo, number)
        pr.labels = []
        pr.touch()
        return Reply(204)

    def remove_label(self, repo: Repo, ctx, number, label) -> Reply:
        pr = self.pull(repo, number)
        kept = [n for n in pr.labels if n.lower() != label.lower()]
        if len(kept) == len(pr.labels):
            raise plain_error(404, "Label does not exist",
                              "issues/labels#remove-a-label-from-an-issue")
        pr.labels = kept
        pr.touch()
        return self.labels_reply(repo, pr)

    # -- handlers: releases and compare -----------------------------------------

    def list_releases(self, repo: Repo, ctx) -> Reply:
        newest = sorted(repo.releases, key=lambda r: (r.created_at, r.id), reverse=True)
        chunk, headers = self.paginate(newest, ctx)
        return Reply(200, [self.render.release(repo, r, listing=True) for r in chunk], headers)

    def release_exists_reply(self) -> Reply:
        return validation_failed([{"resource": "Release", "code": "already_exists",
                                   "field": "tag_name"}],
                                 "releases/releases#create-a-release").reply

    def release_fields(self, body, doc: str) -> None:
        for name in ("tag_name", "target_commitish", "name", "body"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise invalid_field("Release", name, body[name], doc)
        for name in ("draft", "prerelease"):
            if body.get(name) is not None and not isinstance(body[name], bool):
                raise invalid_field("Release", name, body[name], doc)
        if body.get("make_latest") not in (None, "true", "false", "legacy"):
            raise invalid_field("Release", "make_latest", body["make_latest"], doc)

    def mark_latest(self, repo: Repo, rel: Release, make_latest) -> None:
        """GitHub's make_latest: "true" marks it, "false" leaves it unmarked,
        "legacy" (the default) marks the newest published full release."""
        if rel.draft or rel.prerelease:
            if repo.latest_release == rel.id:
                repo.latest_release = None
            return
        if make_latest == "true":
            repo.latest_release = rel.id
        elif make_latest == "false":
            if repo.latest_release == rel.id:
                repo.latest_release = None
        else:
            full = [r for r in repo.releases if not r.draft and not r.prerelease]
            if full:
                repo.latest_release = max(full, key=lambda r: (r.created_at, r.id)).id

    def create_release(self, repo: Repo, body) -> Release:
        doc = "releases/releases#create-a-release"
        if not isinstance(body, dict) or body.get("tag_name") in (None, ""):
            raise missing_field("Release", "tag_name", doc)
        self.release_fields(body, doc)
        tag = body["tag_name"]
        if any(r.tag_name == tag for r in repo.releases):
            raise ApiError(self.release_exists_reply())
        draft = bool(body.get("draft", False))
        rel = Release(id=next(self.ids), tag_name=tag,
                      target_commitish=body.get("target_commitish") or repo.default_branch,
                      name=body.get("name"), body=body.get("body"), draft=draft,
                      prerelease=bool(body.get("prerelease", False)),
                      author=self.render.me)
        rel.published_at = None if draft else rel.created_at
        repo.releases.append(rel)
        self.mark_latest(repo, rel, body.get("make_latest"))
        return rel

    def post_release(self, repo: Repo, ctx) -> Reply:
        rel = self.create_release(repo, ctx["body"])
        doc_json = self.render.release(repo, rel)
        return Reply(201, doc_json, {"location": doc_json["url"]})

    def release_by_id(self, repo: Repo, ident: str) -> Release:
        for rel in repo.releases:
            if rel.id == int(ident):
                return rel
        raise ApiError(self.error_reply("not_found"))

    def get_release(self, repo: Repo, ctx, ident) -> Reply:
        return Reply(200, self.render.release(repo, self.release_by_id(repo, ident)))

    def get_latest_release(self, repo: Repo, ctx) -> Reply:
        if repo.latest_release is None:
            raise ApiError(self.error_reply("not_found"))
        return Reply(200, self.render.release(repo, self.release_by_id(repo, str(repo.latest_release))))

    def patch_release(self, repo: Repo, ctx, ident) -> Reply:
        rel = self.release_by_id(repo, ident)
        body = ctx["body"] if isinstance(ctx["body"], dict) else {}
        self.release_fields(body, "releases/releases#update-a-release")
        tag = body.get("tag_name")
        if tag and any(r.tag_name == tag and r.id != rel.id for r in repo.releases):
            raise ApiError(self.release_exists_reply())
        if tag:
            rel.tag_name = tag
        for name in ("target_commitish", "name", "body"):
            if name in body:
                setattr(rel, name, body[name])
        if "prerelease" in body:
            rel.prerelease = bool(body["prerelease"])
        if "draft" in body:
            rel.draft = bool(body["draft"])
            if not rel.draft and rel.published_at is None:
                rel.published_at = now_iso()
        rel.updates += 1
        self.mark_latest(repo, rel, body.get("make_latest"))
        return Reply(200, self.render.release(repo, rel))

    def delete_release(self, repo: Repo, ctx, ident) -> Reply:
        rel = self.release_by_id(repo, ident)
        repo.releases.remove(rel)
        if repo.latest_release == rel.id:
            repo.latest_release = None
        return Reply(204)

    def get_release_by_tag(self, repo: Repo, ctx, tag) -> Reply:
        for rel in repo.releases:
            if rel.tag_name == tag and not rel.draft:
                return Reply(200, self.render.release(repo, rel))
        raise ApiError(self.error_reply("not_found"))

    def get_compare(self, repo: Repo, ctx, spec) -> Reply:
        base, sep, head = spec.partition("...")
        if not sep or not base or not head:
            raise ApiError(self.error_reply("not_found"))
        return Reply(200, self.render.compare(repo, base, head))

    # -- control API ---------------------------------------------------------------

    def handle_control(self, method: str, path: str, raw: bytes) -> Reply:
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return Reply(400, {"message": "control body is not JSON"})
        with self.lock:
            try:
                return self.control(method, path, body)
            except ValueError as err:
                return Reply(400, {"message": str(err)})
            except ApiError as err:
                return err.reply

    def control(self, method: str, path: str, body) -> Reply:
        if (method, path) == ("GET", "/_fake/state"):
            return Reply(200, self.snapshot())
        if (method, path) == ("POST", "/_fake/reset"):
            self.reset()
            return Reply(200, {"reset": True})
        if path == "/_fake/faults":
            return self.control_faults(method, body)
        if (method, path) == ("POST", "/_fake/config"):
            if isinstance(body, dict) and "implicit_repos" in body:
                self.config["implicit_repos"] = bool(body["implicit_repos"])
            return Reply(200, dict(self.config))
        match = re.fullmatch(r"/_fake/repos/([^/]+)/([^/]+)", path)
        if match and method == "POST":
            repo = self.repo(*match.groups(), create=True)
            if isinstance(body, dict) and body.get("default_branch"):
                repo.default_branch = str(body["default_branch"])
            return Reply(201, self.repo_snapshot(repo))
        match = re.fullmatch(r"/_fake/pulls/([^/]+)/([^/]+)/(\d+)/(close|merge|reopen)", path)
        if match and method == "POST":
            return self.control_pull(*match.groups())
        return Reply(404, {"message": f"unknown control endpoint {method} {path}"})

    def control_faults(self, method: str, body) -> Reply:
        if method == "POST":
            rules = body.get("rules") if isinstance(body, dict) else body
            if not isinstance(rules, list):
                raise ValueError('expected {"rules": [...]}')
            self.faults += [FaultRule.from_json(r, self.errors.keys()) for r in rules]
        elif method == "DELETE":
            self.faults = []
        elif method != "GET":
            return Reply(405, {"message": "use GET, POST or DELETE"})
        return Reply(200, {"rules": [f.to_json() for f in self.faults]})

    def control_pull(self, owner: str, name: str, number: str, action: str) -> Reply:
        repo = self.repo(owner, name, create=False)
        pr = self.pull(repo, number)
        if action == "close":
            if pr.state == "open":
                pr.close()
        elif action == "reopen":
            if pr.merged:
                return Reply(409, {"message": "a merged pull request cannot be reopened"})
            pr.reopen()
        else:
            if pr.state != "open":
                return Reply(409, {"message": "only an open pull request can be merged"})
            pr.merge()
        return Reply(200, self.pull_snapshot(repo, pr))


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def dispatch(self) -> None:
        raw = self.read_body()
        fake: FakeGitHub = self.server.fake
        try:
            reply = fake.handle(self.command, self.path, self.headers, raw)
        except Exception as err:  # a bug in the fake: say so loudly
            reply = Reply(500, {"message": f"fake_github internal error: {err!r}"})
        self.send(reply)

    def send(self, reply: Reply) -> None:
        data = b""
        if reply.body is not None:
            data = json.dumps(reply.body, indent=2).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.body is not None:
            self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake_github: %s\n" % (fmt % args))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(port: int, token: str, fixtures_dir: Path,
                state_file: str | None = None, verbose: bool = False) -> Server:
    fixtures = load_fixtures(fixtures_dir)
    server = Server((HOST, port), Handler)
    server.verbose = verbose
    server.base_url = f"http://{HOST}:{server.server_address[1]}"
    server.fake = FakeGitHub(fixtures, token, server.base_url, state_file)
    return server


def resolve_fixtures(arg: str | None) -> Path:
    directory = Path(arg) if arg else find_default_fixtures()
    if not directory.is_dir():
        sys.exit(f"fake_github: fixture directory {directory} not found")
    missing = [n for n in FIXTURE_FILES.values() if not (directory / n).is_file()]
    if missing:
        sys.exit(f"fake_github: {directory} lacks {', '.join(missing)}")
    return directory


def serve(args) -> int:
    server = make_server(args.port, args.token, resolve_fixtures(args.fixtures),
                         args.state_file, args.verbose)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    print(f"READY {server.base_url}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------

class SelfTest:
    TOKEN = "self-test-token"

    def __init__(self, fixtures_dir: Path):
        self.fixtures_dir = fixtures_dir
        self.passed = 0
        self.failures: list[str] = []

    def check(self, name: str, condition: bool, detail: object = "") -> bool:
        if condition:
            self.passed += 1
        else:
            self.failures.append(f"{name}: {detail}")
            print(f"FAIL {name}: {detail}", file=sys.stderr)
        return condition

    def call(self, method: str, path: str, body=None, auth: str | None = "default"):
        """Returns (status, headers, parsed JSON or None)."""
        if auth == "default":
            auth = f"token {self.TOKEN}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, headers, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            status, headers, raw = err.code, err.headers, err.read()
        return status, headers, json.loads(raw) if raw else None

    def control(self, method: str, path: str, body=None):
        return self.call(method, path, body, auth=None)

    def run(self) -> int:
        tmp = tempfile.TemporaryDirectory()
        self.state_file = os.path.join(tmp.name, "state.json")
        server = make_server(0, self.TOKEN, self.fixtures_dir, self.state_file)
        self.base = server.base_url
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            for test in (self.test_auth, self.test_create_pull, self.test_list_pulls,
                         self.test_get_patch_pull, self.test_labels, self.test_reviewers,
                         self.test_issue, self.test_releases, self.test_compare,
                         self.test_not_found, self.test_faults, self.test_control,
                         self.test_state_file, self.test_subprocess):
                try:
                    test()
                except Exception as err:  # keep going, report the crash
                    self.check(test.__name__, False, f"crashed: {err!r}")
        finally:
            server.shutdown()
            server.server_close()
            tmp.cleanup()
        print(f"self-test: {self.passed} passed, {len(self.failures)} failed")
        return 0 if not self.failures else 1

    # -- individual tests ---------------------------------------------------

    def test_auth(self):
        status, _, body = self.call("GET", "/user", auth=None)
        self.check("no auth -> 401", status == 401 and body["message"] == "Bad credentials", body)
        status, _, _ = self.call("GET", "/user", auth="token wrong")
        self.check("wrong token -> 401", status == 401, status)
        for auth in (f"token {self.TOKEN}", f"Bearer {self.TOKEN}",
                     "Basic " + base64.b64encode(f"x-access-token:{self.TOKEN}".encode()).decode()):
            status, headers, body = self.call("GET", "/user", auth=auth)
            self.check(f"auth {auth.split()[0]}", status == 200 and body["login"] == self.me,
                       (status, body))
        self.check("user has no real host", "github.com" not in json.dumps(body), body)
        self.check("content-type", headers["content-type"] == "application/json; charset=utf-8",
                   headers["content-type"])
        for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                     "x-github-request-id"):
            self.check(f"header {name}", headers.get(name), dict(headers))
        status, _, _ = self.call("GET", "/api/v3/user")
        self.check("/api/v3 prefix", status == 200, status)

    def test_create_pull(self):
        new = {"title": "Release v3.8.1", "head": "openim-release/rc/v3.8.1",
               "base": "main", "body": "notes", "draft": True,
               "maintainer_can_modify": False}
        status, headers, pr = self.call("POST", "/repos/openimsdk/open-im-server/pulls", new)
        self.check("create -> 201", status == 201, (status, pr))
        self.check("create number 1", pr["number"] == 1, pr.get("number"))
        self.check("create html_url",
                   pr["html_url"] == f"{self.base}/openimsdk/open-im-server/pull/1", pr["html_url"])
        self.check("create url", pr["url"] == f"{self.base}/repos/openimsdk/open-im-server/pulls/1",
                   pr["url"])
        self.check("create head", pr["head"]["ref"] == new["head"]
                   and pr["head"]["label"] == "openimsdk:openim-release/rc/v3.8.1"
                   and len(pr["head"]["sha"]) == 40, pr["head"]["label"])
        self.check("create base", pr["base"]["ref"] == "main"
                   and pr["base"]["repo"]["full_name"] == "openimsdk/open-im-server",
                   pr["base"]["repo"]["full_name"])
        self.check("create fields", pr["title"] == new["title"] and pr["body"] == "notes"
                   and pr["draft"] is True and pr["state"] == "open" and pr["merged"] is False
                   and pr["labels"] == [] and pr["requested_reviewers"] == []
                   and pr["maintainer_can_modify"] is False, pr)
        self.check("create timestamps", re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                                                     pr["created_at"]) is not None, pr["created_at"])
        self.check("no real host in PR", "https://github.com" not in json.dumps(pr)
                   and "api.github.com" not in json.dumps(pr), "real host found")
        self.check("location header", headers.get("location") == pr["url"], headers.get("location"))
        # the same head and base again -> 422 naming the head
        status, _, err = self.call("POST", "/repos/openimsdk/open-im-server/pulls", new)
        self.check("duplicate -> 422", status == 422, status)
        self.check("duplicate message", err["errors"][0]["message"] ==
                   "A pull request already exists for openimsdk:openim-release/rc/v3.8.1.", err)
        # explicit owner:branch form is the same head
        status, _, _ = self.call("POST", "/repos/openimsdk/open-im-server/pulls",
                                 {**new, "head": "openimsdk:openim-release/rc/v3.8.1"})
        self.check("duplicate owner:branch -> 422", status == 422, status)
        # other base is fine
        status, _, pr2 = self.call("POST", "/repos/openimsdk/open-im-server/pulls",
                                   {**new, "base": "release-v3.8", "draft": False})
        self.check("other base -> 201 #2", status == 201 and pr2["number"] == 2, (status, pr2))
        for missing in ("title", "head", "base"):
            body = {k: v for k, v in new.items() if k != missing}
            status, _, err = self.call("POST", "/repos/openimsdk/open-im-server/pulls", body)
            self.check(f"missing {missing} -> 422", status == 422
                       and err["message"] == "Validation Failed"
                       and err["errors"][0]["field"] == missing, (status, err))
        status, _, err = self.call("POST", "/repos/openimsdk/open-im-server/pulls", b"{nope")
        self.check("bad JSON -> 400", status == 400, (status, err))
        status, _, err = self.call("POST", "/repos/openimsdk/open-im-server/pulls",
                                   {**new, "head": "main"})
        self.check("head == base -> 422", status == 422, (status, err))
        # numbers are per repository
        status, _, other = self.call("POST", "/repos/someone/else/pulls", new)
        self.check("per-repo numbering", status == 201 and other["number"] == 1, other)

    def test_list_pulls(self):
        repo = "/repos/openimsdk/open-im-server/pulls"
        status, _, pulls = self.call("GET", repo)
        self.check("list open", status == 200 and [p["number"] for p in pulls] == [2, 1],
                   [p.get("number") for p in pulls])
        self.check("list is simple shape", "merged" not in pulls[0] and "head" in pulls[0], pulls[0].keys())
        _, _, pulls = self.call("GET", repo + "?head=openimsdk:openim-release/rc/v3.8.1&base=main")
        self.check("list head+base", [p["number"] for p in pulls] == [1], pulls)
        _, _, pulls = self.call("GET", repo + "?head=openim-release/rc/v3.8.1")
        self.check("head without owner ignored", len(pulls) == 2, len(pulls))
        _, _, pulls = self.call("GET", repo + "?head=someoneelse:openim-release/rc/v3.8.1")
        self.check("head other owner", pulls == [], pulls)
        _, _, pulls = self.call("GET", repo + "?base=release-v3.8")
        self.check("list base", [p["number"] for p in pulls] == [2], pulls)
        _, _, pulls = self.call("GET", repo + "?state=closed")
        self.check("list closed empty", pulls == [], pulls)
        _, _, pulls = self.call("GET", repo + "?state=all&direction=asc")
        self.check("list all asc", [p["number"] for p in pulls] == [1, 2], pulls)
        status, _, _ = self.call("GET", repo + "?state=bogus")
        self.check("list bad state -> 422", status == 422, status)
        status, headers, pulls = self.call("GET", repo + "?state=all&per_page=1&page=1")
        self.check("paginate page 1", len(pulls) == 1 and 'rel="next"' in headers.get("link", ""),
                   headers.get("link"))
        status, headers, pulls = self.call("GET", repo + "?state=all&per_page=1&page=2")
        self.check("paginate page 2", len(pulls) == 1 and 'rel="prev"' in headers.get("link", "")
                   and 'rel="next"' not in headers.get("link", ""), headers.get("link"))
        _, _, pulls = self.call("GET", repo + "?state=all&per_page=1&page=3")
        self.check("paginate past end", pulls == [], pulls)

    def test_get_patch_pull(self):
        path = "/repos/openimsdk/open-im-server/pulls/1"
        status, _, pr = self.call("GET", path)
        self.check("get pull", status == 200 and pr["number"] == 1 and pr["merged"] is False, pr)
        status, _, pr = self.call("PATCH", path, {"title": "New title", "body": "new body"})
        self.check("patch title/body", status == 200 and pr["title"] == "New title"
                   and pr["body"] == "new body", pr)
        status, _, pr = self.call("PATCH", path, {"state": "closed"})
        self.check("patch close", pr["state"] == "closed" and pr["closed_at"], pr["state"])
        _, _, pulls = self.call("GET", "/repos/openimsdk/open-im-server/pulls?state=closed")
        self.check("closed listed", [p["number"] for p in pulls] == [1], pulls)
        # while #1 is closed a new PR with the same head/base may be created
        status, _, pr3 = self.call("POST", "/repos/openimsdk/open-im-server/pulls",
                                   {"title": "t", "head": "openim-release/rc/v3.8.1", "base": "main"})
        self.check("create after close -> 201 #3", status == 201 and pr3["number"] == 3, (status, pr3))
        status, _, err = self.call("PATCH", path, {"state": "open"})
        self.check("reopen conflicting -> 422", status == 422, (status, err))
        self.call("PATCH", "/repos/openimsdk/open-im-server/pulls/3", {"state": "closed"})
        status, _, pr = self.call("PATCH", path, {"state": "open", "base": "main"})
        self.check("reopen", status == 200 and pr["state"] == "open" and pr["closed_at"] is None, pr)
        status, _, pr = self.call("PATCH", "/repos/openimsdk/open-im-server/pulls/2",
                                  {"base": "release-v3.9"})
        self.check("patch base", pr["base"]["ref"] == "release-v3.9", pr["base"]["ref"])
        status, _, _ = self.call("PATCH", path, {"state": "merged"})
        self.check("patch bad state -> 422", status == 422, status)
        status, _, _ = self.call("GET", "/repos/openimsdk/open-im-server/pulls/99")
        self.check("unknown pull -> 404", status == 404, status)

    def test_labels(self):
        path = "/repos/openimsdk/open-im-server/issues/1/labels"
        status, _, labels = self.call("GET", path)
        self.check("labels empty", status == 200 and labels == [], labels)
        status, _, labels = self.call("POST", path, {"labels": ["release", "automated"]})
        self.check("labels add", status == 200 and [l["name"] for l in labels] ==
                   ["release", "automated"], labels)
        self.check("label shape", set(labels[0]) == set(self.label_keys)
                   and labels[0]["url"].startswith(self.base), labels[0])
        status, _, labels = self.call("POST", path, ["Release", {"name": "rc"}])
        self.check("labels add bare list, case-insensitive",
                   [l["name"] for l in labels] == ["release", "automated", "rc"], labels)
        status, _, labels = self.call("DELETE", path + "/automated")
        self.check("label remove", status == 200 and [l["name"] for l in labels] ==
                   ["release", "rc"], labels)
        status, _, err = self.call("DELETE", path + "/automated")
        self.check("label remove missing -> 404", status == 404
                   and err["message"] == "Label does not exist", (status, err))
        status, _, labels = self.call("PUT", path, {"labels": ["only one"]})
        self.check("labels replace", [l["name"] for l in labels] == ["only one"], labels)
        status, _, labels = self.call("DELETE", path + "/only%20one")
        self.check("label remove encoded", status == 200 and labels == [], (status, labels))
        self.call("POST", path, {"labels": ["a", "b"]})
        _, _, pr = self.call("GET", "/repos/openimsdk/open-im-server/pulls/1")
        self.check("labels on PR", [l["name"] for l in pr["labels"]] == ["a", "b"], pr["labels"])
        status, _, body = self.call("DELETE", path)
        self.check("labels clear -> 204", status == 204 and body is None, status)
        status, _, _ = self.call("POST", path, {"labels": "x"})
        self.check("labels invalid -> 422", status == 422, status)
        self.call("POST", path, {"labels": ["release"]})

    def test_reviewers(self):
        path = "/repos/openimsdk/open-im-server/pulls/1/requested_reviewers"
        status, _, pr = self.call("POST", path, {"reviewers": ["alice", "bob"],
                                                 "team_reviewers": ["release-team"]})
        self.check("reviewers add -> 201", status == 201
                   and [u["login"] for u in pr["requested_reviewers"]] == ["alice", "bob"]
                   and [t["slug"] for t in pr["requested_teams"]] == ["release-team"], (status, pr))
        status, _, pr = self.call("DELETE", path, {"reviewers": ["alice"], "team_reviewers": []})
        self.check("reviewers remove", status == 200
                   and [u["login"] for u in pr["requested_reviewers"]] == ["bob"], pr)
        status, _, err = self.call("POST", path, {"reviewers": [self.me]})
        self.check("author as reviewer -> 422", status == 422, (status, err))
        status, _, err = self.call("POST", path, {})
        self.check("reviewers missing -> 422", status == 422, (status, err))

    def test_issue(self):
        status, _, issue = self.call("GET", "/repos/openimsdk/open-im-server/issues/1")
        self.check("issue", status == 200 and issue["number"] == 1
                   and issue["pull_request"]["html_url"] == f"{self.base}/openimsdk/open-im-server/pull/1"
                   and [l["name"] for l in issue["labels"]] == ["release"], issue)
        status, _, _ = self.call("GET", "/repos/openimsdk/open-im-server/issues/42")
        self.check("unknown issue -> 404", status == 404, status)

    def test_releases(self):
        path = "/repos/openimsdk/open-im-server/releases"
        status, _, rels = self.call("GET", path)
        self.check("releases empty", status == 200 and rels == [], rels)
        status, headers, rel = self.call("POST", path, {"tag_name": "v3.8.1", "name": "v3.8.1",
                                                        "body": "notes"})
        self.check("release create -> 201", status == 201 and rel["tag_name"] == "v3.8.1"
                   and rel["draft"] is False and rel["published_at"]
                   and rel["html_url"] == f"{self.base}/openimsdk/open-im-server/releases/tag/v3.8.1"
                   and set(rel) == set(self.release_keys), rel)
        status, _, err = self.call("POST", path, {"tag_name": "v3.8.1"})
        self.check("release duplicate -> 422", status == 422
                   and err["errors"][0]["code"] == "already_exists", (status, err))
        status, _, _ = self.call("POST", path, {"name": "no tag"})
        self.check("release missing tag -> 422", status == 422, status)
        self.call("POST", path, {"tag_name": "v3.9.0-rc.1", "draft": True, "prerelease": True})
        status, _, rels = self.call("GET", path)
        self.check("releases list newest first", [r["tag_name"] for r in rels] ==
                   ["v3.9.0-rc.1", "v3.8.1"], [r.get("tag_name") for r in rels])
        status, _, rel = self.call("GET", path + "/tags/v3.8.1")
        self.check("release by tag", status == 200 and rel["name"] == "v3.8.1"
                   and rel["body"] == "notes", (status, rel))
        status, _, _ = self.call("GET", path + "/tags/v3.9.0-rc.1")
        self.check("draft not found by tag", status == 404, status)
        status, _, err = self.call("GET", path + "/tags/v0.0.0")
        self.check("unknown tag -> 404", status == 404 and err["message"] == "Not Found", err)
        status, _, err = self.call("POST", path, {"tag_name": "v3.9.0-rc.1"})
        self.check("a draft's tag -> 422", status == 422
                   and err["errors"][0] == {"resource": "Release", "code": "already_exists",
                                            "field": "tag_name"}, (status, err))
        _, _, draft = self.call("GET", path + "?per_page=100")
        draft = next(r for r in draft if r["tag_name"] == "v3.9.0-rc.1")
        status, _, rel = self.call("PATCH", f"{path}/{draft['id']}",
                                   {"body": "rc notes", "draft": False, "make_latest": "false"})
        self.check("release update", status == 200 and rel["body"] == "rc notes"
                   and rel["draft"] is False and rel["published_at"]
                   and set(rel) == set(self.release_keys), rel)
        status, _, rel = self.call("GET", f"{path}/{draft['id']}")
        self.check("release by id", status == 200 and rel["tag_name"] == "v3.9.0-rc.1", status)
        status, _, err = self.call("PATCH", f"{path}/{draft['id']}", {"tag_name": "v3.8.1"})
        self.check("update to a taken tag -> 422", status == 422
                   and err["errors"][0]["code"] == "already_exists", (status, err))
        status, _, err = self.call("PATCH", f"{path}/{draft['id']}", {"make_latest": "yes"})
        self.check("bad make_latest -> 422", status == 422, (status, err))
        status, _, rel = self.call("GET", path + "/latest")
        self.check("latest release", status == 200 and rel["tag_name"] == "v3.8.1", rel)
        _, _, state = self.control("GET", "/_fake/state")
        rels = state["repos"]["openimsdk/open-im-server"]["releases"]
        self.check("state: one release per tag, updates counted",
                   sorted(r["tag_name"] for r in rels) == ["v3.8.1", "v3.9.0-rc.1"]
                   and [r["updates"] for r in rels] == [0, 1]
                   and [r["latest"] for r in rels] == [True, False], rels)

    def test_compare(self):
        status, _, cmp = self.call("GET", "/repos/openimsdk/open-im-server/compare/v3.8.0...main")
        status_pr, _, pr = self.call("GET", "/repos/openimsdk/open-im-server/pulls/1")
        text = json.dumps(pr)
        self.check("no GitHub host anywhere in a PR", status_pr == 200 and not re.search(
            r"(https://|git://|git@)[a-z.]*github(usercontent)?\.com", text), text[:200])
        self.check("compare", status == 200 and cmp["status"] == "ahead"
                   and cmp["url"].endswith("/repos/openimsdk/open-im-server/compare/v3.8.0...main")
                   and "api.github.com" not in json.dumps(cmp), cmp.get("url"))

    def test_not_found(self):
        status, _, body = self.call("GET", "/nope")
        self.check("unknown route -> 404", status == 404 and body["message"] == "Not Found", body)
        status, _, _ = self.call("PUT", "/repos/a/b/pulls")
        self.check("wrong method -> 404", status == 404, status)

    def fault(self, *rules):
        status, _, body = self.control("POST", "/_fake/faults", {"rules": list(rules)})
        self.check("arm fault", status == 200, (status, body))

    def pull_count(self, repo="openimsdk/open-im-server"):
        _, _, state = self.control("GET", "/_fake/state")
        return len(state["repos"][repo]["pulls"])

    def test_faults(self):
        pulls = "/repos/openimsdk/open-im-server/pulls"
        new = {"title": "t", "head": "feature/x", "base": "main"}
        before = self.pull_count()
        self.fault({"method": "POST", "path_regex": "/pulls$", "times": 1, "status": 502})
        status, _, body = self.call("POST", pulls, new)
        self.check("502 injected", status == 502 and body == {"message": "Server Error"}, (status, body))
        self.check("502 created nothing", self.pull_count() == before, self.pull_count())
        status, _, pr = self.call("POST", pulls, new)
        self.check("after fault, normal", status == 201, status)
        _, _, state = self.control("GET", "/_fake/state")
        self.check("injected recorded", state["requests"][-2]["injected"] is True
                   and state["requests"][-2]["status"] == 502
                   and state["requests"][-1]["injected"] is False, state["requests"][-2:])

        self.fault({"path_regex": r"/pulls/\d+$", "times": 2, "kind": "secondary_rate_limit"})
        for i in range(2):
            status, headers, body = self.call("GET", f"{pulls}/{pr['number']}")
            self.check(f"secondary #{i + 1}", status == 403 and headers.get("retry-after") == "1"
                       and "secondary rate limit" in body["message"], (status, dict(headers)))
        status, _, _ = self.call("GET", f"{pulls}/{pr['number']}")
        self.check("secondary exhausted", status == 200, status)
        self.fault({"kind": "secondary_rate_limit", "retry_after": 7, "status": 429})
        status, headers, _ = self.call("GET", "/user")
        self.check("secondary override", status == 429 and headers.get("retry-after") == "7",
                   (status, headers.get("retry-after")))

        self.fault({"kind": "primary_rate_limit", "reset_in": 5})
        status, headers, body = self.call("GET", "/user")
        reset = int(headers.get("x-ratelimit-reset", 0))
        self.check("primary rate limit", status == 403 and headers.get("x-ratelimit-remaining") == "0"
                   and abs(reset - (time.time() + 5)) <= 2 and "rate limit" in body["message"],
                   (status, dict(headers)))
        self.fault({"kind": "primary_rate_limit", "status": 429})
        status, headers, _ = self.call("GET", "/user")
        self.check("primary 429", status == 429 and headers.get("x-ratelimit-remaining") == "0", status)

        other = {"title": "t", "head": "feature/y", "base": "main"}
        self.fault({"kind": "already_exists", "method": "POST", "path_regex": "/pulls$", "times": 1})
        before = self.pull_count()
        status, _, err = self.call("POST", pulls, other)
        self.check("already_exists injected", status == 422 and err["errors"][0]["message"] ==
                   "A pull request already exists for openimsdk:feature/y.", (status, err))
        self.check("already_exists created nothing", self.pull_count() == before, self.pull_count())
        self.fault({"kind": "already_exists", "method": "POST", "path_regex": "/pulls$",
                    "create_first": True})
        status, _, err = self.call("POST", pulls, other)
        self.check("create_first -> 422", status == 422, (status, err))
        _, _, found = self.call("GET", pulls + "?head=openimsdk:feature/y&base=main")
        self.check("create_first created it", len(found) == 1 and self.pull_count() == before + 1,
                   found)

        releases = "/repos/openimsdk/open-im-server/releases"
        self.fault({"kind": "already_exists", "method": "POST", "path_regex": "/releases$",
                    "create_first": True})
        status, _, err = self.call("POST", releases, {"tag_name": "v4.0.0", "body": "first"})
        self.check("release create_first -> 422", status == 422
                   and err["errors"][0]["code"] == "already_exists", (status, err))
        status, _, rel = self.call("GET", releases + "/tags/v4.0.0")
        self.check("release create_first created it", status == 200 and rel["body"] == "first",
                   (status, rel))
        self.fault({"method": "GET", "path_regex": "/releases$", "status": 500})
        status, _, _ = self.call("POST", pulls, {"title": "t", "head": "feature/z", "base": "main"})
        self.check("method filter skips", status == 201, status)
        status, _, body = self.call("GET", "/repos/openimsdk/open-im-server/releases")
        self.check("500 generic body", status == 500 and body["message"] == "Internal Server Error",
                   (status, body))
        self.fault({"error": "not_found", "path_regex": "^/user$"})
        status, _, body = self.call("GET", "/user")
        self.check("error key rule", status == 404 and body["message"] == "Not Found", status)
        self.fault({"status": 401, "path_regex": "^/user$", "message": "token expired"})
        status, _, body = self.call("GET", "/user")
        self.check("status + message", status == 401 and body["message"] == "token expired", body)
        self.fault({"status": 503, "times": None, "path_regex": "^/user$"})
        codes = [self.call("GET", "/user")[0] for _ in range(3)]
        self.check("unlimited rule", codes == [503] * 3, codes)
        status, _, body = self.control("GET", "/_fake/faults")
        self.check("faults listed", len(body["rules"]) == 1 and body["rules"][0]["hits"] == 3, body)
        self.control("DELETE", "/_fake/faults")
        self.check("faults cleared", self.call("GET", "/user")[0] == 200, "still faulted")
        status, _, _ = self.control("POST", "/_fake/faults", {"rules": [{"kind": "bogus"}]})
        self.check("bad rule -> 400", status == 400, status)
        start = time.monotonic()
        self.fault({"path_regex": "^/user$", "status": 502, "delay": 0.3})
        status = self.call("GET", "/user")[0]
        self.check("delay", status == 502 and time.monotonic() - start >= 0.3, status)
        status, _, _ = self.call("GET", "/user", auth=None)
        self.check("auth before faults", status == 401, status)

    def test_control(self):
        repo = "/_fake/pulls/openimsdk/open-im-server"
        status, _, snap = self.control("POST", f"{repo}/1/merge")
        self.check("control merge", status == 200 and snap["merged"] and snap["state"] == "closed", snap)
        _, _, pr = self.call("GET", "/repos/openimsdk/open-im-server/pulls/1")
        self.check("merged visible", pr["merged"] is True and pr["merged_at"]
                   and pr["state"] == "closed" and pr["merged_by"]["login"] == self.me, pr)
        status, _, err = self.call("PATCH", "/repos/openimsdk/open-im-server/pulls/1", {"state": "open"})
        self.check("reopen merged -> 422", status == 422, status)
        status, _, snap = self.control("POST", f"{repo}/2/close")
        self.check("control close", status == 200 and snap["state"] == "closed"
                   and not snap["merged"], snap)
        status, _, snap = self.control("POST", f"{repo}/2/reopen")
        self.check("control reopen", snap["state"] == "open", snap)
        status, _, _ = self.control("POST", f"{repo}/99/close")
        self.check("control unknown PR -> 404", status == 404, status)
        _, _, state = self.control("GET", "/_fake/state")
        pr1 = state["repos"]["openimsdk/open-im-server"]["pulls"][0]
        self.check("state pull fields", pr1["number"] == 1 and pr1["head"] == "openim-release/rc/v3.8.1"
                   and pr1["base"] == "main" and pr1["labels"] == ["release"]
                   and pr1["reviewers"] == ["bob"] and pr1["title"] == "New title", pr1)
        self.check("state counts", state["counts"]["total"] == len(state["requests"])
                   and state["counts"]["injected"] > 0, state["counts"])
        self.check("requests shape", all({"method", "path", "status", "injected"} <= set(r)
                                         for r in state["requests"]), state["requests"][:1])
        self.control("POST", "/_fake/config", {"implicit_repos": False})
        status, _, body = self.call("GET", "/repos/nobody/nothing/pulls")
        self.check("strict unknown repo -> 404", status == 404 and body["message"] == "Not Found", body)
        self.control("POST", "/_fake/repos/nobody/nothing", {"default_branch": "develop"})
        status, _, _ = self.call("GET", "/repos/nobody/nothing/pulls")
        self.check("explicit repo", status == 200, status)
        status, _, _ = self.call("GET", "/repos/OpenIMSDK/Open-IM-Server/pulls/1")
        self.check("repo names case-insensitive", status == 200, status)
        self.control("POST", "/_fake/reset")
        _, _, state = self.control("GET", "/_fake/state")
        self.check("reset", state["repos"] == {} and state["requests"] == []
                   and state["config"]["implicit_repos"] is True, state)
        status, _, pr = self.call("POST", "/repos/openimsdk/open-im-server/pulls",
                                  {"title": "t", "head": "a", "base": "main"})
        self.check("numbers restart after reset", pr["number"] == 1, pr.get("number"))
        status, _, _ = self.control("GET", "/_fake/nothing")
        self.check("unknown control -> 404", status == 404, status)

    def test_state_file(self):
        with open(self.state_file, encoding="utf-8") as fh:
            state = json.load(fh)
        self.check("state file written", "openimsdk/open-im-server" in state["repos"]
                   and state["requests"], list(state))

    def test_subprocess(self):
        """The real CLI: READY line, default fixture discovery, SIGTERM exit 0."""
        cmd = [sys.executable, os.path.abspath(__file__), "--port", "0", "--token", "sub-token"]
        default = find_default_fixtures()
        if not default.is_dir() or default.resolve() != self.fixtures_dir.resolve():
            cmd += ["--fixtures", str(self.fixtures_dir)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline().strip()
            ok = self.check("READY line", re.fullmatch(r"READY http://127\.0\.0\.1:\d+", line)
                            is not None, line)
            if ok:
                url = line.split()[1]
                req = urllib.request.Request(url + "/user",
                                             headers={"Authorization": "Bearer sub-token"})
                with urllib.request.urlopen(req, timeout=10) as resp:
                    self.check("subprocess answers", resp.status == 200, resp.status)
            proc.send_signal(signal.SIGTERM)
            self.check("SIGTERM exits 0", proc.wait(timeout=10) == 0, proc.returncode)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()

    @property
    def me(self):
        """The authenticated user: the user_data.json login."""
        return load_fixtures(self.fixtures_dir)["user"]["login"]

    @property
    def label_keys(self):
        return load_fixtures(self.fixtures_dir)["labels"][0].keys()

    @property
    def release_keys(self):
        return load_fixtures(self.fixtures_dir)["release"].keys()


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Stateful fake GitHub REST API for tests.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = pick a free one)")
    parser.add_argument("--token", help="the only accepted token")
    parser.add_argument("--fixtures", help="fixture directory (default: $FAKE_GITHUB_FIXTURES, else tests/fixtures/github)")
    parser.add_argument("--state-file", help="write a JSON snapshot of the state here after each request")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    parser.add_argument("--self-test", action="store_true", help="run the built-in self-test and exit")
    args = parser.parse_args(argv)
    if not args.self_test and not args.token:
        parser.error("--token is required")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.self_test:
        return SelfTest(resolve_fixtures(args.fixtures)).run()
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
