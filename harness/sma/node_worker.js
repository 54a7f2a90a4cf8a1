// A warm Node.js handler process, as Lambda keeps one: `node node_worker.js HANDLER_FILE [EXPORT]`.
// The module is required once and serves every invocation. Requests arrive as JSON lines on
// stdin; each answer is one stdout line that starts with the nonce from SIP_HARNESS_NONCE, so
// anything the handler itself prints is told apart (and kept as its log).
"use strict";
const path = require("path");
const readline = require("readline");

const nonce = process.env.SIP_HARNESS_NONCE;
const [file, exportName = "handler"] = process.argv.slice(2);
let handler = null;
let loadError = null;
try {
  handler = require(path.resolve(file))[exportName];
  if (typeof handler !== "function") throw new Error(`${file}: no exported function ${exportName}`);
} catch (err) {
  loadError = { errorType: "Runtime.ImportModuleError", errorMessage: String(err && err.message || err),
                stackTrace: String(err && err.stack || "").split("\n") };
}

function contextFor(req) {
  const deadline = req.deadline_ms;
  return {
    awsRequestId: req.request_id, functionName: req.function_name, functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${req.region}:${req.account}:function:${req.function_name}`,
    memoryLimitInMB: "128", logGroupName: `/aws/lambda/${req.function_name}`,
    logStreamName: "sip-harness", callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, Math.floor(deadline - Date.now())),
  };
}

function reply(answer) {
  process.stdout.write(nonce + JSON.stringify(answer) + "\n");
}

function asError(err) {
  return { errorType: (err && err.name) || "Error", errorMessage: String(err && err.message || err),
           stackTrace: String(err && err.stack || "").split("\n") };
}

function invoke(req) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (error, result) => {
      if (settled) return;
      settled = true;
      resolve(error ? { error: asError(error) } : { result: result === undefined ? null : result });
    };
    try {
      const out = handler(req.event, contextFor(req), done);
      if (out && typeof out.then === "function") out.then((r) => done(null, r), (e) => done(e));
    } catch (err) {
      done(err);
    }
  });
}

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on("line", (line) => {
  const req = JSON.parse(line);
  queue = queue.then(async () => {
    if (loadError) return reply({ id: req.id, error: loadError });
    const answer = await invoke(req);
    try {
      JSON.stringify(answer.result);
      reply({ id: req.id, ...answer });
    } catch (err) {
      reply({ id: req.id, unserializable: String(err.message) });
    }
  });
});
