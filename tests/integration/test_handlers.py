"""Handler runners: warm workers, Lambda context, errors, timeouts and retries — for Python,
Node.js (the machine's real `node`) and Lambda-Invoke HTTP endpoints."""
import asyncio
import json

import pytest
from aiohttp import web

from conftest import TEST_DATA, require_tool
from harness.lambdas.handlers import FunctionConfig, create_handler

DATA = TEST_DATA / "handlers"
SPECS = {"python": str(DATA / "behaviours.py"), "node": str(DATA / "behaviours.js")}


def run(coro):
    return asyncio.run(coro)


async def invoke_all(spec, events, tmp_path, **kw):
    runner = create_handler(FunctionConfig(spec, function_name="fn-under-test",
                                           log_path=tmp_path / "handler.log", **kw))
    try:
        return [await runner.invoke(e) for e in events], runner
    finally:
        await runner.close()


@pytest.fixture(params=["python", "node"])
def spec(request):
    if request.param == "node":
        require_tool("node")
    return SPECS[request.param]


def test_worker_stays_warm_and_gets_a_lambda_context(spec, tmp_path):
    (first, second), runner = run(invoke_all(spec, [{}, {}], tmp_path))
    assert first.response["calls"] == 1 and second.response["calls"] == 2
    assert first.response["function_name"] == "fn-under-test"
    assert first.response["request_id"] != second.response["request_id"]
    assert 0 < first.response["remaining_ms"] <= 5000
    assert runner.cold_starts == 1
    assert "goes to its log" in (tmp_path / "handler.log").read_text()


def test_an_exception_is_retried_once_then_fails(spec, tmp_path):
    (result,), _ = run(invoke_all(spec, [{"kind": "raise"}], tmp_path))
    assert result.failed and result.attempts == 2
    assert [e["errorMessage"] for e in result.errors] == ["boom", "boom"]
    assert any("boom" in line for line in result.errors[0]["stackTrace"])


def test_a_timeout_kills_the_worker_and_the_retry_is_a_cold_start(spec, tmp_path):
    events = [{"kind": "sleep", "seconds": 5}, {}]
    (slow, after), runner = run(invoke_all(spec, events, tmp_path, timeout_s=0.5))
    assert slow.failed and slow.attempts == 2
    assert slow.errors[0]["errorType"] == "Sandbox.Timedout"
    assert after.response["calls"] == 1  # module state was lost with the killed worker
    assert runner.cold_starts == 3


def test_a_result_the_runtime_cannot_serialize_fails_the_invocation(spec, tmp_path):
    """As Lambda's runtimes do: Python's Runtime.MarshalError, Node.js's "Unable to stringify
    response body"; the attempt is retried like any failed one, and the log says why."""
    (result,), _ = run(invoke_all(spec, [{"kind": "unserializable"}], tmp_path))
    assert result.failed and result.attempts == 2 and result.invalid_json is None
    error = result.errors[0]
    if spec.endswith(".py"):
        assert error["errorType"] == "Runtime.MarshalError"
        assert error["errorMessage"].startswith("Unable to marshal response: Object of type object")
        assert "[ERROR] Runtime.MarshalError: Unable to marshal response" in (tmp_path / "handler.log").read_text()
    else:
        assert (error["errorType"], error["errorMessage"]) == ("Error", "Unable to stringify response body")
        assert "Invoke Error \t" in (tmp_path / "handler.log").read_text()


def test_node_callback_style(tmp_path):
    require_tool("node")
    (result,), _ = run(invoke_all(SPECS["node"] + ":callbackStyle", [{}], tmp_path))
    assert result.response == {"calls": 1, "style": "callback"}


def test_a_missing_handler_function_is_lambdas_handler_not_found(spec, tmp_path):
    (result,), _ = run(invoke_all(spec + ":nope", [{}], tmp_path))
    assert result.failed and result.errors[0]["errorType"] == "Runtime.HandlerNotFound"


def test_a_missing_module_is_an_import_error_logged_at_init(tmp_path):
    handler = tmp_path / "needs_more.py"
    handler.write_text("import not_installed_anywhere\n\ndef lambda_handler(event, context):\n    return {}\n")
    (result,), _ = run(invoke_all(str(handler), [{}], tmp_path))
    error = result.errors[0]
    assert result.failed and error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == ("Unable to import module 'needs_more': "
                                     "No module named 'not_installed_anywhere'")
    log = (tmp_path / "handler.log").read_text().splitlines()
    assert log[0].startswith("INIT_START") and log[1].startswith("[ERROR] Runtime.ImportModuleError")


async def invoke_over_http(events, status=200, function_error=None, body=None):
    """A minimal Lambda Invoke API (the runtime interface emulator cannot be fetched here)."""
    seen = []

    async def invocations(request):
        seen.append((request.match_info["name"], await request.json()))
        headers = {"X-Amz-Function-Error": function_error} if function_error else {}
        return web.Response(status=status, headers=headers,
                            body=body if body is not None else json.dumps({"echo": seen[-1][1]}))
    app = web.Application()
    app.router.add_post("/2015-03-31/functions/{name}/invocations", invocations)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    handler = create_handler(FunctionConfig(f"http://127.0.0.1:{port}", function_name="my-fn"))
    try:
        return [await handler.invoke(e) for e in events], seen
    finally:
        await handler.close()
        await runner.cleanup()


def test_lambda_invoke_endpoint():
    (result,), seen = run(invoke_over_http([{"x": 1}]))
    assert result.response == {"echo": {"x": 1}}
    assert seen == [("my-fn", {"x": 1})]


def test_lambda_invoke_function_error_is_retried_then_fails():
    (result,), seen = run(invoke_over_http([{}], function_error="Unhandled",
                                           body=b'{"errorMessage": "boom"}'))
    assert result.failed and result.attempts == 2 and len(seen) == 2
    assert result.errors[0]["errorType"] == "Unhandled"


def test_lambda_invoke_non_json_body():
    (result,), _ = run(invoke_over_http([{}], body=b"<html>"))
    assert result.invalid_json and not result.failed
