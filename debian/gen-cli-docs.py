#!/usr/bin/python3
"""Generate man pages and bash completion from udriver's own argparse parsers.

Usage: gen-cli-docs.py MANDIR COMPLETIONDIR
Man pages come from argparse-manpage (Debian's python3-argparse-manpage); completion is
written from the same parser objects, so neither can drift from the CLI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from build_manpages.manpage import Manpage


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from udriver.cli import build_parser

    out = {"udriver": build_parser()}
    try:
        from udriver_repo.cli import build_parser as build_repo_parser
    except ImportError:
        pass
    else:
        out["udriver-repo"] = build_repo_parser()
    return out


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(s for a in parser._actions for s in a.option_strings)


_MACROS = {".TH", ".SH", ".SS", ".TP", ".B", ".I", ".BR", ".IR", ".br", ".PP", ".RS", ".RE",
           ".IP", ".nf", ".fi"}


def _escape_text_lines(page: str) -> str:
    """Help text such as ".whl or .deb files" must not be read as a roff request (man 7 groff)."""
    out = []
    for line in page.splitlines():
        if line[:1] in (".", "'") and line.split(" ", 1)[0] not in _MACROS:
            line = "\\&" + line
        out.append(line)
    return "\n".join(out) + "\n"


def _completion(prog: str, parser: argparse.ArgumentParser) -> str:
    """A bash completion function: subcommands (two levels) and each one's options."""
    fn = "_" + prog.replace("-", "_")
    lines = [f"# bash completion for {prog}, generated from its argparse parser", f"{fn}()", "{",
             "    local cur=${COMP_WORDS[COMP_CWORD]} words=\"\"",
             "    local path=\"\" i",
             "    for ((i = 1; i < COMP_CWORD; i++)); do",
             "        case ${COMP_WORDS[i]} in -*) ;; *) path=\"$path ${COMP_WORDS[i]}\" ;; esac",
             "    done",
             "    case \"${path# }\" in"]

    def walk(p: argparse.ArgumentParser, key: list[str]) -> None:
        subs = _subcommands(p)
        words = " ".join(sorted(subs) + _options(p))
        pattern = " ".join(key)
        lines.append(f"        \"{pattern}\"|\"{pattern} \"*) words=\"{words}\" ;;" if key
                     else f"        \"\") words=\"{words}\" ;;")
        for name, sp in sorted(subs.items()):
            walk(sp, key + [name])

    # More specific paths must come first in a bash case statement.
    walk(parser, [])
    head, cases = lines[:9], lines[9:]
    cases.sort(key=lambda line: -line.count(" ", 0, line.index(")")))
    lines = head + cases + ["    esac",
                            "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))",
                            "}", f"complete -o default -F {fn} {prog}", ""]
    return "\n".join(lines)


def main() -> int:
    mandir, compdir = Path(sys.argv[1]), Path(sys.argv[2])
    for prog, parser in _parsers().items():
        parser.prog = prog
        page = str(Manpage(parser))
        # argparse-manpage 1.2 writes a bare NAME line; give it the whatis entry man-db wants.
        summary = (parser.description or "").split(".")[0].replace("-", "\\-")
        page = page.replace(f".SH NAME\n{prog}\n", f".SH NAME\n{prog} \\- {summary}\n", 1)
        (mandir / f"{prog}.1").write_text(_escape_text_lines(page))
        (compdir / prog).write_text(_completion(prog, parser))
    return 0


if __name__ == "__main__":
    sys.exit(main())
