"""Handlers run as Lambda runs them: the runtime by name with its bundled SDK, Lambda's
environment and nothing of the harness's, the context object, CloudWatch's log lines, and
every SDK pointed at the local services and at the stub's API."""
import asyncio
import json
import re
import sys
from pathlib import Path

import pytest
from aiohttp import web

from conftest import TEST_DATA, require_tool
from harness.lambdas import runtimes
from harness.lambdas import bundled_sdks
from harness.lambdas.bundled_sdks import BUNDLES, bundle_dir, sdk_root
from harness.lambdas.handlers import FunctionConfig, create_handler
from harness.lambdas.lambda_env import LOCAL_CREDENTIALS, Endpoints
from harness.lambdas.runtimes import RuntimeUnavailable

DATA = TEST_DATA / "handlers"
PY, JS, MJS = str(DATA / "introspect.py"), str(DATA / "introspect.js"), str(DATA / "introspect.mjs")
HARNESS_KEY = "AKIAHARNESSOWNKEY000"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"  # a Node.js log line's time


def invoke(spec, events, tmp_path, **kw):
    async def go():
        runner = create_handler(FunctionConfig(spec, function_name="fn-under-test",
                                               log_path=tmp_path / "handler.log", **kw))
        try:
            return [await runner.invoke(e) for e in events]
        finally:
            await runner.close()
    return asyncio.run(go())


@pytest.fixture
def harness_secrets(monkeypatch, tmp_path):
    """The harness's own credentials, profile and ~/.aws, which no handler may see."""
    home = tmp_path / "harness-home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        f"[harness-only]\naws_access_key_id = {HARNESS_KEY}\naws_secret_access_key = x\n")
    (home / ".aws" / "config").write_text("[profile harness-only]\nregion = eu-west-1\n")
    for name, value in (("AWS_ACCESS_KEY_ID", HARNESS_KEY), ("AWS_SECRET_ACCESS_KEY", "harness-secret"),
                        ("AWS_SESSION_TOKEN", "harness-token"), ("AWS_PROFILE", "harness-only"),
                        ("AWS_DEFAULT_PROFILE", "harness-only"), ("HOME", str(home))):
        monkeypatch.setenv(name, value)
    return home


def test_a_python_handler_sees_lambdas_environment_and_none_of_the_harnesss(harness_secrets, tmp_path):
    (result,) = invoke(PY, [{"kind": "env"}], tmp_path, runtime="python3.12", memory_mb=256,
                       env={"TABLE_NAME": "Calls"}, region="eu-central-1")
    out = result.response
    env = out["env"]
    assert HARNESS_KEY not in json.dumps(out) and "harness-only" not in json.dumps(out)
    assert "AWS_PROFILE" not in env and "AWS_DEFAULT_PROFILE" not in env
    assert out["access_key"] == LOCAL_CREDENTIALS.access_key_id and out["profiles"] == []
    assert env["HOME"] != str(harness_secrets)
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-central-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn-under-test"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fn-under-test"
    assert env["_HANDLER"] == "introspect.lambda_handler"
    assert env["LAMBDA_TASK_ROOT"] == out["cwd"] == str(DATA)
    assert env["TZ"] == ":UTC" and env["LANG"] == "en_US.UTF-8" and env["TABLE_NAME"] == "Calls"
    assert not any(k.startswith(("SIP_HARNESS", "VIRTUAL_ENV", "PYTEST")) for k in env)
    assert out["version"] == [3, 12]
    assert Path(out["boto3"]).is_relative_to(bundle_dir("python"))
    ctx = out["context"]
    assert ctx["function_name"] == "fn-under-test" and ctx["memory_limit_in_mb"] == "256"
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:eu-central-1:123456789012:function:fn-under-test"
    assert ctx["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", ctx["log_stream_name"])
    assert ctx["aws_request_id"] == result.requests[0]["request_id"]
    assert out["identity"] == [None, None] and 0 < out["remaining_ms"] <= 5000
    assert out["builtins"] == [True, True, True]
    assert out["sys_path"][:2] == [str(DATA), str(bundle_dir("python"))]  # /var/task, /var/runtime
    assert not any("site-packages" in p for p in out["sys_path"])  # the interpreter's own stay out


