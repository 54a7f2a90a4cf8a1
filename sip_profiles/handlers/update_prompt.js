// The Node.js twin of update_prompt.py, written as the aws-samples handlers are (async handler).
const BUCKET = process.env.PROMPT_BUCKET || "prompts";

const play = (key, repeat = 1) => ({
  Type: "PlayAudio",
  Parameters: { ParticipantTag: "LEG-A", Repeat: repeat,
                AudioSource: { Type: "S3", BucketName: BUCKET, Key: key } },
});
const hangup = { Type: "Hangup", Parameters: { SipResponseCode: "0" } };
const respond = (actions, attributes) =>
  attributes ? { SchemaVersion: "1.0", Actions: actions, TransactionAttributes: attributes }
             : { SchemaVersion: "1.0", Actions: actions };

exports.handler = async (event) => {
  switch (event.InvocationEventType) {
    case "NEW_INBOUND_CALL":
      return respond([play("tone-440hz.wav", 5)], { stage: "first-prompt" });
    case "CALL_UPDATE_REQUESTED": {
      const action = event.ActionData.Parameters.Arguments.action;
      if (action === "switch") return respond([play("tone-1000hz.wav")], { stage: "second-prompt" });
      if (action === "hangup") return respond([hangup]);
      return { SchemaVersion: "1.0" };
    }
    case "ACTION_SUCCESSFUL":
      return event.ActionData.Type === "PlayAudio" ? respond([hangup]) : respond([]);
    default:
      return respond([]);
  }
};
