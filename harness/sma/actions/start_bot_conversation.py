"""StartBotConversation (sma-reference §3.13): a Lex bot conversation; here the bot speaks its
welcome messages and returns the IntentResult the profile scripts for its BotAliasArn."""
from __future__ import annotations

import json
from dataclasses import dataclass

from .. import commands as cmd
from ..model import Leg
from .base import Action, ActionFailure, Context, Done, invalid
from .params import as_str, echoed
from .runs import Playback

MAX_CONFIGURATION_BYTES = 10 * 1024
WELCOME_VOICE = {"engine": "standard", "language": "en-US", "text_type": "text", "voice": "Joanna"}


@dataclass(frozen=True)
class StartBotConversation(Action):
    TYPE = "StartBotConversation"
    PARAMETERS = ("BotAliasArn", "LocaleId", "Configuration", "CallId", "ParticipantTag")
    REPORTS = True
    EMULATION = "the bot returns the scripted IntentResult of the profile"
    ERRORS = ("MissingRequiredActionParameter", "ResourceNotFound", "SystemException")

    bot_alias_arn: str
    locale: str
    welcome: tuple[str, ...]

    @classmethod
    def parse(cls, params: dict) -> "StartBotConversation":
        arn = as_str(params, "BotAliasArn")
        locale = as_str(params, "LocaleId", "en_US")
        config = params.get("Configuration") or {}
        if not isinstance(config, dict) or len(json.dumps(config)) > MAX_CONFIGURATION_BYTES:
            raise invalid("Configuration")
        welcome = tuple(m.get("Content", "") for m in config.get("WelcomeMessages", []) if isinstance(m, dict))
        return cls(echoed(params, LocaleId="en_US"), arn, locale, welcome)

    def start(self, ctx: Context, leg: Leg) -> Done | Playback:
        bot = ctx.sma.bots.get(self.bot_alias_arn)
        if bot is None:
            raise ActionFailure("ResourceNotFound", f"Bot alias {self.bot_alias_arn} not found.")
        result = {"IntentResult": bot}
        welcome = " ".join(w for w in self.welcome if w)
        if not welcome:
            return Done(result)
        run = Playback(self, leg, ctx.new_token(), result=result)
        ctx.emit(cmd.Speak(leg.call_id, {"text": welcome, **WELCOME_VOICE}, run.token))
        return run
