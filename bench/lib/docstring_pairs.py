"""Docstring -> code pairs from installed Python packages, CodeSearchNet style.

Usage: python3 docstring_pairs.py ROOT DIR [DIR ...]

Walks each DIR (a package folder under ROOT, the pip --target folder) with
the ast module and prints one JSON object per line for every function or
method that has a docstring:

    {"query": first sentence of the docstring,
     "code": the function's source with the docstring statement removed,
     "source": "path/relative/to/ROOT.py:line"}

Only extraction happens here; the caller applies the length, boilerplate and
duplicate filters, so both languages go through the same ones.
"""

import ast
import json
import os
import re
import sys
import textwrap

SKIP_DIRS = {"tests", "test", "testing", "__pycache__", "examples", "docs"}


def first_sentence(doc):
    """Up to the first period followed by whitespace or the end, within the first paragraph."""
    paragraph = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    match = re.search(r"\.(\s|$)", paragraph)
    sentence = paragraph[: match.start() + 1] if match else paragraph
    return " ".join(sentence.split())


def is_test_file(name):
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def python_files(directory):
    for current, dirs, files in os.walk(directory):
        # Sorted in place so the walk order, and so the output, is the same on every machine.
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py") and not is_test_file(name):
                yield os.path.join(current, name)


def function_code(lines, node, doc_stmt):
    """The def line through the body's end (decorators left out), minus the docstring's lines."""
    start, end = node.lineno, node.end_lineno
    doc_start, doc_end = doc_stmt.lineno, doc_stmt.end_lineno
    # A docstring sharing a line with the signature or with other code can't be
    # cut out by whole lines; such one-liners are rare, so they are skipped.
    if doc_start <= start or doc_stmt.col_offset != len(lines[doc_start - 1]) - len(lines[doc_start - 1].lstrip()):
        return None
    # Column offsets count UTF-8 bytes, not characters.
    if lines[doc_end - 1].encode("utf-8")[doc_stmt.end_col_offset :].strip() not in (b"", b";"):
        return None
    after = doc_end
    while after < end and not lines[after].strip():
        after += 1  # the blank line that usually follows a docstring goes with it
    kept = lines[start - 1 : doc_start - 1] + lines[after:end]
    return textwrap.dedent("\n".join(kept)).strip("\n")


def pairs_in_file(path, root):
    with open(path, "rb") as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError):
        return
    text = source.decode("utf-8", errors="replace")
    # Not str.splitlines(): it also breaks at form feeds and other characters
    # that the parser does not count as line ends, shifting line numbers.
    lines = re.split(r"\r\n|\r|\n", text)
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node, clean=True)
        if not doc:
            continue
        code = function_code(lines, node, node.body[0])
        if code is None:
            continue
        yield {"query": first_sentence(doc), "code": code, "source": f"{rel}:{node.lineno}"}


def main():
    root = sys.argv[1]
    out = sys.stdout
    for directory in sys.argv[2:]:
        files = [directory] if directory.endswith(".py") else python_files(directory)
        for path in files:
            for pair in pairs_in_file(path, root):
                out.write(json.dumps(pair, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
