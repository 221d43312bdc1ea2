#!/usr/bin/env python3
"""Check that the tutorial quotes its programs exactly.

A chapter in docs/tutorial/*.md quotes a region of a program with a marker line

    <!-- quote: examples/tutorial/01_tensors.cpp#backward -->

immediately followed by a ```cpp fenced block. In the program the region is the lines
between `// [tutorial:backward]` and the matching `// [tutorial:end]` (regions may nest;
marker lines inside a region are left out of it). A block matches when it equals the
region after both have their common indentation removed.

    scripts/check_tutorial_quotes.py          report every drifted quote, exit 1 if any
    scripts/check_tutorial_quotes.py --fix    rewrite the drifted blocks from the sources

Paths in markers are relative to the repository root (the parent of scripts/, or --root).
Python 3 standard library only.
"""

import argparse
import difflib
import glob
import os
import re
import sys

QUOTE = re.compile(r"^\s*<!--\s*quote:\s*(\S+?)#([\w.-]+)\s*-->\s*$")
REGION = re.compile(r"^\s*//\s*\[tutorial:([\w.-]+)\]\s*$")
FENCE_OPEN = re.compile(r"^\s*```cpp\s*$")
FENCE_CLOSE = re.compile(r"^\s*```\s*$")
ANY_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


class Problem(Exception):
    """A malformed source or chapter: reported as 'file:line: message'."""

    def __init__(self, path, line, message):
        Exception.__init__(self, "{}:{}: {}".format(path, line, message))


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")


def dedent(lines):
    """The lines without their common leading whitespace; blank lines become empty."""
    lines = [line.rstrip() for line in lines]
    widths = [len(line) - len(line.lstrip()) for line in lines if line]
    cut = min(widths) if widths else 0
    return [line[cut:] for line in lines]


def parse_regions(path, display):
    """name -> (first line number, lines) for every region of the source file."""
    regions = {}
    open_regions = []  # stack of (name, line number of the marker, collected lines)
    for number, line in enumerate(read_lines(path), 1):
        match = REGION.match(line)
        if match:
            name = match.group(1)
            if name != "end":
                if name in regions or any(name == r[0] for r in open_regions):
                    raise Problem(display, number, "region '{}' is defined twice".format(name))
                open_regions.append((name, number, []))
            elif not open_regions:
                raise Problem(display, number, "[tutorial:end] without an open region")
            else:
                name, start, body = open_regions.pop()
                regions[name] = (start + 1, body)
            continue
        for _, _, body in open_regions:
            body.append(line)
    if open_regions:
        name, start, _ = open_regions[-1]
        raise Problem(display, start, "region '{}' has no [tutorial:end]".format(name))
    return regions


def skip_fenced_block(lines, i):
    """The index after the fenced block opening at line i: markers shown inside an
    example block (``` or ~~~, any length) are text, not quotes."""
    fence = ANY_FENCE.match(lines[i]).group(1)
    close = re.compile(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
    j = i + 1
    while j < len(lines) and not close.match(lines[j]):
        j += 1
    return j + 1


def find_quotes(lines, display):
    """(marker line index, block first index, block end index, path, name) per quote."""
    quotes = []
    i = 0
    while i < len(lines):
        match = QUOTE.match(lines[i])
        if not match:
            i = skip_fenced_block(lines, i) if ANY_FENCE.match(lines[i]) else i + 1
            continue
        if i + 1 >= len(lines) or not FENCE_OPEN.match(lines[i + 1]):
            raise Problem(display, i + 1, "a quote marker must be followed by a ```cpp line")
        end = i + 2
        while end < len(lines) and not FENCE_CLOSE.match(lines[end]):
            end += 1
        if end == len(lines):
            raise Problem(display, i + 2, "the ```cpp block is never closed")
        quotes.append((i, i + 2, end, match.group(1), match.group(2)))
        i = end + 1
    return quotes


def check_chapter(root, chapter, fix, sources):
    """Checks (or fixes) one chapter; returns (quotes seen, problems, blocks rewritten),
    the last two as messages."""
    display = os.path.relpath(chapter, root)
    lines = read_lines(chapter)
    problems = []
    rewritten = []
    quotes = find_quotes(lines, display)
    # Replace from the last quote backwards so earlier line numbers stay valid.
    for marker, first, end, path, name in reversed(quotes):
        source = os.path.join(root, path)
        if not os.path.isfile(source):
            problems.append("{}:{}: quotes {}, which does not exist".format(display, marker + 1, path))
            continue
        if path not in sources:
            sources[path] = parse_regions(source, path)
        regions = sources[path]
        if name not in regions:
            problems.append("{}:{}: {} has no region '{}' (it has: {})".format(
                display, marker + 1, path, name, ", ".join(sorted(regions)) or "none"))
            continue
        start, body = regions[name]
        want = dedent(body)
        have = dedent(lines[first:end])
        if want == have:
            continue
        if fix:
            lines[first:end] = want
            rewritten.append("{}:{}: rewrote the quote of {}#{}".format(display, marker + 1, path, name))
            continue
        diff = difflib.unified_diff(have, want, "{} (line {})".format(display, first + 1),
                                    "{}#{} (line {})".format(path, name, start), n=1, lineterm="")
        problems.append("{}:{}: the quote of {}#{} differs from the source; run scripts/check_tutorial_quotes.py "
                        "--fix\n{}".format(display, marker + 1, path, name, "\n".join(diff)))
    if rewritten:
        with open(chapter, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    return len(quotes), problems[::-1], rewritten[::-1]


def main():
    parser = argparse.ArgumentParser(description="Check the tutorial's quotes against the programs they quote.")
    parser.add_argument("--fix", action="store_true", help="rewrite drifted blocks from the sources")
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="the repository root (default: the parent of scripts/)")
    args = parser.parse_args()

    chapters = sorted(glob.glob(os.path.join(args.root, "docs", "tutorial", "*.md")))
    if not chapters:
        print("check_tutorial_quotes: no chapters in {}".format(os.path.join(args.root, "docs", "tutorial")))
        return 1
    sources = {}
    total = 0
    failed = False
    for chapter in chapters:
        try:
            count, problems, rewritten = check_chapter(args.root, chapter, args.fix, sources)
        except Problem as e:
            count, problems, rewritten = 0, [str(e)], []
        total += count
        for message in rewritten + problems:
            print(message)
        failed = failed or bool(problems)
    if failed:
        return 1
    print("check_tutorial_quotes: {} quotes in {} chapters match their sources".format(total, len(chapters)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
