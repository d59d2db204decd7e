"""The local stack's reviewer keys: made once, private, reused, and handed to the API as JSON."""

from __future__ import annotations

import json
import stat

import pytest

from parrotwatch.settings import Settings
from parrotwatch.stack.errors import StackError
from parrotwatch.stack.local import LOCAL_REVIEWERS, LocalStack, local_reviewer_keys, settings_env


def test_keys_are_made_once_private_and_reused(tmp_path):
    keys, path = local_reviewer_keys(tmp_path)
    assert set(keys) == set(LOCAL_REVIEWERS) and len(set(keys.values())) == len(keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    again, _ = local_reviewer_keys(tmp_path)
    assert again == keys and stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "[]", "{}", '{"a": ""}', '{"a": 1}', "not json"])
def test_a_broken_file_says_how_to_mend_it(tmp_path, content):
    (tmp_path / "reviewer-keys.json").write_text(content)
    with pytest.raises(StackError, match="delete it"):
        local_reviewer_keys(tmp_path)


def test_the_api_process_gets_the_keys_as_a_json_object(tmp_path):
    stack = LocalStack(Settings(home=tmp_path), say=lambda _m: None)
    stack.use_local_reviewer_keys()
    env = settings_env(stack.settings)
    keys, _ = local_reviewer_keys(tmp_path)
    assert json.loads(env["PARROTWATCH_REVIEWER_KEYS"]) == keys
    assert Settings.model_validate_json(json.dumps({"reviewer_keys": keys})).reviewer_keys[
        "reviewer"].get_secret_value() == keys["reviewer"]


def test_a_hand_edited_file_with_weak_keys_is_refused(tmp_path):
    (tmp_path / "reviewer-keys.json").write_text('{"me": "short"}')
    stack = LocalStack(Settings(home=tmp_path), say=lambda _m: None)
    with pytest.raises(StackError, match="16"):
        stack.use_local_reviewer_keys()
