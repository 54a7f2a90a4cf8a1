// The Node.js twin of introspect.py (CommonJS): environment, bundled SDK, context, logs.
const FIELDS = ["awsRequestId", "functionName", "functionVersion", "memoryLimitInMB",
                "invokedFunctionArn", "logGroupName", "logStreamName", "callbackWaitsForEmptyEventLoop"];
const where = (name) => { try { return require.resolve(name); } catch (err) { return null; } };

exports.handler = async (event, context) => {
  if (event.kind === "log") {
    console.log("info from", context.awsRequestId);
    console.error("an error line");
    return {};
  }
  if (event.kind === "raise") {
    throw new TypeError("boom");
  }
  if (event.kind === "calls") {
    const AWS = require("aws-sdk");
    await new AWS.DynamoDB().listTables({}).promise();
    await new AWS.ChimeSDKVoice().getSipMediaApplication({ SipMediaApplicationId: "sma-1" }).promise();
    await new AWS.Chime().listAccounts({}).promise();
    return {};
  }
  const out = { env: { ...process.env }, "aws-sdk": where("aws-sdk"),
                "@aws-sdk/client-dynamodb": where("@aws-sdk/client-dynamodb"),
                context: Object.fromEntries(FIELDS.map((f) => [f, context[f]])),
                remaining_ms: context.getRemainingTimeInMillis() };
  if (out["aws-sdk"]) {
    const AWS = require("aws-sdk");
    out.v2 = { dynamodb: new AWS.DynamoDB().endpoint.href, s3: new AWS.S3().endpoint.href,
               chime: new AWS.Chime().endpoint.href, voice: new AWS.ChimeSDKVoice().endpoint.href };
  }
  return out;
};
