// The Node.js twin of caller_prompts.py for nodejs18.x and later: an ES module that imports
// the SDK v3 clients the runtime bundles (DynamoDB's document client).
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";

const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const TABLE = process.env.TABLE_NAME;
const DEFAULT_PROMPT = process.env.DEFAULT_PROMPT || "tone-440hz.wav";
const callerOf = (event) => event.CallDetails.Participants[0].From;

export const handler = async (event) => {
  console.log(`${event.InvocationEventType} for ${event.CallDetails.TransactionId}`);
  if (event.InvocationEventType === "NEW_INBOUND_CALL") {
    const { Item } = await db.send(new GetCommand({ TableName: TABLE, Key: { caller: callerOf(event) } }));
    const prompt = Item ? Item.prompt : DEFAULT_PROMPT;
    console.log(`caller ${callerOf(event)} hears ${prompt}`);
    return { SchemaVersion: "1.0", TransactionAttributes: { prompt }, Actions: [
      { Type: "PlayAudio", Parameters: { AudioSource: { Type: "S3", BucketName: "prompts", Key: prompt } } },
      { Type: "Hangup", Parameters: { SipResponseCode: "0" } }] };
  }
  if (event.InvocationEventType === "HANGUP") {
    const attributes = event.CallDetails.TransactionAttributes || {};
    await db.send(new UpdateCommand({
      TableName: TABLE, Key: { caller: callerOf(event) },
      UpdateExpression: "SET calls = if_not_exists(calls, :zero) + :one, " +
                        "last_prompt = :prompt, last_call_ended_at = :ended",
      ExpressionAttributeValues: { ":zero": 0, ":one": 1, ":prompt": attributes.prompt || DEFAULT_PROMPT,
                                   ":ended": new Date().toISOString().replace(/\.\d+Z$/, "Z") } }));
    console.log(`call of ${callerOf(event)} ended`);
  }
  return { SchemaVersion: "1.0", Actions: [] };
};
