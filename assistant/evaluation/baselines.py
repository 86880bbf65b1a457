"""Two reference retrievers, scored on the same QA questions as the assistant.

* ``dense_1000``: the LangChain tutorial set-up. The Markdown body of each article (front matter
  removed) is cut with ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``,
  embedded with the project's shared embedder (all-MiniLM-L6-v2, which silently truncates chunks
  past 256 word pieces, as the tutorial does), and the top 5 by cosine similarity are returned.
* ``bm25_1000``: bm25s (English stop words, no stemming) over the same chunks, top 5.

Both see the question as typed, without the conversation history: that is what a plain
retriever does, and the history-aware lift shows up in ``multiturn_hit@3``. Contexts come back in
the public API's shape (source, title, section, text, score); ``section`` is the last Markdown
heading before the chunk, for the report only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 5

_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


@dataclass(frozen=True)
class BaselineChunk:
    source: str
    title: str
    section: str
    text: str


def load_chunks(corpus_dir: Path) -> list[BaselineChunk]:
    import frontmatter
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
    )
    chunks: list[BaselineChunk] = []
    for path in sorted(Path(corpus_dir).glob("*.md")):
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
        body = post.content
        title = str(post.metadata.get("title") or path.stem)
        headings = [(mh.start(), mh.group(1)) for mh in _HEADING.finditer(body)]
        for doc in splitter.create_documents([body]):
            start = int(doc.metadata.get("start_index", -1))
            section = ""
            for pos, h in headings:
                if pos <= start:
                    section = h
                else:
                    break
            chunks.append(BaselineChunk(source=path.name, title=title, section=section, text=doc.page_content))
    return chunks


def _contexts(chunks: Sequence[BaselineChunk], idx: Sequence[int], scores: Sequence[float]) -> list[dict]:
    return [
        {"source": chunks[i].source, "title": chunks[i].title, "section": chunks[i].section,
         "text": chunks[i].text, "score": round(float(s), 4)}
        for i, s in zip(idx, scores)
    ]


class DenseBaseline:
    name = "dense_1000"
    label = "Dense top-5, 1000/200-char chunks (LangChain tutorial)"

    def __init__(self, chunks: Sequence[BaselineChunk], embedder) -> None:
        self.chunks = list(chunks)
        self.embedder = embedder
        encode_docs = getattr(embedder, "encode_uncached", embedder.encode)
        self.vectors = np.asarray(encode_docs([c.text for c in self.chunks]), dtype=np.float32)

    def search_many(self, queries: Sequence[str], k: int = TOP_K) -> list[list[dict]]:
        if not queries:
            return []
        q = np.asarray(self.embedder.encode(list(queries)), dtype=np.float32)
        sims = q @ self.vectors.T
        out = []
        for row in sims:
            order = np.lexsort((np.arange(len(row)), -row))[:k]  # by score, ties by chunk order
            out.append(_contexts(self.chunks, order.tolist(), row[order].tolist()))
        return out


class BM25Baseline:
    name = "bm25_1000"
    label = "BM25 top-5 (bm25s), same chunks"

    def __init__(self, chunks: Sequence[BaselineChunk]) -> None:
        import bm25s

        self.chunks = list(chunks)
        self._bm25s = bm25s
        self.retriever = bm25s.BM25()
        self.retriever.index(
            bm25s.tokenize([c.text for c in self.chunks], stopwords="en", show_progress=False),
            show_progress=False,
        )

    def search_many(self, queries: Sequence[str], k: int = TOP_K) -> list[list[dict]]:
        if not queries:
            return []
        toks = self._bm25s.tokenize(list(queries), stopwords="en", return_ids=False, show_progress=False)
        k = min(k, len(self.chunks))
        out = []
        for qt in toks:
            if not qt:
                out.append([])
                continue
            idx, scores = self.retriever.retrieve([qt], k=k, show_progress=False, n_threads=1)
            pairs = sorted(zip(idx[0].tolist(), scores[0].tolist()), key=lambda p: (-p[1], p[0]))
            pairs = [p for p in pairs if p[1] > 0]
            out.append(_contexts(self.chunks, [p[0] for p in pairs], [p[1] for p in pairs]))
        return out


def build_baselines(corpus_dir: Path, embedder) -> list:
    chunks = load_chunks(corpus_dir)
    return [DenseBaseline(chunks, embedder), BM25Baseline(chunks)]
