// The Node.js twin of behaviours.py: warm state, errors, timeouts, both handler styles.
let calls = 0;
exports.handler = async (event, context) => {
  calls += 1;
  console.log("a handler's console.log goes to its log, not into the protocol");
  if (event.kind === "raise") throw new Error("boom");
  if (event.kind === "sleep") await new Promise((r) => setTimeout(r, event.seconds * 1000));
  if (event.kind === "unserializable") { const o = {}; o.self = o; return o; }
  return { calls, request_id: context.awsRequestId, function_name: context.functionName,
           remaining_ms: context.getRemainingTimeInMillis() };
};
exports.callbackStyle = (event, context, callback) => {
  calls += 1;
  setTimeout(() => callback(null, { calls, style: "callback" }), 5);
};
