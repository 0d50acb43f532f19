# Helpers for running workflows under act against the local services,
# sourced by scripts/test-action and scripts/test-examples (not run alone).
#
# The caller sets: root (the work tree), work (a temporary directory it
# removes), an array pids (background processes it kills on exit), log (the
# current act log) and the functions fail MESSAGE and skip_services MESSAGE.
#
# The services are found the way the Rust tests find them: the environment,
# else $OPENIM_RELEASE_SERVICES_DIR/env (scripts/services start). act only
# ever runs in a new network namespace with nothing but loopback up; socat
# bridges exactly the registry, git server and fake GitHub ports into it
# through unix sockets, so their URLs stay 127.0.0.1:PORT and nothing else is
# reachable.
# shellcheck shell=bash disable=SC2154 # root, work, log, ns: set by the caller (above)

# git without the user's configuration, with a fixed identity.
g() {
  env HOME="$work/home" XDG_CONFIG_HOME="$work/config" GIT_CONFIG_NOSYSTEM=1 \
    GIT_AUTHOR_NAME="Test Author" GIT_AUTHOR_EMAIL=author@example.test \
    GIT_COMMITTER_NAME="Test Committer" GIT_COMMITTER_EMAIL=committer@example.test \
    git "$@"
}

put() { # FILE TEXT
  mkdir -p "$(dirname "$1")"
  printf '%s' "$2" >"$1"
}

# `[workflow/job]   | output NAME=VALUE` lines of $log.
outputs() { sed -n "s/^.*| output $1=//p" "$log"; }

# Lines a workflow step printed, without act's `[workflow/job]   | ` prefix.
printed() { sed -n 's/^\[[^]]*\] *| //p' "$log"; }

