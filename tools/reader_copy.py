"""The reader's copy of each chapter: the notebook with its MyST resolved to CommonMark + LaTeX.

The chapters (chapters/*.ipynb) are written in MyST: roles such as {term}, {ref}, {eq}, {numref},
{prf:ref}, {cite}, {doc} and {eval} (glued numbers), `(label)=` targets, `$$ ... $$ (label)` equations, and
directives (sphinx-proof's propositions and proofs, sphinx-exercise's exercises and solutions).
Jupyter Book renders them; Colab and a plain Jupyter show them raw. This script, run by
`make book` after the build, writes a reader's copy of every chapter whose markdown is plain
CommonMark with LaTeX math, generated from the chapter (the committed chapters stay the single
source) and from the pages the build just wrote (numbers, titles, glued values):

- a role becomes its text as the book prints it, linked where it points: within the chapter to
  an anchor of the copy, elsewhere to the published page (the book's GitHub Pages site, derived
  from `repository:` in _config.yml); {eval} becomes the value the build computed;
- a target `(label)=` becomes an HTML anchor; a labelled equation gets its number (`\\tag`);
- a proposition or proof becomes a quoted block headed by its number and title ("Proposition 2.1
  (...)", "Proof."), an exercise a headed block, a solution a folded `<details>` block (Colab,
  JupyterLab and GitHub unfold it on a click); a solution spread over several cells
  (solution-start/solution-end) is headed and ended by a line;
- code cells are kept as they are (the first one installs bnlib where it is missing: Colab); a
  figure's caption and anchor (the cell's `mystnb.figure` metadata) open the next markdown cell.

Where it goes (`--html`, default _build/html): `_sources/chapters/<chapter>.ipynb`, the file the
page's download button serves; and the Colab launch button of each chapter page is pointed at
that file on the branch the site is published to (PAGES_BRANCH, see .github/workflows/book.yml),
since Colab opens notebooks from GitHub. Binder keeps opening the chapter itself in JupyterLab,
whose environment (the lock) renders MyST with jupyterlab-myst.

    python tools/reader_copy.py              # after `jupyter-book build`; `make book` runs it
    python tools/reader_copy.py --out DIR    # only write the copies into DIR

tests/book/test_reader_copy.py checks that no MyST syntax is left and runs a copy top to bottom.
"""

from __future__ import annotations

import argparse
import copy
import html as htmllib
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
PAGES_BRANCH = "gh-pages"  # the branch .github/workflows/book.yml publishes _build/html to
COLAB = "https://colab.research.google.com/github"

# MyST left in a reader's copy (the test's oracle uses its own copy of this list).
LEFTOVER = re.compile(r"\{(?:term|ref|numref|eq|cite(?::\w+)?|doc|prf:\w+|glue(?::\w+)?|eval|exercise|solution"
                      r"|math|download)\}`|\{(?:prf:|exercise|solution)|^[`:]{3,}\{", re.M)

ROLE = re.compile(r"\{([a-z]+(?::[a-z]+)?)\}`([^`]*)`")
EXPLICIT = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>.*)$")
TARGET = re.compile(r"^\(([^()\s]+)\)=\s*$")
EQ_LABEL = re.compile(r"\$\$\s*\(([^()\s]+)\)\s*$")


