"""``parrotwatch index build`` (in process, or as a Spark job with ``--spark``) and
``parrotwatch regurgitation scan`` (a Spark job): the training-corpus n-gram index and the scan of
logged outputs for verbatim overlaps with it.

Under ``spark-submit`` (a cluster; set PARROTWATCH_SPARK_MASTER to its master URL):
``spark-submit parrotwatch/cli/index.py regurgitation scan events.jsonl --index corpus.npz``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings, say

index_app = typer.Typer(help="The training-corpus n-gram index of the `regurgitation` score and audit.",
                        no_args_is_help=True)
regurgitation_app = typer.Typer(help="Regurgitation audit: verbatim overlaps of logged outputs with the "
                                     "training corpus.", no_args_is_help=True)


@index_app.callback()
def _index_group() -> None:
    # keeps ``build`` a subcommand (a one-command Typer app would collapse into that command)
    pass


@regurgitation_app.callback()
def _regurgitation_group() -> None:
    pass


@index_app.command()
def build(
    corpus: Annotated[list[Path], typer.Argument(
        help="Training-corpus text files (one document each), JSONL files (one document per line, "
             "'text' field, optional 'id'), or directories of them.", exists=True)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index file (.npz).")],
    n: Annotated[int, typer.Option(min=1, help="n-gram length in tokens: the shortest overlap seen.")] = 8,
    fpr: Annotated[float, typer.Option(min=0, max=0.5, help="Bloom false-positive rate per n-gram; "
                                       "0 = exact index (8 bytes per distinct n-gram).")] = 1e-6,
    spark: Annotated[bool, typer.Option(
        "--spark/--no-spark", help="Build as a Spark job (PARROTWATCH_SPARK_MASTER, default local[*]); "
                                   "the index is the same, bit for bit.")] = False,
    partitions: Annotated[int | None, typer.Option(
        min=1, help="Spark partitions of the distinct n-grams (each ships one partial index to the "
                    "driver); default spark.sql.shuffle.partitions.")] = None,
) -> None:
    """Build the n-gram index for the `regurgitation` score (PARROTWATCH_REGURGITATION_INDEX) and
    the regurgitation audit."""
    from parrotwatch.detectors.audits.ngram_index import BloomIndex, ExactIndex

    started = time.perf_counter()
    if spark:
        from parrotwatch.streaming.regurgitation_jobs import batch_session, build_index, read_documents

        session = batch_session(load_settings(), "parrotwatch-index-build")
        index = build_index(read_documents(session, corpus), n=n, fpr=fpr, partitions=partitions)
    else:
        from parrotwatch.corpus import read_texts

        try:
            docs = list(read_texts(corpus))
        except ValueError as exc:
            fail(exc)
        if not any(text.strip() for text in docs):
            fail(f"no text in {', '.join(map(str, corpus))}: nothing to index")
        index = (ExactIndex.from_documents(docs, n=n) if fpr == 0
                 else BloomIndex.from_documents(docs, n=n, target_fpr=fpr))
    if output.suffix != ".npz":
        output = output.with_name(output.name + ".npz")  # what numpy writes
    output.parent.mkdir(parents=True, exist_ok=True)
    index.save(output)
    say(f"{output}: {index.kind} index, n={n}, {index.size_bytes / 2**20:.1f} MiB, false-positive rate "
         f"per n-gram {index.false_positive_rate:.2g}, built in {time.perf_counter() - started:.1f} s")


@regurgitation_app.command("scan")
def scan_command(
    index: Annotated[Path, typer.Option("--index", help="The corpus index (`index build`).", exists=True,
                                        dir_okay=False)],
    outputs: Annotated[list[Path] | None, typer.Argument(
        help="Logged outputs: JSONL files of inference events v1 (or other records, see --id-field and "
             "--text-field).", exists=True)] = None,
    corpus: Annotated[list[Path] | None, typer.Option(
        help="The corpus the index was built from, to attribute leaks to documents (repeatable).")] = None,
    min_tokens: Annotated[int | None, typer.Option(
        help="Flag overlaps of at least this many tokens (default: the index's n).")] = None,
    top: Annotated[int, typer.Option(help="Top leaking documents to list.")] = 10,
    kafka_topic: Annotated[str | None, typer.Option(
        help="Also scan a snapshot of this topic (earliest to latest offsets), e.g. llm.inference.v1 "
             "(the topic prefix of the settings is added).")] = None,
    id_field: Annotated[str, typer.Option(help="The records' id field.")] = "request_id",
    text_field: Annotated[str, typer.Option(help="The records' text field.")] = "response",
    per_output: Annotated[Path | None, typer.Option(
        help="Write every output's longest overlap (output_id, overlap_tokens, overlap_start, "
             "overlap_end) as Parquet to this directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Scan logged outputs (a Spark job) for verbatim overlaps of >= MIN_TOKENS tokens with the corpus:
    the leak rate, the flagged outputs and, with --corpus, the top leaking documents."""
    from functools import reduce

    from pyspark.sql import DataFrame

    from parrotwatch.streaming import regurgitation_jobs as jobs

    if not outputs and not kafka_topic:
        raise typer.BadParameter("give JSONL files of outputs, --kafka-topic, or both")
    settings = load_settings()
    spark = jobs.batch_session(settings, "parrotwatch-regurgitation-scan", kafka=bool(kafka_topic))
    sources = []
    if outputs:
        sources.append(jobs.read_outputs(spark, outputs, id_field, text_field, dedupe=False))
    if kafka_topic:
        sources.append(jobs.read_kafka_outputs(spark, settings.bootstrap, settings.topic(kafka_topic),
                                               id_field, text_field, dedupe=False))
    frames = reduce(DataFrame.unionByName, sources).dropDuplicates(["output_id"])
    docs = jobs.read_documents(spark, corpus) if corpus else None
    result = jobs.scan_outputs(frames, index, min_tokens, docs=docs, top=top, per_output=per_output)
    summary = scan_summary(result)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    r = result.report
    typer.echo(f"{r.n_outputs} outputs ({result.skipped} skipped), {r.n_flagged} with >= {r.min_tokens} "
               f"tokens verbatim: rate {r.rate:.4%}; {r.n_ngrams:,} n-grams in {r.seconds:.1f} s; index "
               f"false-positive rate {r.ngram_fpr:.2g} per n-gram, <= {r.expected_false_flags:.3g} false "
               f"flags expected")
    if result.attribution is not None:
        typer.echo(f"{len(result.attribution.unverified)} flags not verified in the corpus (index false "
                   "positives)")
        for d in result.attribution.documents:
            typer.echo(f"  {d.n_outputs:6} outputs, up to {d.max_tokens} tokens: {d.doc_id}")
    for output_id, overlap in r.flagged[:20]:
        typer.echo(f"  {overlap.tokens:6} tokens  {output_id}")


