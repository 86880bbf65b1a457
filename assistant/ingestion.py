"""Reading source documents and cutting them into section-aware chunks.

A chunk never crosses a heading, carries its title and heading path, and is measured with the
embedding model's own tokenizer so nothing is silently truncated at embedding time.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pysbd

from .errors import CorpusError

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")
MAX_FILE_BYTES = 20 * 1024 * 1024
CHUNKING_VERSION = 3

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEGMENTER = pysbd.Segmenter(language="en", clean=False)


class IngestionError(CorpusError):
    """A file or folder that cannot be read; a bad file is skipped and the rest of the folder indexed."""


@dataclass(frozen=True)
class Block:
    """One paragraph, list item or table row, the unit a chunk is packed from."""

    text: str
    is_item: bool = False


@dataclass
class Section:
    path: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)

    @property
    def heading(self) -> str:
        return " > ".join(self.path)


@dataclass
class Document:
    source: str
    title: str
    sections: list[Section]
    content_hash: str


@dataclass(frozen=True)
class Sentence:
    text: str
    is_item: bool


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    title: str
    section: str
    text: str
    sentences: tuple[Sentence, ...]
    order: int
    doc_hash: str

    @property
    def embed_text(self) -> str:
        """Title and heading give a short chunk its topic ("Step 2: Choose the Right Shoes")."""
        return f"{self.title}. {self.section}. {self.text}"


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SEGMENTER.segment(text) if s and s.strip()]


# ---------------------------------------------------------------- readers


def _read_text_file(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise IngestionError(f"{path.name}: binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestionError(f"{path.name}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def _split_front_matter(text: str) -> tuple[dict, str]:
    import frontmatter

    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # malformed YAML header: keep the body, say so
        log.warning("front matter could not be parsed (%s); using the text as is", exc)
        return {}, text
    return dict(post.metadata), post.content


def _markdown_to_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (heading level or 0, text) for headings and body blocks of Markdown-ish text."""
    paragraph: list[str] = []

    def flush() -> Iterator[tuple[int, str]]:
        if paragraph:
            yield 0, " ".join(paragraph)
            paragraph.clear()

    for raw in text.split("\n"):
        line = raw.strip()
        m = _HEADING.match(line)
        if m:
            yield from flush()
            yield len(m.group(1)), m.group(2)
        elif not line:
            yield from flush()
        elif _BULLET.match(line) or line.startswith("|"):
            yield from flush()
            yield 0, line
        else:
            paragraph.append(line)
    yield from flush()


def _table_row(line: str) -> str | None:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    cells = [c for c in cells if c]
    return " \u2014 ".join(cells) if cells else None


def _sections_from_markdown(body: str, title: str) -> list[Section]:
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    current = Section(path=(title,))
    header_row = True
    for level, line in _markdown_to_lines(body):
        if level:
            if level == 1 and not sections and not current.blocks:
                continue  # the document title itself
            sections.append(current)
            stack = [(lv, h) for lv, h in stack if lv < level] + [(level, line)]
            current = Section(path=tuple(h for _, h in stack))
            header_row = True
            continue
        if line.startswith("|"):
            if set(line) <= set("|-: "):
                continue
            row = _table_row(line)
            if row and not header_row:
                current.blocks.append(Block(row, is_item=True))
            header_row = False
            continue
        is_item = bool(_BULLET.match(line))
        text = _BULLET.sub("", line, count=1) if is_item else line
        if text:
            current.blocks.append(Block(text, is_item=is_item))
    sections.append(current)
    return [s for s in sections if s.blocks]


def _html_to_markdown(html: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "header", "aside", "form", "noscript", "iframe"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    lines: list[str] = []
    root = soup.body or soup
    for el in root.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "tr"]):
        if el.name == "li" and el.find(["p", "li"]):
            continue
        text = " ".join(el.get_text(" ", strip=True).split())
        if not text:
            continue
        if el.name.startswith("h"):
            lines.append(f"{'#' * int(el.name[1])} {text}")
        elif el.name == "li":
            lines.append(f"- {text}")
        elif el.name == "tr":
            cells = [" ".join(c.get_text(" ", strip=True).split()) for c in el.find_all(["td", "th"])]
            lines.append("| " + " | ".join(cells) + " |")
        else:
            lines.append(text)
        lines.append("")
    return title, "\n".join(lines)


def _pdf_to_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, OSError) as exc:
        raise IngestionError(f"{path.name}: unreadable PDF ({exc})") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise IngestionError(f"{path.name}: PDF has no extractable text")
    return text


def _title_from_name(path: Path) -> str:
    return re.sub(r"[-_]+", " ", path.stem).strip().capitalize() or path.name


