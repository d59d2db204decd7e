"""Export the contracts as JSON Schema files (``parrotwatch schemas -o DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

from parrotwatch.contracts.events import (
    AlertEventV1,
    FeedbackEventV1,
    InferenceEventV1,
    ScoreEventV1,
)

SCHEMAS = {
    "inference.v1.schema.json": InferenceEventV1,
    "feedback.v1.schema.json": FeedbackEventV1,
    "score.v1.schema.json": ScoreEventV1,
    "alert.v1.schema.json": AlertEventV1,
}


def export_json_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = out_dir / name
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