def site_url() -> str:
    """The published book's address, from `repository:` in _config.yml (GitHub Pages)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    url = str(config["repository"]["url"]).rstrip("/")
    owner, name = url.removeprefix("https://github.com/").split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def repository() -> tuple[str, str]:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    url = str(config["repository"]["url"]).rstrip("/")
    return url.removeprefix("https://github.com/"), str(config["repository"].get("branch", "main"))


def _text(fragment: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


class Book:
    """What the built pages say: the text of every reference, the titles of the blocks, glue."""

    def __init__(self, html: Path):
        self.html = html
        self.refs: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, label) -> (text, page)
        self.pages: dict[str, str] = {}
        for page in sorted(html.rglob("*.html")):
            rel = page.relative_to(html).as_posix()
            if rel.startswith(("_", "genindex", "search")):
                continue
            source = page.read_text(encoding="utf8")
            self.pages[rel] = source
            base = page.parent
            for href, inner in re.findall(r'<a class="reference internal" href="([^"]*)"[^>]*>(.*?)</a>',
                                          source, re.S):
                target, _, anchor = href.partition("#")
                if not anchor:
                    continue
                where = (base / target).resolve().relative_to(html.resolve()).as_posix() if target else rel
                kind = ("numref" if "std-numref" in inner else "ref" if "std-ref" in inner
                        else "eq" if anchor.startswith("equation-") else "term" if "std-term" in inner
                        else "other")
                self.refs.setdefault((kind, anchor), (_text(inner), where))

    def chapter(self, name: str) -> dict:
        """The blocks' titles in order (by kind) and the glued values in order, of one chapter."""
        source = self.pages[f"chapters/{name}.html"]
        article = source[source.index("<article"):source.index("</article>")]
        titles: dict[str, list[str]] = {}
        for classes, title in re.findall(
                r'<div class="([^"]*\badmonition\b[^"]*)"[^>]*>\s*<p class="admonition-title">(.*?)</p>',
                article, re.S):
            words = classes.split()
            kind = (f"prf:{words[1]}" if words[0] == "proof" else words[0])
            titles.setdefault(kind, []).append(_text(title))
        equations = {label: number for label, number in re.findall(
            r'id="equation-([^"]+)">\s*<span class="eqno">(\([^)]*\))', article)}
        glue = [_text(t) for t in re.findall(r'<span class="pasted-text">(.*?)</span>', article, re.S)]
        return {"titles": titles, "equations": equations, "glue": glue}