def load_document(path: Path) -> Document:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise IngestionError(f"{path.name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    suffix = path.suffix.lower()
    meta: dict = {}
    if suffix == ".pdf":
        body = _pdf_to_text(path)
    elif suffix in (".html", ".htm"):
        html_title, body = _html_to_markdown(_read_text_file(path))
        meta["title"] = html_title
    else:
        text = clean_text(_read_text_file(path))
        if suffix in (".md", ".markdown"):
            meta, body = _split_front_matter(text)
        else:
            body = text
    body = clean_text(body)
    title = str(meta.get("title") or "").strip()
    if not title:
        first = next((line for lvl, line in _markdown_to_lines(body) if lvl == 1), "")
        title = first or _title_from_name(path)
    sections = _sections_from_markdown(body, title)
    if not sections:
        raise IngestionError(f"{path.name}: no text found")
    digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()
    return Document(source=path.name, title=title, sections=sections, content_hash=digest)


def discover(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise IngestionError(
            f"corpus folder not found: {folder}. Create it with your .md, .txt, .html or .pdf documents, "
            "or point BACKPAIN_CORPUS_DIR at them"
        )
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".")
    )


def load_corpus(folder: Path) -> tuple[list[Document], list[str]]:
    """Every readable document, plus one warning per file that was skipped."""
    docs: list[Document] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for path in discover(folder):
        try:
            doc = load_document(path)
        except IngestionError as exc:
            warnings.append(str(exc))
            log.warning("skipped %s", exc)
            continue
        except OSError as exc:
            warnings.append(f"{path.name}: {exc}")
            log.warning("skipped %s: %s", path.name, exc)
            continue
        if doc.source in seen:
            warnings.append(f"{path}: another file is already named {doc.source}")
            log.warning("skipped %s: duplicate file name", path)
            continue
        seen.add(doc.source)
        docs.append(doc)
    return docs, warnings


# ---------------------------------------------------------------- chunking


@dataclass(frozen=True)
class ChunkingConfig:
    max_tokens: int
    target_tokens: int

    def fingerprint(self) -> str:
        return f"v{CHUNKING_VERSION}:max{self.max_tokens}:target{self.target_tokens}"


def _units(section: Section) -> list[Sentence]:
    units: list[Sentence] = []
    for block in section.blocks:
        if block.is_item:
            units.append(Sentence(block.text, True))
        else:
            units.extend(Sentence(s, False) for s in split_sentences(block.text))
    return units


def _join(units: Iterable[Sentence]) -> str:
    out: list[str] = []
    for u in units:
        if u.is_item:
            out.append(("\n- " if out else "- ") + u.text)
        else:
            sep = "\n" if out and out[-1].startswith(("\n- ", "- ")) else " "
            out.append((sep if out else "") + u.text)
    return "".join(out).strip()


def chunk_document(doc: Document, cfg: ChunkingConfig, count_tokens: Callable[[str], int]) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen_ids: dict[str, int] = {}
    for section in doc.sections:
        prefix_tokens = count_tokens(f"{doc.title}. {section.heading}. ")
        budget = cfg.max_tokens - prefix_tokens
        target = min(cfg.target_tokens, budget)
        groups: list[list[Sentence]] = []
        current: list[Sentence] = []
        current_tokens = 0
        for unit in _units(section):
            n = count_tokens(unit.text) - 2
            if current and current_tokens + n > target:
                groups.append(current)
                current, current_tokens = [], 0
            if n > budget:
                words = unit.text.split()
                step = max(8, int(len(words) * budget / n) - 1)
                for i in range(0, len(words), step):
                    groups.append([Sentence(" ".join(words[i:i + step]), unit.is_item)])
                continue
            current.append(unit)
            current_tokens += n
        if current:
            # a very short tail reads better merged into its neighbour when it fits
            if groups and current_tokens < 40 and count_tokens(_join(groups[-1] + current)) - 2 <= budget:
                groups[-1].extend(current)
            else:
                groups.append(current)
        for units in groups:
            text = _join(units)
            key = f"{doc.source}\x1f{section.heading}\x1f{text}\x1f{cfg.fingerprint()}"
            base = hashlib.sha1(key.encode()).hexdigest()[:20]
            dup = seen_ids.get(base, 0)
            seen_ids[base] = dup + 1
            chunk_id = base if dup == 0 else f"{base}-{dup}"
            chunks.append(
                Chunk(
                    id=chunk_id,
                    source=doc.source,
                    title=doc.title,
                    section=section.heading,
                    text=text,
                    sentences=tuple(units),
                    order=len(chunks),
                    doc_hash=doc.content_hash,
                )
            )
    return chunks
