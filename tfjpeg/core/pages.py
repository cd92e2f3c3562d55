"""The project's self-contained HTML pages (bin/report, bin/audit): one head
and style, and DataFrames as tables. A leaf: it imports no project module."""

import html

STYLE = """body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
.verdict li { margin: 0.3em 0; } code { background: #f4f4f4; padding: 0 0.2em; }
table.numbers { border-collapse: collapse; font-size: 0.8em; }
table.numbers td, table.numbers th { padding: 0.15em 0.5em; border-bottom: 1px solid #ddd;
  overflow-wrap: anywhere; }
.wide { max-width: 100%; overflow-x: auto; }
img { max-width: 100%; }"""


def head(title: str) -> str:
  """The page's start up to its verdict: doctype, style, the title as a heading."""
  title = html.escape(title)
  return (
    f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}'
    f"</title>\n<style>\n{STYLE}\n</style></head><body>\n<h1>{title}</h1>\n"
  )


def verdict(lines) -> str:
  """Findings in plain words, as the page's first list."""
  return (
    '<ul class="verdict">' + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"
  )


def table(frame, digits: str = "{:.3f}") -> str:
  """A DataFrame as a numbers table, floats printed by `digits`, within the
  page's width: long cells (a protocol's steps) wrap, and a table wider still
  scrolls in its own box."""
  inner = frame.to_html(
    index=False, float_format=digits.format, na_rep="", border=0, classes="numbers"
  )
  return f'<div class="wide">{inner}</div>'
