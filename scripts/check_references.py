"""Every reference in the repository's docs and code points inside the repository.

- Markdown links `[text](path)` and `[text](path#anchor)` with a relative path: the file or
  folder exists, and the anchor is a heading of that file (GitHub's slugs).
- Paths written in docs and code (`shared/src/delivery.rs`, `docs/events.md`,
  `tests/runtime_test.py`, ...), starting at one of the repository's top-level folders: the
  file exists.
- Paths that climb out of a folder (`../schemas`): they resolve, and stay inside the repository.
- Markdown files named on their own (`CONTRIBUTING.md`): one of that name is in the repository,
  so no document cites a file a user who clones the repository does not have.

Prints each broken reference with where it stands, then one `check:` line for the test
command's summary; exits 1 on any.
    python3 scripts/check_references.py
"""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXT = {".md", ".rs", ".py", ".sh", ".toml", ".yaml", ".yml"}
PATH = re.compile(r"(?<![\w./-])((?:\.\./)?(?:[\w.-]+/)+[\w.-]+\.(?:rs|py|sh|md|toml|yaml|json|txt))\b")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CLIMB = re.compile(r"(?<![\w./-])(\.\./[\w./-]*\w)")
MARKDOWN_NAME = re.compile(r"(?<![\w./-])([A-Za-z][\w-]*\.md)\b")


def top_level_folders():
    return {p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in {"target", ".git", ".tools"}}


def files():
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in listed if pathlib.Path(f).suffix in TEXT and (ROOT / f).is_file()]


def slug(heading):
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    return {slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def resolve(source, target):
    """`target` from the file's folder, or (code joins paths to its crate's folder) any folder
    above it within the repository; a path that does not climb may also start at the root."""
    folders = [source.parent, *[p for p in source.parent.parents if ROOT in [p, *p.parents]]]
    bases = folders if source.suffix != ".md" else [source.parent]
    if not target.startswith("../"):
        bases = [*bases, ROOT]
    for base in bases:
        candidate = (base / target).resolve()
        if candidate.exists() and ROOT in [candidate, *candidate.parents]:
            return candidate
    return None


def check(path):
    problems = []
    text = path.read_text(errors="replace")
    where = path.relative_to(ROOT)
    for target in CLIMB.findall(text):
        if resolve(path, target) is None:
            problems.append(f"{where}: refers to {target}: outside the repository or missing")
    for name in set(MARKDOWN_NAME.findall(text)):
        if name not in MARKDOWN_FILES:
            problems.append(f"{where}: names {name}, which is not in the repository")
    if path.suffix == ".md":
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # a URL: not ours to check offline
            file_part, _, anchor = target.partition("#")
            resolved = resolve(path, file_part) if file_part else path
            if resolved is None:
                problems.append(f"{where}: link to {target}: no such file")
            elif anchor and resolved.is_file() and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{where}: link to {target}: no such heading")
    for target in PATH.findall(text):
        if target.split("/")[0] not in TOP:
            continue  # a path within a listing or joined in code, not a reference from the root
        if path.name == "check_references.py" and target.startswith("shared/src/delivery"):
            continue  # its own docstring's examples
        if resolve(path, target) is None:
            problems.append(f"{where}: refers to {target}: no such file")
    return problems


TOP = top_level_folders()
MARKDOWN_FILES = {path.name for path in files() if path.suffix == ".md"}


def main():
    checked = files()
    problems = [p for path in checked for p in check(path)]
    for problem in problems:
        print(problem)
    print(f"checked the references of {len(checked)} files: {len(problems)} broken")
    print(f"check: every reference points inside the repository {'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
