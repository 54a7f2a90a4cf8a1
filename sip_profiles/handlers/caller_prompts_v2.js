// The Node.js twin of caller_prompts.py for nodejs16.x: CommonJS, the SDK v2 the runtime
// bundles (require('aws-sdk')), and the callback style of handlers of that time.
const AWS = require("aws-sdk");

const db = new AWS.DynamoDB.DocumentClient();
const TABLE = process.env.TABLE_NAME;
const DEFAULT_PROMPT = process.env.DEFAULT_PROMPT || "tone-440hz.wav";
const callerOf = (event) => event.CallDetails.Participants[0].From;

exports.handler = (event, context, callback) => {
  console.log(`${event.InvocationEventType} for ${event.CallDetails.TransactionId}`);
  if (event.InvocationEventType === "NEW_INBOUND_CALL") {
    db.get({ TableName: TABLE, Key: { caller: callerOf(event) } }, (err, data) => {
      if (err) return callback(err);
      const prompt = data.Item ? data.Item.prompt : DEFAULT_PROMPT;
      console.log(`caller ${callerOf(event)} hears ${prompt}`);
      callback(null, { SchemaVersion: "1.0", TransactionAttributes: { prompt }, Actions: [
        { Type: "PlayAudio", Parameters: { AudioSource: { Type: "S3", BucketName: "prompts", Key: prompt } } },
        { Type: "Hangup", Parameters: { SipResponseCode: "0" } }] });
    });
    return;
  }
  if (event.InvocationEventType === "HANGUP") {
    const attributes = event.CallDetails.TransactionAttributes || {};
    db.update({
      TableName: TABLE, Key: { caller: callerOf(event) },
      UpdateExpression: "SET calls = if_not_exists(calls, :zero) + :one, " +
                        "last_prompt = :prompt, last_call_ended_at = :ended",
      ExpressionAttributeValues: { ":zero": 0, ":one": 1, ":prompt": attributes.prompt || DEFAULT_PROMPT,
                                   ":ended": new Date().toISOString().replace(/\.\d+Z$/, "Z") },
    }, (err) => {
      if (err) return callback(err);
      console.log(`call of ${callerOf(event)} ended`);
      callback(null, { SchemaVersion: "1.0", Actions: [] });
    });
    return;
  }
  callback(null, { SchemaVersion: "1.0", Actions: [] });
};