def test_a_node_handler_sees_lambdas_environment_and_none_of_the_harnesss(harness_secrets, tmp_path):
    require_tool("node")
    (result,) = invoke(JS, [{"kind": "env"}], tmp_path, runtime="nodejs18.x")
    out = result.response
    env = out["env"]
    assert HARNESS_KEY not in json.dumps(out) and "AWS_PROFILE" not in env
    assert env["AWS_ACCESS_KEY_ID"] == LOCAL_CREDENTIALS.access_key_id
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs18.x" and env["_HANDLER"] == "introspect.handler"
    assert env["NODE_PATH"].split(":")[0] == str(bundle_dir("nodejs-v3"))
    ctx = out["context"]
    assert ctx["functionName"] == "fn-under-test" and ctx["memoryLimitInMB"] == "128"
    assert ctx["awsRequestId"] == result.requests[0]["request_id"]
    assert ctx["invokedFunctionArn"].endswith(":function:fn-under-test")
    assert ctx["logStreamName"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert ctx["callbackWaitsForEmptyEventLoop"] is True and 0 < out["remaining_ms"] <= 5000


def blocks(log_text: str) -> dict[str, list[str]]:
    """The log's lines by RequestId, from START to REPORT."""
    out, current = {}, None
    for line in log_text.splitlines():
        m = re.match(r"START RequestId: (\S+) Version: \$LATEST$", line)
        if m:
            current = out.setdefault(m.group(1), [])
        if current is not None:
            current.append(line)
        if line.startswith("REPORT RequestId:"):
            current = None
    return out


def test_python_logging_reaches_the_log_with_the_request_id_and_lambdas_platform_lines(tmp_path):
    results = invoke(PY, [{"kind": "log"}, {"kind": "log"}, {"kind": "raise"}], tmp_path)
    text = (tmp_path / "handler.log").read_text()
    assert text.startswith("INIT_START Runtime Version: python3.")
    found = blocks(text)
    ids = [attempt["request_id"] for result in results for attempt in result.requests]
    assert list(found) == ids and len(ids) == 4  # the raise was retried once: its own RequestId
    for result in results:
        for attempt in result.requests:
            rid, lines = attempt["request_id"], found[attempt["request_id"]]
            assert attempt["log"][-len(lines):] == lines  # the journal holds the same lines
            assert lines[-2] == f"END RequestId: {rid}"
            assert re.fullmatch(rf"REPORT RequestId: {rid}\tDuration: \d+\.\d\d ms\tBilled Duration: "
                                rf"\d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB(\tInit Duration: "
                                rf"\d+\.\d\d ms)?", lines[-1])
    first = found[ids[0]]
    assert re.fullmatch(rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{ids[0]}\tinfo from {ids[0]}",
                        first[1])
    assert "a print" in first and not any("debug record" in line for line in first)
    assert "Init Duration" in first[-1] and "Init Duration" not in found[ids[1]][-1]
    error = found[ids[2]]
    assert "[ERROR] ValueError: boom" in error and "Traceback (most recent call last):" in error
    assert any('introspect.py", line' in line for line in error)


def test_node_console_lines_carry_the_request_id(tmp_path):
    require_tool("node")
    (result,) = invoke(JS, [{"kind": "log"}], tmp_path)
    rid = result.requests[0]["request_id"]
    lines = blocks((tmp_path / "handler.log").read_text())[rid]
    assert re.fullmatch(rf"{STAMP}\t{rid}\tINFO\tinfo from {rid}", lines[1])
    assert re.fullmatch(rf"{STAMP}\t{rid}\tERROR\tan error line", lines[2])
    assert lines[-2] == f"END RequestId: {rid}" and lines[-1].startswith(f"REPORT RequestId: {rid}\t")


def test_node_errors_are_logged_as_lambdas_node_runtime_logs_them(tmp_path):
    """A handler that throws: `Invoke Error` with the error as JSON on its request's line; one
    that throws while it loads: `Uncaught Exception` on a line whose RequestId is `undefined`
    (there is no request during init). Both reach the invocation result with their own words."""
    require_tool("node")
    (result,) = invoke(JS, [{"kind": "raise"}], tmp_path)
    assert result.failed and result.errors[0]["errorType"] == "TypeError"
    rid = result.requests[0]["request_id"]
    line = next(l for l in blocks((tmp_path / "handler.log").read_text())[rid] if "Invoke Error" in l)
    head, _, error = line.partition("Invoke Error \t")
    assert re.fullmatch(rf"{STAMP}\t{rid}\tERROR\t", head), line
    error = json.loads(error)
    assert (error["errorType"], error["errorMessage"]) == ("TypeError", "boom")
    assert error["stack"][0] == "TypeError: boom" and "introspect.js:" in error["stack"][1]

    broken = tmp_path / "broken.js"
    broken.write_text('throw new RangeError("init failed");\nexports.handler = async () => ({});\n')
    (tmp_path / "init").mkdir()
    (result,) = invoke(str(broken), [{"kind": "log"}], tmp_path / "init")
    assert result.failed and result.errors[0]["errorMessage"] == "init failed"
    text = (tmp_path / "init" / "handler.log").read_text()
    line = next(l for l in text.splitlines() if "Uncaught Exception" in l)
    head, _, error = line.partition("Uncaught Exception \t")
    assert re.fullmatch(rf"{STAMP}\tundefined\tERROR\t", head), line
    assert json.loads(error)["errorType"] == "RangeError"


@pytest.mark.parametrize("name", ["python3.11", "python3.12", "python3.13"])
def test_each_python_runtime_runs_under_its_own_interpreter(name, tmp_path):
    (result,) = invoke(PY, [{"kind": "env"}], tmp_path, runtime=name)
    assert result.response["version"] == [3, int(name.rsplit(".", 1)[1])]
    assert result.response["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{name}"
    assert f"INIT_START Runtime Version: {name}" in (tmp_path / "handler.log").read_text()


@pytest.mark.parametrize("name, v2, v3", [("nodejs16.x", True, False), ("nodejs18.x", False, True),
                                          ("nodejs20.x", False, True), ("nodejs22.x", False, True)])
def test_each_node_runtime_bundles_its_sdk(name, v2, v3, tmp_path):
    require_tool("node")
    (result,) = invoke(JS, [{"kind": "env"}], tmp_path, runtime=name)
    out = result.response
    assert (out["aws-sdk"] is not None) == v2 and (out["@aws-sdk/client-dynamodb"] is not None) == v3
    bundle = bundle_dir("nodejs-v2" if v2 else "nodejs-v3")
    assert Path(out["aws-sdk"] or out["@aws-sdk/client-dynamodb"]).is_relative_to(bundle)


def test_vendored_packages_next_to_the_handler_win(tmp_path):
    task = tmp_path / "task"
    (task / "boto3").mkdir(parents=True)
    (task / "boto3" / "__init__.py").write_text("__version__ = 'vendored'\n")
    (task / "fn.py").write_text("import boto3\n\ndef lambda_handler(event, context):\n"
                                "    return {'boto3': boto3.__version__}\n")
    (result,) = invoke(str(task / "fn.py"), [{}], tmp_path)
    assert result.response == {"boto3": "vendored"}


def test_a_node_handlers_own_node_modules_win(tmp_path):
    require_tool("node")
    task = tmp_path / "task"
    own = task / "node_modules" / "@aws-sdk" / "client-dynamodb"
    own.mkdir(parents=True)
    (own / "package.json").write_text('{"name": "@aws-sdk/client-dynamodb", "main": "index.js"}')
    (own / "index.js").write_text("exports.own = true;\n")
    (task / "fn.js").write_text("const sdk = require('@aws-sdk/client-dynamodb');\n"
                                "exports.handler = async () => ({ own: sdk.own === true });\n")
    (result,) = invoke(str(task / "fn.js"), [{}], tmp_path, runtime="nodejs20.x")
    assert result.response == {"own": True}


async def recording_server(seen: list, name: str):
    """An HTTP endpoint that answers like DynamoDB and chime-sdk-voice and records requests."""
    async def answer(request: web.Request) -> web.Response:
        seen.append({"server": name, "method": request.method, "path": request.path,
                     "target": request.headers.get("X-Amz-Target"),
                     "authorization": request.headers.get("Authorization", "")})
        if request.headers.get("X-Amz-Target"):
            return web.json_response({"TableNames": []}, content_type="application/x-amz-json-1.0")
        if request.path.startswith("/sip-media-applications/"):
            return web.json_response({"SipMediaApplication": {"SipMediaApplicationId": "sma-1"}})
        return web.json_response({"Accounts": []})
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize("spec, runtime", [(PY, "python3.13"), (JS, "nodejs16.x"), (MJS, "nodejs20.x")],
                         ids=["boto3", "sdk-v2", "sdk-v3-esm"])
def test_every_sdk_goes_to_the_local_services_and_to_the_stubs_api(spec, runtime, harness_secrets,
                                                                   tmp_path):
    if runtime.startswith("nodejs"):
        require_tool("node")
    seen: list[dict] = []

    async def go():
        aws, aws_url = await recording_server(seen, "aws")
        stub, stub_url = await recording_server(seen, "stub")
        runner = create_handler(FunctionConfig(spec, runtime=runtime, endpoints=Endpoints(aws_url, stub_url),
                                               log_path=tmp_path / "handler.log"))
        try:
            return await runner.invoke({"kind": "calls"})
        finally:
            await runner.close()
            await aws.cleanup()
            await stub.cleanup()
    result = asyncio.run(go())
    assert not result.failed, (result.errors, (tmp_path / "handler.log").read_text())
    where = {(s["server"], s["method"], s["path"], s["target"]) for s in seen}
    assert ("aws", "POST", "/", "DynamoDB_20120810.ListTables") in where
    assert ("stub", "GET", "/sip-media-applications/sma-1", None) in where
    assert ("stub", "GET", "/accounts", None) in where  # the legacy chime client
    key = LOCAL_CREDENTIALS.access_key_id
    assert all(f"Credential={key}/" in s["authorization"] for s in seen)


def test_a_runtime_whose_interpreter_is_missing_is_an_error_not_a_substitute(monkeypatch, tmp_path):
    monkeypatch.setenv("SIP_HARNESS_PYTHON3_12", str(tmp_path / "no-such-python"))
    runtimes.find_python.cache_clear()
    try:
        with pytest.raises(RuntimeUnavailable, match=r"python3\.12 needs a Python 3\.12 interpreter"):
            create_handler(FunctionConfig(PY, runtime="python3.12"))
    finally:
        runtimes.find_python.cache_clear()


def test_the_default_runtime_is_the_newest_this_machine_can_run():
    py = runtimes.resolve(None, PY)
    newest = max(v for v in ((3, 11), (3, 12), (3, 13)) if runtimes.find_python(v))
    assert py.runtime.version == newest and py.runtime.language == "python"
    assert runtimes.resolve(None, JS).name == "nodejs22.x"
    assert runtimes.resolve("python3.11", "pkg.module:fn").executable  # a module spec is Python
    assert sys.version_info[:2] >= (3, 11)


def test_the_sdk_set_up_is_idempotent_and_readable_by_every_user(capsys):
    stamps = {b: (sdk_root() / b / bundled_sdks.STAMP).stat().st_mtime_ns for b in BUNDLES}
    assert bundled_sdks.main() == 0  # make setup ran it: nothing to install again
    assert capsys.readouterr().out.count(": present in ") == len(BUNDLES)
    assert stamps == {b: (sdk_root() / b / bundled_sdks.STAMP).stat().st_mtime_ns for b in BUNDLES}
    for bundle in BUNDLES:  # handlers run as the image's own user, not the installer's
        assert (sdk_root() / bundle).stat().st_mode & 0o005 == 0o005


def test_a_timeout_is_logged_as_lambda_logs_it(tmp_path):
    slow = tmp_path / "slow_init.py"
    slow.write_text("import time\ntime.sleep(30)\n\ndef lambda_handler(event, context):\n    return {}\n")
    (result,) = invoke(str(slow), [{}], tmp_path, timeout_s=0.5, retries=0)
    assert result.failed and result.errors[0]["errorType"] == "Sandbox.Timedout"
    rid = result.requests[0]["request_id"]
    lines = blocks((tmp_path / "handler.log").read_text())[rid]
    assert re.fullmatch(rf"\S+Z {rid} Task timed out after 0\.50 seconds", lines[1])
    assert lines[2] == f"END RequestId: {rid}" and lines[3].endswith("\tStatus: timeout")


def test_a_chatty_invocation_keeps_its_start_and_report_in_the_journal(tmp_path):
    chatty = tmp_path / "chatty.py"
    chatty.write_text("def lambda_handler(event, context):\n    for i in range(1000):\n"
                      "        print('line', i)\n    return {}\n")
    (result,) = invoke(str(chatty), [{}], tmp_path)
    log = result.requests[0]["log"]
    assert len(log) <= 201 and log[1].startswith("START") and log[-1].startswith("REPORT")
    assert any(line.startswith("... ") and "more lines in the handler log" in line for line in log)
    assert (tmp_path / "handler.log").read_text().count("\nline ") == 1000
