// A warm Node.js handler process, as Lambda keeps one: `node node_worker.js HANDLER_FILE [EXPORT]`.
//
// The module is loaded once (the init phase: require, or import for ES modules) and serves
// every invocation. Modules resolve as on Lambda: the handler's own node_modules first, then
// NODE_PATH, where the SDK bundled with the runtime lives (for ES modules too, through the
// resolve hook in node_esm_hooks.mjs). The SDK v2 does not read AWS_ENDPOINT_URL*, so every
// copy of `aws-sdk` the handler loads is pointed at the same endpoints the v3 clients use.
//
// console.* writes Lambda's log lines (`time\trequestId\tLEVEL\tmessage`) to stdout, the
// function's log; requests arrive as JSON lines on stdin and each answer is a stdout line that
// starts with the nonce from SIP_HARNESS_NONCE (which the handler never sees). The first
// answer reports the init phase.
"use strict";
const Module = require("module");
const path = require("path");
const readline = require("readline");
const { pathToFileURL } = require("url");
const util = require("util");

const nonce = process.env.SIP_HARNESS_NONCE;
delete process.env.SIP_HARNESS_NONCE;
const [file, exportName = "handler"] = process.argv.slice(2);
let requestId = undefined;

function logLine(level, args) {
  process.stdout.write(`${new Date().toISOString()}\t${requestId}\t${level}\t${util.format(...args)}\n`);
}
for (const [method, level] of [["log", "INFO"], ["info", "INFO"], ["warn", "WARN"],
                               ["error", "ERROR"], ["debug", "DEBUG"], ["trace", "TRACE"]]) {
  console[method] = (...args) => logLine(level, args);
}
console.fatal = (...args) => logLine("FATAL", args);

// ---- the SDK v2 honours the AWS_ENDPOINT_URL variables, per service as v3 does ----------
const pointed = new WeakSet();
function pointSdkV2(AWS) {
  if (!AWS || !AWS.config || pointed.has(AWS)) return;
  pointed.add(AWS);
  const all = process.env.AWS_ENDPOINT_URL;
  if (all) AWS.config.update({ endpoint: all, s3ForcePathStyle: true });
  for (const [name, value] of Object.entries(process.env)) {
    const m = /^AWS_ENDPOINT_URL_(.+)$/.exec(name);
    if (!m || !value) continue;
    const service = m[1].toLowerCase().replace(/_/g, "");  // CHIME_SDK_VOICE -> chimesdkvoice
    AWS.config[service] = { ...(AWS.config[service] || {}), endpoint: value };
  }
}
const load = Module._load;
Module._load = function (request, parent, isMain) {
  const exported = load.apply(this, arguments);
  if (request === "aws-sdk" || request.startsWith("aws-sdk/")) {
    try {
      const resolved = Module._resolveFilename(request, parent, isMain);
      const marker = `${path.sep}aws-sdk${path.sep}`;
      const root = resolved.slice(0, resolved.lastIndexOf(marker) + marker.length);
      pointSdkV2(load(path.join(root, "lib", "core.js"), parent, false));
    } catch (err) {
      logLine("WARN", [`sip-harness could not point aws-sdk at the local endpoints: ${err}`]);
    }
  }
  return exported;
};
if (typeof Module.register === "function") {
  Module.register(pathToFileURL(path.join(__dirname, "node_esm_hooks.mjs")).href);
}

// ---- errors as the runtime reports them --------------------------------------------------
function asError(err, type) {
  const isError = err instanceof Error;
  return { errorType: type || (isError ? err.name : typeof err),
           errorMessage: isError ? err.message : String(err),
           trace: isError && typeof err.stack === "string" ? err.stack.split("\n") : [] };
}
function logged(prefix, error) {
  logLine("ERROR", [`${prefix} \t${JSON.stringify({ errorType: error.errorType,
    errorMessage: error.errorMessage, stack: error.trace })}`]);
  return { errorType: error.errorType, errorMessage: error.errorMessage, stackTrace: error.trace };
}
process.on("uncaughtException", (err) => {
  logged("Uncaught Exception", asError(err));
  process.exit(129);
});
process.on("unhandledRejection", (reason) => {
  logged("Unhandled Promise Rejection", asError(reason, "Runtime.UnhandledPromiseRejection"));
  process.exit(128);
});

async function loadHandler() {
  const full = path.resolve(file);
  let mod;
  try {
    if (full.endsWith(".mjs")) {
      mod = await import(pathToFileURL(full).href);
    } else {
      try {
        mod = require(full);
      } catch (err) {
        if (err && err.code !== "ERR_REQUIRE_ESM") throw err;
        mod = await import(pathToFileURL(full).href);
      }
    }
  } catch (err) {
    if (err instanceof SyntaxError) throw asError(err, "Runtime.UserCodeSyntaxError");
    if (err && (err.code === "MODULE_NOT_FOUND" || err.code === "ERR_MODULE_NOT_FOUND")) {
      throw asError(err, "Runtime.ImportModuleError");
    }
    throw asError(err);
  }
  const handler = mod[exportName] ?? (mod.default && mod.default[exportName]);
  if (typeof handler !== "function") {
    const base = path.basename(file).replace(/\.(c|m)?js$/, "");
    throw { errorType: "Runtime.HandlerNotFound",
            errorMessage: `${base}.${exportName} is undefined or not exported`, trace: [] };
  }
  return handler;
}

function contextFor(req) {
  const env = process.env;
  const deadline = req.deadline_ms;
  return {
    awsRequestId: req.request_id, invokedFunctionArn: req.invoked_function_arn,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME, functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME, callbackWaitsForEmptyEventLoop: true,
    identity: undefined, clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(0, Math.floor(deadline - Date.now())),
  };
}

function reply(answer) {
  process.stdout.write(nonce + JSON.stringify(answer) + "\n");
}

function invoke(handler, req) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (error, result) => {
      if (settled) return;
      settled = true;
      resolve(error ? { error: logged("Invoke Error", asError(error)) }
                    : { result: result === undefined ? null : result });
    };
    try {
      const out = handler(req.event, contextFor(req), done);
      if (out && typeof out.then === "function") out.then((r) => done(null, r), (e) => done(e));
    } catch (err) {
      done(err);
    }
  });
}

async function main() {
  const started = process.hrtime.bigint();
  let handler = null;
  let initError = null;
  try {
    handler = await loadHandler();
  } catch (err) {
    initError = logged("Uncaught Exception", err);
  }
  reply({ init: { duration_ms: Number(process.hrtime.bigint() - started) / 1e6, error: initError } });
  const rl = readline.createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on("line", (line) => {
    const req = JSON.parse(line);
    queue = queue.then(async () => {
      requestId = req.request_id;
      if (initError) return reply({ id: req.id, error: initError });
      const answer = await invoke(handler, req);
      try {
        JSON.stringify(answer.result);
        reply({ id: req.id, ...answer });
      } catch (err) {  // the runtime fails the invocation, as Lambda's Node.js runtime does
        reply({ id: req.id, error: logged("Invoke Error", { errorType: "Error",
          errorMessage: "Unable to stringify response body", trace: [] }) });
      }
    });
  });
}

main();
