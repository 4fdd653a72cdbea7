"""The test command's closing line, counted from each runner's own output.

    python3 scripts/test_summary.py KIND:LOG [KIND:LOG ...]

KIND is `cargo` (libtest's `test result:` lines), `unittest` (Python's `Ran N tests` and its
verdict line) or `checks` (lines `check: NAME ok|FAILED` written by the test command itself).
A log that is missing stands for a runner that did not get to run: its tests count as failed.
Prints a line per runner and the total `N passed, N failed, N skipped`, and exits 1 when
anything failed or a runner ran no test at all (unittest exits 0 when it collects nothing).
"""

import pathlib
import re
import sys


def cargo(text):
    passed = failed = skipped = 0
    for p, f, i, filtered in re.findall(
        r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored; \d+ measured; (\d+) filtered out", text
    ):
        passed, failed, skipped = passed + int(p), failed + int(f), skipped + int(i) + int(filtered)
    if failed == 0 and "error: test failed" in text:
        failed = 1  # a test binary that crashed prints no result line of its own
    return passed, failed, skipped


def unittest(text):
    ran = re.search(r"^Ran (\d+) tests? in", text, re.M)
    verdict = re.search(r"^(OK|FAILED)(?: \((.*)\))?$", text, re.M)
    if not ran or not verdict:
        return 0, 1, 0  # it stopped before its verdict
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", verdict.group(2) or "")}
    failed = counts.get("failures", 0) + counts.get("errors", 0) + counts.get("unexpected_successes", 0)
    skipped = counts.get("skipped", 0) + counts.get("expected_failures", 0)
    return int(ran.group(1)) - failed - skipped, failed, skipped


def checks(text):
    results = re.findall(r"^check: (.+) (ok|FAILED)$", text, re.M)
    return sum(r == "ok" for _, r in results), sum(r == "FAILED" for _, r in results), 0


def main(arguments):
    totals = [0, 0, 0]
    bad = False
    for argument in arguments:
        kind, path = argument.split(":", 1)
        log = pathlib.Path(path)
        if log.exists():
            passed, failed, skipped = {"cargo": cargo, "unittest": unittest, "checks": checks}[kind](log.read_text())
        else:
            passed, failed, skipped = 0, 1, 0
        note = "" if log.exists() else " (did not run)"
        if passed + failed == 0:
            note, failed = " (ran no test)", 1
        print(f"{log.stem}: {passed} passed, {failed} failed, {skipped} skipped{note}")
        bad |= failed > 0
        totals = [t + n for t, n in zip(totals, (passed, failed, skipped))]
    print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