# Exports DOCKER_HOST and the OPENIM_RELEASE_TEST_* addresses; sets netns
# (the command prefix that creates the network namespace).
act_services() {
  local services_env=${OPENIM_RELEASE_SERVICES_DIR:-/tmp/openim-release-services}/env var value
  for var in DOCKER_HOST OPENIM_RELEASE_TEST_REGISTRY OPENIM_RELEASE_TEST_GIT_URL \
    OPENIM_RELEASE_TEST_GIT_ROOT OPENIM_RELEASE_TEST_GIT_TOKEN; do
    [ -n "${!var:-}" ] && continue
    [ -f "$services_env" ] || skip_services "services not running (scripts/services start)"
    value=$(sed -n "s/^export $var=//p" "$services_env" | tail -n 1)
    value=${value#\"}
    value=${value%\"}
    [ -n "$value" ] || skip_services "$services_env has no $var (scripts/services start)"
    export "$var=$value"
  done
  local docker_bin=docker
  [ -x /usr/bin/docker ] && docker_bin=/usr/bin/docker
  "$docker_bin" version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    skip_services "dockerd at $DOCKER_HOST does not answer (scripts/services start)"
  local tool
  for tool in act socat ip skopeo curl python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (scripts/setup)" >&2; exit 1; }
  done
  unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
  export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
  act_netns || skip_services "unshare cannot create a network namespace (root or unprivileged user namespaces needed)"
}

# Sets netns to the command prefix that runs a command in a new network
# namespace (root, or unprivileged user namespaces); fails when neither works.
act_netns() {
  if unshare -n true 2>/dev/null; then
    netns=(unshare -n --)
  elif unshare -rn true 2>/dev/null; then
    netns=(unshare -rn --)
  else
    return 1
  fi
}

# act_deploy_repo NAME IMAGE_PREFIX [BRANCH...]: a new bare repository NAME on
# the git server, seeded over HTTP with a minimal umbrella chart whose
# openim-api image is IMAGE_PREFIX/openim-api, on main and every BRANCH.
# Sets deploy_url (without credentials) and authed_deploy_url.
act_deploy_repo() {
  local name=$1 prefix=$2 seed=$work/seed-$1 branch
  shift 2
  deploy_url="$OPENIM_RELEASE_TEST_GIT_URL/$name.git"
  authed_deploy_url=${deploy_url/http:\/\//http:\/\/x-access-token:$OPENIM_RELEASE_TEST_GIT_TOKEN@}
  g init -q --bare -b main "$OPENIM_RELEASE_TEST_GIT_ROOT/$name.git"
  g -C "$OPENIM_RELEASE_TEST_GIT_ROOT/$name.git" config http.receivepack true
  g init -q -b main "$seed"
  put "$seed/charts/openim-server/Chart.yaml" 'apiVersion: v2
name: openim-server
version: 0.1.17
appVersion: "3.8.0"
dependencies:
  - name: openim-api
    version: 0.1.17
'
  put "$seed/charts/openim-server/charts/openim-api/Chart.yaml" 'apiVersion: v2
name: openim-api
version: 0.1.17
appVersion: "3.8.0"
'
  put "$seed/charts/openim-server/charts/openim-api/values.yaml" "image:
  repository: $prefix/openim-api
  pullPolicy: IfNotPresent
  tag: \"\"
"
  g -C "$seed" add -A
  g -C "$seed" commit -q -m seed
  g -C "$seed" push -q "$authed_deploy_url" main
  for branch in "$@"; do
    g -C "$seed" push -q "$authed_deploy_url" "main:refs/heads/$branch"
  done
}

# act_source_repo DIR ORIGIN PLATFORMS CONFIG_TAIL: an OpenIM-shaped source
# repository (one Dockerfile, services openim-api and openim-push) with
# openim-release.yaml = the images section for $ns and PLATFORMS (a YAML flow
# list) plus CONFIG_TAIL, action.yml
# of this work tree, tagged v3.8.0 plus one commit, pushed to the new bare
# repository ORIGIN (its `origin`). The caller adds workflows and commits.
act_source_repo() {
  local src=$1 origin=$2 platforms=$3 tail=$4 svc services_yaml=""
  g init -q -b main "$src"
  # shellcheck disable=SC2016 # ${…} is for docker build
  put "$src/build/images/openim-server/Dockerfile" 'FROM scratch
ARG BINARY_NAME
ARG CMD_PATH
COPY config/ /openim/config/
COPY ${CMD_PATH}/ /openim/bin/${BINARY_NAME}/
'
  put "$src/.dockerignore" $'*.log\ntmp/\n'
  put "$src/config/openim.yaml" $'api:\n  port: 10002\n'
  for svc in openim-api openim-push; do
    put "$src/cmd/$svc/main.txt" "$svc binary
"
    services_yaml+="    - name: $svc
      dockerfile: build/images/openim-server/Dockerfile
      context: .
      args: { CMD_PATH: cmd/$svc, BINARY_NAME: $svc }
"
  done
  put "$src/openim-release.yaml" "images:
  registries:
    - $ns
  platforms: $platforms
  services:
$services_yaml
$tail"
  cp "$root/action.yml" "$src/"
  g -C "$src" add -A
  g -C "$src" commit -q -m fixture
  g -C "$src" tag -a -m v3.8.0 v3.8.0
  put "$src/fix.txt" $'the fix for 3.8.1\n'
  g -C "$src" add fix.txt
  g -C "$src" commit -q -m "the fix for 3.8.1"
  g init -q --bare -b main "$origin"
  g -C "$src" remote add origin "$origin"
  g -C "$src" push -q origin main --tags
}

# act_fake_github DIR: starts tests/fake_github.py; sets api_url.
act_fake_github() {
  local dir=$1
  python3 "$root/tests/fake_github.py" --port 0 --token "$OPENIM_RELEASE_TEST_GIT_TOKEN" \
    >"$dir/fake.out" 2>"$dir/fake.err" &
  pids+=($!)
  api_url=""
  for _ in $(seq 100); do
    api_url=$(sed -n 's/^READY //p' "$dir/fake.out")
    [ -n "$api_url" ] && break
    sleep 0.1
  done
  [ -n "$api_url" ] || { cat "$dir/fake.err" >&2; echo "the fake GitHub did not start" >&2; exit 1; }
}

# Pull requests in the fake: one `owner/repo head base state html_url` line each.
act_pulls() {
  curl -sS --noproxy '*' "$api_url/_fake/state" | python3 -c '
import json, sys
repos = json.load(sys.stdin).get("repos") or {}
for name, repo in sorted(repos.items()):
    pulls = repo.get("pulls") or []
    for pr in pulls.values() if isinstance(pulls, dict) else pulls:
        print(name, pr.get("head"), pr.get("base"), pr.get("state"), pr.get("html_url", ""))
'
}

# The body of the one open pull request from HEAD_BRANCH in the fake.
act_pull_body() {
  curl -sS --noproxy '*' "$api_url/_fake/state" | python3 -c '
import json, sys
head = sys.argv[1]
for repo in (json.load(sys.stdin).get("repos") or {}).values():
    pulls = repo.get("pulls") or []
    for pr in pulls.values() if isinstance(pulls, dict) else pulls:
        if pr.get("head") == head and pr.get("state") == "open":
            print(pr.get("body") or "")
' "$1"
}

# The digest of what the registry serves for REF (sha256 of its raw manifest).
registry_digest() {
  local raw
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$1") || return 1
  echo "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)"
}

# The platforms (os/arch, sorted, space-separated) of the index at REF.
registry_platforms() {
  skopeo inspect --tls-verify=false --raw "docker://$1" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(" ".join(sorted(m["platform"]["os"] + "/" + m["platform"]["architecture"]
                      for m in doc.get("manifests", []) if "platform" in m)))'
}

port_of() { local hp=${1#*://}; hp=${hp%%/*}; echo "${hp##*:}"; }

# act_bridges DIR NAME:PORT...: host side of the bridges (unix socket
# DIR/NAME.sock -> 127.0.0.1:PORT); sets bridges.
act_bridges() {
  local dir=$1 b
  shift
  bridges=("$@")
  for b in "${bridges[@]}"; do
    socat "UNIX-LISTEN:$dir/${b%%:*}.sock,fork" "TCP:127.0.0.1:${b#*:}" &
    pids+=($!)
  done
  for b in "${bridges[@]}"; do
    for _ in $(seq 50); do [ -S "$dir/${b%%:*}.sock" ] && break; sleep 0.1; done
    [ -S "$dir/${b%%:*}.sock" ] || { echo "socat did not listen on $dir/${b%%:*}.sock" >&2; exit 1; }
  done
}

# act_service_bridges DIR: bridges for the registry, the git server and the
# fake GitHub ($api_url).
act_service_bridges() {
  act_bridges "$1" "registry:$(port_of "http://$OPENIM_RELEASE_TEST_REGISTRY")" \
    "git:$(port_of "$OPENIM_RELEASE_TEST_GIT_URL")" "github:$(port_of "$api_url")"
}

# Run inside the namespace: lo up, 127.0.0.1:PORT -> unix socket, then "$@".
# shellcheck disable=SC2016 # expanded by the inner shell
act_inside='set -euo pipefail
dir=$1 bridges=$2
shift 2
ip link set lo up
socats=()
for b in $bridges; do
  socat "TCP-LISTEN:${b#*:},bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$dir/${b%%:*}.sock" &
  socats+=($!)
done
for b in $bridges; do
  for _ in $(seq 50); do
    [ -n "$(ss -Hltn "sport = :${b#*:}")" ] && break
    sleep 0.1
  done
done
echo "== namespace: $(ip -o link show | cut -d: -f2 | paste -sd, -); bridged: $bridges"
status=0
"$@" || status=$?
kill "${socats[@]}" 2>/dev/null || true
wait "${socats[@]}" 2>/dev/null || true
exit "$status"'

# act_isolated REPO DIR ACT_ARGS...: act in REPO, in the network namespace
# bridged through DIR's sockets, with a clean HOME, no DOCKER_HOST and no
# token in its environment (only what the arguments pass on reaches the
# workflow), output to $log. Sets act_status and act_seconds.
act_isolated() {
  local repo=$1 dir=$2 start
  shift 2
  echo "== act $* (in ${netns[*]}, bridged: ${bridges[*]})" | sed 's/GITHUB_TOKEN=[^ ]*/GITHUB_TOKEN=***/' >&2
  start=$(date +%s)
  act_status=0
  (
    cd "$repo"
    env -u DOCKER_HOST -u GITHUB_TOKEN -u GH_TOKEN \
      HOME="$work/home" XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$work/cache" \
      "${netns[@]}" bash -c "$act_inside" inside "$dir" "${bridges[*]}" act "$@"
  ) >"$log" 2>&1 || act_status=$?
  act_seconds=$(($(date +%s) - start))
  echo "== act finished in $act_seconds s (exit $act_status)" >&2
}
