"""Command-line help shared by every ``python -m`` entry point: examples taken from the module docstring.

Each command documents its examples once, in its module docstring (the form the README uses,
``python -m data_prep.riga ...``); :func:`examples_epilog` copies the ones of a command into its ``--help``, and
:class:`HelpFormatter` wraps the description while keeping those example lines as written::

    parser = argparse.ArgumentParser(
        prog="python -m monai_lexu.share",
        description="...",
        epilog=examples_epilog(__doc__, "python -m monai_lexu.share pack"),
        formatter_class=HelpFormatter,
    )

Only the standard library is imported, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import textwrap

__all__ = ["HelpFormatter", "examples", "examples_epilog"]


class HelpFormatter(argparse.HelpFormatter):
    """Wraps description and epilog paragraphs to the terminal; a paragraph with an indented line (an example block)
    is printed as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.strip("\n").split("\n\n"):
            lines = block.splitlines()
            if any(line.startswith(" ") for line in lines):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                blocks.append(
                    textwrap.fill(" ".join(block.split()), width, initial_indent=indent, subsequent_indent=indent)
                )
        return "\n\n".join(blocks)


def examples(doc: str | None, command: str, prog: str | None = None) -> list[str]:
    """The example lines of ``command`` in the docstring ``doc``, with their backslash continuation lines.

    Args:
        doc: a module docstring holding indented example lines such as ``python -m data_prep.riga --root R --out O``.
        command: the start of the lines to take, e.g. ``"python -m monai_lexu.share pack"`` (followed by a space or
            the end of the line).
        prog: replaces ``command`` in the examples (the same options run under another entry point).

    Returns:
        The lines, dedented; an example continued with ``\\`` keeps its continuation lines (indented by 4).
    """
    out: list[str] = []
    lines = (doc or "").splitlines()
    i = 0
    while i < len(lines):
        text = lines[i].strip()
        i += 1
        if text != command and not text.startswith(command + " "):
            continue
        if prog is not None:
            text = prog + text[len(command) :]
        out.append(text)
        while text.endswith("\\") and i < len(lines):
            text = lines[i].strip()
            out.append("    " + text)
            i += 1
    return out


def examples_epilog(doc: str | None, command: str, prog: str | None = None, extra: str = "") -> str:
    """An ``epilog`` for :class:`HelpFormatter`: ``extra`` (e.g. the exit codes), then ``examples:`` and the lines of
    :func:`examples`.

    Raises:
        ValueError: ``doc`` has no example of ``command`` (every command documents one).
    """
    found = examples(doc, command, prog)
    if not found:
        raise ValueError(f"the docstring has no example of {command!r}")
    text = "examples:\n" + "\n".join("  " + line for line in found)
    return f"{extra}\n\n{text}" if extra else text