class Resolver:
    """Turns one chapter's MyST into CommonMark + LaTeX."""

    def __init__(self, book: Book, name: str, site: str):
        self.book, self.name, self.site = book, name, site
        self.page = f"chapters/{name}.html"
        info = book.chapter(name)
        self.titles = {k: list(v) for k, v in info["titles"].items()}
        self.equations = info["equations"]
        self.glue = list(info["glue"])
        self.glue_expected = len(self.glue)
        self.bib = _bibliography(ROOT / "references.bib")

    # -- links ---------------------------------------------------------------------------------
    def link(self, text: str, page: str, anchor: str = "") -> str:
        if page == self.page and anchor:
            return f"[{text}](#{anchor})"
        return f"[{text}]({self.site}{page}{'#' + anchor if anchor else ''})"

    def lookup(self, label: str, *kinds: str) -> tuple[str, str] | None:
        for kind in kinds:
            if (kind, label) in self.book.refs:
                return self.book.refs[kind, label]
        return None

    # -- roles ---------------------------------------------------------------------------------
    def role(self, match: re.Match) -> str:
        name, body = match.group(1), match.group(2)
        explicit = EXPLICIT.match(body)
        text, target = (explicit.group(1), explicit.group(2)) if explicit else (None, body)
        if name in ("eval", "glue:text"):  # a glued number (bnlib/book.py): the page's value
            if not self.glue:
                raise ValueError(f"{self.name}: more {{eval}} roles than glued values in the built page")
            return self.glue.pop(0)
        if name == "term":
            anchor = "term-" + re.sub(r"\s+", "-", target.strip())
            return self.link(text or target, "glossary.html", anchor)
        if name in ("cite", "cite:p", "cite:t"):
            return self._cite(name, target)
        if name == "doc":
            page = target.lstrip("/").removesuffix(".md").removesuffix(".ipynb")
            if not page.startswith(("chapters/",)) and "/" not in page and self.page.startswith("chapters/") \
                    and (ROOT / "chapters" / f"{page}.ipynb").exists():
                page = f"chapters/{page}"
            return self.link(text or page, f"{page}.html")
        if name == "eq":
            found = self.lookup(f"equation-{target}", "eq")
            number = found[0] if found else self.equations.get(target, f"({target})")
            return self.link(text or number, found[1] if found else self.page, f"equation-{target}")
        if name in ("ref", "numref", "prf:ref"):
            found = self.lookup(target, "numref" if name == "numref" else "ref", "other", "ref", "numref")
            if found is None:
                raise ValueError(f"{self.name}: {{{name}}}`{body}`: no reference to {target!r} in the built pages")
            shown, page = found
            if text and "%s" in text:
                number = re.search(r"[\d.]*\d", shown)
                text = text.replace("%s", number.group(0) if number else shown)
            return self.link(text or shown, page, target)
        if name == "math":
            return f"${body}$"
        raise ValueError(f"{self.name}: the role {{{name}}} has no rendering in tools/reader_copy.py")

    def _cite(self, name: str, keys: str) -> str:
        out = []
        for key in [k.strip() for k in keys.split(",")]:
            if key not in self.bib:
                raise ValueError(f"{self.name}: {{cite}}`{key}` is not in references.bib")
            authors, year = self.bib[key]
            shown = f"{authors} ({year})" if name == "cite:t" else f"{authors}, {year}"
            out.append(self.link(shown, "bibliography.html"))
        joined = "; ".join(out)
        return joined if name == "cite:t" else f"({joined})"

    # -- blocks --------------------------------------------------------------------------------
    def markdown(self, source: str) -> str:
        lines = source.split("\n")
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            fence = FENCE.match(line)
            target = TARGET.match(line)
            if fence:
                close = fence.group("fence")
                j = i + 1
                while j < len(lines) and lines[j].rstrip() != close:
                    j += 1
                body = lines[i + 1:j]
                options = {}
                while body and re.match(r"^:[\w-]+:", body[0]):
                    key, _, value = body.pop(0)[1:].partition(":")
                    options[key] = value.strip()
                out.extend(self.directive(fence.group("name"), fence.group("arg").strip(), options,
                                          "\n".join(body)).split("\n"))
                i = j + 1
                continue
            if target:
                out.append(f'<a id="{target.group(1)}"></a>')
                i += 1
                continue
            if line.lstrip().startswith("%"):  # a MyST comment
                i += 1
                continue
            label = EQ_LABEL.search(line)
            if label:
                number = self.equations.get(label.group(1), "")
                tag = f" \\tag{{{number.strip('()')}}}" if number else ""
                line = EQ_LABEL.sub(lambda _: f"{tag} $$", line)  # (a function: no escapes in \tag)
                # The anchor goes before the equation's opening $$ (this line, if it is all of it).
                opening = [n for n, previous in enumerate(out) if "$$" in previous]
                k = len(out) if line.count("$$") >= 2 or not opening else opening[-1]
                out.insert(k, f'<a id="equation-{label.group(1)}"></a>\n')
            out.append(ROLE.sub(self.role, line))
            i += 1
        return "\n".join(out)

    def next_title(self, kind: str, fallback: str) -> str:
        titles = self.titles.get(kind) or []
        return titles.pop(0) if titles else fallback

    def directive(self, name: str, arg: str, options: dict, body: str) -> str:
        inner = self.markdown(body)
        anchor = f'<a id="{options["label"]}"></a>\n\n' if "label" in options else ""
        if name == "prf:proof":
            self.next_title(name, "Proof.")
            return _quote(f"*Proof.* {inner.strip()} $\\square$")
        if name.startswith("prf:"):
            title = self.next_title(name, name[4:].capitalize() + (f" ({arg})" if arg else ""))
            return anchor + _quote(f"**{title}**\n\n{inner.strip()}")
        if name == "exercise":
            title = self.next_title("exercise", "Exercise" + (f" ({arg})" if arg else ""))
            return f"{anchor}**{title}**\n\n{inner.strip()}"
        if name == "solution":
            title = self.next_title("solution", "Solution")
            return (f"{anchor}<details>\n<summary>{htmllib.escape(title)}</summary>\n\n{inner.strip()}\n\n"
                    f"</details>")
        if name == "solution-start":
            title = self.next_title("solution", "Solution")
            return f"{anchor}**{title}** (down to the end of the solution below)\n\n{inner.strip()}"
        if name == "solution-end":
            return "*End of the solution.*"
        if name == "math":
            return f"$$\n{inner.strip()}\n$$"
        if name in ("note", "tip", "warning", "important", "caution", "attention", "hint", "seealso",
                    "admonition", "danger", "error"):
            title = arg if name == "admonition" else name.capitalize()
            return anchor + _quote(f"**{title}.** {inner.strip()}")
        raise ValueError(f"{self.name}: the directive {{{name}}} has no rendering in tools/reader_copy.py")


