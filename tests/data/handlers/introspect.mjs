// An ES-module handler importing the SDK v3 clients that nodejs18.x and later bundle; one call
// per endpoint: the local services, the stub's API (chime-sdk-voice and the legacy client).
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { ChimeSDKVoiceClient, GetSipMediaApplicationCommand } from "@aws-sdk/client-chime-sdk-voice";
import { ChimeClient, ListAccountsCommand } from "@aws-sdk/client-chime";

export const handler = async () => {
  await new DynamoDBClient({}).send(new ListTablesCommand({}));
  await new ChimeSDKVoiceClient({}).send(new GetSipMediaApplicationCommand({ SipMediaApplicationId: "sma-1" }));
  await new ChimeClient({}).send(new ListAccountsCommand({}));
  return {};
};
