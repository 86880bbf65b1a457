"""Reading documents and section-aware chunking, with the real tokenizer."""

from __future__ import annotations

import re

import pytest

from assistant.ingestion import (
    ChunkingConfig,
    chunk_document,
    load_corpus,
    load_document,
)
from conftest import CORPUS

CFG = ChunkingConfig(max_tokens=200, target_tokens=150)


@pytest.fixture(scope="module")
def corpus_chunks(embedder):
    docs, warnings = load_corpus(CORPUS)
    assert warnings == []
    return docs, [c for d in docs for c in chunk_document(d, CFG, embedder.count_tokens)]


def test_corpus_documents_have_titles_sources_and_sections(corpus_chunks):
    docs, _ = corpus_chunks
    assert len(docs) == 5
    for doc in docs:
        assert doc.source.endswith(".md")
        assert doc.title and not doc.title.startswith("#")
        assert len(doc.sections) >= 3


def test_front_matter_names_the_original_seed(corpus_chunks):
    import frontmatter

    for path in CORPUS.glob("*.md"):
        meta = frontmatter.load(path).metadata
        assert re.fullmatch(r"\d{3}_[0-9a-f]{16}\.txt", meta["source"])
        assert meta["title"]


def test_site_chrome_never_reaches_the_corpus(corpus_chunks):
    _, chunks = corpus_chunks
    text = " ".join(c.text for c in chunks).lower()
    for chrome in ("skin cancer", "tampon", "thyroid", "leave a comment", "share:", "back to all articles",
                   "arrow-right-icon", "please check your inbox", "sahil bisht"):
        assert chrome not in text


def test_chunks_stay_in_one_section_and_under_the_model_limit(corpus_chunks, embedder):
    docs, chunks = corpus_chunks
    sections = {(d.source, s.heading): " ".join(b.text for b in s.blocks) for d in docs for s in d.sections}
    for chunk in chunks:
        body = sections[(chunk.source, chunk.section)]
        for sentence in chunk.sentences:
            assert sentence.text in body, (chunk.section, sentence.text)
        tokens = embedder.count_tokens(chunk.embed_text)
        assert tokens <= CFG.max_tokens <= embedder.max_tokens


def test_chunk_ids_are_stable_content_hashes(corpus_chunks, embedder):
    docs, chunks = corpus_chunks
    again = [c for d in load_corpus(CORPUS)[0] for c in chunk_document(d, CFG, embedder.count_tokens)]
    assert [c.id for c in chunks] == [c.id for c in again]
    assert len({c.id for c in chunks}) == len(chunks)
    other = [c for d in docs for c in chunk_document(d, ChunkingConfig(180, 120), embedder.count_tokens)]
    assert {c.id for c in other}.isdisjoint({c.id for c in chunks})


def test_long_section_is_split_by_sentences(tmp_path, embedder):
    long_para = " ".join(f"Sentence number {i} says walking on grass is gentle on the spine." for i in range(80))
    (tmp_path / "long.md").write_text(f"---\ntitle: Long\n---\n# Long\n\n## Only section\n\n{long_para}\n")
    doc = load_document(tmp_path / "long.md")
    chunks = chunk_document(doc, CFG, embedder.count_tokens)
    assert len(chunks) > 3
    assert all(embedder.count_tokens(c.embed_text) <= CFG.max_tokens for c in chunks)
    assert " ".join(c.text for c in chunks) == long_para


def test_reads_txt_html_and_pdf(tmp_path):
    (tmp_path / "plain.txt").write_text("Walking on sand is softer than concrete.\n\nTry it for ten minutes.")
    (tmp_path / "page.html").write_text(
        "<html><head><title>Beach walks</title><script>alert(1)</script></head><body><nav>Home</nav>"
        "<h1>Beach walks</h1><h2>Why sand</h2><p>Sand absorbs the shock of each step.</p>"
        "<ul><li>Go barefoot</li><li>Start with short walks</li></ul></body></html>"
    )
    (tmp_path / "notes.pdf").write_bytes(_tiny_pdf("Pool walking takes weight off the spine."))
    docs, warnings = load_corpus(tmp_path)
    assert warnings == []
    by_name = {d.source: d for d in docs}
    html = by_name["page.html"]
    assert html.title == "Beach walks"
    assert [s.heading for s in html.sections] == ["Why sand"]
    assert [b.text for b in html.sections[0].blocks] == [
        "Sand absorbs the shock of each step.", "Go barefoot", "Start with short walks"]
    assert "alert" not in str(html.sections)
    assert by_name["plain.txt"].title == "Plain"
    pdf_text = " ".join(b.text for s in by_name["notes.pdf"].sections for b in s.blocks)
    assert "Pool walking takes weight off the spine." in pdf_text


def test_broken_files_are_skipped_with_a_warning_naming_them(tmp_path):
    (tmp_path / "good.md").write_text("# Good\n\nWalking helps many people with back pain.")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 walking".encode("latin-1"))
    (tmp_path / "binary.md").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (tmp_path / "empty.md").write_text("   \n")
    docs, warnings = load_corpus(tmp_path)
    assert [d.source for d in docs] == ["good.md"]
    joined = "\n".join(warnings)
    for name in ("latin1.txt", "binary.md", "broken.pdf", "empty.md"):
        assert name in joined


def _tiny_pdf(text: str) -> bytes:
    """A minimal one-page PDF with real text, written by hand so the test needs no PDF writer."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_onnx_and_torch_backends_give_the_same_vectors(embedder):
    """The answering path runs the exported ONNX graph; it must agree with sentence-transformers."""
    from assistant.embeddings import _load_torch_model

    texts = ["is walking good for my lower back?", "trainers", "x " * 300,
             "My bum's gone numb and I can't wee — should I still do my 30 minute walk on the treadmill?"]
    assert embedder.backend == "onnx"
    onnx_vecs = embedder.encode_uncached(texts)
    torch_vecs = _load_torch_model(embedder.model_path, 2).encode(texts, normalize_embeddings=True)
    cosines = (onnx_vecs * torch_vecs).sum(axis=1)
    assert cosines.min() > 0.9999, cosines
    assert embedder.count_tokens("x " * 300) > embedder.max_tokens