def _quote(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.split("\n"))


def _bibliography(path: Path) -> dict[str, tuple[str, str]]:
    """key -> (authors as author-year citations print them, year), from a plain BibTeX file."""
    out = {}
    for key, fields in re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", path.read_text(encoding="utf8"), re.S):
        author = re.search(r"\bauthor\s*=\s*[{\"](.*?)[}\"]\s*,?\s*\n", fields, re.S)
        year = re.search(r"\byear\s*=\s*[{\"]?(\d{4})", fields)
        names = [n.strip() for n in re.split(r"\s+and\s+", author.group(1) if author else "")]
        last = [n.split(",")[0].strip("{} ") if "," in n else n.split()[-1].strip("{}") for n in names if n]
        shown = (last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2
                 else f"{last[0]} et al." if last else key)
        out[key] = (shown, year.group(1) if year else "n.d.")
    return out


def reader_copy(chapter: Path, book: Book, site: str) -> dict:
    """The reader's copy of one chapter notebook (a new notebook dict)."""
    nb = json.loads(chapter.read_text(encoding="utf8"))
    out = copy.deepcopy(nb)
    resolver = Resolver(book, chapter.stem, site)
    caption = ""  # a figure's anchor and caption (code cell metadata) open the next markdown cell
    for cell in out["cells"]:
        if cell["cell_type"] == "markdown":
            text = resolver.markdown("".join(cell["source"]))
            cell["source"] = (caption + text).splitlines(keepends=True)
            caption = ""
            # the numbers JupyterLab would evaluate (tools/store_numbers.py) are in the text now
            cell.get("metadata", {}).pop("user_expressions", None)
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
        if cell["cell_type"] == "code" and figure:
            name = figure.get("name", "")
            found = resolver.lookup(name, "numref") if name else None
            number = found[0] if found else "Figure"
            anchor = f'<a id="{name}"></a>\n\n' if name else ""
            caption = f"{anchor}*{number}.* {resolver.markdown(figure.get('caption', '')).strip()}\n\n"
    if resolver.glue:
        raise ValueError(f"{chapter.name}: {len(resolver.glue)} glued values of the built page left unused")
    out.setdefault("metadata", {})["bnbook"] = {
        "reader_copy": f"generated from chapters/{chapter.name} by tools/reader_copy.py: plain Markdown "
                       "and LaTeX, for Colab and Jupyter without MyST; edit the chapter, not this copy"}
    return out


def point_colab_at_copies(html: Path) -> int:
    """Point each chapter page's Colab launch button at its reader's copy on PAGES_BRANCH."""
    repo, branch = repository()
    changed = 0
    for chapter in CHAPTERS:
        page = html / "chapters" / f"{chapter.stem}.html"
        text = page.read_text(encoding="utf8")
        old = f"{COLAB}/{repo}/blob/{branch}/chapters/{chapter.name}"
        new = f"{COLAB}/{repo}/blob/{PAGES_BRANCH}/_sources/chapters/{chapter.name}"
        if old not in text and new not in text:
            raise ValueError(f"{page}: no Colab launch button ({old})")
        page.write_text(text.replace(old, new), encoding="utf8")
        changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book (%(default)s)")
    ap.add_argument("--out", type=Path, help="write the copies here only (default: into the built book)")
    args = ap.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"tools/reader_copy.py: {args.html} has no index.html: build the book first (`make book`)",
              file=sys.stderr)
        return 1
    book = Book(args.html)
    site = site_url()
    out = args.out or args.html / "_sources" / "chapters"
    out.mkdir(parents=True, exist_ok=True)
    for chapter in CHAPTERS:
        copy_ = reader_copy(chapter, book, site)
        (out / chapter.name).write_text(json.dumps(copy_, indent=1, ensure_ascii=False) + "\n", encoding="utf8")
    if args.out is None:
        point_colab_at_copies(args.html)
    print(f"tools/reader_copy.py: {len(CHAPTERS)} reader's copies in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
