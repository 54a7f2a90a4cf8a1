"""The profile keys of a handler's function configuration and local AWS services: bad input is
an error naming the file, line and field, found before anything runs; the local services
start with their seed, and what they hold after the run is what a profile can expect."""
import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import PROFILES
from harness.local_aws import LocalAws, LocalAwsConfig, LocalAwsError
from harness.profiles.schema import load_profile
from harness.profiles.strict import ProfileError
from harness.run.setup import local_aws_config, stub_config
from harness.run.verify import check_table
from harness.lambdas import runtimes
from harness.stub import Stub

HANDLER = PROFILES / "handlers" / "caller_prompts.py"


def write(tmp_path: Path, stub: str, extra: str = "", name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text("name: a profile\nstub:\n" + textwrap.indent(textwrap.dedent(stub).strip(), "  ")
                    + "\nsteps:\n  - sleep_ms: 1\n" + textwrap.dedent(extra))
    return path


def error_of(path: Path) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return info.value


def test_an_unknown_runtime_names_its_line_and_the_known_ones(tmp_path):
    err = error_of(write(tmp_path, f"handler: {HANDLER}\nruntime: python3.9"))
    assert (err.line, err.path) == (4, "stub.runtime")
    assert "unknown runtime 'python3.9'" in err.message and "python3.13, nodejs16.x" in err.message


def test_a_runtime_of_the_other_language(tmp_path):
    err = error_of(write(tmp_path, f"handler: {HANDLER}\nruntime: nodejs20.x"))
    assert err.path == "stub.runtime" and "cannot run" in err.message and "Python handler" in err.message


def test_a_handler_file_that_does_not_exist(tmp_path):
    err = error_of(write(tmp_path, "handler: handlers/nowhere.py"))
    assert (err.line, err.path) == (3, "stub.handler")
    assert f"no such handler file: {tmp_path}/handlers/nowhere.py" in err.message


def test_a_runtime_whose_interpreter_is_missing_is_found_by_validate(tmp_path, monkeypatch):
    monkeypatch.setenv("SIP_HARNESS_PYTHON3_12", str(tmp_path / "no-python"))
    runtimes.find_python.cache_clear()
    try:
        err = error_of(write(tmp_path, f"handler: {HANDLER}\nruntime: python3.12"))
    finally:
        runtimes.find_python.cache_clear()
    assert err.path == "stub.runtime" and "needs a Python 3.12 interpreter" in err.message


def test_a_reserved_environment_key(tmp_path):
    err = error_of(write(tmp_path, f"""
        handler: {HANDLER}
        environment:
          TABLE_NAME: t
          AWS_REGION: eu-west-1
    """))
    assert (err.line, err.path) == (6, "stub.environment.AWS_REGION") and "reserved" in err.message


def test_handler_env_is_the_old_name_of_environment(tmp_path):
    profile = load_profile(write(tmp_path, f"handler: {HANDLER}\nhandler_env: {{TABLE_NAME: t}}"))
    assert profile.stub.environment == {"TABLE_NAME": "t"}
    assert stub_config(profile, tmp_path).applications[0].environment == {"TABLE_NAME": "t"}
    err = error_of(write(tmp_path, f"handler: {HANDLER}\nhandler_env: {{A: b}}\nenvironment: {{A: c}}"))
    assert err.path == "stub.handler_env" and "not both" in err.message


def test_a_seed_item_without_its_key_names_the_item(tmp_path):
    err = error_of(write(tmp_path, f"""
        handler: {HANDLER}
        aws:
          seed:
            dynamodb:
              - name: T
                key: {{caller: S, started: N}}
                items:
                  - {{caller: "+1", started: 1}}
                  - {{caller: "+2"}}
    """))
    assert (err.line, err.path) == (11, "stub.aws.seed.dynamodb[0].items[1]")
    assert "no 'started', the table's sort key" in err.message


def test_a_seed_file_that_does_not_parse_names_both_files(tmp_path):
    (tmp_path / "seed.yaml").write_text("dynamodb:\n  - name: T\n    key: {caller: S\n")
    err = error_of(write(tmp_path, f"handler: {HANDLER}\naws:\n  seed: seed.yaml"))
    assert (err.filename, err.line, err.path) == (str(tmp_path / "p.yaml"), 5, "stub.aws.seed")
    assert f"{tmp_path}/seed.yaml:4:1: <profile>: not valid YAML" in err.message


def test_a_seed_file_with_an_unknown_key(tmp_path):
    (tmp_path / "seed.yaml").write_text("dynamodb:\n  - name: T\n    keys: {caller: S}\n")
    err = error_of(write(tmp_path, f"handler: {HANDLER}\naws:\n  seed: seed.yaml"))
    assert "seed.yaml:3:5: dynamodb[0].keys: unknown key 'keys' (did you mean 'key'?)" in err.message


def test_an_items_file_item_without_its_key_names_its_line(tmp_path):
    (tmp_path / "items.json").write_text('[\n  {"caller": "+1"},\n  {"name": "no key"}\n]\n')
    err = error_of(write(tmp_path, f"""
        handler: {HANDLER}
        aws:
          seed:
            dynamodb:
              - {{name: T, key: {{caller: S}}, items_file: items.json}}
    """))
    assert err.path == "stub.aws.seed.dynamodb[0].items_file"
    assert f"{tmp_path}/items.json:3:3: [1]: the item has no 'caller'" in err.message


def test_an_object_file_that_does_not_exist(tmp_path):
    err = error_of(write(tmp_path, f"""
        handler: {HANDLER}
        aws:
          seed:
            s3:
              - name: recordings
                objects: [{{key: a.wav, file: nowhere.wav}}]
    """))
    assert err.path == "stub.aws.seed.s3[0].objects[0].file" and "no such file" in err.message


def test_unknown_services_and_the_stubs_own(tmp_path):
    err = error_of(write(tmp_path, f"handler: {HANDLER}\naws: {{services: [dynamodb, dynamo]}}"))
    assert err.path == "stub.aws.services[1]" and "not a service moto emulates" in err.message
    err = error_of(write(tmp_path, f"handler: {HANDLER}\naws: {{services: [chime-sdk-voice]}}"))
    assert "the stub's own API" in err.message


def test_expecting_items_needs_local_services(tmp_path):
    err = error_of(write(tmp_path, f"handler: {HANDLER}",
                         "expect:\n  dynamodb:\n    T: [{key: {caller: '+1'}}]\n"))
    assert err.path == "expect.dynamodb" and "add stub.aws" in err.message
    err = error_of(write(tmp_path, f"handler: {HANDLER}\naws: {{}}",
                         "expect:\n  dynamodb:\n    T: [{caller: '+1'}]\n"))
    assert err.path == "expect.dynamodb.T[0]" and "names its key" in err.message


def test_validate_finds_bad_input_before_anything_runs(tmp_path):
    write(tmp_path, "handler: handlers/nowhere.py", name="bad.yaml")
    done = subprocess.run([str(Path(sys.executable).parent / "sip-harness"), "validate",
                           str(tmp_path / "bad.yaml")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{tmp_path}/bad.yaml:3:12: stub.handler: no such handler file" in done.stderr


def test_the_seed_from_a_file_is_read_with_the_profile():
    profile = load_profile(PROFILES / "caller_prompts_dynamodb_node20.yaml")
    table = local_aws_config(profile.stub).seed["dynamodb"][0]
    assert table["key"] == [("caller", "S")]
    assert {i["caller"]: i["prompt"] for i in table["items"]}["+14255550199"] == "tone-1000hz.wav"


def test_the_local_services_hold_the_seed_and_report_the_tables():
    async def go():
        aws = await LocalAws.start(LocalAwsConfig("eu-west-1", {
            "dynamodb": [{"name": "T", "key": [["caller", "S"], ["n", "N"]],
                          "items": [{"caller": "+2", "n": 1, "ratio": 0.5, "tags": ["a"]},
                                    {"caller": "+1", "n": 2}]}],
            "s3": [{"name": "prompts-bucket", "objects": [{"key": "a.txt", "body": "hi"}]}],
            "ssm": [{"name": "/app/greeting", "value": "hello", "type": "String"}]}))
        try:
            return await aws.dynamodb_tables(), aws.endpoint
        finally:
            await aws.close()
    tables, endpoint = asyncio.run(go())
    assert endpoint.startswith("http://127.0.0.1:")
    assert tables == {"T": [{"caller": "+1", "n": 2},
                            {"caller": "+2", "n": 1, "ratio": 0.5, "tags": ["a"]}]}


def test_a_seed_the_service_refuses_stops_the_stub_from_starting(tmp_path):
    profile = load_profile(write(tmp_path, f"""
        handler: {HANDLER}
        aws:
          seed:
            s3: [{{name: "x"}}]
    """))
    stub = Stub(stub_config(profile, tmp_path))
    with pytest.raises(LocalAwsError, match="InvalidBucketName"):
        stub.start()
    assert stub.local_aws is None and stub._thread is None


def test_an_expected_item_that_differs_fails_with_what_was_found():
    found = [{"caller": "+1", "calls": 2, "ended": "2026-01-01T00:00:00Z"}]
    ok = check_table("T", found, [{"key": {"caller": "+1"}, "calls": 2,
                                    "ended": {"matches": r"\d{4}-.*Z"}}])
    assert ok.passed
    bad = check_table("T", found, [{"key": {"caller": "+1"}, "calls": 3},
                                    {"key": {"caller": "+9"}}])
    assert not bad.passed
    assert bad.detail == "item {'caller': '+1'}: calls is 2, expected 3; no item with key {'caller': '+9'}"
    assert not check_table("T", None, [{"key": {"caller": "+1"}}]).passed


def test_a_seeded_table_has_its_global_secondary_indexes():
    """take-back-and-transfer queries its table by an index (`in_use = :false`)."""
    async def go():
        aws = await LocalAws.start(LocalAwsConfig("us-east-1", {
            "dynamodb": [{"name": "T", "key": [["sma_number", "S"], ["connect_number", "S"]],
                          "indexes": {"in_use": [["in_use", "S"]]},
                          "items": [{"sma_number": "+1", "connect_number": "+2", "in_use": "true"},
                                    {"sma_number": "+1", "connect_number": "+3", "in_use": "false"}]}]}))
        try:
            import boto3
            client = boto3.client("dynamodb", endpoint_url=aws.endpoint, region_name="us-east-1",
                                  aws_access_key_id="x", aws_secret_access_key="x")
            return client.query(TableName="T", IndexName="in_use", KeyConditionExpression="in_use = :f",
                                ExpressionAttributeValues={":f": {"S": "false"}})["Items"]
        finally:
            await aws.close()
    assert asyncio.run(go()) == [{"sma_number": {"S": "+1"}, "connect_number": {"S": "+3"},
                                  "in_use": {"S": "false"}}]


def test_an_index_key_typed_twice_differently_names_the_index(tmp_path):
    path = write(tmp_path, f"""
        handler: {HANDLER}
        aws:
          services: [dynamodb]
          seed:
            dynamodb:
              - name: T
                key: {{sma_number: S}}
                indexes: {{by_number: {{sma_number: N}}}}
    """)
    assert "stub.aws.seed.dynamodb[0].indexes.by_number: 'sma_number' is S elsewhere in the table" in str(error_of(path))