def scan_summary(result, examples: int = 20) -> dict:
    """The JSON summary of a :class:`parrotwatch.streaming.regurgitation_jobs.RegurgitationScan`."""
    r = result.report
    out = {"n_outputs": r.n_outputs, "skipped": result.skipped, "n_flagged": r.n_flagged, "rate": r.rate,
           "min_tokens": r.min_tokens, "n_ngrams": r.n_ngrams, "seconds": round(r.seconds, 3),
           "ngram_fpr": r.ngram_fpr, "expected_false_flags": r.expected_false_flags,
           "flagged": [{"output_id": i, "tokens": o.tokens, "start": o.start, "end": o.end}
                       for i, o in r.flagged[:examples]]}
    if result.attribution is not None:
        a = result.attribution
        out["unverified"] = len(a.unverified)
        out["top_documents"] = [{"doc_id": d.doc_id, "n_outputs": d.n_outputs, "max_tokens": d.max_tokens,
                                 "output_ids": list(d.output_ids[:examples])} for d in a.documents]
    return out


if __name__ == "__main__":  # spark-submit parrotwatch/cli/index.py {index build | regurgitation scan} ...
    main = typer.Typer(no_args_is_help=True)
    main.add_typer(index_app, name="index")
    main.add_typer(regurgitation_app, name="regurgitation")
    main()
