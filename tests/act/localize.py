#!/usr/bin/env python3
"""Make one of docs/examples/*.yml runnable under act, offline.

    localize.py EXAMPLE.yml OUT.yml

The example is copied line by line; only these steps change, and each change
is announced on stderr:

* `uses: openimsdk/openim-release@<sha>` becomes `uses: ./` (the action.yml
  of the checkout under test) with `binary: ${{ env.OPENIM_RELEASE_TEST_BINARY }}`
  added to its `with:` unless the step already names a binary;
* docker/setup-qemu-action is dropped (the test images are FROM scratch; the
  engine builds linux/arm64 without emulation);
* actions/upload-artifact and actions/download-artifact become shell steps
  that copy through the directory $OPENIM_RELEASE_TEST_ARTIFACTS (every job
  runs on this host), with the same name/path/pattern inputs.

Anything else that would need the network (another remote `uses:`, except
actions/checkout, which act replaces with a copy of the work tree) is an
error, so an example that grows a new dependency fails here, loudly, instead
of hanging in act. No YAML library: the examples' comments and layout stay.
"""

import re
import sys

OWN_ACTION = re.compile(r"^openimsdk/openim-release@[0-9a-f]{40}$")
CHECKOUT = re.compile(r"^actions/checkout@[0-9a-f]{40}$")
DROPPED = re.compile(r"^docker/setup-qemu-action@[0-9a-f]{40}$")
UPLOAD = re.compile(r"^actions/upload-artifact@[0-9a-f]{40}$")
DOWNLOAD = re.compile(r"^actions/download-artifact@[0-9a-f]{40}$")


def fail(msg):
    sys.exit(f"localize: {msg}")


def indent_of(line):
    return len(line) - len(line.lstrip(" "))


def finish(step):
    """A step's chunks: the step, then its trailing blank lines as text."""
    trailing = []
    while step and not step[-1].strip():
        trailing.insert(0, step.pop())
    if step:
        yield "step", step
    if trailing:
        yield "text", trailing


def split_steps(lines):
    """Yield (kind, lines): kind 'step' for each item of a `steps:` list, else 'text'."""
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if line.strip() == "steps:":
            yield "text", [line]
            i += 1
            base = indent_of(line)
            item_indent = None
            step = []
            while i < n:
                cur = lines[i]
                stripped = cur.strip()
                if stripped and indent_of(cur) <= base:
                    break
                if stripped.startswith("- ") and (item_indent is None or indent_of(cur) == item_indent):
                    item_indent = indent_of(cur)
                    yield from finish(step)
                    step = [cur]
                else:
                    step.append(cur)
                i += 1
            yield from finish(step)
        else:
            yield "text", [line]
            i += 1


def key_value(step, key):
    """The value of `key:` at the step's top level or under `with:`, else None."""
    for line in step:
        m = re.match(r"^\s*(?:- )?" + re.escape(key) + r":\s*(.*?)\s*(?:#.*)?$", line)
        if m:
            return m.group(1)
    return None


def with_value(step, key):
    """The value of `key:` under the step's `with:`, else None."""
    for i, line in enumerate(step):
        if re.match(r"^\s*(?:- )?with:\s*$", line):
            return key_value(step[i + 1 :], key)
    return None


def step_indent(step):
    """Indentation of the step's keys (one past the `- `)."""
    return indent_of(step[0]) + 2


def own_action(step):
    out = []
    has_binary = key_value(step, "binary") is not None
    for line in step:
        m = re.match(r"^(\s*(?:- )?uses:\s*)(\S+)(.*)$", line)
        if m:
            out.append(f"{m.group(1)}./ # localized: was {m.group(2)}\n")
            continue
        out.append(line)
        if re.match(r"^\s*with:\s*$", line) and not has_binary:
            pad = " " * (indent_of(line) + 2)
            out.append(pad + "binary: ${{ env.OPENIM_RELEASE_TEST_BINARY }} # localized\n")
            has_binary = True
    if not has_binary:
        fail("an openim-release step without `with:` (cannot add binary)")
    return out


def shell_step(step, name, env, script):
    pad = " " * step_indent(step)
    out = [" " * indent_of(step[0]) + f"- name: {name} # localized\n"]
    sid = key_value(step, "id")
    if sid:
        out.append(f"{pad}id: {sid}\n")
    out.append(f"{pad}env:\n")
    for k, v in env.items():
        out.append(f"{pad}  {k}: {v}\n")
    out.append(f"{pad}run: |\n")
    out.extend(f"{pad}  {s}\n" for s in script)
    return out


def upload(step):
    name, path = with_value(step, "name"), with_value(step, "path")
    if not name or not path:
        fail("upload-artifact without name or path")
    return shell_step(
        step,
        "upload-artifact (stand-in)",
        {"ARTIFACT_NAME": name, "ARTIFACT_PATH": path},
        [
            'dir="$OPENIM_RELEASE_TEST_ARTIFACTS/$ARTIFACT_NAME"',
            'mkdir -p "$dir"',
            'cp -- "$ARTIFACT_PATH" "$dir/"  # if-no-files-found: error',
        ],
    )


def download(step):
    pattern, path = with_value(step, "pattern"), with_value(step, "path")
    if with_value(step, "merge-multiple") != "true" or not pattern or not path:
        fail("download-artifact: only `pattern`, `merge-multiple: true` and `path` are supported")
    return shell_step(
        step,
        "download-artifact (stand-in)",
        {"ARTIFACT_PATTERN": pattern, "ARTIFACT_PATH": path},
        [
            'mkdir -p "$ARTIFACT_PATH"',
            'found=0',
            'for dir in "$OPENIM_RELEASE_TEST_ARTIFACTS"/$ARTIFACT_PATTERN/; do',
            '  [ -d "$dir" ] || continue',
            '  cp -- "$dir"* "$ARTIFACT_PATH/"',
            '  found=$((found + 1))',
            'done',
            '[ "$found" -gt 0 ] || { echo "no artifact matches $ARTIFACT_PATTERN" >&2; exit 1; }',
        ],
    )


def localize(lines):
    out = []
    for kind, chunk in split_steps(lines):
        uses = key_value(chunk, "uses") if kind == "step" else None
        if uses is None or uses == "./" or CHECKOUT.match(uses):
            out.extend(chunk)
        elif OWN_ACTION.match(uses):
            out.extend(own_action(chunk))
            print(f"localize: {uses} -> ./", file=sys.stderr)
        elif DROPPED.match(uses):
            print(f"localize: dropped {uses}", file=sys.stderr)
        elif UPLOAD.match(uses):
            out.extend(upload(chunk))
            print(f"localize: {uses} -> copy into $OPENIM_RELEASE_TEST_ARTIFACTS", file=sys.stderr)
        elif DOWNLOAD.match(uses):
            out.extend(download(chunk))
            print(f"localize: {uses} -> copy from $OPENIM_RELEASE_TEST_ARTIFACTS", file=sys.stderr)
        else:
            fail(f"`uses: {uses}` needs the network; teach localize.py a local stand-in")
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: localize.py EXAMPLE.yml OUT.yml")
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.readlines()
    out = localize(lines)
    if not any("uses: ./" in line for line in out):
        fail(f"{sys.argv[1]} does not use openimsdk/openim-release")
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.writelines(out)


if __name__ == "__main__":
    main()
