"""``backpain``: index, ask, chat, serve and eval from the terminal."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import BackpainError, CorpusError, UsageError
from .settings import Settings

log = logging.getLogger(__name__)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Walking and back pain assistant.")


def _settings(
    index_dir: Optional[Path] = None,
    chroma_host: Optional[str] = None,
    chroma_port: Optional[int] = None,
    corpus_dir: Optional[Path] = None,
    collection: Optional[str] = None,
) -> Settings:
    overrides = {
        k: v
        for k, v in {
            "index_dir": index_dir,
            "chroma_host": chroma_host,
            "chroma_port": chroma_port,
            "corpus_dir": corpus_dir,
            "collection": collection,
        }.items()
        if v is not None
    }
    return Settings(**overrides)


def _logging(verbose: bool) -> None:
    """Warnings only unless -v (or BACKPAIN_LOG_LEVEL). The level sits on the handler too, because
    some libraries (bm25s) set their own logger to DEBUG when imported."""
    level = logging.DEBUG if verbose else logging.getLevelName(Settings().log_level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if not verbose:
        for noisy in ("httpx", "chromadb", "sentence_transformers", "urllib3", "posthog", "transformers", "bm25s"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


IndexDir = typer.Option(None, "--index-dir", help="Folder of the embedded Chroma store (BACKPAIN_INDEX_DIR).")
ChromaHost = typer.Option(None, "--chroma-host", help="Use a Chroma server at this host (BACKPAIN_CHROMA_HOST).")
ChromaPort = typer.Option(None, "--chroma-port", help="Port of the Chroma server (BACKPAIN_CHROMA_PORT).")
Verbose = typer.Option(False, "--verbose", "-v", help="Debug logging.")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    sys.exit(code)


def _assistant(settings: Settings, ensure_index: bool = True):
    from .api import Assistant

    return Assistant(settings, ensure_index=ensure_index)


@app.command()
def index(
    path: Optional[Path] = typer.Argument(None, help="Folder of .md/.txt/.html/.pdf documents (default: corpus/)."),
    index_dir: Optional[Path] = IndexDir,
    chroma_host: Optional[str] = ChromaHost,
    chroma_port: Optional[int] = ChromaPort,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Drop the index and build it again (a damaged or inconsistent one)."),
    verbose: bool = Verbose,
) -> None:
    """Build or update the index incrementally: only changed documents are re-embedded."""
    _logging(verbose)
    from .store import Store, discard_unopenable_index

    if path is not None and not path.is_dir():
        raise UsageError(f"not a folder: {path}")
    settings = _settings(index_dir, chroma_host, chroma_port, corpus_dir=path)
    if rebuild:
        discard_unopenable_index(settings)
    store = Store(settings)
    summary = store.rebuild(progress=not quiet) if rebuild else store.sync(progress=not quiet)
    for warning in summary.warnings:
        typer.secho(f"skipped: {warning}", fg=typer.colors.YELLOW, err=True)
    typer.echo(summary.line())
    if summary.documents == 0:
        raise CorpusError(f"no readable documents in {settings.corpus_dir}: add .md, .txt, .html or .pdf files")


def _print_result(result, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    if result.kind == "red_flag":
        typer.secho(f"[{result.safety.level.upper()}]", fg=typer.colors.RED, bold=True)
    typer.echo(result.text)
    for c in result.citations:
        typer.secho(f"[{c.n}] {c.title} \u2014 {c.section} ({c.source})", fg=typer.colors.CYAN)


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question, in quotes."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    index_dir: Optional[Path] = IndexDir,
    chroma_host: Optional[str] = ChromaHost,
    chroma_port: Optional[int] = ChromaPort,
    verbose: bool = Verbose,
) -> None:
    """Ask one question and print the cited answer."""
    _logging(verbose)
    bot = _assistant(_settings(index_dir, chroma_host, chroma_port))
    result = bot.answer(question)
    _print_result(result, as_json)
    if result.kind == "invalid_input":
        raise typer.Exit(UsageError.exit_code)


@app.command()
def chat(
    index_dir: Optional[Path] = IndexDir,
    chroma_host: Optional[str] = ChromaHost,
    chroma_port: Optional[int] = ChromaPort,
    verbose: bool = Verbose,
) -> None:
    """A conversation in the terminal; follow-up questions use what was said before. Ctrl-D to leave."""
    _logging(verbose)
    bot = _assistant(_settings(index_dir, chroma_host, chroma_port))
    history: list[dict] = []
    typer.echo("Ask about walking and back pain. Empty line or Ctrl-D to quit.")
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            typer.echo("")
            break
        if not line.strip():
            break
        result = bot.answer(line, history)
        _print_result(result, False)
        history += [{"role": "user", "content": line}, {"role": "assistant", "content": result.text}]


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Interface to listen on (BACKPAIN_HOST, default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port (BACKPAIN_PORT, default 7860)."),
    index_dir: Optional[Path] = IndexDir,
    chroma_host: Optional[str] = ChromaHost,
    chroma_port: Optional[int] = ChromaPort,
    verbose: bool = Verbose,
) -> None:
    """Serve the chat page (the index is brought up to date first)."""
    _logging(verbose)
    from ui.app import serve as serve_ui

    serve_ui(_settings(index_dir, chroma_host, chroma_port), host=host, port=port)


@app.command("eval")
def evaluate(
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Report folder (default evals/report)."),
    thresholds: Optional[Path] = typer.Option(None, "--thresholds", help="Minimum figures (default evals/thresholds.toml)."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Answer from this folder of documents instead "
                                          "(indexed on its own under index/corpora/)."),
    qa: Optional[Path] = typer.Option(None, "--qa", help="Your own QA cases (JSONL; schema in the README)."),
    scope: Optional[Path] = typer.Option(None, "--scope", help="Your own scope cases (JSONL)."),
    safety: Optional[Path] = typer.Option(None, "--safety", help="Your own safety cases (JSONL)."),
    compare: Optional[Path] = typer.Option(None, "--compare", help="An earlier report.json (or its folder): show "
                                           "what changed, metric by metric and case by case."),
    max_failures: int = typer.Option(20, "--max-failures", help="Failed cases listed in the summary."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Skip the baseline retrievers."),
    index_dir: Optional[Path] = IndexDir,
    chroma_host: Optional[str] = ChromaHost,
    chroma_port: Optional[int] = ChromaPort,
    verbose: bool = Verbose,
) -> None:
    """Score the assistant on evals/ (or on your own files) and write a report; exit 1 when a metric
    is under its threshold, 2 when a data file is broken."""
    _logging(verbose)
    from .evaluation import run_from_cli

    settings = _settings(index_dir, chroma_host, chroma_port)
    if corpus is not None:
        if not corpus.is_dir():
            raise UsageError(f"--corpus {corpus}: not a folder")
        settings = settings.for_corpus(corpus, keep_index_dir=index_dir is not None)
    code = run_from_cli(
        out_dir=out_dir,
        thresholds=thresholds,
        baselines=not no_baselines,
        settings=settings,
        files={"qa": qa, "scope": scope, "safety": safety},  # the sets not given are dropped there
        compare=compare,
        max_failures=max_failures,
    )
    raise typer.Exit(code)


def main() -> None:
    """The ``backpain`` command: a known failure is one red line and its exit code (README,
    "Exit codes"); anything else is one line too, with the traceback kept for ``-v``."""
    try:
        code = app(standalone_mode=False)
    except BackpainError as exc:
        _fail(str(exc), exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("stopped", 130)
    except Exception as exc:
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # the command line itself was wrong: click's usage message
            sys.exit(exc.exit_code)
        log.debug("unexpected failure", exc_info=True)  # a bug: one line for the person, the log has it
        _fail(f"unexpected failure: {type(exc).__name__}: {exc}. Run again with -v for details", 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
